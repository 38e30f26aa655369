/** Config schema of edge authentication: `authenticators`, `consumers`, and the route fields. */
import { z } from 'zod';
import { duration, headerName, optionalDuration, secretValue, secureUrl, size } from '../config/fields.js';

const failureMode = z
  .enum(['closed', 'absent'])
  .default('closed')
  .describe('When the remote service fails: `closed` answers 503 (default); `absent` treats the credential as not presented (next authenticator, or 401)');

const claimMapping = {
  consumerClaim: z.string().min(1).default('sub').describe('Claim whose value names a consumer id. Default sub.'),
  scopesClaim: z.string().min(1).default('scope').describe('Claim holding scopes (space-separated string or array). Default scope.'),
  groupsClaim: z.string().min(1).default('groups').describe('Claim holding groups (array or space-separated string). Default groups.'),
};

export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'HS256',
  'HS384',
  'HS512',
] as const;

const apiKey = z
  .strictObject({
    type: z.literal('apiKey'),
    header: headerName.optional().describe('Header carrying the key, e.g. x-api-key'),
    query: z.string().min(1).optional().describe('Query parameter carrying the key (weaker: URLs end up in logs)'),
  })
  .refine((a) => (a.header === undefined) !== (a.query === undefined), 'set exactly one of header or query');

const basic = z.strictObject({
  type: z.literal('basic'),
  realm: z
    .string()
    .regex(/^[\x20-\x7e]*$/, 'printable ASCII only')
    .refine((r) => !r.includes('"') && !r.includes('\\'), 'no quotes or backslashes')
    .default('portcullis'),
  maxFailures: z.number().int().positive().default(10).describe('Failed attempts per client IP within failureWindow before 429. Default 10.'),
  failureWindow: duration('1m', 'Window of the failure limiter'),
});

const jwt = z
  .strictObject({
    type: z.literal('jwt'),
    issuer: z.string().min(1).describe('Exact `iss`'),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe('Accepted `aud` value(s); required'),
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).describe('Accepted algorithms, pinned (never taken from the token)'),
    jwksUri: secureUrl('the JWKS endpoint').optional(),
    keyFile: z.string().optional().describe('Local public key: PEM (SPKI or certificate) or a JWK/JWKS JSON file'),
    secret: secretValue('HMAC secret for HS* (at least 32 bytes)').optional(),
    clockTolerance: duration('60s', 'Clock skew allowed for exp/nbf/iat'),
    maxTokenAge: optionalDuration('Reject tokens whose iat is older than this'),
    requiredClaims: z.array(z.string().min(1)).default([]).describe('Claims that must be present'),
    typ: z.string().optional().describe('Required `typ` header, e.g. at+jwt'),
    maxTokenBytes: size('8kb', 'Largest token accepted before parsing'),
    jwksTimeout: duration('5s', 'Timeout of a JWKS fetch'),
    jwksCooldown: duration('30s', 'Minimum time between two JWKS fetches triggered by an unknown kid'),
    jwksMaxAge: duration('10m', 'Refresh the JWKS in the background this often'),
    cacheTtl: duration('5m', 'Keep a verified token in the verified-token cache at most this long (never past its exp)'),
    cacheSize: z.number().int().min(0).default(10_000).describe('Entries of the verified-token cache (0 disables it). Default 10000.'),
    ...claimMapping,
  })
  .superRefine((j, ctx) => {
    const sources = [j.jwksUri, j.keyFile, j.secret].filter((s) => s !== undefined).length;
    if (sources !== 1) ctx.addIssue({ code: 'custom', message: 'set exactly one of jwksUri, keyFile or secret' });
    const hmac = j.algorithms.filter((a) => a.startsWith('HS'));
    if (j.secret !== undefined && hmac.length !== j.algorithms.length)
      ctx.addIssue({ code: 'custom', message: 'a secret can only be used with HS256/HS384/HS512', path: ['algorithms'] });
    if (j.secret === undefined && hmac.length > 0)
      ctx.addIssue({ code: 'custom', message: 'HS* algorithms need `secret` (never a public key)', path: ['algorithms'] });
    if (j.secret !== undefined && Buffer.byteLength(j.secret.reveal()) < 32)
      ctx.addIssue({ code: 'custom', message: 'an HMAC secret must be at least 256 bits (32 bytes)', path: ['secret'] });
  });

const introspection = z.strictObject({
  type: z.literal('introspection'),
  endpoint: secureUrl('the RFC 7662 introspection endpoint'),
  clientId: z.string().min(1),
  clientSecret: secretValue('Client secret at the introspection endpoint'),
  authMethod: z.enum(['client_secret_basic', 'client_secret_post']).default('client_secret_basic'),
  issuer: z.string().optional().describe('If set, the `iss` of the introspection response must equal it'),
  audience: z.string().optional().describe('If set, the `aud` of the introspection response must contain it'),
  cacheTtl: duration('60s', 'Cache an active result this long (never past the token exp)'),
  cacheSize: z.number().int().min(0).default(10_000).describe('Entries of the introspection result cache (0 disables it). Default 10000.'),
  maxTokenBytes: size('8kb', 'Largest bearer token sent for introspection'),
  timeout: duration('2s', 'Timeout of one introspection call'),
  failureMode,
  ...claimMapping,
});

const mtls = z.strictObject({
  type: z.literal('mtls'),
  requireConsumer: z.boolean().default(false).describe('Reject verified certificates that map to no consumer. Default false.'),
});

const external = z.strictObject({
  type: z.literal('external'),
  url: secureUrl('the auth service URL (called with GET; with appendPath the request path is appended, Envoy ext_authz HTTP convention)'),
  timeout: duration('500ms', 'Timeout of one auth call'),
  appendPath: z.boolean().default(false).describe('Append the request path to url (Envoy style); default false (Traefik ForwardAuth style)'),
  requestHeaders: z.array(headerName).default(['authorization', 'cookie']).describe('Client headers sent to the auth service'),
  responseHeaders: z.array(headerName).default([]).describe('Auth-service response headers copied onto the upstream request'),
  subjectHeader: headerName
    .optional()
    .describe(
      'Auth-service response header naming the principal (e.g. x-auth-user); its value is the subject and, if it is a consumer id, the consumer. Default: subject "external", no consumer',
    ),
  failureMode,
  cache: z
    .strictObject({
      maxTtl: duration('60s', 'Upper bound on the Cache-Control max-age honoured'),
      maxEntries: z.number().int().positive().default(10_000),
    })
    .optional()
    .describe('Cache allow decisions keyed on the declared inputs, honouring Cache-Control'),
});

export const authenticatorSchema = z.discriminatedUnion('type', [apiKey, basic, jwt, introspection, mtls, external]);

const digest = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'an API key is stored as sha256:<64 hex>; `portcullis keys generate` prints one')
  .transform((d) => d.slice(7));

export const consumerSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/, 'a consumer id is 1-128 of A-Z a-z 0-9 . _ @ : -'),
  groups: z.array(z.string().regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')).default([]),
  apiKeys: z.array(digest).default([]),
  basic: z
    .strictObject({
      username: z
        .string()
        .min(1)
        .refine((u) => !u.includes(':'), 'a Basic username cannot contain ":"'),
      passwordHash: z
        .string()
        .regex(/^\$(argon2id|argon2i|argon2d|2a|2b|2y)\$/, 'argon2id or bcrypt hash ($argon2id$…, $2b$…); `portcullis keys hash-password` makes one'),
    })
    .optional(),
  certificate: z
    .strictObject({
      subject: z.string().optional().describe('Subject DN, e.g. CN=acme or CN=acme,O=Acme'),
      uri: z.string().optional().describe('URI SAN, e.g. spiffe://example.org/acme'),
      dns: z.string().optional().describe('DNS SAN'),
    })
    .refine((c) => [c.subject, c.uri, c.dns].filter((x) => x !== undefined).length === 1, 'set exactly one of subject, uri or dns')
    .optional(),
  metadata: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
});

const authName = z.string().min(1);
export const routeAuthenticateSchema = z
  .union([z.array(authName).min(1), z.strictObject({ allOf: z.array(authName).min(1) }), z.strictObject({ anyOf: z.array(authName).min(1) })])
  .describe('Authenticators accepted: a list (any of), or { allOf: [...] }');

export type AuthenticatorConfig = z.output<typeof authenticatorSchema>;
export type ConsumerConfig = z.output<typeof consumerSchema>;
export type RouteAuthenticateConfig = z.output<typeof routeAuthenticateSchema>;
