/**
 * RFC 6750 §2.1 bearer tokens in `Authorization`. The scheme name is case-insensitive
 * (RFC 9110 §11.1); the token is the b64token syntax. A repeated Authorization header is refused
 * earlier, at the header scan.
 */
import type { HeaderMap } from '../core/headers.js';

export const BEARER_SLOT = 'authorization:bearer';

const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
/** JWS compact serialisation: three base64url parts; the signature may be empty (alg none, to be refused). */
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The bearer token, '' when the scheme is Bearer but the token is not b64token, undefined when no Bearer. */
export function bearerToken(headers: HeaderMap): string | undefined {
  const v = headers.authorization;
  if (typeof v !== 'string' || v.length < 7 || v.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  return BEARER.exec(v)?.[1] ?? '';
}

export function looksLikeJWS(token: string): boolean {
  return JWS_COMPACT.test(token);
}

export function bearerChallenge(error?: 'invalid_token'): string {
  return error === undefined ? 'Bearer realm="portcullis"' : `Bearer realm="portcullis", error="${error}"`;
}

export function stripAuthorization(headers: HeaderMap, query: string): string {
  delete headers.authorization;
  return query;
}
