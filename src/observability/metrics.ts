/**
 * Prometheus metrics. Labels are bounded: route and upstream names come from the config, status
 * is a class (2xx…), `kind` is a fixed vocabulary. Never a client value, consumer, key or token.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from './hot-metrics.js';

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export interface Metrics {
  readonly registry: Registry;
  /** Per-request series (labels route, status_class): bound at build, see hot-metrics.ts. */
  readonly requests: HotCounter;
  /** Per-request series (label route). */
  readonly duration: HotHistogram;
  /** Per-request series (label upstream). */
  readonly upstreamDuration: HotHistogram;
  readonly upstreamErrors: Counter<'upstream' | 'kind'>;
  readonly openConnections: Gauge<'listener'>;
  readonly reloads: Counter<'result'>;
  readonly refusals: Counter<'code'>;
  readonly configInfo: Gauge<'hash'>;
  /** Per-request series (labels authenticator, outcome, reason). */
  readonly authDecisions: HotCounter;
  readonly certificateExpiry: Gauge<'kind' | 'name'>;
  readonly outboundCredentials: Counter<'upstream' | 'type' | 'result'>;
  readonly outboundTokenCache: Counter<'upstream' | 'result'>;
  readonly stateStoreErrors: Counter<'backend' | 'operation'>;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'portcullis_process_' });
  const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
  return {
    registry,
    requests: new HotCounter('portcullis_requests_total', 'Requests by route and status class').register(registry),
    duration: new HotHistogram('portcullis_request_duration_seconds', 'Time from request to the end of the response', buckets).register(registry),
    upstreamDuration: new HotHistogram('portcullis_upstream_duration_seconds', 'Time from sending upstream to its response headers', buckets).register(
      registry,
    ),
    upstreamErrors: new Counter({
      name: 'portcullis_upstream_errors_total',
      help: 'Failed upstream exchanges by kind (refused, timeout, tls, reset)',
      labelNames: ['upstream', 'kind'],
      registers: [registry],
    }),
    openConnections: new Gauge({
      name: 'portcullis_open_connections',
      help: 'Open client connections by listener',
      labelNames: ['listener'],
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'portcullis_config_reloads_total',
      help: 'Config reloads by result (success, failure)',
      labelNames: ['result'],
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'portcullis_refusals_total',
      help: 'Requests the gateway answered itself, by error code',
      labelNames: ['code'],
      registers: [registry],
    }),
    authDecisions: new HotCounter(
      'portcullis_auth_decisions_total',
      'Authentication decisions by authenticator, outcome (allowed, absent, rejected, unavailable) and reason',
    ).register(registry),
    outboundCredentials: new Counter({
      name: 'portcullis_outbound_credentials_total',
      help: 'Outbound credentials applied to upstream requests by upstream, type and result (applied, refused, failed)',
      labelNames: ['upstream', 'type', 'result'],
      registers: [registry],
    }),
    outboundTokenCache: new Counter({
      name: 'portcullis_outbound_token_cache_total',
      help: 'Outbound token lookups by upstream and result: hit, miss (minted or fetched), shared (read from the shared store), fallback (shared store failed)',
      labelNames: ['upstream', 'result'],
      registers: [registry],
    }),
    stateStoreErrors: new Counter({
      name: 'portcullis_state_store_errors_total',
      help: 'Failed shared-store operations by backend and operation (get, set, delete, lock); callers fall back to local state',
      labelNames: ['backend', 'operation'],
      registers: [registry],
    }),
    certificateExpiry: new Gauge({
      name: 'portcullis_certificate_expiry_days',
      help: 'Days until the soonest-expiring certificate of each kind (listener, upstream-client, upstream-ca) and name expires',
      labelNames: ['kind', 'name'],
      aggregator: 'min', // cluster /metrics: workers load the same files; summing days would be nonsense
      registers: [registry],
    }),
    configInfo: new Gauge({
      name: 'portcullis_config_info',
      help: 'Always 1; the hash label identifies the config in force',
      labelNames: ['hash'],
      registers: [registry],
    }),
  };
}
