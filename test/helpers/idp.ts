/**
 * A real OpenID provider (`oidc-provider`) on loopback for authentication tests. It issues real
 * client-credentials access tokens — JWT for the `urn:orders-api*` resources, opaque for
 * `urn:opaque-api` — serves its JWKS and an RFC 7662 introspection endpoint, counts JWKS and
 * introspection requests, rotates its signing keys and can be taken down and brought back.
 *
 * Rotation builds a new Provider instance with the new JWKS and swaps it in behind the same
 * http.Server, so the issuer URL and port stay the same.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import Provider from 'oidc-provider';

export interface IdPKey {
  readonly alg: 'ES256' | 'RS256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** Public JWK (with kid and alg) as published in the JWKS. */
  readonly publicJwk: JWK;
}

export interface IdPResource {
  /** `jwt` (default) or `opaque` access tokens. */
  readonly format?: 'jwt' | 'opaque';
  /** Token `aud`. Default: the resource indicator itself. */
  readonly audience?: string;
  /** Signing algorithm of JWT access tokens. Default ES256. */
  readonly alg?: 'ES256' | 'RS256';
  /** Scopes this resource server accepts. Default: every provider scope. */
  readonly scope?: string;
  /** Token lifetime in seconds. Default 600. */
  readonly ttl?: number;
}

export interface IdPOptions {
  /** Extra resource servers, by resource indicator (merged over the defaults). */
  readonly resources?: Readonly<Record<string, IdPResource>>;
  /** Extra claims put into every access token (and its introspection response), e.g. groups. */
  readonly extraClaims?: Readonly<Record<string, unknown>>;
  /** Scopes the provider knows. Default orders:read orders:write admin. */
  readonly scopes?: readonly string[];
  /**
   * Extra clients (oidc-provider client metadata), e.g. a client_credentials client with
   * token_endpoint_auth_method client_secret_post or private_key_jwt (with its public `jwks`).
   * A short token TTL is a resource with `ttl` (seconds) that the client asks for as `resource`.
   */
  readonly clients?: readonly Record<string, unknown>[];
}

export interface IdPClient {
  readonly id: string;
  readonly secret: string;
}

export interface TestIdP {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly introspectionEndpoint: string;
  /** Client allowed the client_credentials grant (token `sub` / `client_id`). */
  readonly client: IdPClient;
  /** Client for the introspection endpoint, client_secret_basic. */
  readonly introspector: IdPClient;
  /** Client for the introspection endpoint, client_secret_post. */
  readonly introspectorPost: IdPClient;
  /** Current signing keys (what new tokens are signed with), including private keys for hand-made tokens. */
  keys(): { readonly ES256: IdPKey; readonly RS256: IdPKey };
  /** Every published key (current first, then the ones kept by rotateKeys). */
  publishedKeys(): readonly IdPKey[];
  /** A real access token from the token endpoint. Default resource `urn:orders-api` (JWT, ES256, aud orders-api). */
  mintAccessToken(scope?: string, resource?: string): Promise<string>;
  /** New ES256 + RS256 keys (new kids). keepOld (default true) keeps the previous keys published. */
  rotateKeys(options?: { keepOld?: boolean }): Promise<void>;
  /** While down, every connection is destroyed without a response (a crashed IdP). */
  setDown(down: boolean): void;
  readonly jwksRequests: number;
  readonly introspectionRequests: number;
  /** Requests to the token endpoint (any outcome), counted before the provider sees them. */
  readonly tokenRequests: number;
  close(): Promise<void>;
}

export const DEFAULT_RESOURCES: Readonly<Record<string, IdPResource>> = {
  'urn:orders-api': { format: 'jwt', audience: 'orders-api', alg: 'ES256' },
  'urn:orders-api:rs256': { format: 'jwt', audience: 'orders-api', alg: 'RS256' },
  'urn:opaque-api': { format: 'opaque', audience: 'opaque-api' },
};

async function newKey(alg: 'ES256' | 'RS256'): Promise<IdPKey & { privateJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, publicJwk, privateJwk };
}

export async function startIdP(options: IdPOptions = {}): Promise<TestIdP> {
  const resources = { ...DEFAULT_RESOURCES, ...options.resources };
  const scopes = options.scopes ?? ['orders:read', 'orders:write', 'admin'];
  const client: IdPClient = { id: 'orders-client', secret: `cs-${randomUUID()}` };
  const introspector: IdPClient = { id: 'gw', secret: `gw-${randomUUID()}` };
  const introspectorPost: IdPClient = { id: 'gw-post', secret: `gwp-${randomUUID()}` };

  let current = { ES256: await newKey('ES256'), RS256: await newKey('RS256') };
  let published: (IdPKey & { privateJwk: JWK })[] = [current.ES256, current.RS256];
  let jwksRequests = 0;
  let introspectionRequests = 0;
  let tokenRequests = 0;
  let down = false;
  let handler: http.RequestListener = (_req, res) => res.end();

  const server = http.createServer((req, res) => {
    if (down) {
      req.socket.destroy();
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    if (path === '/jwks') jwksRequests++;
    if (path === '/token/introspection') introspectionRequests++;
    if (path === '/token') tokenRequests++;
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const build = () => {
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: client.id,
          client_secret: client.secret,
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          scope: scopes.join(' '),
        },
        {
          client_id: introspector.id,
          client_secret: introspector.secret,
          grant_types: [],
          redirect_uris: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_basic',
        },
        {
          client_id: introspectorPost.id,
          client_secret: introspectorPost.secret,
          grant_types: [],
          redirect_uris: [],
          response_types: [],
          token_endpoint_auth_method: 'client_secret_post',
        },
        ...(options.clients ?? []),
      ],
      jwks: { keys: published.map((k) => k.privateJwk) },
      scopes: [...scopes],
      cookies: { keys: [`cookie-${randomUUID()}`] },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true, allowedPolicy: () => true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'urn:orders-api',
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, indicator) => {
            const r = resources[indicator];
            if (r === undefined) throw new Provider.errors.InvalidTarget();
            return {
              scope: r.scope ?? scopes.join(' '),
              audience: r.audience ?? indicator,
              accessTokenTTL: r.ttl ?? 600,
              accessTokenFormat: r.format ?? 'jwt',
              ...((r.format ?? 'jwt') === 'jwt' ? { jwt: { sign: { alg: r.alg ?? 'ES256' } } } : {}),
            };
          },
        },
      },
      ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600 },
      extraTokenClaims: () => (options.extraClaims === undefined ? undefined : { ...options.extraClaims }),
    });
    handler = provider.callback();
  };
  build();

  const tokenEndpoint = `${issuer}/token`;
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    introspectionEndpoint: `${issuer}/token/introspection`,
    client,
    introspector,
    introspectorPost,
    keys: () => current,
    publishedKeys: () => published,
    async mintAccessToken(scope = 'orders:read', resource = 'urn:orders-api') {
      const body = new URLSearchParams({ grant_type: 'client_credentials', scope, resource });
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body,
      });
      const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (res.status !== 200 || typeof json.access_token !== 'string') throw new Error(`token endpoint: ${res.status} ${json.error} ${json.error_description}`);
      return json.access_token;
    },
    async rotateKeys({ keepOld = true } = {}) {
      const next = { ES256: await newKey('ES256'), RS256: await newKey('RS256') };
      // New keys first: the provider signs with the first key of an algorithm.
      published = [next.ES256, next.RS256, ...(keepOld ? published : [])];
      current = next;
      build();
    },
    setDown(d) {
      down = d;
    },
    get jwksRequests() {
      return jwksRequests;
    },
    get introspectionRequests() {
      return introspectionRequests;
    },
    get tokenRequests() {
      return tokenRequests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A token the provider would not mint: `claims` signed with `key` (by default an IdP key, so the
 * signature is good). Defaults: iss/aud/sub/iat/exp of a normal access token; pass `undefined`
 * for a claim to leave it out. `header` is merged over { alg, kid, typ: 'at+jwt' }.
 */
export async function signToken(
  idp: Pick<TestIdP, 'issuer' | 'client'>,
  key: Pick<IdPKey, 'alg' | 'kid' | 'privateKey'>,
  claims: Readonly<Record<string, unknown>> = {},
  header: Readonly<Record<string, unknown>> = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: idp.issuer,
    aud: 'orders-api',
    sub: idp.client.id,
    iat: now,
    exp: now + 600,
    scope: 'orders:read',
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload as JWTPayload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt', ...header }).sign(key.privateKey);
}
