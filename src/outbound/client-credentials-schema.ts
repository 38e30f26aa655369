/**
 * Config schema of `oauth2ClientCredentials` (schema only: imported by schema.ts without an
 * import cycle; the factory is client-credentials.ts). Documented in docs/outbound.md.
 */
import { z } from 'zod';
import { duration, optionalDuration, secretValue, secureUrl } from '../config/fields.js';

const tokenUrl = secureUrl('the token endpoint');

export const clientCredentialsSchema = z
  .strictObject({
    type: z.literal('oauth2ClientCredentials'),
    tokenUrl,
    clientId: z.string().min(1).describe('OAuth client_id of the gateway at the token endpoint'),
    clientSecret: secretValue('Client secret (client_secret_basic / client_secret_post)').optional(),
    privateKeyJwt: z
      .strictObject({
        key: secretValue('Private key signing the client assertion: PKCS#8 PEM or a private JWK (RSA, EC P-256/P-384, Ed25519)'),
        kid: z.string().min(1).optional().describe('`kid` header of the assertion (default: none)'),
      })
      .optional()
      .describe('Authenticate with a signed client assertion (RFC 7523): iss = sub = clientId, aud = tokenUrl, a jti, 60s exp'),
    authMethod: z
      .enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt'])
      .optional()
      .describe('Client authentication. Default private_key_jwt with privateKeyJwt, else client_secret_basic.'),
    scope: z.string().min(1).optional().describe('`scope` requested (space-separated)'),
    audience: z.string().min(1).optional().describe('Sent as `resource` (RFC 8707 resource indicator)'),
    timeout: duration('5s', 'Time for one token request (connect, response and body)'),
    skew: optionalDuration('A token is dropped this long before it expires. Default 10% of its lifetime, at most 30s.'),
    refreshAhead: z
      .number()
      .min(0.5)
      .max(0.95)
      .default(0.8)
      .describe('Fraction of a token lifetime after which a new one is fetched in the background (0.5-0.95). Default 0.8.'),
    defaultLifetime: duration('5m', 'Lifetime assumed when the token response has no expires_in'),
  })
  .superRefine((c, ctx) => {
    const method = c.authMethod ?? (c.privateKeyJwt !== undefined ? 'private_key_jwt' : 'client_secret_basic');
    if (c.clientSecret !== undefined && c.privateKeyJwt !== undefined)
      ctx.addIssue({ code: 'custom', message: 'set either clientSecret or privateKeyJwt, not both', path: ['privateKeyJwt'] });
    if (method === 'private_key_jwt' && c.privateKeyJwt === undefined)
      ctx.addIssue({ code: 'custom', message: 'authMethod private_key_jwt needs privateKeyJwt.key', path: ['privateKeyJwt'] });
    if (method !== 'private_key_jwt' && c.clientSecret === undefined)
      ctx.addIssue({ code: 'custom', message: `authMethod ${method} needs clientSecret`, path: ['clientSecret'] });
    if (c.defaultLifetime < 1000) ctx.addIssue({ code: 'custom', message: 'defaultLifetime must be at least 1s', path: ['defaultLifetime'] });
  });

export type ClientCredentialsConfig = z.output<typeof clientCredentialsSchema>;
