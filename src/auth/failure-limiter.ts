/**
 * Per-client failure limiter for online password guessing: after `maxFailures` failures within
 * `windowMs`, the client is refused (429 with Retry-After) until a full window has passed since the
 * failure that tripped the limit. Memory is bounded: at `maxEntries`, expired entries at the old end
 * are dropped, then the oldest are evicted (an attacker rotating through more addresses than that can reset its
 * own count, which is why the cap is generous). The clock is injected for tests.
 */
export interface FailureLimiter {
  /** Milliseconds this key is still blocked for, or 0. */
  blockedFor(key: string): number;
  /** Record one failure. */
  fail(key: string): void;
  readonly size: number;
}

export function createFailureLimiter(opts: { maxFailures: number; windowMs: number; maxEntries?: number; now?: () => number }): FailureLimiter {
  const { maxFailures, windowMs, maxEntries = 10_000, now = Date.now } = opts;
  const entries = new Map<string, { count: number; resetAt: number }>();
  return {
    blockedFor(key) {
      const e = entries.get(key);
      if (e === undefined) return 0;
      const left = e.resetAt - now();
      if (left <= 0) {
        entries.delete(key);
        return 0;
      }
      return e.count >= maxFailures ? left : 0;
    },
    fail(key) {
      const t = now();
      const e = entries.get(key);
      if (e !== undefined && e.resetAt > t) {
        e.count++;
        if (e.count === maxFailures) e.resetAt = t + windowMs;
        return;
      }
      entries.delete(key);
      if (entries.size >= maxEntries) {
        // Expired entries at the old end go first; the sweep stops at the first live one, so a
        // flood of new client addresses costs O(1) per failure, not a walk over every entry.
        for (const [k, v] of entries) {
          if (v.resetAt > t) break;
          entries.delete(k);
        }
        while (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
      }
      entries.set(key, { count: 1, resetAt: t + windowMs });
    },
    get size() {
      return entries.size;
    },
  };
}
