/**
 * The published gateway keys (`/.well-known/jwks.json` on the admin listener). It outlives a
 * reload, and a reload that changes the key rotates it in two steps:
 *   1. publish before use — the new public key is published at once, but the gateway keeps signing
 *      with the previous key for `publishAhead`, so backends' JWKS caches (jose refetches on an
 *      unknown kid at most every 30s by default) hold the new key before any token needs it;
 *   2. overlap — the previous public key stays published for publishAhead + the longest token
 *      lifetime (10m) + a minute of clock skew, so no valid token ever loses its key.
 */
import type { GatewayIdentity, PublicJWK } from './gateway-identity.js';
import { MAX_JWT_TTL_MS } from './schema.js';

const SKEW_MS = 60_000;

export class KeyRing {
  #current: GatewayIdentity | undefined;
  #retiring: { jwk: PublicJWK; until: number }[] = [];
  #body = '{"keys":[]}';
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The key in force after a start or reload (undefined: no upstream mints tokens). */
  publish(next: GatewayIdentity | undefined): void {
    const prev = this.#current;
    this.#current = next;
    if (prev?.kid === next?.kid) return;
    const now = this.#now();
    const ahead = next?.publishAhead ?? 0;
    if (prev !== undefined && next !== undefined && ahead > 0) next.handOver(prev, now + ahead);
    this.#retiring = this.#retiring.filter((r) => r.until > now && r.jwk.kid !== next?.kid);
    if (prev !== undefined) this.#retiring.push({ jwk: prev.publicJwk, until: now + ahead + MAX_JWT_TTL_MS + SKEW_MS });
    this.#render();
  }

  /** The JWKS document (RFC 7517 §5), current key first. */
  jwks(): string {
    const now = this.#now();
    if (this.#retiring.some((r) => r.until <= now)) {
      this.#retiring = this.#retiring.filter((r) => r.until > now);
      this.#render();
    }
    return this.#body;
  }

  #render(): void {
    const keys: PublicJWK[] = this.#current === undefined ? [] : [this.#current.publicJwk];
    for (const r of this.#retiring) keys.push(r.jwk);
    this.#body = JSON.stringify({ keys });
  }
}
