/**
 * One OAuth 2.0 token endpoint, as `oauth2ClientCredentials` talks to it (RFC 6749 §4.4) through
 * openid-client: a Configuration built once, client authentication as a strategy function
 * (client_secret_basic, client_secret_post or private_key_jwt), a timeout on every call, no
 * redirects followed. The library's errors are translated here, and only here, into a short
 * `details` string that never holds a secret.
 */
import type { KeyObject } from 'node:crypto';
import { importPKCS8 } from 'jose';
import {
  allowInsecureRequests,
  type ClientAuth,
  ClientError,
  ClientSecretBasic,
  ClientSecretPost,
  Configuration,
  clientCredentialsGrant,
  modifyAssertion,
  PrivateKeyJwt,
  ResponseBodyError,
} from 'openid-client';
import { BuildProblem, type ConfigPath } from '../config/load.js';
import { reveal, type Secret } from '../secrets/secret.js';
import { parsePrivateKey } from './gateway-identity.js';

export type ClientAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt';

export interface TokenEndpointOptions {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly authMethod: ClientAuthMethod;
  readonly clientSecret: Secret | undefined;
  readonly privateKey: { readonly key: Secret; readonly kid: string | undefined } | undefined;
  /** Extra token request parameters (scope, resource). */
  readonly parameters: Readonly<Record<string, string>>;
  /** Milliseconds for the whole exchange (connect, request, response body). */
  readonly timeout: number;
}

export interface TokenResponse {
  readonly accessToken: string;
  /** `expires_in` in seconds, when the endpoint sent one. */
  readonly expiresIn: number | undefined;
}

/** A token request failed; `details` is safe to log (no secret, no token). */
export class TokenEndpointError extends Error {
  override readonly name = 'TokenEndpointError';
}

/** Signing algorithm of a client assertion, from the key type. */
function assertionAlgorithm(key: KeyObject): 'ES256' | 'ES384' | 'RS256' | 'PS256' | 'EdDSA' | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ES384' : undefined;
    default:
      return undefined;
  }
}

/** Check the private key once at build (a config error names its path); import it for WebCrypto on first use. */
function privateKeyJwt(opts: TokenEndpointOptions, path: ConfigPath): () => Promise<ClientAuth> {
  const cfg = opts.privateKey;
  if (cfg === undefined) throw new BuildProblem(path, 'authMethod private_key_jwt needs privateKeyJwt.key');
  const key = parsePrivateKey(reveal(cfg.key), [...path, 'privateKeyJwt', 'key'], 'not a PKCS#8 / PEM private key or a private JWK');
  const alg = assertionAlgorithm(key);
  if (alg === undefined) throw new BuildProblem([...path, 'privateKeyJwt', 'key'], 'use an RSA, EC P-256/P-384 or Ed25519 key');
  const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  let auth: Promise<ClientAuth> | undefined;
  return () => {
    auth ??= importPKCS8(pem, alg).then((cryptoKey) =>
      PrivateKeyJwt(cfg.kid === undefined ? cryptoKey : { key: cryptoKey, kid: cfg.kid }, {
        [modifyAssertion]: (header, payload) => {
          // RFC 7523 §3: aud identifies the authorization server; the token endpoint URL is the
          // value every server accepts (the library's default, the issuer, is only a guess here).
          payload.aud = opts.tokenUrl;
          if (alg === 'EdDSA') header.alg = 'EdDSA';
        },
      }),
    );
    return auth;
  };
}

/** Build the requester: validation and key import happen here, not per request. */
export function createTokenEndpoint(opts: TokenEndpointOptions, path: ConfigPath): () => Promise<TokenResponse> {
  const url = new URL(opts.tokenUrl);
  let clientAuth: () => Promise<ClientAuth>;
  if (opts.authMethod === 'private_key_jwt') clientAuth = privateKeyJwt(opts, path);
  else {
    const secret = opts.clientSecret;
    if (secret === undefined) throw new BuildProblem(path, `authMethod ${opts.authMethod} needs clientSecret`);
    const strategy = opts.authMethod === 'client_secret_post' ? ClientSecretPost : ClientSecretBasic;
    // The secret is revealed per call, inside the strategy, never kept in plain text by us.
    const auth: ClientAuth = (as, client, body, headers) => strategy(reveal(secret))(as, client, body, headers);
    clientAuth = () => Promise.resolve(auth);
  }
  let config: Promise<Configuration> | undefined;
  const configuration = (): Promise<Configuration> => {
    config ??= clientAuth().then((auth) => {
      // No discovery: the token endpoint is configured. The issuer is not checked for this grant
      // (no ID token), so the endpoint's origin stands in for it.
      const c = new Configuration({ issuer: url.origin, token_endpoint: url.href }, opts.clientId, undefined, auth);
      c.timeout = opts.timeout / 1000;
      // Plain http is only accepted by the schema for loopback token URLs (tests, a local sidecar).
      if (url.protocol === 'http:') allowInsecureRequests(c);
      return c;
    });
    config.catch(() => {
      config = undefined;
    });
    return config;
  };
  return async () => {
    let res: Awaited<ReturnType<typeof clientCredentialsGrant>>;
    try {
      res = await clientCredentialsGrant(await configuration(), { ...opts.parameters });
    } catch (err) {
      throw new TokenEndpointError(describe(err), { cause: err });
    }
    // RFC 6750: we send it as a Bearer token; any other type (DPoP, N_A) would be misused.
    if (typeof res.token_type !== 'string' || res.token_type.toLowerCase() !== 'bearer')
      throw new TokenEndpointError(`token_type "${String(res.token_type).slice(0, 20)}" is not Bearer`);
    const expiresIn = typeof res.expires_in === 'number' && Number.isFinite(res.expires_in) ? res.expires_in : undefined;
    return { accessToken: res.access_token, expiresIn };
  };
}

/** The one place openid-client / fetch errors become words. */
export function describe(err: unknown): string {
  if (err instanceof ResponseBodyError) return `token endpoint answered ${err.status} ${err.error}`.slice(0, 200);
  if (err instanceof ClientError) {
    const status = err.cause instanceof Response ? ` (${err.cause.status})` : '';
    return `token endpoint response rejected: ${err.code ?? err.message}${status}`;
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'token endpoint timed out';
  if (err instanceof TypeError) {
    const cause = err.cause as { code?: unknown } | undefined;
    return `token endpoint unreachable (${typeof cause?.code === 'string' ? cause.code : err.message})`;
  }
  return `token request failed (${err instanceof Error ? err.name : typeof err})`;
}
