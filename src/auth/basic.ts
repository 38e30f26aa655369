/**
 * HTTP Basic authentication (RFC 7617) against argon2id / bcrypt hashes on consumers.
 *
 * The hot path does not re-hash: a bounded cache remembers recent successes, keyed on an HMAC of
 * username and password under a per-process random key (so the cache never holds a password or a
 * reusable digest of one). Misses are verified off the event loop, single-flight per credential.
 * Online guessing is bounded per client IP (maxFailures within failureWindow → 429 + Retry-After),
 * and an unknown username costs the same verification as a known one (a dummy hash of the same
 * algorithm and cost), so response times do not reveal which usernames exist.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { AuthBuildContext } from './build.js';
import { createFailureLimiter, type FailureLimiter } from './failure-limiter.js';
import { dummyHashLike, verifyPassword } from './password-hash.js';
import type { AuthenticatorConfig } from './schema.js';
import { createSingleFlight, TokenCache } from './token-cache.js';
import { type AuthOutcome, type Authenticator, type Consumer, outcome } from './types.js';

type BasicConfig = Extract<AuthenticatorConfig, { type: 'basic' }>;

/** Recent successes are trusted this long without re-hashing. */
const SUCCESS_TTL_MS = 60_000;
const SUCCESS_CACHE_ENTRIES = 1_024;
/** Longest Authorization value looked at; beyond this the credential is malformed. */
const MAX_HEADER_CHARS = 4_096;
const BASIC = /^basic(?:[ \t]+|$)/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface BasicCredentials {
  readonly username: string;
  readonly password: string;
}

/**
 * RFC 7617 §2: `Basic base64(user-id ":" password)`, split on the first colon, UTF-8 (§2.1). Invalid
 * base64, invalid UTF-8, a missing colon, an empty user-id or a control character → undefined.
 */
export function parseBasic(value: string): BasicCredentials | undefined {
  if (value.length > MAX_HEADER_CHARS) return undefined;
  const m = BASIC.exec(value);
  if (m === null) return undefined;
  const token = value.slice(m[0].length).trim();
  if (token === '' || !BASE64.test(token) || token.length % 4 === 1) return undefined;
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(token, 'base64'));
  } catch {
    return undefined;
  }
  // RFC 7617 §2: neither part may contain control characters; the user-id cannot contain ':'.
  if (hasControlCharacter(decoded)) return undefined;
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** C0 controls and DEL (RFC 5234 CTL). */
export function hasControlCharacter(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * Failure limiters outlive a reload: rebuilding the config must not forgive an attacker's failed
 * guesses. One per gateway (its metrics object lives as long as the process's gateway) and per
 * authenticator name and settings; changing maxFailures or failureWindow starts a fresh one.
 */
const limiters = new WeakMap<object, Map<string, FailureLimiter>>();

function sharedLimiter(owner: object, key: string, make: () => FailureLimiter): FailureLimiter {
  let byKey = limiters.get(owner);
  if (byKey === undefined) {
    byKey = new Map();
    limiters.set(owner, byKey);
  }
  let limiter = byKey.get(key);
  if (limiter === undefined) {
    limiter = make();
    byKey.set(key, limiter);
  }
  return limiter;
}

export async function createBasicAuthenticator(name: string, cfg: BasicConfig, ctx: AuthBuildContext): Promise<Authenticator> {
  const consumers = ctx.consumers;
  const challenge = `Basic realm="${cfg.realm}", charset="UTF-8"`;
  const dummy = await dummyHashLike(consumers.basicEntries()[0]?.passwordHash);
  const cacheKey = randomBytes(32);
  const successes = new TokenCache<Consumer>(SUCCESS_CACHE_ENTRIES);
  /** Single-flight: concurrent requests with the same credential share one hash verification. */
  const verifying = createSingleFlight<boolean>();
  const limiter = sharedLimiter(ctx.metrics, `${name}\0${cfg.maxFailures}\0${cfg.failureWindow}`, () =>
    createFailureLimiter({ maxFailures: cfg.maxFailures, windowMs: cfg.failureWindow }),
  );

  const header = (headers: Record<string, string | string[]>): string | string[] | undefined => headers.authorization;
  const isBasic = (v: string) => BASIC.test(v);

  const failed = (ip: string, reason: string): AuthOutcome => {
    limiter.fail(ip);
    return outcome.rejected(reason);
  };

  return {
    name,
    type: 'basic',
    slot: 'authorization:basic',
    present(req) {
      const v = header(req.headers);
      if (v === undefined) return false;
      if (Array.isArray(v)) return v.some(isBasic) ? 'twice' : false;
      return isBasic(v);
    },
    async authenticate(req) {
      const v = header(req.headers);
      if (typeof v !== 'string') return outcome.absent;
      const blocked = limiter.blockedFor(req.clientIp);
      if (blocked > 0)
        return {
          kind: 'rejected',
          reason: 'too_many_failures',
          code: 'PTC_ERR_TOO_MANY_FAILURES',
          headers: { 'retry-after': String(Math.ceil(blocked / 1000)) },
        };
      const creds = parseBasic(v);
      if (creds === undefined) return failed(req.clientIp, 'malformed');
      // NUL cannot occur in either part (control characters are refused), so it separates them unambiguously.
      const key = createHmac('sha256', cacheKey).update(`${creds.username}\0${creds.password}`, 'utf8').digest('base64');
      let consumer = successes.get(key);
      if (consumer === undefined) {
        const entry = consumers.byUsername(creds.username);
        const ok = await verifying(key, () => verifyPassword(entry?.passwordHash ?? dummy, creds.password));
        if (entry === undefined) return failed(req.clientIp, 'unknown_user');
        if (!ok) return failed(req.clientIp, 'bad_password');
        consumer = entry.consumer;
        successes.set(key, consumer, Date.now() + SUCCESS_TTL_MS);
      }
      return outcome.authenticated({
        method: 'basic',
        authenticator: name,
        subject: creds.username,
        consumer,
        groups: consumer.groups,
        scopes: [],
        claims: {},
      });
    },
    challenge: () => challenge,
    strip(headers, query) {
      delete headers.authorization;
      return query;
    },
  };
}
