/**
 * External authorization: ask an HTTP auth service about each request (Envoy ext_authz HTTP service
 * and Traefik ForwardAuth conventions; docs/authentication.md#external-auth-type-external).
 *
 *   GET <url>[+ request path]  X-Forwarded-Method/-Uri/-Host/-Proto/-For + allowlisted client headers
 *   200            → allow; the listed response headers are set on the upstream request
 *   anything else  → the service's own reply (status, safe headers, body) goes back to the client
 *   no answer      → 503 PTC_ERR_AUTH_UNAVAILABLE (failureMode closed, default) or "absent"
 *
 * One undici Pool per authenticator, built here; a timeout bounds every call. Allow decisions may
 * be cached, keyed on exactly the inputs the service was shown and for as long as its
 * Cache-Control allows (capped by cache.maxTtl).
 */
import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import { BuildProblem } from '../config/load.js';
import { GATEWAY_FORWARDING_HEADERS, HOP_BY_HOP_RESPONSE, type HeaderMap } from '../core/headers.js';
import type { AuthBuildContext } from './build.js';
import { IDENTITY_HEADERS } from './propagate.js';
import { readCapped } from './read-capped.js';
import type { AuthenticatorConfig } from './schema.js';
import { TokenCache } from './token-cache.js';
import { type AuthOutcome, type AuthRequest, type Authenticator, type Identity, outcome } from './types.js';

type ExternalConfig = Extract<AuthenticatorConfig, { type: 'external' }>;

/** Largest auth-service reply body relayed to a client; larger replies fail closed. */
export const MAX_REPLY_BYTES = 64 * 1024;

/** Hop-by-hop and framing headers: never relayed from the auth service's reply, never copied upstream. */
const HOP_AND_FRAMING: ReadonlySet<string> = new Set([...HOP_BY_HOP_RESPONSE, 'proxy-authorization', 'content-length']);

/** Names the gateway sets itself on the upstream request; an auth service cannot override them. */
const GATEWAY_SET = new Set([...HOP_AND_FRAMING, ...GATEWAY_FORWARDING_HEADERS, ...Object.values(IDENTITY_HEADERS)]);

interface Decision {
  /** The subjectHeader value, or undefined when the service named no subject. */
  readonly named: string | undefined;
  readonly subject: string;
  readonly upstreamHeaders: Readonly<Record<string, string>>;
}

/** Seconds a shared cache may keep this response (RFC 9111 §5.2.2), 0 when it must not be stored. */
export function cacheSeconds(cacheControl: string | string[] | undefined): number {
  if (cacheControl === undefined) return 0;
  let maxAge: number | undefined;
  let sMaxAge: number | undefined;
  for (const d of (Array.isArray(cacheControl) ? cacheControl.join(',') : cacheControl).split(',')) {
    const [k = '', v] = d.trim().toLowerCase().split('=', 2) as [string, string | undefined];
    const n = v === undefined ? Number.NaN : Number(v.replace(/^"|"$/g, ''));
    // `private` is for the client's own cache, and the gateway is a shared one (RFC 9111 §5.2.2.7).
    if (k === 'no-store' || k === 'no-cache' || k === 'private') return 0;
    if (k === 'max-age' && Number.isInteger(n) && n >= 0) maxAge = n;
    if (k === 's-maxage' && Number.isInteger(n) && n >= 0) sMaxAge = n;
  }
  return sMaxAge ?? maxAge ?? 0;
}

function classify(err: unknown): string {
  const e = err as { code?: string; name?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? '';
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || code.endsWith('_TIMEOUT')) return 'timeout';
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENOTFOUND' || code === 'UND_ERR_SOCKET') return 'connect_failed';
  return 'error';
}

function one(v: string | string[] | undefined): string | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : v;
}

export function createExternalAuthenticator(name: string, cfg: ExternalConfig, ctx: AuthBuildContext): Authenticator {
  const url = new URL(cfg.url);
  if (cfg.appendPath && url.search !== '') throw new BuildProblem([...ctx.path, 'url'], 'a url with a query cannot be combined with appendPath');
  cfg.responseHeaders.forEach((h, i) => {
    if (GATEWAY_SET.has(h)) throw new BuildProblem([...ctx.path, 'responseHeaders', i], `"${h}" is set by the gateway and cannot come from the auth service`);
  });
  if (cfg.subjectHeader !== undefined && HOP_AND_FRAMING.has(cfg.subjectHeader))
    throw new BuildProblem([...ctx.path, 'subjectHeader'], `"${cfg.subjectHeader}" is not a header an auth service can name a subject in`);
  const basePath = url.pathname.replace(/\/$/, '');
  const pool = new Pool(url.origin, {
    connect: { timeout: cfg.timeout },
    headersTimeout: cfg.timeout,
    bodyTimeout: cfg.timeout,
    connections: 64,
  });
  const cache = cfg.cache === undefined ? undefined : new TokenCache<Decision>(cfg.cache.maxEntries);
  const maxTtlMs = cfg.cache?.maxTtl ?? 0;
  const failOpen = ctx.metrics.authDecisions.labels({ authenticator: name, outcome: 'failed_open', reason: '' });

  const pathFor = (req: AuthRequest) => (cfg.appendPath ? `${basePath}${req.path}${req.query}` : `${url.pathname}${url.search}`);

  const requestHeaders = (req: AuthRequest): Record<string, string | string[]> => {
    const out: Record<string, string | string[]> = {
      'x-forwarded-method': req.method,
      'x-forwarded-uri': req.path + req.query,
      'x-forwarded-host': req.host,
      'x-forwarded-proto': req.scheme,
      'x-forwarded-for': req.clientIp,
    };
    for (const h of cfg.requestHeaders) {
      const v = req.headers[h];
      if (v !== undefined) out[h] = v;
    }
    return out;
  };

  const keyOf = (req: AuthRequest, headers: Record<string, string | string[]>): string =>
    createHash('sha256')
      .update(JSON.stringify([req.method, req.path + req.query, req.host, req.scheme, cfg.requestHeaders.map((h) => headers[h] ?? null)]))
      .digest('base64');

  const identityOf = (d: Decision): Identity => {
    const consumer = d.named === undefined ? undefined : ctx.consumers.byId(d.named);
    return {
      method: 'external',
      authenticator: name,
      subject: d.subject,
      consumer,
      groups: consumer?.groups ?? [],
      scopes: [],
      claims: {},
      upstreamHeaders: d.upstreamHeaders,
    };
  };

  const unavailable = (reason: string): AuthOutcome => {
    if (cfg.failureMode === 'absent') {
      // Fail-open (to the next authenticator, or 401) is always counted and logged.
      failOpen.inc();
      ctx.logger.warn({ authenticator: name, reason }, 'external auth unavailable; treating the credential as absent (failureMode: absent)');
      return outcome.absent;
    }
    return outcome.unavailable(reason);
  };

  async function call(req: AuthRequest): Promise<AuthOutcome> {
    const headers = requestHeaders(req);
    const key = cache === undefined ? '' : keyOf(req, headers);
    const hit = cache?.get(key);
    if (hit !== undefined) return outcome.authenticated(identityOf(hit));
    let res: Awaited<ReturnType<Pool['request']>>;
    try {
      res = await pool.request({ method: 'GET', path: pathFor(req), headers, signal: AbortSignal.timeout(cfg.timeout) });
    } catch (err) {
      return unavailable(classify(err));
    }
    if (res.statusCode === 200) {
      try {
        await res.body.dump({ limit: MAX_REPLY_BYTES });
      } catch {}
      const upstreamHeaders: Record<string, string> = {};
      for (const h of cfg.responseHeaders) {
        const v = one(res.headers[h]);
        if (v !== undefined) upstreamHeaders[h] = v;
      }
      const named = cfg.subjectHeader === undefined ? undefined : one(res.headers[cfg.subjectHeader]) || undefined;
      const decision: Decision = { named, subject: named ?? 'external', upstreamHeaders };
      if (cache !== undefined) cache.set(key, decision, Date.now() + Math.min(cacheSeconds(res.headers['cache-control']) * 1000, maxTtlMs));
      return outcome.authenticated(identityOf(decision));
    }
    // Any other answer is the service's decision, relayed as it sent it (302 to a login page, 401 + challenge, 403…).
    let body: Buffer | undefined;
    try {
      body = await readCapped(res.body, MAX_REPLY_BYTES);
    } catch (err) {
      return unavailable(classify(err));
    }
    if (body === undefined) return outcome.unavailable('reply_too_large');
    const relayed: Record<string, string | string[]> = {};
    const listed = new Set(
      (one(res.headers.connection) ?? '')
        .split(',')
        .map((t) => t.trim().toLowerCase())
        .filter((t) => t !== ''),
    );
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined || HOP_AND_FRAMING.has(k) || listed.has(k)) continue;
      relayed[k] = v;
    }
    return { kind: 'reply', status: res.statusCode, headers: relayed, body, reason: `reply_${Math.floor(res.statusCode / 100)}xx` };
  }

  return {
    name,
    type: 'external',
    slot: undefined,
    // The service decides what counts as a credential: it is always asked.
    present: () => true,
    authenticate: call,
    challenge: () => undefined,
    upstreamHeaderNames: cfg.responseHeaders,
    // The client's own headers (Authorization, Cookie) are the service's business and are kept; only
    // client-sent copies of the headers the service sets are removed (see also upstreamHeaderNames).
    strip(headers: HeaderMap, query: string) {
      for (const h of cfg.responseHeaders) delete headers[h];
      return query;
    },
    async close() {
      await pool.close();
    },
  };
}
