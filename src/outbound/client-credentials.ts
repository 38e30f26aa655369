/**
 * `oauth2ClientCredentials`: the gateway obtains an access token for itself from an OAuth 2.0
 * token endpoint (RFC 6749 §4.4) and sends it upstream as `Authorization: Bearer …`.
 *
 * Tokens are cached until `expires_in` minus a skew and refreshed ahead of expiry in the
 * background while the current one still serves; every fetch is single-flight, so a burst of
 * requests on a cold cache costs one token request. With a shared store (Redis) the token is
 * shared by every instance (see shared-token.ts). `invalidate()` drops a token an upstream
 * answered 401 to, so the handler's one retry gets a new one.
 */
import { createHash } from 'node:crypto';
import type { Refusal } from '../core/errors.js';
import type { ClientCredentialsConfig } from './client-credentials-schema.js';
import { obtainShared, type SharedToken } from './shared-token.js';
import { createTokenEndpoint, describe, TokenEndpointError } from './token-endpoint.js';
import { type OutboundBuildContext, type OutboundCredential, type OutboundRequest, outboundRefusal } from './types.js';

/** After a failed token request, requests fail fast (502) for this long instead of hammering the endpoint. */
export const FAILURE_COOLDOWN_MS = 1_000;
/** At most one 401-driven invalidation per this interval: a backend that rejects every token cannot make us fetch per request. */
export const INVALIDATE_COOLDOWN_MS = 2_000;

/** Skew default: 10% of the lifetime, at most 30s (RFC 6749 §5.1 expires_in is relative to the response). */
export function defaultSkew(lifetimeMs: number): number {
  return Math.min(30_000, lifetimeMs / 10);
}

export function createClientCredentialsCredential(cfg: ClientCredentialsConfig, ctx: OutboundBuildContext, now: () => number = Date.now): OutboundCredential {
  const parameters: Record<string, string> = {};
  if (cfg.scope !== undefined) parameters.scope = cfg.scope;
  if (cfg.audience !== undefined) parameters.resource = cfg.audience;
  const request = createTokenEndpoint(
    {
      tokenUrl: cfg.tokenUrl,
      clientId: cfg.clientId,
      authMethod: cfg.authMethod ?? (cfg.privateKeyJwt !== undefined ? 'private_key_jwt' : 'client_secret_basic'),
      clientSecret: cfg.clientSecret,
      privateKey: cfg.privateKeyJwt === undefined ? undefined : { key: cfg.privateKeyJwt.key, kid: cfg.privateKeyJwt.kid },
      parameters,
      timeout: cfg.timeout,
    },
    ctx.path,
  );
  // What the token is for, never the secret: two upstreams asking the same thing share a token in the store.
  const cacheKey = `cc:${createHash('sha256')
    .update(JSON.stringify([cfg.tokenUrl, cfg.clientId, cfg.scope ?? '', cfg.audience ?? '']))
    .digest('base64url')}`;
  const m = ctx.metrics.outboundTokenCache;
  const counters = {
    hit: m.labels(ctx.upstream, 'hit'),
    miss: m.labels(ctx.upstream, 'miss'),
    shared: m.labels(ctx.upstream, 'shared'),
    fallback: m.labels(ctx.upstream, 'fallback'),
  };
  const store = ctx.store;

  let current: SharedToken | undefined;
  let inflight: Promise<SharedToken> | undefined;
  let failedUntil = 0;
  let lastFailure = '';
  /** The last token an upstream refused: never taken back from the shared store. */
  let rejected: string | undefined;
  let lastInvalidate = Number.NEGATIVE_INFINITY;

  /** Fetch from the token endpoint and work out how long the token may be used. */
  const fetchToken = async (): Promise<SharedToken> => {
    counters.miss.inc();
    const start = now(); // expires_in counts from the response; starting the clock at the request is the safe side
    const res = await request();
    const lifetime = res.expiresIn === undefined ? cfg.defaultLifetime : Math.max(0, res.expiresIn * 1000);
    const skew = cfg.skew ?? defaultSkew(lifetime);
    const until = start + Math.max(0, lifetime - skew);
    return { value: res.accessToken, until, refreshAt: Math.min(until, start + lifetime * cfg.refreshAhead) };
  };

  /** Single-flight: one token request in flight per credential, whoever asks. */
  const obtain = (): Promise<SharedToken> => {
    inflight ??= (
      store?.shared === true
        ? obtainShared({
            store,
            key: cacheKey,
            fetchToken,
            now,
            rejected: () => rejected,
            waitMs: cfg.timeout,
            counters,
            logger: ctx.logger,
            upstream: ctx.upstream,
          })
        : fetchToken()
    )
      .then(
        (token) => {
          current = token;
          failedUntil = 0;
          return token;
        },
        (err: unknown) => {
          failedUntil = now() + FAILURE_COOLDOWN_MS;
          lastFailure = err instanceof TokenEndpointError ? err.message : describe(err);
          ctx.logger.warn({ upstream: ctx.upstream, type: 'oauth2ClientCredentials', err: lastFailure }, 'client-credentials token request failed');
          throw err;
        },
      )
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  const unavailable = (details: string): Refusal => outboundRefusal('PTC_ERR_UPSTREAM_CREDENTIAL', `oauth2ClientCredentials: ${details}`);
  const set = (req: OutboundRequest, token: string): void => {
    req.headers.authorization = `Bearer ${token}`; // replaces whatever was there (RFC 6750 §2.1)
  };

  return {
    type: 'oauth2ClientCredentials',
    apply(req) {
      const t = now();
      const c = current;
      if (c !== undefined && t < c.until) {
        counters.hit.inc();
        // Refresh-ahead: the current token keeps serving while a new one is fetched.
        if (t >= c.refreshAt && inflight === undefined && t >= failedUntil) obtain().catch(() => {});
        return set(req, c.value);
      }
      if (t < failedUntil) return unavailable(`recent failure: ${lastFailure}`);
      return obtain().then(
        (token) => set(req, token.value),
        () => unavailable(lastFailure),
      );
    },
    invalidate(rejectedBy) {
      const c = current;
      // Only the token this request carried: a late 401 for a token already replaced changes nothing.
      if (c === undefined || rejectedBy.headers.authorization !== `Bearer ${c.value}`) return;
      const t = now();
      if (t - lastInvalidate < INVALIDATE_COOLDOWN_MS) return;
      lastInvalidate = t;
      rejected = c.value;
      current = undefined;
    },
    close() {
      current = undefined;
    },
  };
}
