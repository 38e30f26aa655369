/**
 * `samlAssertion`: a SAML 2.0 bearer assertion about the verified identity, minted and signed by the
 * gateway for one backend (WS-Security SAML Token Profile 1.1 for SOAP services), placed in the
 * wsse:Security header of the SOAP envelope or, base64-encoded, in an HTTP header.
 *
 * A fresh assertion (new ID, new instants) is signed per request; nothing is cached, so no
 * assertion can ever be served to another identity. Every value from the identity is escaped as
 * XML text or attribute; a value XML cannot carry at all (a control character) refuses the request.
 * Signature: RSA-SHA256 over the exclusive-C14N form of the assertion (enveloped signature,
 * reference to the assertion ID), KeyInfo with the configured X.509 certificate (xml-crypto).
 */
import { createPrivateKey, type KeyObject, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SignedXml } from 'xml-crypto';
import type { Identity } from '../auth/types.js';
import { BuildProblem } from '../config/load.js';
import type { Refusal } from '../core/errors.js';
import { reveal } from '../secrets/secret.js';
import { isXmlText, type SamlAssertionConfig } from './saml-schema.js';
import { escapeXmlAttribute, escapeXmlText, parseSoapEnvelope, setSecurityHeader } from './soap.js';
import { type OutboundBuildContext, type OutboundCredential, type OutboundRequest, type OutboundResult, outboundRefusal } from './types.js';

export const SAML_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const ATTRNAME_FORMAT = 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic';
const ATTRNAME_UNSPECIFIED = 'urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified';

/** xs:dateTime in UTC without fractions (SAML 2.0 core §1.3.3). */
function instant(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/** An xs:ID: starts with a letter or underscore (SAML core §1.3.4: ≥ 128 bits of randomness). */
function assertionId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

function loadKey(cfg: SamlAssertionConfig, ctx: OutboundBuildContext): { key: KeyObject; certPem: string } {
  let key: KeyObject;
  try {
    key = createPrivateKey(reveal(cfg.signingKey));
  } catch {
    throw new BuildProblem([...ctx.path, 'signingKey'], 'not a PEM private key');
  }
  if (key.asymmetricKeyType !== 'rsa') throw new BuildProblem([...ctx.path, 'signingKey'], 'RSA-SHA256 needs an RSA key');
  if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new BuildProblem([...ctx.path, 'signingKey'], 'the RSA key must have at least 2048 bits');
  const file = resolve(ctx.dir, cfg.certificate);
  let certPem: string;
  let cert: X509Certificate;
  try {
    certPem = readFileSync(file, 'utf8');
    cert = new X509Certificate(certPem);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BuildProblem(
      [...ctx.path, 'certificate'],
      code === 'ENOENT' || code === 'EACCES' ? `cannot read ${cfg.certificate} (${code})` : 'not a PEM certificate',
    );
  }
  if (!cert.checkPrivateKey(key)) throw new BuildProblem([...ctx.path, 'certificate'], 'the certificate does not match signingKey');
  if (Date.parse(cert.validTo) < Date.now()) ctx.logger.warn({ upstream: ctx.upstream, validTo: cert.validTo }, 'the SAML signing certificate has expired');
  return { key, certPem };
}

interface AssertionFacts {
  readonly nameId: string;
  readonly identity: Identity | undefined;
  readonly now: number;
}

export function createSamlAssertionCredential(cfg: SamlAssertionConfig, ctx: OutboundBuildContext, now: () => number = Date.now): OutboundCredential {
  const { key, certPem } = loadKey(cfg, ctx);
  const max = cfg.maxBodyBytes ?? ctx.maxBodyBytes;
  const header = cfg.headerName ?? 'x-saml-assertion';
  const attributes = new Set(cfg.attributes);
  const claim = cfg.subject.startsWith('identity.claims.') ? cfg.subject.slice('identity.claims.'.length) : undefined;

  // Static parts, escaped once.
  const issuer = escapeXmlText(cfg.issuer);
  const audience = escapeXmlText(cfg.audience);
  const nameIdFormat = escapeXmlAttribute(cfg.nameIdFormat);
  const classRef = escapeXmlText(cfg.authnContextClassRef);

  const nameIdOf = (id: Identity | undefined): string | undefined => {
    if (id === undefined) return undefined;
    if (cfg.subject === 'identity.sub') return id.subject;
    if (cfg.subject === 'identity.consumer') return id.consumer?.id;
    const v = claim === undefined || !Object.hasOwn(id.claims, claim) ? undefined : id.claims[claim];
    return typeof v === 'string' ? v : undefined;
  };

  const attribute = (name: string, values: readonly string[], format = ATTRNAME_FORMAT): string =>
    values.length === 0
      ? ''
      : `<saml:Attribute Name="${escapeXmlAttribute(name)}" NameFormat="${format}">${values
          .map((v) => `<saml:AttributeValue>${escapeXmlText(v)}</saml:AttributeValue>`)
          .join('')}</saml:Attribute>`;

  const attributeStatement = (id: Identity | undefined): string => {
    if (id === undefined) return '';
    let out = '';
    if (attributes.has('groups')) out += attribute('groups', id.groups);
    if (attributes.has('scopes')) out += attribute('scopes', id.scopes);
    if (attributes.has('consumer') && id.consumer !== undefined) out += attribute('consumer', [id.consumer.id]);
    if (attributes.has('metadata') && id.consumer !== undefined)
      for (const [k, v] of Object.entries(id.consumer.metadata)) out += attribute(`metadata.${k}`, [String(v)], ATTRNAME_UNSPECIFIED);
    // SAML core §2.7.3: an AttributeStatement holds at least one Attribute.
    return out === '' ? '' : `<saml:AttributeStatement>${out}</saml:AttributeStatement>`;
  };

  /** Every identity value that goes into the assertion, checked against what XML can carry. */
  const representable = (f: AssertionFacts): boolean => {
    const id = f.identity;
    if (!isXmlText(f.nameId)) return false;
    if (id === undefined) return true;
    const values = [...id.groups, ...id.scopes];
    if (id.consumer !== undefined) {
      values.push(id.consumer.id);
      for (const [k, v] of Object.entries(id.consumer.metadata)) values.push(k, String(v));
    }
    return values.every(isXmlText);
  };

  const assertionXml = (f: AssertionFacts): string => {
    const issued = instant(f.now);
    const expires = instant(f.now + cfg.ttl);
    return (
      `<saml:Assertion xmlns:saml="${SAML_NS}" ID="${assertionId()}" Version="2.0" IssueInstant="${issued}">` +
      `<saml:Issuer>${issuer}</saml:Issuer>` +
      `<saml:Subject><saml:NameID Format="${nameIdFormat}">${escapeXmlText(f.nameId)}</saml:NameID>` +
      `<saml:SubjectConfirmation Method="${BEARER}"><saml:SubjectConfirmationData NotOnOrAfter="${expires}"/></saml:SubjectConfirmation></saml:Subject>` +
      `<saml:Conditions NotBefore="${issued}" NotOnOrAfter="${expires}"><saml:AudienceRestriction><saml:Audience>${audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
      `<saml:AuthnStatement AuthnInstant="${issued}"><saml:AuthnContext><saml:AuthnContextClassRef>${classRef}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
      attributeStatement(f.identity) +
      '</saml:Assertion>'
    );
  };

  /** The signed assertion, or undefined when signing failed (logged; never with the key). */
  const sign = (xml: string): string | undefined => {
    try {
      const sig = new SignedXml({ privateKey: key, publicCert: certPem, signatureAlgorithm: RSA_SHA256, canonicalizationAlgorithm: EXC_C14N });
      sig.addReference({ xpath: "/*[local-name(.)='Assertion']", transforms: [ENVELOPED, EXC_C14N], digestAlgorithm: SHA256 });
      // SAML core §5.4.1 / schema: ds:Signature follows saml:Issuer.
      sig.computeSignature(xml, { prefix: 'ds', location: { reference: "/*/*[local-name(.)='Issuer']", action: 'after' } });
      // xml-crypto writes NEL and LINE SEPARATOR raw; as references, XML 1.0 and 1.1 readers
      // (libxml2, xmldom) read the same character, so the digest holds for every verifier.
      return sig.getSignedXml().replace(/[\u0085\u2028]/g, (c) => (c === '\u2028' ? '&#x2028;' : '&#x85;'));
    } catch (err) {
      ctx.logger.error({ err: { name: (err as Error).name, message: (err as Error).message }, upstream: ctx.upstream }, 'signing a SAML assertion failed');
      return undefined;
    }
  };

  /** Build and sign the assertion for this request's identity, or refuse. */
  const mint = (req: OutboundRequest): string | Refusal => {
    const nameId = nameIdOf(req.identity);
    if (nameId === undefined || nameId === '')
      return outboundRefusal(
        'PTC_ERR_FORBIDDEN',
        `samlAssertion: the identity has no ${cfg.subject} to assert${req.identity === undefined ? ' (anonymous route)' : ''}`,
      );
    const facts: AssertionFacts = { nameId, identity: req.identity, now: now() };
    if (!representable(facts)) return outboundRefusal('PTC_ERR_UPSTREAM_CREDENTIAL', 'samlAssertion: an identity value has characters XML cannot carry');
    return sign(assertionXml(facts)) ?? outboundRefusal('PTC_ERR_UPSTREAM_CREDENTIAL', 'samlAssertion: signing failed');
  };

  if (cfg.placement === 'header') {
    return {
      type: 'samlAssertion',
      apply(req) {
        const signed = mint(req);
        if (typeof signed !== 'string') return signed;
        req.headers[header] = Buffer.from(signed, 'utf8').toString('base64');
        return undefined;
      },
    };
  }
  return {
    type: 'samlAssertion',
    async apply(req): Promise<OutboundResult> {
      const body = await req.body.read(max);
      if (!Buffer.isBuffer(body)) return body;
      const doc = parseSoapEnvelope(req.headers, body, 'samlAssertion (placement: wsse)');
      if ('code' in doc) return doc;
      const signed = mint(req);
      if (typeof signed !== 'string') return signed;
      req.body.replace(Buffer.from(setSecurityHeader(doc, signed, cfg.mustUnderstand), 'utf8'));
      return undefined;
    },
  };
}
