/**
 * Shared state behind one small interface. Today it holds the client-credentials token cache;
 * counters and sessions are meant to move here too. Two backends: `memory` (the default, one
 * process) and `redis` (every instance sharing one Redis). Values are strings; callers encode.
 *
 * Every method may reject (Redis down, timed out): a caller states its own failure mode, and
 * the Redis backend counts each failure in portcullis_state_store_errors_total.
 */

/** Releases a lock taken with `lock`, if it is still ours (a lock that expired is left alone). */
export type Unlock = () => Promise<void>;

export interface SharedStore {
  /** `memory` or `redis` (a metric label and a log field). */
  readonly backend: 'memory' | 'redis';
  /** True when other gateway instances see what this one writes (redis). */
  readonly shared: boolean;
  get(key: string): Promise<string | undefined>;
  /** Store `value` under `key` for `ttlMs` milliseconds (always with an expiry: nothing is kept forever). */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Take the lock `key` for at most `ttlMs` (SET NX PX): resolves to its release, or to undefined
   * when someone else holds it. The expiry bounds how long a crashed holder blocks the others.
   */
  lock(key: string, ttlMs: number): Promise<Unlock | undefined>;
  close(): Promise<void>;
}
