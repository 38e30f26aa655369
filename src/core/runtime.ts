/**
 * Build once, run per request: a loaded config becomes a Runtime — compiled router, upstream
 * pools, TLS material read from disk, pre-rendered static replies, pre-bound metric children.
 * Building never touches the live gateway; a reload swaps the whole Runtime at once.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { CounterSeries, HistogramSeries } from '../observability/hot-metrics.js';
import { BuildProblem, ConfigError, type ConfigProblem, type LoadedConfig } from '../config/load.js';
import type { Config, LimitsConfig, ListenerConfig, RouteConfig } from '../config/schema.js';
import { compileRouter, type Router } from './router.js';
import { compileTrustedProxies, type TrustedProxies } from '../server/client-ip.js';
import type { Metrics } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { type AuthSection, buildAuth } from '../auth/build.js';
import type { RouteAuth } from '../auth/pipeline.js';
import { buildOutbound, type OutboundPhase, type OutboundSection } from '../outbound/build.js';
import { buildStore } from '../state/build.js';
import type { SharedStore } from '../state/store.js';
import { createUpstream, type Upstream } from '../upstream/upstream.js';
import { buildUpstreamTLS, type UpstreamTLS } from '../upstream/tls.js';
import { type CertificateInfo, certificatesIn } from '../observability/certificates.js';

export interface StaticReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | number>>;
  readonly body: Buffer;
}

export interface RouteMetrics {
  /** Request counters per status class, index 0 = 1xx … 4 = 5xx. */
  readonly byClass: readonly CounterSeries[];
  readonly duration: HistogramSeries;
}

export interface CompiledRoute {
  readonly name: string;
  readonly upstream: Upstream | undefined;
  readonly respond: StaticReply | undefined;
  /** Literal prefix to remove before forwarding, or undefined. */
  readonly stripPrefix: string | undefined;
  readonly websocket: boolean;
  readonly metrics: RouteMetrics;
  /** The authenticate phase, or undefined for an anonymous route. */
  readonly auth: RouteAuth | undefined;
  /** Forward the client's own credential upstream (default false: stripped). */
  readonly forwardCredentials: boolean;
  /** The outbound-credential phase of the route's upstream, or undefined (no `auth`: nothing to do). */
  readonly outbound: OutboundPhase | undefined;
}

export interface ListenerSpec {
  readonly key: string;
  readonly config: ListenerConfig;
  /** PEM material read at build time (undefined for plain HTTP). */
  readonly tls: ListenerTls | undefined;
}

export interface ListenerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** CAs that sign client certificates (tls.clientCa), or undefined. */
  readonly clientCa: Buffer | undefined;
  /** Effective tls.clientCert: `optional` when clientCa is set and clientCert is not, else `off`. */
  readonly clientCert: 'off' | 'optional' | 'required';
}

export interface Runtime {
  readonly config: Config;
  readonly file: string;
  /** Short hash of the config file's effective content, for logs and the config_info metric. */
  readonly hash: string;
  readonly router: Router<CompiledRoute>;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly trusted: TrustedProxies;
  readonly limits: LimitsConfig;
  readonly listeners: readonly ListenerSpec[];
  /** Metrics children for requests that matched no route. */
  readonly unmatched: RouteMetrics;
  readonly auth: AuthSection | undefined;
  /** Outbound credentials per upstream and the gateway signing key (published by the gateway as a JWKS). */
  readonly outbound: OutboundSection | undefined;
  /** Shared state: the embedded memory store, or a Redis client (closed with the runtime). */
  readonly store: SharedStore;
  /** Every certificate the config uses (listener chains, upstream client chains and CAs), for expiry monitoring. */
  readonly certificates: readonly CertificateInfo[];
  close(): Promise<void>;
}

export function listenerKey(l: ListenerConfig): string {
  return `${l.address.host}:${l.address.port}`;
}

function routeMetrics(metrics: Metrics, name: string): RouteMetrics {
  return {
    byClass: ['1xx', '2xx', '3xx', '4xx', '5xx'].map((c) => metrics.requests.labels({ route: name, status_class: c })),
    duration: metrics.duration.labels({ route: name }),
  };
}

function staticReply(r: NonNullable<RouteConfig['respond']>): StaticReply {
  const isJson = r.json !== undefined;
  const body = Buffer.from(isJson ? JSON.stringify(r.json) : (r.body ?? ''));
  const headers: Record<string, string | number> = {};
  if (isJson || r.body !== undefined) headers['content-type'] = isJson ? 'application/json' : 'text/plain; charset=utf-8';
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v;
  headers['content-length'] = body.length;
  return { status: r.status, headers, body };
}

async function readPem(loaded: LoadedConfig, file: string, path: (string | number)[], problems: ConfigProblem[]): Promise<Buffer> {
  try {
    const pem = await readFile(resolve(loaded.dir, file));
    if (!pem.includes('-----BEGIN ')) problems.push(loaded.problem(path, `${file} is not a PEM file`));
    return pem;
  } catch (err) {
    problems.push(loaded.problem(path, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`));
    return Buffer.alloc(0);
  }
}

/** Build a Runtime, or throw ConfigError listing every problem found. */
export async function buildRuntime(loaded: LoadedConfig, metrics: Metrics, logger: Logger): Promise<Runtime> {
  const { config } = loaded;
  const problems: ConfigProblem[] = [];

  const listeners = await Promise.all(
    config.listeners.map(async (l, i): Promise<ListenerSpec> => {
      if (l.tls === undefined) return { key: listenerKey(l), config: l, tls: undefined };
      const [cert, key, clientCa] = await Promise.all([
        readPem(loaded, l.tls.cert, ['listeners', i, 'tls', 'cert'], problems),
        readPem(loaded, l.tls.key, ['listeners', i, 'tls', 'key'], problems),
        l.tls.clientCa === undefined ? undefined : readPem(loaded, l.tls.clientCa, ['listeners', i, 'tls', 'clientCa'], problems),
      ]);
      if (clientCa !== undefined && clientCa.length > 0) {
        try {
          const { createSecureContext } = await import('node:tls');
          createSecureContext({ ca: clientCa });
        } catch (err) {
          problems.push(loaded.problem(['listeners', i, 'tls', 'clientCa'], `${l.tls.clientCa} holds no usable CA certificate (${(err as Error).message})`));
        }
      }
      const clientCert = l.tls.clientCert ?? (l.tls.clientCa === undefined ? 'off' : 'optional');
      if (cert.length > 0 && key.length > 0) {
        try {
          const { createSecureContext } = await import('node:tls');
          createSecureContext({ cert, key });
        } catch (err) {
          problems.push(loaded.problem(['listeners', i, 'tls'], `certificate and key do not form a usable pair (${(err as Error).message})`));
        }
      }
      return { key: listenerKey(l), config: l, tls: { cert, key, clientCa, clientCert } };
    }),
  );

  // Upstream TLS material is read and checked here, so a missing CA, certificate or key is a config error.
  const upstreamTLS = new Map<string, UpstreamTLS>();
  for (const [name, u] of Object.entries(config.upstreams)) {
    const t = await buildUpstreamTLS(name, u, loaded.dir, (path, reason) => problems.push(loaded.problem(path, reason)));
    if (t === undefined) continue;
    upstreamTLS.set(name, t);
    if (t.insecure)
      logger.warn(
        { upstream: name, path: `upstreams.${name}.tls.insecureSkipVerify` },
        'UPSTREAM TLS VERIFICATION IS OFF: any server can impersonate this upstream and read what the gateway sends it',
      );
  }

  let router: Router<CompiledRoute> | undefined;
  const upstreams = new Map<string, Upstream>();
  let auth: AuthSection | undefined;
  const located = (err: unknown) => {
    if (!(err instanceof BuildProblem)) throw err;
    problems.push(loaded.problem(err.path, err.message));
  };
  try {
    auth = await buildAuth(config.authenticators, config.consumers, { dir: loaded.dir, metrics, logger });
  } catch (err) {
    located(err);
  }
  // Shared state first: the outbound credentials keep their tokens there. A Redis that is down
  // does not fail the build (fail-safe: each instance then fetches its own tokens).
  const store = await buildStore(config.store, { metrics, logger });
  let outbound: OutboundSection | undefined;
  try {
    outbound = await buildOutbound(config, { dir: loaded.dir, metrics, logger, store });
  } catch (err) {
    if (!(err instanceof BuildProblem)) await store.close();
    located(err);
  }
  const routeAuth = (i: number, rc: RouteConfig): RouteAuth | undefined => {
    if (rc.authenticate === undefined || auth === undefined) return undefined;
    try {
      return auth.routeAuth(i, rc.authenticate);
    } catch (err) {
      located(err);
      return undefined;
    }
  };
  if (problems.length === 0) {
    for (const [name, u] of Object.entries(config.upstreams)) upstreams.set(name, createUpstream(name, u, upstreamTLS.get(name)));
    const routes = config.routes.map((rc, i) => ({
      config: rc,
      route: {
        name: rc.name,
        upstream: rc.upstream === undefined ? undefined : upstreams.get(rc.upstream),
        respond: rc.respond === undefined ? undefined : staticReply(rc.respond),
        stripPrefix: rc.stripPrefix,
        websocket: rc.websocket,
        metrics: routeMetrics(metrics, rc.name),
        auth: routeAuth(i, rc),
        forwardCredentials: rc.forwardCredentials,
        outbound: rc.upstream === undefined ? undefined : outbound?.phases.get(rc.upstream),
      } satisfies CompiledRoute,
    }));
    // An upgraded connection never passes through the outbound phase: refuse the combination
    // rather than let a WebSocket reach a backend without the credential it expects.
    routes.forEach(({ route }, i) => {
      if (route.websocket && route.outbound !== undefined)
        problems.push(
          loaded.problem(
            ['routes', i, 'websocket'],
            `outbound credentials (upstreams.${config.routes[i]?.upstream}.auth) are not applied to WebSocket upgrades; use an upstream without auth for this route`,
          ),
        );
    });
    try {
      router = compileRouter(routes);
    } catch (err) {
      located(err);
    }
  }
  if (problems.length > 0 || router === undefined) {
    await Promise.all([...upstreams.values()].map((u) => u.close()));
    await auth?.close();
    await outbound?.close();
    await store.close();
    throw new ConfigError(problems);
  }

  const hash = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 12);
  return {
    config,
    file: loaded.file,
    hash,
    router,
    upstreams,
    trusted: compileTrustedProxies(config.trustedProxies),
    limits: config.limits,
    listeners,
    unmatched: routeMetrics(metrics, '(none)'),
    auth,
    outbound,
    store,
    certificates: [
      ...listeners.flatMap((l) => (l.tls === undefined ? [] : certificatesIn(l.tls.cert, 'listener', l.key))),
      ...[...upstreamTLS.values()].flatMap((t) => t.certificates),
    ],
    async close() {
      await Promise.all([...upstreams.values()].map((u) => u.close()));
      await auth?.close();
      await outbound?.close();
      await store.close(); // a reload builds a new client: the old one must not linger
    },
  };
}
