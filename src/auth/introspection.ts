/**
 * `type: introspection` — opaque bearer tokens checked at an RFC 7662 introspection endpoint.
 *
 * Why a direct undici request and not openid-client's tokenIntrospection: RFC 7662 §2.2 makes
 * anything but `"active": true` an inactive token, while oauth4webapi throws on a non-boolean
 * `active` with the same error code it uses for other malformed responses, so an inactive token
 * (401) and a broken endpoint (503) could only be told apart by parsing error messages; it also
 * needs AS metadata with an `issuer` we may not have, reads unbounded response bodies, and turns
 * HTTPS enforcement off for the whole Configuration rather than per endpoint. The protocol step is
 * one form POST; it is written here with the same care: client authentication as a strategy
 * value, a timeout on the whole call, no redirects followed, a response size cap.
 *
 * Results are cached by the token's SHA-256: active ones until min(cacheTtl, exp), inactive ones
 * for min(cacheTtl, 10s) to blunt floods of junk tokens. Concurrent requests with the same token
 * share one call. A failing endpoint (unreachable, timeout, non-200, not a JSON object) answers
 * `unavailable` (503), or `absent` with failureMode: absent.
 */
import { Agent, request } from 'undici';
import { BEARER_SLOT, bearerChallenge, bearerToken, stripAuthorization } from './bearer.js';
import type { AuthBuildContext } from './build.js';
import { identityFromClaims } from './claims.js';
import { readCapped } from './read-capped.js';
import { type Binding, bindingHolds, bindingOf } from './cnf.js';
import type { AuthenticatorConfig } from './schema.js';
import { createSingleFlight, TokenCache, tokenDigest } from './token-cache.js';
import { cacheCounters, tokenMetrics } from './token-metrics.js';
import { type AuthOutcome, type Authenticator, type Identity, outcome } from './types.js';

type IntrospectionConfig = Extract<AuthenticatorConfig, { type: 'introspection' }>;

export interface IntrospectionDeps {
  readonly now?: () => number;
}

const INACTIVE_TTL_MS = 10_000;
const MAX_RESPONSE_BYTES = 64 * 1024;

type Verdict = { readonly kind: 'active'; readonly identity: Identity; readonly binding: Binding } | { readonly kind: 'rejected'; readonly reason: string };
type CallResult = Verdict | { readonly kind: 'failed'; readonly reason: string };

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
const formEncode = (v: string) => new URLSearchParams({ v }).toString().slice(2);

type ClientAuth = (headers: Record<string, string>, body: URLSearchParams) => void;

function clientSecretBasic(id: string, secret: string): ClientAuth {
  const value = `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;
  return (headers) => {
    headers.authorization = value;
  };
}

function clientSecretPost(id: string, secret: string): ClientAuth {
  return (_headers, body) => {
    body.set('client_id', id);
    body.set('client_secret', secret);
  };
}

export function createIntrospectionAuthenticator(name: string, cfg: IntrospectionConfig, ctx: AuthBuildContext, deps: IntrospectionDeps = {}): Authenticator {
  const now = deps.now ?? Date.now;
  const metrics = tokenMetrics(ctx.metrics.registry);
  const { hit: cacheHit, miss: cacheMiss } = cacheCounters(metrics, name);
  const cache = new TokenCache<Verdict>(cfg.cacheSize, now);
  const calling = createSingleFlight<CallResult>();
  const clientAuth =
    cfg.authMethod === 'client_secret_post'
      ? clientSecretPost(cfg.clientId, cfg.clientSecret.reveal())
      : clientSecretBasic(cfg.clientId, cfg.clientSecret.reveal());
  // undici's request() follows no redirects: a 3xx is an endpoint error.
  const dispatcher = new Agent({ connect: { timeout: cfg.timeout }, headersTimeout: cfg.timeout, bodyTimeout: cfg.timeout });

  /** Interpret an introspection response body (already a JSON object). */
  function verdictOf(body: Record<string, unknown>, at: number): { verdict: Verdict; expiresAt: number } {
    const inactive = (reason: string) => ({ verdict: { kind: 'rejected', reason } as const, expiresAt: at + Math.min(cfg.cacheTtl, INACTIVE_TTL_MS) });
    // RFC 7662 §2.2: only the JSON boolean true is active ("true", 1 … are not).
    if (body.active !== true) return inactive('inactive');
    const exp = typeof body.exp === 'number' && Number.isFinite(body.exp) ? body.exp * 1000 : undefined;
    if (exp !== undefined && exp <= at) return inactive('expired');
    if (cfg.issuer !== undefined && body.iss !== cfg.issuer) return inactive('bad_issuer');
    if (cfg.audience !== undefined) {
      const aud = body.aud;
      const ok = typeof aud === 'string' ? aud === cfg.audience : Array.isArray(aud) && aud.includes(cfg.audience);
      if (!ok) return inactive('bad_audience');
    }
    // RFC 7662 §2.2 makes `sub` optional; a client-credentials token has only `client_id`.
    const subject =
      typeof body.sub === 'string' && body.sub !== '' ? body.sub : typeof body.client_id === 'string' && body.client_id !== '' ? body.client_id : undefined;
    if (subject === undefined) return inactive('missing_claim');
    const identity = identityFromClaims('introspection', name, subject, body, cfg, ctx.consumers);
    return { verdict: { kind: 'active', identity, binding: bindingOf(body) }, expiresAt: Math.min(at + cfg.cacheTtl, exp ?? Number.POSITIVE_INFINITY) };
  }

  async function call(token: string, digest: string): Promise<CallResult> {
    const headers: Record<string, string> = { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' };
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' });
    clientAuth(headers, form);
    let status: number;
    let text: string;
    try {
      const res = await request(cfg.endpoint, {
        method: 'POST',
        headers,
        body: form.toString(),
        dispatcher,
        signal: AbortSignal.timeout(cfg.timeout),
      });
      status = res.statusCode;
      if (status !== 200) {
        await res.body.dump();
        metrics.remote.labels(name, 'introspection', 'error').inc();
        ctx.logger.warn({ authenticator: name, status }, 'introspection endpoint answered an error status');
        return { kind: 'failed', reason: 'endpoint_error' };
      }
      const bytes = await readCapped(res.body, MAX_RESPONSE_BYTES);
      if (bytes === undefined) throw new Error('introspection response too large');
      text = bytes.toString('utf8');
    } catch (err) {
      metrics.remote.labels(name, 'introspection', 'error').inc();
      const timeout = (err as Error).name === 'TimeoutError' || /Timeout/i.test((err as { code?: string }).code ?? '');
      ctx.logger.warn({ authenticator: name, err: (err as Error).message }, 'introspection call failed');
      return { kind: 'failed', reason: timeout ? 'timeout' : 'unreachable' };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      metrics.remote.labels(name, 'introspection', 'error').inc();
      ctx.logger.warn({ authenticator: name }, 'introspection response is not a JSON object');
      return { kind: 'failed', reason: 'bad_response' };
    }
    metrics.remote.labels(name, 'introspection', 'ok').inc();
    const { verdict, expiresAt } = verdictOf(body as Record<string, unknown>, now());
    cache.set(digest, verdict, expiresAt);
    return verdict;
  }

  async function introspect(token: string, digest: string): Promise<CallResult> {
    const cached = cache.get(digest);
    if (cached !== undefined) {
      cacheHit.inc();
      return cached;
    }
    cacheMiss.inc();
    return calling(digest, () => call(token, digest));
  }

  return {
    name,
    type: 'introspection',
    slot: BEARER_SLOT,
    present: (req) => bearerToken(req.headers) !== undefined,
    async authenticate(req): Promise<AuthOutcome> {
      const token = bearerToken(req.headers);
      if (token === undefined) return outcome.absent;
      if (token === '') return outcome.rejected('malformed');
      if (token.length > cfg.maxTokenBytes) return outcome.rejected('too_large');
      const r = await introspect(token, tokenDigest(token));
      switch (r.kind) {
        case 'failed':
          return cfg.failureMode === 'absent' ? outcome.absent : outcome.unavailable(r.reason);
        case 'rejected':
          return outcome.rejected(r.reason);
        case 'active':
          return bindingHolds(r.binding, req) ? outcome.authenticated(r.identity) : outcome.rejected('cnf_mismatch');
      }
    },
    challenge: bearerChallenge,
    strip: stripAuthorization,
    async close() {
      cache.clear();
      await dispatcher.close();
    },
  };
}
