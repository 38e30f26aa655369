/**
 * RFC 8705 §3: a certificate-bound access token carries `cnf["x5t#S256"]`, the base64url SHA-256 of
 * the client certificate's DER; it is honoured only on a connection presenting that certificate.
 * A DPoP-bound token (`cnf.jkt`, RFC 9449 §6) is refused: this gateway does not check DPoP proofs,
 * and RFC 9449 §7.2 forbids accepting such a token as a plain bearer token.
 */
import { createHash } from 'node:crypto';
import type { AuthRequest } from './types.js';

export interface Binding {
  /** Expected certificate thumbprint, or undefined when the token is not certificate-bound. */
  readonly x5t: string | undefined;
  /** True when the token is bound to something this gateway cannot check. */
  readonly unsupported: boolean;
}

export const UNBOUND: Binding = { x5t: undefined, unsupported: false };

export function bindingOf(claims: Readonly<Record<string, unknown>>): Binding {
  if (!Object.hasOwn(claims, 'cnf')) return UNBOUND;
  const cnf = claims.cnf;
  if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf)) return { x5t: undefined, unsupported: true };
  const c = cnf as Record<string, unknown>;
  if (Object.hasOwn(c, 'jkt')) return { x5t: undefined, unsupported: true };
  if (!Object.hasOwn(c, 'x5t#S256')) return UNBOUND;
  const x5t = c['x5t#S256'];
  return typeof x5t === 'string' ? { x5t, unsupported: false } : { x5t: undefined, unsupported: true };
}

/** Does the connection satisfy the token's binding? */
export function bindingHolds(binding: Binding, req: AuthRequest): boolean {
  if (binding.unsupported) return false;
  if (binding.x5t === undefined) return true;
  const raw = req.peerCertificate()?.raw;
  if (raw === undefined) return false;
  return createHash('sha256').update(raw).digest('base64url') === binding.x5t;
}
