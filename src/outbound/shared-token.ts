/**
 * The client-credentials token shared by every instance through the store (Redis): read it; if
 * none is fresh, one instance takes a lock (SET NX PX) and fetches while the others wait briefly
 * and read again. Fail-safe: when the store fails, or the lock holder does not deliver in time,
 * an instance fetches its own token — more token requests, never a failed client request.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Counter } from 'prom-client';
import type { Logger } from '../observability/logger.js';
import type { SharedStore } from '../state/store.js';

export interface SharedToken {
  readonly value: string;
  /** Use until (ms epoch): expiry minus skew. */
  readonly until: number;
  /** Fetch a successor from here on (ms epoch), in the background. */
  readonly refreshAt: number;
}

export interface SharedTokenOptions {
  readonly store: SharedStore;
  /** Namespaced store key (a hash of what the token is for; never a secret). */
  readonly key: string;
  readonly fetchToken: () => Promise<SharedToken>;
  readonly now: () => number;
  /** The token an upstream last refused: ignored when read back from the store. */
  readonly rejected: () => string | undefined;
  /** How long to wait for another instance's fetch (the token request timeout). */
  readonly waitMs: number;
  readonly counters: { readonly shared: Counter.Internal; readonly fallback: Counter.Internal };
  readonly logger: Logger;
  readonly upstream: string;
}

const POLL_MS = 25;
const STORE_DOWN = Symbol('store down');

function encode(t: SharedToken): string {
  return JSON.stringify({ v: t.value, u: t.until, r: t.refreshAt });
}

/** A stored value we did not write ourselves is data, not trusted structure. */
function decode(raw: string | undefined): SharedToken | undefined {
  if (raw === undefined) return undefined;
  try {
    const o = JSON.parse(raw) as { v?: unknown; u?: unknown; r?: unknown };
    if (typeof o.v === 'string' && o.v !== '' && typeof o.u === 'number' && typeof o.r === 'number') return { value: o.v, until: o.u, refreshAt: o.r };
  } catch {}
  return undefined;
}

export async function obtainShared(o: SharedTokenOptions): Promise<SharedToken> {
  const safe = <T>(p: Promise<T>): Promise<T | typeof STORE_DOWN> =>
    p.catch((err: unknown) => {
      o.counters.fallback.inc();
      o.logger.debug({ upstream: o.upstream, err: (err as Error).message }, 'shared store failed; using a token of our own');
      return STORE_DOWN;
    });
  const read = async (): Promise<SharedToken | undefined | typeof STORE_DOWN> => {
    const raw = await safe(o.store.get(o.key));
    return raw === STORE_DOWN ? raw : decode(raw);
  };
  const usable = (t: SharedToken | undefined): t is SharedToken => t !== undefined && t.value !== o.rejected() && o.now() < t.until;
  const shared = (t: SharedToken): SharedToken => {
    o.counters.shared.inc();
    return t;
  };

  const seen = await read();
  if (seen === STORE_DOWN) return o.fetchToken();
  if (usable(seen) && o.now() < seen.refreshAt) return shared(seen);
  const unlock = await safe(o.store.lock(`${o.key}:lock`, o.waitMs + 1_000));
  if (unlock === STORE_DOWN) return o.fetchToken();
  if (unlock === undefined) {
    // Another instance is fetching. A token that still serves will do meanwhile; else wait for theirs.
    if (usable(seen)) return shared(seen);
    const deadline = o.now() + o.waitMs;
    while (o.now() < deadline) {
      await sleep(POLL_MS);
      const next = await read();
      if (next === STORE_DOWN) break;
      if (usable(next)) return shared(next);
    }
    return o.fetchToken();
  }
  try {
    const token = await o.fetchToken();
    const ttl = token.until - o.now();
    if (ttl > 0) await safe(o.store.set(o.key, encode(token), ttl));
    return token;
  } finally {
    void safe(unlock());
  }
}
