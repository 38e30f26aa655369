/**
 * The Redis backend (ioredis). Commands fail fast instead of queueing while Redis is away
 * (`enableOfflineQueue: false`, no per-request retries, a command timeout), so a caller's
 * fallback runs within `timeout`; the client keeps reconnecting in the background. Every failed
 * operation is counted; the outage is logged once when it starts and once when it ends.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { reveal } from '../secrets/secret.js';
import type { RedisStoreConfig } from './schema.js';
import type { SharedStore, Unlock } from './store.js';

/** Delete the lock only if it still holds our token: a lock that expired may belong to another instance now. */
const UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export async function createRedisStore(cfg: RedisStoreConfig, deps: { metrics: Metrics; logger: Logger }): Promise<SharedStore> {
  const { logger } = deps;
  const client = new Redis(reveal(cfg.url), {
    lazyConnect: true,
    connectTimeout: cfg.timeout,
    commandTimeout: cfg.timeout,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Reconnect forever, backing off to 2s: Redis coming back is noticed without a restart.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
  });
  let up = false;
  client.on('ready', () => {
    if (!up) logger.info({ store: 'redis' }, 'shared store connected');
    up = true;
  });
  // Without a listener an 'error' event would crash the process. The URL is never logged (it may hold a password).
  client.on('error', (err: Error) => {
    if (up) logger.warn({ store: 'redis', err: err.message }, 'shared store unavailable; falling back to local state');
    up = false;
  });
  const errors = {
    get: deps.metrics.stateStoreErrors.labels('redis', 'get'),
    set: deps.metrics.stateStoreErrors.labels('redis', 'set'),
    delete: deps.metrics.stateStoreErrors.labels('redis', 'delete'),
    lock: deps.metrics.stateStoreErrors.labels('redis', 'lock'),
  };
  const counted = <T>(op: keyof typeof errors, p: Promise<T>): Promise<T> =>
    p.catch((err: unknown) => {
      errors[op].inc();
      throw err;
    });
  const k = (key: string) => cfg.keyPrefix + key;

  // Wait (bounded) for the first connection so a fresh instance starts sharing at once; a Redis
  // that is down at start is not fatal: the gateway serves from local state until it is back.
  const first = await Promise.race([
    client.connect().then(
      () => undefined,
      (err: Error) => err.message,
    ),
    new Promise<string>((resolve) => setTimeout(resolve, cfg.timeout * 2, 'connect timed out').unref()),
  ]);
  if (first !== undefined) logger.warn({ store: 'redis', err: first }, 'shared store not reachable at start; using local state until it is');

  return {
    backend: 'redis',
    shared: true,
    get: (key) => counted('get', client.get(k(key))).then((v) => v ?? undefined),
    set: (key, value, ttlMs) => counted('set', client.set(k(key), value, 'PX', Math.max(1, Math.ceil(ttlMs)))).then(() => undefined),
    delete: (key) => counted('delete', client.del(k(key))).then(() => undefined),
    async lock(key, ttlMs): Promise<Unlock | undefined> {
      const owner = randomUUID();
      const ok = await counted('lock', client.set(k(key), owner, 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX'));
      if (ok !== 'OK') return undefined;
      return () => counted('lock', client.eval(UNLOCK, 1, k(key), owner)).then(() => undefined);
    },
    async close() {
      // QUIT lets Redis finish what we sent; disconnect() also stops the reconnect loop.
      await Promise.race([client.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, cfg.timeout).unref())]);
      client.disconnect();
    },
  };
}
