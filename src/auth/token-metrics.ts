/**
 * Counters of the token authenticators, registered once on the gateway's registry (reloads build
 * authenticators again against the same registry). Labels: the authenticator name (from config)
 * and a fixed result vocabulary — never a token, key id or subject.
 */
import { Counter, type Registry } from 'prom-client';
import { type CounterSeries, HotCounter } from '../observability/hot-metrics.js';

export interface TokenMetrics {
  /** Verified-token / introspection cache lookups: result hit | miss (counted per request: a hot counter). */
  readonly cache: HotCounter;
  /** Remote calls (JWKS fetch, introspection): kind jwks | introspection, result ok | error. */
  readonly remote: Counter<'authenticator' | 'kind' | 'result'>;
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<L>;
  return new Counter({ name, help, labelNames: [...labelNames], registers: [registry] });
}

export function tokenMetrics(registry: Registry): TokenMetrics {
  return {
    cache:
      (registry.getSingleMetric('portcullis_auth_token_cache_total') as HotCounter | undefined) ??
      new HotCounter('portcullis_auth_token_cache_total', 'Token cache lookups of jwt/introspection authenticators by result (hit, miss)').register(registry),
    remote: counter(registry, 'portcullis_auth_remote_calls_total', 'JWKS fetches and introspection calls by authenticator, kind and result (ok, error)', [
      'authenticator',
      'kind',
      'result',
    ]),
  };
}

/** The hit and miss series of one authenticator's token cache, bound once at build. */
export function cacheCounters(metrics: TokenMetrics, authenticator: string): { hit: CounterSeries; miss: CounterSeries } {
  return {
    hit: metrics.cache.labels({ authenticator, result: 'hit' }),
    miss: metrics.cache.labels({ authenticator, result: 'miss' }),
  };
}
