/** The embedded store: a Map with expiries, for a single instance (the default). */
import { randomUUID } from 'node:crypto';
import type { SharedStore, Unlock } from './store.js';

interface Entry {
  readonly value: string;
  readonly until: number;
}

/** Expired entries are dropped when read and swept once the map grows past this many. */
const SWEEP_AT = 10_000;

export function createMemoryStore(now: () => number = Date.now): SharedStore {
  const map = new Map<string, Entry>();
  const read = (key: string): string | undefined => {
    const e = map.get(key);
    if (e === undefined) return undefined;
    if (e.until > now()) return e.value;
    map.delete(key);
    return undefined;
  };
  const write = (key: string, value: string, ttlMs: number): void => {
    if (map.size >= SWEEP_AT) {
      const t = now();
      for (const [k, e] of map) if (e.until <= t) map.delete(k);
    }
    map.set(key, { value, until: now() + Math.max(1, ttlMs) });
  };
  return {
    backend: 'memory',
    shared: false,
    get: async (key) => read(key),
    set: async (key, value, ttlMs) => write(key, value, ttlMs),
    delete: async (key) => {
      map.delete(key);
    },
    async lock(key, ttlMs): Promise<Unlock | undefined> {
      if (read(key) !== undefined) return undefined;
      const owner = randomUUID();
      write(key, owner, ttlMs);
      return async () => {
        if (read(key) === owner) map.delete(key);
      };
    },
    close: async () => map.clear(),
  };
}
