/**
 * Config schema of `httpSignature` (schema only: imported by schema.ts without an import cycle; the
 * factory is http-signature.ts). Documented in docs/outbound.md.
 */
import { z } from 'zod';
import { secretValue } from '../config/fields.js';
import { parseDuration } from '../core/units.js';
import { optionalSize } from './fields.js';
import { type ComponentId, parseComponentId, SF_KEY, SIGNATURE_ALGORITHMS, SignatureBaseError } from './message-signature.js';

const PRINTABLE = /^[\x20-\x7e]+$/;
/** Headers the credential writes itself: covering them would sign a value it is about to replace. */
const OWN_FIELDS = new Set(['signature', 'signature-input']);

export const MAX_SIGNATURE_EXPIRES_MS = 60 * 60_000;

export const httpSignatureSchema = z
  .strictObject({
    type: z.literal('httpSignature'),
    keyId: z.string().regex(PRINTABLE, 'printable ASCII, not empty').describe('`keyid` parameter: how the backend finds the key'),
    key: secretValue(
      'Signing key: a PEM private key or a private JWK (JSON); for hmac-sha256 a JWK of kty "oct" or the shared secret itself (see keyEncoding)',
    ),
    keyEncoding: z
      .enum(['utf8', 'base64', 'base64url', 'hex'])
      .optional()
      .describe('hmac-sha256 only: how the shared secret text becomes bytes. Default utf8.'),
    algorithm: z.enum(SIGNATURE_ALGORITHMS).describe('ed25519, ecdsa-p256-sha256, rsa-pss-sha512, rsa-v1_5-sha256 or hmac-sha256 (RFC 9421 §3.3)'),
    label: z
      .string()
      .regex(SF_KEY, 'a label is lower-case letters, digits, _ - . * and starts with a letter or *')
      .default('sig1')
      .describe('Signature label. Default sig1.'),
    components: z
      .array(z.string())
      .min(1)
      .optional()
      .describe(
        'Covered components, in order: derived (@method, @authority, @path, @query, @query-param;name=N, @target-uri, @scheme, @request-target) and field names. Default: @method @authority @path, @query when the request has a query, content-digest when it has a body.',
      ),
    expires: z
      .union([z.string(), z.number()])
      .optional()
      .describe('Adds `expires` = created + this (duration, up to 60m). Default: no expires.')
      .transform((v, ctx) => {
        if (v === undefined) return undefined;
        const ms = parseDuration(v);
        if (ms === undefined || ms < 1000 || ms > MAX_SIGNATURE_EXPIRES_MS) {
          ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration between 1s and 60m` });
          return z.NEVER;
        }
        return ms;
      }),
    nonce: z.boolean().default(false).describe('Adds a random `nonce` per request. Default false.'),
    includeAlg: z.boolean().default(false).describe('Adds the `alg` parameter. Default false (RFC 9421 §3.2: the key determines the algorithm).'),
    tag: z.string().regex(PRINTABLE, 'printable ASCII, not empty').optional().describe('Adds a `tag` parameter (an application profile name)'),
    authority: z
      .string()
      .regex(/^[A-Za-z0-9.:[\]-]+$/, 'host or host:port')
      .optional()
      .describe('@authority to sign, when the upstream targets differ in host. Default: the Host header the backend receives.'),
    maxBodyBytes: optionalSize('Largest body buffered to compute content-digest'),
  })
  .superRefine((s, ctx) => {
    if (s.keyEncoding !== undefined && s.algorithm !== 'hmac-sha256')
      ctx.addIssue({ code: 'custom', message: 'keyEncoding is only for hmac-sha256', path: ['keyEncoding'] });
    const seen = new Set<string>();
    for (const [i, text] of (s.components ?? []).entries()) {
      let c: ComponentId;
      try {
        c = parseComponentId(text);
      } catch (err) {
        if (!(err instanceof SignatureBaseError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message, path: ['components', i] });
        continue;
      }
      const key = `${c.name};${c.param ?? ''}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `${text} is listed twice`, path: ['components', i] });
      seen.add(key);
      if (c.name === '@status') ctx.addIssue({ code: 'custom', message: '@status is a response component', path: ['components', i] });
      if (OWN_FIELDS.has(c.name))
        ctx.addIssue({ code: 'custom', message: `${c.name} is written by this credential and cannot be covered`, path: ['components', i] });
    }
  });

export type HttpSignatureConfig = z.output<typeof httpSignatureSchema>;
