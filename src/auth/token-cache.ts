/**
 * A bounded LRU of verified tokens, keyed by the SHA-256 of the token (the token itself is never
 * held as a key). Each entry carries its own expiry; the clock is injected.
 */
import { createHash } from 'node:crypto';

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

export class TokenCache<V> {
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(maxEntries: number, now: () => number) {
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
