/**
 * Config schema of `samlAssertion` (schema only: imported by schema.ts without an import cycle; the
 * factory is saml.ts). Documented in docs/outbound.md.
 */
import { z } from 'zod';
import { duration, secretValue } from '../config/fields.js';
import { optionalSize, outboundHeaderName } from './fields.js';

export const MAX_SAML_TTL_MS = 60 * 60_000;
/** `identity.sub`, `identity.consumer`, or `identity.claims.NAME` (a string claim of a verified token). */
const SELECTOR = /^identity\.(?:sub|consumer|claims\.[A-Za-z0-9_.:-]+)$/;

/** Characters XML 1.0 §2.2 cannot carry at all, not even escaped (controls, lone surrogates, U+FFFE/F). */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export function isXmlText(s: string): boolean {
  return !NOT_XML_CHAR.test(s);
}

export const SAML_ATTRIBUTES = ['groups', 'scopes', 'consumer', 'metadata'] as const;
const xmlString = (what: string) => z.string().min(1).refine(isXmlText, 'contains characters XML cannot carry').describe(what);

export const samlAssertionSchema = z
  .strictObject({
    type: z.literal('samlAssertion'),
    issuer: xmlString('saml:Issuer of the assertion (the gateway entity ID, e.g. https://gw.example)'),
    audience: xmlString('saml:Audience: the backend entity ID the assertion is restricted to'),
    subject: z
      .string()
      .regex(SELECTOR, 'use identity.sub, identity.consumer or identity.claims.NAME')
      .default('identity.sub')
      .describe(
        'What becomes the NameID: identity.sub (default: the authenticated subject), identity.consumer (the consumer id) or identity.claims.NAME (a string claim)',
      ),
    nameIdFormat: xmlString('Format of the NameID').default('urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified'),
    authnContextClassRef: xmlString('AuthnContextClassRef of the AuthnStatement').default('urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified'),
    attributes: z
      .array(z.enum(SAML_ATTRIBUTES))
      .default([...SAML_ATTRIBUTES])
      .describe('Attributes carried: groups, scopes, consumer (consumer id), metadata (consumer metadata, one attribute per key). Default all.'),
    ttl: duration('5m', 'Validity of an assertion: Conditions NotOnOrAfter (1s to 60m)').refine(
      (ms) => ms >= 1000 && ms <= MAX_SAML_TTL_MS,
      'ttl must be between 1s and 60m',
    ),
    signingKey: secretValue('RSA private key (PEM) that signs the assertion'),
    certificate: z.string().min(1).describe('PEM file of the X.509 certificate of signingKey (relative to the config file), sent in KeyInfo'),
    placement: z
      .enum(['wsse', 'header'])
      .default('wsse')
      .describe('wsse (default): in the wsse:Security header of the SOAP envelope; header: base64 in an HTTP header'),
    headerName: outboundHeaderName.optional().describe('Header for placement: header. Default X-SAML-Assertion.'),
    mustUnderstand: z.boolean().default(true).describe('Mark the wsse:Security header mustUnderstand="1" (placement: wsse). Default true.'),
    maxBodyBytes: optionalSize('Largest SOAP envelope buffered to insert the assertion (placement: wsse)'),
  })
  .superRefine((s, ctx) => {
    if (s.placement === 'wsse' && s.headerName !== undefined)
      ctx.addIssue({ code: 'custom', message: 'headerName is only for placement: header', path: ['headerName'] });
    if (s.placement === 'header' && s.maxBodyBytes !== undefined)
      ctx.addIssue({ code: 'custom', message: 'maxBodyBytes is only for placement: wsse', path: ['maxBodyBytes'] });
  });

export type SamlAssertionConfig = z.output<typeof samlAssertionSchema>;
