/** Build the `store` section once per runtime: the Redis client, or the embedded memory store. */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createMemoryStore } from './memory.js';
import { createRedisStore } from './redis.js';
import type { StoreConfig } from './schema.js';
import type { SharedStore } from './store.js';

export function buildStore(cfg: StoreConfig, deps: { metrics: Metrics; logger: Logger }): Promise<SharedStore> {
  return cfg.redis === undefined ? Promise.resolve(createMemoryStore()) : createRedisStore(cfg.redis, deps);
}
