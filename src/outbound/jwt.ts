/**
 * `jwt`: an identity assertion minted and signed by the gateway for one backend. `aud` pins it to
 * the upstream (a token replayed to another backend fails there), `exp` keeps it short-lived, and
 * the identity claims come from the verified request identity — never from client input.
 *
 * Minted tokens are reused per (identity, audience) for half their lifetime, so the hot path is a
 * map lookup rather than a signature; the cache is bounded and single-flight (one signature per key
 * in flight). Because of that reuse, `jti` identifies a token, not a request.
 */
import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import type { Identity } from '../auth/types.js';
import { BuildProblem } from '../config/load.js';
import type { JwtClaim, JwtCredentialConfig } from './schema.js';
import type { GatewayIdentity } from './gateway-identity.js';
import type { Refusal } from '../core/errors.js';
import { type OutboundBuildContext, type OutboundCredential, type OutboundRequest, outboundRefusal } from './types.js';

interface Entry {
  /** Resolved token, once signed. */
  token: string | undefined;
  readonly pending: Promise<string>;
  /** Reuse until (ms epoch). */
  readonly until: number;
}

export function createJwtCredential(cfg: JwtCredentialConfig, ctx: OutboundBuildContext, now: () => number = Date.now): OutboundCredential {
  const identity: GatewayIdentity | undefined = ctx.identity;
  if (identity === undefined) throw new BuildProblem(ctx.path, 'type jwt needs the gateway key (gatewayIdentity)');
  const audience = cfg.audience ?? ctx.upstream;
  const ttlSeconds = Math.floor(cfg.ttl / 1000);
  const reuseMs = cfg.ttl / 2;
  const header = cfg.header;
  const bearer = header === 'authorization';
  const claims = new Set<JwtClaim>(cfg.claims);
  const cache = new Map<string, Entry>();
  const hit = ctx.metrics.outboundTokenCache.labels(ctx.upstream, 'hit');
  const miss = ctx.metrics.outboundTokenCache.labels(ctx.upstream, 'miss');

  const identityClaims = (id: Identity | undefined): JWTPayload => {
    const out: JWTPayload = {};
    if (id === undefined) return out; // anonymous route: the token still proves the request came through the gateway
    if (claims.has('sub')) out.sub = id.subject;
    if (claims.has('consumer') && id.consumer !== undefined) out.consumer = id.consumer.id;
    if (claims.has('groups')) out.groups = [...id.groups];
    if (claims.has('scopes') && id.scopes.length > 0) out.scope = id.scopes.join(' '); // RFC 9068 §2.2.3
    return out;
  };
  // Only what goes into the token keys the cache, so a reused token is exactly the one we would mint.
  const cacheKey = (id: Identity | undefined): string =>
    id === undefined
      ? ''
      : JSON.stringify([
          claims.has('sub') ? id.subject : 0,
          claims.has('consumer') ? (id.consumer?.id ?? 0) : 0,
          claims.has('groups') ? id.groups : 0,
          claims.has('scopes') ? id.scopes : 0,
        ]);

  const mint = (id: Identity | undefined, iat: number): Promise<string> =>
    identity.sign({ ...identityClaims(id), aud: audience, iat, exp: iat + ttlSeconds, jti: randomUUID() });

  const unavailable = (err: unknown): Refusal => {
    ctx.logger.error({ err: { name: (err as Error).name, message: (err as Error).message }, upstream: ctx.upstream }, 'signing a gateway JWT failed');
    return outboundRefusal('PTC_ERR_UPSTREAM_CREDENTIAL', 'jwt signing failed');
  };

  const set = (req: OutboundRequest, token: string): void => {
    req.headers[header] = bearer ? `Bearer ${token}` : token;
  };

  /** Bounded in O(1): drop the oldest insertion (expired entries are replaced when next looked up). */
  const makeRoom = (): void => {
    cache.delete(cache.keys().next().value as string);
  };

  return {
    type: 'jwt',
    apply(req) {
      if (!cfg.cache) {
        miss.inc();
        return mint(req.identity, Math.floor(now() / 1000)).then((token) => set(req, token), unavailable);
      }
      const key = cacheKey(req.identity);
      const t = now();
      const found = cache.get(key);
      if (found !== undefined && found.until > t) {
        hit.inc();
        if (found.token !== undefined) return set(req, found.token);
        return found.pending.then((token) => set(req, token), unavailable);
      }
      miss.inc();
      const iat = Math.floor(t / 1000);
      // Reused for half the ttl, and never when less than half of its lifetime would be left.
      const until = Math.min(t + reuseMs, (iat + ttlSeconds) * 1000 - reuseMs);
      const entry: Entry = { token: undefined, pending: mint(req.identity, iat), until };
      if (found !== undefined) cache.delete(key);
      else if (cache.size >= cfg.cacheSize) makeRoom();
      cache.set(key, entry);
      return entry.pending.then(
        (token) => {
          entry.token = token;
          set(req, token);
        },
        (err: unknown) => {
          if (cache.get(key) === entry) cache.delete(key);
          return unavailable(err);
        },
      );
    },
    // No invalidate(): re-minting cannot fix a 401 (same key, same claims), and a backend's 401s
    // must not be able to flush the cache and force a signature per request.
    close() {
      cache.clear();
    },
  };
}
