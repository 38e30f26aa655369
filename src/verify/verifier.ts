/**
 * createVerifier: check a gateway-minted JWT the way a backend should — signature against the
 * gateway JWKS, algorithm pinned, `typ` pinned, issuer and audience pinned, expiry with a small
 * clock tolerance. Options are validated once here; `verify` is the per-request call.
 */
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey, jwtVerify, type RemoteJWKSetOptions } from 'jose';
import { GatewayTokenError, translateJoseError } from './errors.js';
import { GATEWAY_JWT_TYPE } from './token-type.js';

export type GatewayAlgorithm = 'ES256' | 'RS256' | 'EdDSA';

export interface VerifierOptions {
  /** The gateway JWKS: `http://<admin address>/.well-known/jwks.json`. Set this or `keys`. */
  readonly jwksUri?: string | URL;
  /** A JWKS document or key resolver already in hand (pinned keys, tests). */
  readonly keys?: JSONWebKeySet | JWTVerifyGetKey;
  /** Expected `iss` (gatewayIdentity.issuer). Default "portcullis". */
  readonly issuer?: string;
  /** This backend's audience (the upstream's `audience`, default its name). Required. */
  readonly audience: string | readonly string[];
  /** Clock skew allowed on exp/iat, in seconds or as "5s". Default 5 seconds. */
  readonly clockTolerance?: number | string;
  /** Accepted algorithms. Default ES256, RS256, EdDSA (what the gateway can sign with). */
  readonly algorithms?: readonly GatewayAlgorithm[];
  /** Reject tokens older than this (seconds or "10m"); the gateway never mints one longer than 10m. Default "11m". */
  readonly maxTokenAge?: number | string;
  /** Claims that must be present, e.g. ["sub"] for routes that always authenticate. */
  readonly requiredClaims?: readonly string[];
  /** Remote JWKS tuning (timeout, cooldown, cache age) passed to jose's createRemoteJWKSet. */
  readonly jwksOptions?: RemoteJWKSetOptions;
}

/** The claims of a verified gateway token. */
export interface GatewayClaims extends JWTPayload {
  readonly iss: string;
  readonly aud: string | string[];
  readonly exp: number;
  readonly iat: number;
  /** Authenticated subject (absent on anonymous routes). */
  readonly sub?: string;
  /** Consumer id, when the client mapped to a configured consumer. */
  readonly consumer?: string;
  readonly groups?: string[];
  /** Scopes, space-separated (RFC 9068 §2.2.3). */
  readonly scope?: string;
}

export interface Verifier {
  /** Resolve with the claims, or reject with a GatewayTokenError. */
  verify(token: string): Promise<GatewayClaims>;
}

const MAX_TOKEN_CHARS = 8192;

export function createVerifier(options: VerifierOptions): Verifier {
  if (options === null || typeof options !== 'object') throw new TypeError('createVerifier: options are required');
  const { jwksUri, keys } = options;
  if ((jwksUri === undefined) === (keys === undefined)) throw new TypeError('createVerifier: set exactly one of "jwksUri" or "keys"');
  const audience = typeof options.audience === 'string' ? options.audience : [...(options.audience ?? [])];
  if (audience === '' || audience.length === 0) throw new TypeError('createVerifier: "audience" is required (pin this backend\'s audience)');
  const getKey: JWTVerifyGetKey =
    jwksUri !== undefined
      ? createRemoteJWKSet(new URL(jwksUri), options.jwksOptions)
      : typeof keys === 'function'
        ? keys
        : createLocalJWKSet(keys as JSONWebKeySet);
  const verifyOptions = {
    issuer: options.issuer ?? 'portcullis',
    audience,
    algorithms: [...(options.algorithms ?? ['ES256', 'RS256', 'EdDSA'])],
    typ: GATEWAY_JWT_TYPE,
    clockTolerance: options.clockTolerance ?? 5,
    maxTokenAge: options.maxTokenAge ?? '11m',
    requiredClaims: ['exp', 'iat', ...(options.requiredClaims ?? [])],
  };
  return {
    async verify(token) {
      if (typeof token !== 'string' || token.length === 0) throw new GatewayTokenError('missing', 'no token');
      if (token.length > MAX_TOKEN_CHARS) throw new GatewayTokenError('malformed', 'token too large');
      try {
        const { payload } = await jwtVerify(token, getKey, verifyOptions);
        return payload as GatewayClaims;
      } catch (err) {
        throw translateJoseError(err);
      }
    },
  };
}
