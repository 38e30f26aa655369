/**
 * The caches of the authenticators: a bounded LRU whose entries carry their own expiry (verified
 * tokens, introspection results, recent Basic successes, external-auth decisions), a single-flight
 * map that lets concurrent lookups of one key share a call, and the token digest they key on (a
 * token itself is never held as a key). The clock is injected so tests need no sleeps.
 */
import { hash } from 'node:crypto';

export function tokenDigest(token: string): string {
  return hash('sha256', token, 'base64url');
}

/**
 * At capacity the least recently used entry goes: O(1) per call, whatever a client sends. Expired
 * entries are dropped when read, and an expired entry nobody reads drifts to the LRU end.
 */
export class TokenCache<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(maxEntries: number, now: () => number = Date.now) {
    this.#max = maxEntries;
    this.#now = now;
  }

  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    this.#entries.delete(key);
    if (e.expiresAt <= this.#now()) return undefined;
    this.#entries.set(key, e); // most recently used last
    return e.value;
  }

  /** Store until `expiresAt` (epoch ms); nothing is stored when that is not in the future or the cache is disabled. */
  set(key: string, value: V, expiresAt: number): void {
    if (this.#max === 0 || expiresAt <= this.#now()) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * Single-flight per key: while a call for `key` is in flight, asking again returns the same
 * promise instead of starting another (one hash verification, one introspection call). Holds
 * only in-flight keys, so it is bounded by concurrency.
 */
export function createSingleFlight<V>(): (key: string, start: () => Promise<V>) => Promise<V> {
  const inFlight = new Map<string, Promise<V>>();
  return (key, start) => {
    let p = inFlight.get(key);
    if (p === undefined) {
      p = start().finally(() => inFlight.delete(key));
      inFlight.set(key, p);
    }
    return p;
  };
}
