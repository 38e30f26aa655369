/** The kit's one error type; jose's errors are translated here and nowhere else. */
import { errors } from 'jose';

/** Why a gateway token was not accepted (safe to log; never includes the token). */
export type GatewayTokenErrorCode =
  | 'missing'
  | 'malformed'
  | 'expired'
  | 'audience'
  | 'issuer'
  | 'type'
  | 'claims'
  | 'algorithm'
  | 'unknown_key'
  | 'signature'
  | 'jwks_unavailable';

export class GatewayTokenError extends Error {
  readonly code: GatewayTokenErrorCode;
  /** 503 when the gateway's JWKS could not be fetched (not the caller's fault), else 401. */
  readonly status: 401 | 503;

  constructor(code: GatewayTokenErrorCode, message: string) {
    super(message);
    this.name = 'GatewayTokenError';
    this.code = code;
    this.status = code === 'jwks_unavailable' ? 503 : 401;
  }
}

export function translateJoseError(err: unknown): GatewayTokenError {
  if (err instanceof GatewayTokenError) return err;
  if (err instanceof errors.JWTExpired) return new GatewayTokenError('expired', 'token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud':
        return new GatewayTokenError('audience', 'token is for another audience');
      case 'iss':
        return new GatewayTokenError('issuer', 'token has another issuer');
      case 'typ':
        return new GatewayTokenError('type', 'not a gateway token (typ)');
      default:
        return new GatewayTokenError('claims', `claim ${err.claim} ${err.reason}`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new GatewayTokenError('algorithm', 'algorithm not allowed');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
    return new GatewayTokenError('unknown_key', 'no gateway key matches');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new GatewayTokenError('signature', 'signature verification failed');
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return new GatewayTokenError('jwks_unavailable', 'gateway JWKS unavailable');
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid || err instanceof errors.JOSENotSupported || err instanceof errors.JWKInvalid)
    return new GatewayTokenError('malformed', 'malformed token');
  if (err instanceof errors.JOSEError) return new GatewayTokenError('malformed', err.code);
  // fetch() failures (connection refused, DNS) and non-200 JWKS responses.
  return new GatewayTokenError('jwks_unavailable', 'gateway JWKS unavailable');
}
