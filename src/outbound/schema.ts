/**
 * Config schema of the outbound phase: `upstreams.*.auth` (one entry per credential type) and the
 * top-level `gatewayIdentity`. Schemas only — no factory, no config loader — so this module can be
 * imported from the config schema without an import cycle. A new type is a schema here plus one
 * factory file listed in build.ts.
 */
import { z } from 'zod';
import { duration, secretValue } from '../config/fields.js';
import { optionalSize, outboundHeaderName } from './fields.js';
import { clientCredentialsSchema } from './client-credentials-schema.js';
import { httpSignatureSchema } from './http-signature-schema.js';
import { samlAssertionSchema } from './saml-schema.js';

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);

export const apiKeySchema = z
  .strictObject({
    type: z.literal('apiKey'),
    in: z
      .enum(['header', 'query', 'jsonBody', 'form'])
      .default('header')
      .describe('Where the key goes: header (default), query, jsonBody (a JSON body field) or form (a urlencoded form field)'),
    name: z.string().min(1).optional().describe('Header, query parameter or form field name (in: header | query | form)'),
    field: z.string().min(1).optional().describe('Dotted path of the JSON body field, e.g. auth.key (in: jsonBody)'),
    value: secretValue('The key'),
    maxBodyBytes: optionalSize('Largest body buffered to insert the key (in: jsonBody | form)'),
  })
  .superRefine((a, ctx) => {
    if (a.in === 'jsonBody') {
      if (a.field === undefined) ctx.addIssue({ code: 'custom', message: 'in: jsonBody needs `field` (a dotted path such as auth.key)', path: ['field'] });
      else if (a.field.split('.').some((s) => s === '' || FORBIDDEN_SEGMENTS.has(s)))
        ctx.addIssue({
          code: 'custom',
          message: 'a field path is non-empty segments separated by dots, none named __proto__, constructor or prototype',
          path: ['field'],
        });
      if (a.name !== undefined) ctx.addIssue({ code: 'custom', message: 'in: jsonBody takes `field`, not `name`', path: ['name'] });
      return;
    }
    if (a.name === undefined) ctx.addIssue({ code: 'custom', message: `in: ${a.in} needs \`name\``, path: ['name'] });
    if (a.field !== undefined) ctx.addIssue({ code: 'custom', message: '`field` is only for in: jsonBody', path: ['field'] });
    if (a.in === 'header' && a.name !== undefined) {
      const h = outboundHeaderName.safeParse(a.name);
      if (!h.success) for (const issue of h.error.issues) ctx.addIssue({ code: 'custom', message: issue.message, path: ['name'] });
    }
    if (a.maxBodyBytes !== undefined && a.in !== 'form')
      ctx.addIssue({ code: 'custom', message: 'maxBodyBytes is only for body variants', path: ['maxBodyBytes'] });
  });

export const basicSchema = z.strictObject({
  type: z.literal('basic'),
  username: secretValue('User name (must not contain ":")'),
  password: secretValue('Password'),
});

export const MAX_JWT_TTL_MS = 10 * 60_000;

export const JWT_CLAIMS = ['sub', 'consumer', 'groups', 'scopes'] as const;
export type JwtClaim = (typeof JWT_CLAIMS)[number];

export const jwtSchema = z.strictObject({
  type: z.literal('jwt'),
  audience: z.string().min(1).optional().describe('`aud` of the minted token. Default: the upstream name.'),
  ttl: duration('60s', 'Lifetime of a minted token (1s to 10m)').refine((ms) => ms >= 1000 && ms <= MAX_JWT_TTL_MS, 'ttl must be between 1s and 10m'),
  claims: z
    .array(z.enum(JWT_CLAIMS))
    .default([...JWT_CLAIMS])
    .describe('Identity claims carried: sub, consumer (consumer id), groups (array), scopes (as `scope`, space-separated). Default all.'),
  header: outboundHeaderName
    .default('authorization')
    .describe('Header carrying the token: Authorization (as Bearer, default) or another header (the bare token)'),
  cache: z.boolean().default(true).describe('Reuse a minted token per identity for half its ttl. Default true.'),
  cacheSize: z.number().int().positive().default(10_000).describe('Most identities with a cached token. Default 10000.'),
});

export const GATEWAY_ALGORITHMS = ['ES256', 'RS256', 'EdDSA'] as const;
export type GatewayAlgorithm = (typeof GATEWAY_ALGORITHMS)[number];

export const DEFAULT_KEY_FILE = 'gateway-identity-key.pem';

export const gatewayIdentitySchema = z
  .strictObject({
    issuer: z.string().min(1).default('portcullis').describe('`iss` of the tokens the gateway mints. Default portcullis.'),
    algorithm: z.enum(GATEWAY_ALGORITHMS).default('ES256').describe('Signing algorithm: ES256 (default), RS256 or EdDSA (Ed25519)'),
    key: secretValue('Private signing key: PKCS#8 PEM or a private JWK (JSON)').optional(),
    keyFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        `Where the generated key is kept when \`key\` is not set (relative to the config file). Default ${DEFAULT_KEY_FILE}; keep it out of version control.`,
      ),
    publishAhead: duration('60s', 'After a reload changes the key, how long the new public key is published before the gateway signs with it').refine(
      (ms) => ms <= MAX_JWT_TTL_MS,
      'publishAhead is at most 10m',
    ),
  })
  .refine((g) => g.key === undefined || g.keyFile === undefined, { message: 'set either key or keyFile, not both', path: ['keyFile'] })
  .describe('The key the gateway signs its identity assertions with (upstreams.*.auth type jwt); public keys at /.well-known/jwks.json on the admin listener');

export type GatewayIdentityConfig = z.output<typeof gatewayIdentitySchema>;

export const outboundAuthSchema = z
  .discriminatedUnion('type', [apiKeySchema, basicSchema, jwtSchema, clientCredentialsSchema, samlAssertionSchema, httpSignatureSchema])
  .describe('Credential the gateway presents to this upstream (applied after the client credential was removed)');

export type OutboundAuthConfig = z.output<typeof outboundAuthSchema>;
/** The types a factory exists for (the reserved ones never get past the schema). */
export type BuiltOutboundType = 'apiKey' | 'basic' | 'jwt' | 'oauth2ClientCredentials' | 'samlAssertion' | 'httpSignature';
export type ApiKeyCredentialConfig = Extract<OutboundAuthConfig, { type: 'apiKey' }>;
export type BasicCredentialConfig = Extract<OutboundAuthConfig, { type: 'basic' }>;
export type JwtCredentialConfig = Extract<OutboundAuthConfig, { type: 'jwt' }>;
