// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${secret:…} references are part of the config under test
/**
 * Outbound `samlAssertion`, end to end: authenticated clients (HS256 JWTs, so the subject and groups
 * can be anything a token may carry) call SOAP services through the gateway; a recording backend
 * receives the envelope, and the assertion in wsse:Security is verified by an independent verifier,
 * `xmlsec1 --verify`, against the configured certificate. Tampering breaks it; identity values stay
 * escaped text; non-XML and DTD-carrying bodies are refused before anything reaches the backend.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Document, DOMParser, type Element } from '@xmldom/xmldom';
import { SignJWT } from 'jose';
import { request } from 'undici';
import { parseMasterKey, SecretStore } from '../../src/secrets/store.js';
import { startBackend, type ReceivedRequest, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

const SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const WSSE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/';
const SOAP12 = 'http://www.w3.org/2003/05/soap-envelope';
const HMAC_SECRET = randomBytes(32).toString('base64url');
const PASSPHRASE = `pp-${randomBytes(12).toString('hex')}`;

const ENVELOPE11 = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="${SOAP11}"><soap:Body><m:GetQuote xmlns:m="urn:quotes"><m:Symbol a="x&amp;y">ACME &amp; Co &lt;1&gt;</m:Symbol><!-- keep me --><m:Note><![CDATA[raw <text>]]></m:Note></m:GetQuote></soap:Body></soap:Envelope>`;

/** A self-signed RSA 2048 certificate and key, made with openssl at test time. */
function rsaCertificate(dir: string, name: string): { cert: string; key: string; keyPem: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return { cert, key, keyPem: readFileSync(key, 'utf8') };
}

/** `xmlsec1 --verify` of `xml` against `cert`: the independent verifier. */
function xmlsecVerify(dir: string, xml: string, cert: string): { ok: boolean; output: string } {
  const file = join(dir, `verify-${randomBytes(6).toString('hex')}.xml`);
  writeFileSync(file, xml);
  const r = spawnSync('xmlsec1', ['--verify', '--pubkey-cert-pem', cert, '--id-attr:ID', `${SAML}:Assertion`, file], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

function parse(xml: string): Document {
  return new DOMParser({
    onError: (level, msg) => {
      throw new Error(`${level}: ${msg}`);
    },
  }).parseFromString(xml, 'text/xml');
}

function all(doc: Document | Element, ns: string, local: string): Element[] {
  return Array.from(doc.getElementsByTagNameNS(ns, local));
}

function one(doc: Document | Element, ns: string, local: string): Element {
  const found = all(doc, ns, local);
  assert.equal(found.length, 1, `exactly one ${local}`);
  return found[0] as Element;
}

describe('outbound samlAssertion', () => {
  let backend: TestBackend;
  let gw: TestGateway;
  let dir: string;
  let signing: { cert: string; key: string; keyPem: string };
  let other: { cert: string; key: string; keyPem: string };
  const raw: string[] = [];

  before(async () => {
    dir = tempDir('ptc-saml-');
    signing = rsaCertificate(dir, 'saml');
    other = rsaCertificate(dir, 'other');
    const store = SecretStore.create(join(dir, 'portcullis.secrets'), parseMasterKey(PASSPHRASE));
    store.set('saml-key', signing.keyPem);
    store.save();
    writeFileSync(join(dir, 'master.key'), PASSPHRASE);
    backend = await startBackend();
    gw = await startGateway(
      `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
limits: { maxBodyBytes: 64kb }
secrets: { file: portcullis.secrets, keyFile: master.key }
authenticators:
  tokens: { type: jwt, issuer: test-issuer, audience: soap-api, secret: "${HMAC_SECRET}", algorithms: [HS256], consumerClaim: client_id }
consumers:
  - { id: acme, groups: [partners], metadata: { tier: gold, note: "</saml:AttributeValue><evil/>&amp;" } }
upstreams:
  legacy:
    targets: ["${backend.url}/soap"]
    auth: { type: samlAssertion, issuer: https://gw.example, audience: urn:legacy, subject: identity.sub, ttl: 5m,
            signingKey: "\${secret:saml-key}", certificate: ./saml.pem, placement: wsse }
  by-consumer:
    targets: ["${backend.url}"]
    auth: { type: samlAssertion, issuer: https://gw.example, audience: urn:legacy, subject: identity.consumer,
            signingKey: "\${secret:saml-key}", certificate: saml.pem, attributes: [groups] }
  in-header:
    targets: ["${backend.url}"]
    auth: { type: samlAssertion, issuer: https://gw.example, audience: urn:rest, signingKey: "\${secret:saml-key}",
            certificate: saml.pem, placement: header }
routes:
  - { name: soap, match: { path: /soap/** }, upstream: legacy, stripPrefix: /soap, authenticate: [tokens] }
  - { name: consumer, match: { path: /consumer/** }, upstream: by-consumer, stripPrefix: /consumer, authenticate: [tokens] }
  - { name: header, match: { path: /header/** }, upstream: in-header, stripPrefix: /header, authenticate: [tokens] }
  - { name: anonymous, match: { path: /anon/** }, upstream: legacy, stripPrefix: /anon }
`,
      { dir, raw },
    );
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  const token = async (sub: string, claims: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('test-issuer')
      .setAudience('soap-api')
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(new TextEncoder().encode(HMAC_SECRET));
  };

  async function post(
    path: string,
    body: string | Buffer | undefined,
    options: { sub?: string; claims?: Record<string, unknown>; contentType?: string; method?: string } = {},
  ): Promise<{ status: number; code: unknown; got: ReceivedRequest | undefined }> {
    const n = backend.received.length;
    const headers: Record<string, string> = { authorization: `Bearer ${await token(options.sub ?? 'alice', options.claims)}` };
    if (options.contentType !== undefined) headers['content-type'] = options.contentType;
    const res = await request(`${gw.url}${path}`, { method: (options.method ?? 'POST') as 'POST', headers, body: body ?? null });
    const text = await res.body.text();
    const code = res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(text) as { code: unknown }).code : undefined;
    return { status: res.statusCode, code, got: backend.received.length > n ? backend.received[backend.received.length - 1] : undefined };
  }

  describe('placement: wsse', () => {
    it('puts a signed assertion in wsse:Security of a SOAP 1.1 envelope; xmlsec1 verifies it with the configured certificate', async () => {
      const t0 = Date.now();
      const { status, got } = await post('/soap/quotes', ENVELOPE11, { contentType: 'text/xml; charset=utf-8' });
      assert.equal(status, 200);
      assert.ok(got);
      assert.equal(got.url, '/soap/quotes');
      assert.equal(got.headers['content-length'], String(got.body.length));
      const xml = got.body.toString('utf8');
      const verdict = xmlsecVerify(dir, xml, signing.cert);
      assert.ok(verdict.ok, verdict.output);

      const doc = parse(xml);
      const envelope = doc.documentElement as Element;
      const header = envelope.firstChild as Element;
      assert.equal(header.localName, 'Header', 'the Header was created as the first child');
      assert.equal(header.namespaceURI, SOAP11);
      const security = one(doc, WSSE, 'Security');
      assert.equal(security.parentNode, header);
      assert.equal(security.getAttributeNS(SOAP11, 'mustUnderstand'), '1');
      const assertion = one(doc, SAML, 'Assertion');
      assert.equal(assertion.parentNode, security);
      assert.match(assertion.getAttribute('ID') ?? '', /^[A-Za-z_][\w.-]{20,}$/);
      assert.equal(assertion.getAttribute('Version'), '2.0');
      const issued = Date.parse(assertion.getAttribute('IssueInstant') ?? '');
      assert.ok(issued >= t0 - 1000 && issued <= Date.now(), 'IssueInstant is now');
      assert.equal(one(assertion, SAML, 'Issuer').textContent, 'https://gw.example');
      assert.equal(one(assertion, SAML, 'NameID').textContent, 'alice');
      assert.equal(one(assertion, SAML, 'SubjectConfirmation').getAttribute('Method'), 'urn:oasis:names:tc:SAML:2.0:cm:bearer');
      const conditions = one(assertion, SAML, 'Conditions');
      const ttl = Date.parse(conditions.getAttribute('NotOnOrAfter') ?? '') - Date.parse(conditions.getAttribute('NotBefore') ?? '');
      assert.equal(ttl, 5 * 60_000);
      assert.equal(one(assertion, SAML, 'SubjectConfirmationData').getAttribute('NotOnOrAfter'), conditions.getAttribute('NotOnOrAfter'));
      assert.equal(one(conditions, SAML, 'Audience').textContent, 'urn:legacy');
      assert.ok(one(assertion, SAML, 'AuthnStatement').getAttribute('AuthnInstant'));
      assert.ok(one(assertion, SAML, 'AuthnContextClassRef').textContent);
      // The signature: enveloped, exclusive C14N, RSA-SHA256, over the assertion ID, with the certificate.
      const signature = one(assertion, DSIG, 'Signature');
      assert.equal(signature.parentNode, assertion);
      assert.equal((signature.previousSibling as Element).localName, 'Issuer', 'ds:Signature follows saml:Issuer');
      assert.equal(one(signature, DSIG, 'SignatureMethod').getAttribute('Algorithm'), 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      assert.equal(one(signature, DSIG, 'CanonicalizationMethod').getAttribute('Algorithm'), 'http://www.w3.org/2001/10/xml-exc-c14n#');
      assert.equal(one(signature, DSIG, 'Reference').getAttribute('URI'), `#${assertion.getAttribute('ID')}`);
      const transforms = all(signature, DSIG, 'Transform').map((t) => t.getAttribute('Algorithm'));
      assert.deepEqual(transforms, ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#']);
      const pemBody = readFileSync(signing.cert, 'utf8').replace(/-----[^-]+-----|\s/g, '');
      assert.equal(one(signature, DSIG, 'X509Certificate').textContent?.replace(/\s/g, ''), pemBody);
      // The client's body is otherwise what it sent (text, attributes, comment, CDATA).
      assert.ok(xml.includes('<soap:Body><m:GetQuote xmlns:m="urn:quotes"><m:Symbol a="x&amp;y">ACME &amp; Co &lt;1&gt;</m:Symbol><!-- keep me -->'));
      assert.ok(xml.includes('<m:Note><![CDATA[raw <text>]]></m:Note>'));
      assert.ok(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>'));
    });

    it('negative controls: a tampered value, or another certificate, fails xmlsec1', async () => {
      const { got } = await post('/soap/quotes', ENVELOPE11, { contentType: 'text/xml' });
      assert.ok(got);
      const xml = got.body.toString('utf8');
      assert.ok(xmlsecVerify(dir, xml, signing.cert).ok);
      assert.equal(xmlsecVerify(dir, xml.replace('>alice</saml:NameID>', '>mallory</saml:NameID>'), signing.cert).ok, false);
      assert.equal(xmlsecVerify(dir, xml.replace('<saml:Audience>urn:legacy<', '<saml:Audience>urn:other<'), signing.cert).ok, false);
      assert.equal(xmlsecVerify(dir, xml, other.cert).ok, false);
    });

    it('SOAP 1.2: an existing Header keeps its other blocks; a client-sent wsse:Security is replaced, not kept', async () => {
      const envelope = `<env:Envelope xmlns:env="${SOAP12}"><env:Header><t:Trace xmlns:t="urn:trace">abc</t:Trace><wsse:Security xmlns:wsse="${WSSE}"><wsse:UsernameToken><wsse:Username>client</wsse:Username></wsse:UsernameToken><saml:Assertion xmlns:saml="${SAML}" ID="_forged"/></wsse:Security></env:Header><env:Body><op xmlns="urn:x"/></env:Body></env:Envelope>`;
      const { status, got } = await post('/soap/op', envelope, { contentType: 'application/soap+xml; charset=utf-8; action="urn:op"' });
      assert.equal(status, 200);
      assert.ok(got);
      const xml = got.body.toString('utf8');
      assert.ok(xmlsecVerify(dir, xml, signing.cert).ok);
      const doc = parse(xml);
      const security = one(doc, WSSE, 'Security');
      assert.equal(security.getAttributeNS(SOAP12, 'mustUnderstand'), '1');
      assert.equal(all(doc, WSSE, 'UsernameToken').length, 0);
      assert.equal(one(doc, SAML, 'Assertion').getAttribute('ID') === '_forged', false);
      assert.equal(one(doc, 'urn:trace', 'Trace').textContent, 'abc');
      assert.equal(all(doc, SOAP12, 'Header').length, 1);
      assert.equal(got.headers['content-type'], 'application/soap+xml; charset=utf-8; action="urn:op"');
    });

    it('a default-namespace envelope gets a prefixed mustUnderstand', async () => {
      const envelope = `<Envelope xmlns="${SOAP11}"><Body><op xmlns="urn:x">1</op></Body></Envelope>`;
      const { status, got } = await post('/soap/op', envelope, { contentType: 'text/xml' });
      assert.equal(status, 200);
      assert.ok(got);
      const xml = got.body.toString('utf8');
      assert.ok(xmlsecVerify(dir, xml, signing.cert).ok);
      const doc = parse(xml);
      assert.equal(one(doc, SOAP11, 'Header').parentNode, doc.documentElement);
      assert.equal(one(doc, WSSE, 'Security').getAttributeNS(SOAP11, 'mustUnderstand'), '1');
    });

    it('injection through identity values stays escaped text: NameID equals the raw value, no element is added', async () => {
      const hostile = [
        '</saml:NameID><saml:Attribute Name="admin"><saml:AttributeValue>true</saml:AttributeValue></saml:Attribute><saml:NameID>',
        'x]]>y<![CDATA[z',
        '&xxe;&amp;&#x41;"\'<!DOCTYPE a>',
        'tab\there\u2028line\u0085nel',
      ];
      for (const sub of hostile) {
        const { status, got } = await post('/soap/q', ENVELOPE11, {
          sub,
          contentType: 'text/xml',
          claims: { groups: ['<evil/>', '"quoted" & </saml:AttributeValue>'], client_id: 'acme' },
        });
        assert.equal(status, 200, sub);
        assert.ok(got);
        const xml = got.body.toString('utf8');
        const verdict = xmlsecVerify(dir, xml, signing.cert);
        assert.ok(verdict.ok, `${sub}: ${verdict.output}`);
        const doc = parse(xml);
        assert.equal(one(doc, SAML, 'NameID').textContent, sub);
        const attributes = all(doc, SAML, 'Attribute');
        assert.deepEqual(
          attributes.map((a) => a.getAttribute('Name')),
          ['groups', 'consumer', 'metadata.tier', 'metadata.note'],
        );
        const values = (name: string) =>
          all(attributes.find((a) => a.getAttribute('Name') === name) as Element, SAML, 'AttributeValue').map((v) => v.textContent);
        assert.deepEqual(values('groups'), ['<evil/>', '"quoted" & </saml:AttributeValue>', 'partners']);
        assert.deepEqual(values('metadata.note'), ['</saml:AttributeValue><evil/>&amp;']);
        assert.equal(all(doc, '*', 'evil').length, 0);
        assert.equal(all(doc, SAML, 'Assertion').length, 1);
      }
    });

    it('subject: identity.consumer asserts the consumer id; attributes lists what is carried; a fresh assertion per request', async () => {
      const a = await post('/consumer/q', ENVELOPE11, { sub: 'svc-1', contentType: 'text/xml', claims: { client_id: 'acme', groups: ['g1'] } });
      const b = await post('/consumer/q', ENVELOPE11, { sub: 'svc-1', contentType: 'text/xml', claims: { client_id: 'acme', groups: ['g1'] } });
      assert.ok(a.got && b.got);
      const da = parse(a.got.body.toString('utf8'));
      const db = parse(b.got.body.toString('utf8'));
      assert.equal(one(da, SAML, 'NameID').textContent, 'acme');
      assert.deepEqual(
        all(da, SAML, 'Attribute').map((x) => x.getAttribute('Name')),
        ['groups'],
      );
      assert.notEqual(one(da, SAML, 'Assertion').getAttribute('ID'), one(db, SAML, 'Assertion').getAttribute('ID'));
    });

    it('an identity without the selected subject (no consumer) is 403, nothing sent', async () => {
      const { status, code, got } = await post('/consumer/q', ENVELOPE11, { sub: 'svc-1', contentType: 'text/xml' });
      assert.equal(status, 403);
      assert.equal(code, 'PTC_ERR_FORBIDDEN');
      assert.equal(got, undefined);
    });

    it('an anonymous route has no identity to assert: 403', async () => {
      const n = backend.received.length;
      const res = await request(`${gw.url}/anon/q`, { method: 'POST', headers: { 'content-type': 'text/xml' }, body: ENVELOPE11 });
      assert.equal(res.statusCode, 403);
      await res.body.dump();
      assert.equal(backend.received.length, n);
    });

    it('an identity value XML cannot carry (a control character) is refused, never sent raw', async () => {
      const { status, code, got } = await post('/soap/q', ENVELOPE11, { sub: 'bell\u0007', contentType: 'text/xml' });
      assert.equal(status, 502);
      assert.equal(code, 'PTC_ERR_UPSTREAM_CREDENTIAL');
      assert.equal(got, undefined);
    });

    const refusals: { name: string; body: string | undefined; type?: string; status: number; code: string }[] = [
      { name: 'a JSON body', body: '{"a":1}', type: 'application/json', status: 415, code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE' },
      { name: 'no Content-Type', body: ENVELOPE11, status: 415, code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE' },
      { name: 'no body', body: undefined, type: 'text/xml', status: 415, code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE' },
      { name: 'XML that is not an envelope', body: '<a xmlns="urn:x"/>', type: 'text/xml', status: 415, code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE' },
      {
        name: 'malformed XML',
        body: `<soap:Envelope xmlns:soap="${SOAP11}"><soap:Body>`,
        type: 'text/xml',
        status: 415,
        code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE',
      },
      {
        name: 'an undeclared entity',
        body: `<soap:Envelope xmlns:soap="${SOAP11}"><soap:Body>&xxe;</soap:Body></soap:Envelope>`,
        type: 'text/xml',
        status: 415,
        code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE',
      },
      { name: 'a Latin-1 charset', body: ENVELOPE11, type: 'text/xml; charset=iso-8859-1', status: 415, code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE' },
      {
        name: 'an XML declaration of another encoding',
        body: ENVELOPE11.replace('UTF-8', 'ISO-8859-1'),
        type: 'text/xml',
        status: 415,
        code: 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE',
      },
      {
        name: 'an external-entity DOCTYPE (XXE)',
        body: `<?xml version="1.0"?><!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="${SOAP11}"><soap:Body>&xxe;</soap:Body></soap:Envelope>`,
        type: 'text/xml',
        status: 400,
        code: 'PTC_ERR_XML_DTD_FORBIDDEN',
      },
      {
        name: 'an entity-expansion DOCTYPE (billion laughs)',
        body: `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><soap:Envelope xmlns:soap="${SOAP11}"><soap:Body>&lol2;</soap:Body></soap:Envelope>`,
        type: 'application/soap+xml',
        status: 400,
        code: 'PTC_ERR_XML_DTD_FORBIDDEN',
      },
      { name: 'a lower-case doctype', body: `<!doctype x><x/>`, type: 'text/xml', status: 400, code: 'PTC_ERR_XML_DTD_FORBIDDEN' },
    ];
    for (const r of refusals) {
      it(`${r.name} is ${r.status} ${r.code}, and the backend receives nothing`, async () => {
        const options: { contentType?: string } = r.type === undefined ? {} : { contentType: r.type };
        const { status, code, got } = await post('/soap/q', r.body, options);
        assert.equal(status, r.status);
        assert.equal(code, r.code);
        assert.equal(got, undefined);
      });
    }

    it('a body over limits.maxBodyBytes is 413', async () => {
      const big = ENVELOPE11.replace('ACME', 'A'.repeat(70 * 1024));
      const { status, code, got } = await post('/soap/q', big, { contentType: 'text/xml' });
      assert.equal(status, 413);
      assert.equal(code, 'PTC_ERR_BODY_TOO_LARGE');
      assert.equal(got, undefined);
    });
  });

  describe('placement: header', () => {
    it('sends the signed assertion base64 in X-SAML-Assertion and leaves the body alone', async () => {
      const { status, got } = await post('/header/items', '{"a":1}', { sub: 'bob', contentType: 'application/json' });
      assert.equal(status, 200);
      assert.ok(got);
      assert.equal(got.body.toString('utf8'), '{"a":1}');
      const encoded = got.headers['x-saml-assertion'];
      assert.equal(typeof encoded, 'string');
      const xml = Buffer.from(encoded as string, 'base64').toString('utf8');
      const verdict = xmlsecVerify(dir, xml, signing.cert);
      assert.ok(verdict.ok, verdict.output);
      const doc = parse(xml);
      assert.equal(doc.documentElement?.localName, 'Assertion');
      assert.equal(one(doc, SAML, 'NameID').textContent, 'bob');
      assert.equal(one(doc, SAML, 'Audience').textContent, 'urn:rest');
    });

    it('a client-sent X-SAML-Assertion is replaced', async () => {
      const n = backend.received.length;
      const res = await request(`${gw.url}/header/items`, {
        headers: { authorization: `Bearer ${await token('bob')}`, 'x-saml-assertion': 'Zm9yZ2Vk' },
      });
      await res.body.dump();
      const got = backend.received[n];
      assert.ok(got);
      assert.notEqual(got.headers['x-saml-assertion'], 'Zm9yZ2Vk');
      assert.equal(got.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === 'x-saml-assertion').length, 1);
    });
  });

  it('counts applied and refused credentials; no log line holds the signing key', async () => {
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'legacy', type: 'samlAssertion', result: 'applied' }) >= 5);
    assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'legacy', type: 'samlAssertion', result: 'refused' }) >= 5);
    const keyBody = signing.keyPem.split('\n')[1] as string;
    for (const line of raw) assert.ok(!line.includes(keyBody), 'a log line holds the key');
  });

  describe('config', () => {
    const base = (auth: string) => `
listeners: [{ address: "127.0.0.1:0" }]
upstreams:
  legacy:
    targets: ["http://127.0.0.1:9"]
    auth: ${auth}
routes:
  - { name: soap, match: { path: /soap/** }, upstream: legacy }
`;
    it('a missing certificate file is a config error naming the field', async () => {
      const d = tempDir('ptc-saml-cfg-');
      writeFileSync(join(d, 'k.pem'), signing.keyPem);
      await assert.rejects(
        startGateway(base('{ type: samlAssertion, issuer: a, audience: b, signingKey: "${file:k.pem}", certificate: missing.pem }'), { dir: d }),
        /certificate.*cannot read missing\.pem/s,
      );
    });

    it('a certificate of another key is a config error', async () => {
      const d = tempDir('ptc-saml-cfg-');
      writeFileSync(join(d, 'k.pem'), signing.keyPem);
      writeFileSync(join(d, 'other.pem'), readFileSync(other.cert));
      await assert.rejects(
        startGateway(base('{ type: samlAssertion, issuer: a, audience: b, signingKey: "${file:k.pem}", certificate: other.pem }'), { dir: d }),
        /does not match signingKey/,
      );
    });

    it('headerName with placement: wsse is refused by the schema', async () => {
      await assert.rejects(
        startGateway(base('{ type: samlAssertion, issuer: a, audience: b, signingKey: x, certificate: c.pem, headerName: X-A }')),
        /headerName is only for placement: header/,
      );
    });
  });
});
