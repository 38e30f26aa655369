/**
 * A small bounded cache with a per-entry time to live: used for recent Basic successes and external
 * auth decisions. At capacity, expired entries are swept and then the oldest inserted is evicted, so
 * memory never grows past `maxEntries`. The clock is injected so tests need no sleeps.
 */
export interface TtlCache<V> {
  get(key: string): V | undefined;
  set(key: string, value: V, ttlMs: number): void;
  readonly size: number;
  clear(): void;
}

export function createTtlCache<V>(maxEntries: number, now: () => number = Date.now): TtlCache<V> {
  const entries = new Map<string, { value: V; expires: number }>();
  return {
    get(key) {
      const e = entries.get(key);
      if (e === undefined) return undefined;
      if (e.expires <= now()) {
        entries.delete(key);
        return undefined;
      }
      return e.value;
    },
    set(key, value, ttlMs) {
      if (ttlMs <= 0) return;
      entries.delete(key);
      if (entries.size >= maxEntries) {
        const t = now();
        for (const [k, e] of entries) if (e.expires <= t) entries.delete(k);
        // Map iteration is insertion order: the first key is the oldest entry.
        while (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
      }
      entries.set(key, { value, expires: now() + ttlMs });
    },
    get size() {
      return entries.size;
    },
    clear: () => entries.clear(),
  };
}
