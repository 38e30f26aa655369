/** jose's errors translated, in one place, into the bounded reject reasons of the jwt authenticator. */
import { errors } from 'jose';
import { JwksUnavailableError } from './jwks-cache.js';

export type JwtRejectReason =
  | 'malformed'
  | 'too_large'
  | 'bad_alg'
  | 'bad_signature'
  | 'unknown_key'
  | 'expired'
  | 'not_yet_valid'
  | 'iat_future'
  | 'too_old'
  | 'bad_issuer'
  | 'bad_audience'
  | 'missing_claim'
  | 'bad_typ'
  | 'duplicate_member'
  | 'cnf_mismatch'
  | 'jwks_unavailable';

const CLAIM_REASONS: Readonly<Record<string, JwtRejectReason>> = {
  nbf: 'not_yet_valid',
  iat: 'iat_future',
  exp: 'expired',
  iss: 'bad_issuer',
  aud: 'bad_audience',
  typ: 'bad_typ',
};

/** The reason for a verification error, or undefined when it is not jose's (a bug: rethrow, fail closed). */
export function joseReason(err: unknown): JwtRejectReason | undefined {
  if (err instanceof JwksUnavailableError) return 'jwks_unavailable';
  if (err instanceof errors.JWTExpired) return err.claim === 'iat' ? 'too_old' : 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return 'missing_claim';
    if (err.reason === 'invalid') return 'malformed'; // e.g. a string `exp`
    return CLAIM_REASONS[err.claim] ?? 'missing_claim';
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return 'bad_alg';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'unknown_key';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'bad_signature';
  if (err instanceof errors.JOSENotSupported) return 'bad_alg';
  if (err instanceof errors.JOSEError) return 'malformed';
  return undefined;
}
