/**
 * `type: jwt` — bearer JWTs (RFC 7519 / RFC 9068 access tokens) verified locally with jose.
 *
 * Per request: size cap → verified-token cache → strict decode (duplicate members refused) →
 * pinned `alg` → jose jwtVerify (signature with a key of the algorithm's own family, `iss` exact,
 * `aud`, `exp` required, `nbf`, `typ`, maxTokenAge, requiredClaims) → future `iat` → `sub` →
 * RFC 8705 certificate binding. Header parameters that point at keys (`jwk`, `jku`, `x5u`, `x5c`)
 * are never used: keys come only from the configured JWKS, key file or secret.
 *
 * The verified-token cache (keyed by the token's SHA-256) holds an identity until
 * min(exp, now + cacheTtl, iat + maxTokenAge). It is emptied whenever a JWKS refresh brings a
 * different key set, so a token is never honoured from cache after its key was seen removed;
 * between refreshes (jwksMaxAge) removal is not observable anyway, with or without the cache.
 */
import { type JWTPayload, type JWTVerifyOptions, jwtVerify } from 'jose';
import { bearerChallenge, BEARER_SLOT, bearerToken, looksLikeJWS, stripAuthorization } from './bearer.js';
import type { AuthBuildContext } from './build.js';
import { identityFromClaims } from './claims.js';
import { type Binding, bindingHolds, bindingOf } from './cnf.js';
import { joseReason, type JwtRejectReason } from './jose-errors.js';
import { JwksCache } from './jwks-cache.js';
import { type KeyResolver, loadKeyFile, secretKey } from './jwt-keys.js';
import { scanCompactJWS } from './jws-scan.js';
import type { Secret } from '../secrets/secret.js';
import type { AuthenticatorConfig } from './schema.js';
import { TokenCache, tokenDigest } from './token-cache.js';
import { cacheCounters, tokenMetrics } from './token-metrics.js';
import { type AuthOutcome, type AuthRequest, type Authenticator, type Identity, outcome } from './types.js';

type JwtConfig = Extract<AuthenticatorConfig, { type: 'jwt' }>;

/** Test seams: the JWKS fetch and the clock. */
export interface JwtDeps {
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

interface Verified {
  readonly identity: Identity;
  readonly binding: Binding;
}

export function createJwtAuthenticator(name: string, cfg: JwtConfig, ctx: AuthBuildContext, deps: JwtDeps = {}): Authenticator {
  const now = deps.now ?? Date.now;
  const metrics = tokenMetrics(ctx.metrics.registry);
  const { hit: cacheHit, miss: cacheMiss } = cacheCounters(metrics, name);
  const cache = new TokenCache<Verified>(cfg.cacheSize, now);
  const algorithms: readonly string[] = cfg.algorithms;
  const tolerance = Math.floor(cfg.clockTolerance / 1000);

  let jwks: JwksCache | undefined;
  let key: KeyResolver | Uint8Array;
  if (cfg.jwksUri !== undefined) {
    const set = new JwksCache({
      url: cfg.jwksUri,
      timeout: cfg.jwksTimeout,
      maxAge: cfg.jwksMaxAge,
      cooldown: cfg.jwksCooldown,
      now,
      ...(deps.fetch === undefined ? {} : { fetch: deps.fetch }),
      onFetch(result, err) {
        metrics.remote.labels(name, 'jwks', result).inc();
        if (result === 'error') ctx.logger.warn({ authenticator: name, err: (err as Error)?.message }, 'JWKS fetch failed; keys in hand keep serving');
      },
      onChange: () => cache.clear(),
    });
    set.warm();
    jwks = set;
    key = (header) => set.getKey(header);
  } else if (cfg.keyFile !== undefined) {
    key = loadKeyFile(cfg.keyFile, ctx.dir, algorithms, ctx.path);
  } else {
    key = secretKey((cfg.secret as Secret).reveal());
  }

  const verifyOptions = (at: number): JWTVerifyOptions => ({
    algorithms: [...algorithms],
    issuer: cfg.issuer,
    audience: cfg.audience,
    clockTolerance: tolerance,
    requiredClaims: ['exp', ...cfg.requiredClaims],
    currentDate: new Date(at),
    ...(cfg.maxTokenAge === undefined ? {} : { maxTokenAge: Math.floor(cfg.maxTokenAge / 1000) }),
    ...(cfg.typ === undefined ? {} : { typ: cfg.typ }),
  });

  const reject = (reason: JwtRejectReason): AuthOutcome => outcome.rejected(reason);

  /** The hot path: a token verified before answers synchronously from the cache. */
  function check(token: string, req: AuthRequest): AuthOutcome | Promise<AuthOutcome> {
    // Tokens are b64token ASCII: length is the byte size. Checked before any decoding.
    if (token.length > cfg.maxTokenBytes) return reject('too_large');
    const digest = tokenDigest(token);
    const hit = cache.get(digest);
    if (hit !== undefined) {
      cacheHit.inc();
      return bindingHolds(hit.binding, req) ? outcome.authenticated(hit.identity) : reject('cnf_mismatch');
    }
    cacheMiss.inc();
    return verify(token, digest, req);
  }

  async function verify(token: string, digest: string, req: AuthRequest): Promise<AuthOutcome> {
    const scan = scanCompactJWS(token);
    if (!scan.ok) return reject(scan.reason);
    const alg = scan.header.alg;
    if (typeof alg !== 'string' || !algorithms.includes(alg)) return reject('bad_alg');
    // RFC 7515 §4.1.11: no JWS extension is understood here, so any `crit` makes the token unusable.
    if (Object.hasOwn(scan.header, 'crit')) return reject('malformed');

    const at = now();
    let payload: JWTPayload;
    try {
      payload = (typeof key === 'function' ? await jwtVerify(token, key, verifyOptions(at)) : await jwtVerify(token, key, verifyOptions(at))).payload;
    } catch (err) {
      const reason = joseReason(err);
      if (reason === undefined) throw err;
      return reason === 'jwks_unavailable' ? outcome.unavailable(reason) : reject(reason);
    }
    const nowSec = Math.floor(at / 1000);
    // jose checks a future iat only together with maxTokenAge; a token from the future is refused always.
    if (typeof payload.iat === 'number' && payload.iat > nowSec + tolerance) return reject('iat_future');
    if (typeof payload.sub !== 'string' || payload.sub === '') return reject('missing_claim');

    const binding = bindingOf(payload);
    const identity = identityFromClaims('jwt', name, payload.sub, payload, cfg, ctx.consumers);
    let expiresAt = Math.min((payload.exp as number) * 1000, at + cfg.cacheTtl);
    if (cfg.maxTokenAge !== undefined && typeof payload.iat === 'number') expiresAt = Math.min(expiresAt, payload.iat * 1000 + cfg.maxTokenAge);
    cache.set(digest, { identity, binding }, expiresAt);
    return bindingHolds(binding, req) ? outcome.authenticated(identity) : reject('cnf_mismatch');
  }

  return {
    name,
    type: 'jwt',
    slot: BEARER_SLOT,
    present(req) {
      const token = bearerToken(req.headers);
      // An opaque bearer token is not ours: a route listing [jwt, introspection] hands it on.
      return token !== undefined && looksLikeJWS(token);
    },
    authenticate(req) {
      const token = bearerToken(req.headers);
      if (token === undefined || !looksLikeJWS(token)) return outcome.absent;
      return check(token, req);
    },
    challenge: bearerChallenge,
    strip: stripAuthorization,
    close() {
      jwks?.close();
      cache.clear();
    },
  };
}
