/** undici and socket errors → the gateway's error catalogue, in one place. */
import type { ErrorCode } from '../core/errors.js';

export type UpstreamErrorKind = 'refused' | 'timeout' | 'tls' | 'reset';

export interface ClassifiedError {
  readonly code: ErrorCode;
  readonly kind: UpstreamErrorKind;
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  // The rest of OpenSSL's X509 verification results as Node reports them (crypto_common.cc).
  'CERT_SIGNATURE_FAILURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'UNABLE_TO_GET_CRL',
  'CRL_SIGNATURE_FAILURE',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'EPROTO',
  // The leaf's key matched none of upstreams.*.tls.pin (src/upstream/tls.ts).
  'PTC_TLS_PIN_MISMATCH',
]);

export function classifyUpstreamError(err: unknown): ClassifiedError {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT')
      return { code: 'PTC_ERR_UPSTREAM_TIMEOUT', kind: 'timeout' };
    if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('PTC_TLS_'))
      return { code: 'PTC_ERR_UPSTREAM_TLS', kind: 'tls' };
    if (
      code === 'ECONNREFUSED' ||
      code === 'ENOTFOUND' ||
      code === 'EAI_AGAIN' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH' ||
      code === 'EADDRNOTAVAIL'
    )
      return { code: 'PTC_ERR_UPSTREAM_UNAVAILABLE', kind: 'refused' };
  }
  return { code: 'PTC_ERR_UPSTREAM_RESET', kind: 'reset' };
}
