// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${secret:…} references are part of the config under test
/**
 * Outbound `httpSignature` (RFC 9421), end to end: one upstream per algorithm, keys generated at test
 * time and kept in the secret store. The backend rebuilds the signature base from what it received
 * (its own small verifier below, not the gateway's code), verifies the signature with the public
 * key, and checks that content-digest is the sha-256 of the body it got.
 */
import assert from 'node:assert/strict';
import { createHash, constants, generateKeyPairSync, type KeyObject, randomBytes, timingSafeEqual, createHmac, verify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { parseMasterKey, SecretStore } from '../../src/secrets/store.js';
import { type ReceivedRequest, startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

const PASSPHRASE = `pp-${randomBytes(12).toString('hex')}`;
const HMAC_SECRET = randomBytes(32);

type Alg = 'ed25519' | 'ecdsa-p256-sha256' | 'rsa-pss-sha512' | 'rsa-v1_5-sha256' | 'hmac-sha256';
const ALGS: readonly Alg[] = ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-sha512', 'rsa-v1_5-sha256', 'hmac-sha256'];

interface Verified {
  readonly ok: boolean;
  readonly components: readonly string[];
  readonly params: string;
  readonly why?: string;
}

/** The backend side: parse Signature-Input / Signature, rebuild the RFC 9421 §2.5 base, verify. */
function verifyReceived(got: Pick<ReceivedRequest, 'method' | 'url' | 'headers'>, label: string, alg: Alg, key: KeyObject | Buffer): Verified {
  const input = String(got.headers['signature-input'] ?? '');
  const sigField = String(got.headers.signature ?? '');
  const m = new RegExp(`^${label}=(\\((.*?)\\)(;.*)?)$`).exec(input);
  const s = new RegExp(`^${label}=:([A-Za-z0-9+/=]+):$`).exec(sigField);
  if (m === null || s === null) return { ok: false, components: [], params: '', why: 'no signature' };
  const components = [...(m[2] as string).matchAll(/"([^"]+)"/g)].map((x) => x[1] as string);
  const url = new URL(got.url, 'http://backend');
  const value = (c: string): string => {
    switch (c) {
      case '@method':
        return got.method;
      case '@authority':
        return String(got.headers.host);
      case '@path':
        return url.pathname;
      case '@query':
        return url.search === '' ? '?' : url.search;
      default:
        return String(got.headers[c]).trim();
    }
  };
  const base = Buffer.from([...components.map((c) => `"${c}": ${value(c)}`), `"@signature-params": ${m[1]}`].join('\n'));
  const sig = Buffer.from(s[1] as string, 'base64');
  let ok: boolean;
  switch (alg) {
    case 'ed25519':
      ok = verify(null, base, key as KeyObject, sig);
      break;
    case 'ecdsa-p256-sha256':
      ok = verify('sha256', base, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' }, sig);
      break;
    case 'rsa-pss-sha512':
      ok = verify('sha512', base, { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }, sig);
      break;
    case 'rsa-v1_5-sha256':
      ok = verify('sha256', base, key as KeyObject, sig);
      break;
    case 'hmac-sha256': {
      const mac = createHmac('sha256', key as Buffer)
        .update(base)
        .digest();
      ok = mac.length === sig.length && timingSafeEqual(mac, sig);
      break;
    }
  }
  return { ok, components, params: m[3] ?? '' };
}

function digestOf(body: Buffer): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

describe('outbound httpSignature', () => {
  let backend: TestBackend;
  let gw: TestGateway;
  const publicKeys = new Map<Alg, KeyObject | Buffer>();
  const privatePems: string[] = [];
  const raw: string[] = [];

  before(async () => {
    const dir = tempDir('ptc-httpsig-');
    const store = SecretStore.create(join(dir, 'portcullis.secrets'), parseMasterKey(PASSPHRASE));
    const pairs: Record<Exclude<Alg, 'hmac-sha256'>, ReturnType<typeof generateKeyPairSync>> = {
      ed25519: generateKeyPairSync('ed25519'),
      'ecdsa-p256-sha256': generateKeyPairSync('ec', { namedCurve: 'P-256' }),
      'rsa-pss-sha512': generateKeyPairSync('rsa', { modulusLength: 2048 }),
      'rsa-v1_5-sha256': generateKeyPairSync('rsa', { modulusLength: 2048 }),
    };
    for (const [alg, pair] of Object.entries(pairs) as [Alg, ReturnType<typeof generateKeyPairSync>][]) {
      const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      privatePems.push(pem);
      store.set(`sig-${alg}`, pem);
      publicKeys.set(alg, pair.publicKey as KeyObject);
    }
    // The HMAC secret as a JWK (kty oct), one of the documented forms.
    store.set('sig-hmac-sha256', JSON.stringify({ kty: 'oct', k: HMAC_SECRET.toString('base64url') }));
    publicKeys.set('hmac-sha256', HMAC_SECRET);
    store.save();
    writeFileSync(join(dir, 'master.key'), PASSPHRASE);
    backend = await startBackend();
    const upstreams = ALGS.map(
      (alg) => `
  ${alg}:
    targets: ["${backend.url}"]
    auth: { type: httpSignature, keyId: key-${alg}, key: "\${secret:sig-${alg}}", algorithm: ${alg} }`,
    ).join('');
    gw = await startGateway(
      `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
limits: { maxBodyBytes: 64kb }
secrets: { file: portcullis.secrets, keyFile: master.key }
upstreams:${upstreams}
  based:
    targets: ["${backend.url}/api/v1/"]
    auth: { type: httpSignature, keyId: based, key: "\${secret:sig-ed25519}", algorithm: ed25519, label: gw, expires: 2m, nonce: true, includeAlg: true }
  fixed:
    targets: ["${backend.url}"]
    auth: { type: httpSignature, keyId: fixed, key: "\${secret:sig-ed25519}", algorithm: ed25519,
            components: ["@method", "@target-uri", "content-type", "content-digest"], maxBodyBytes: 1kb }
routes:
${ALGS.map((alg) => `  - { name: r-${alg}, match: { path: /${alg}/** }, upstream: ${alg}, stripPrefix: /${alg} }`).join('\n')}
  - { name: based, match: { path: /based/** }, upstream: based, stripPrefix: /based }
  - { name: fixed, match: { path: /fixed/** }, upstream: fixed, stripPrefix: /fixed }
`,
      { dir, raw },
    );
  });
  after(async () => {
    await gw?.close();
    await backend?.close();
  });

  async function send(
    path: string,
    options: { method?: string; headers?: Record<string, string>; body?: string | Buffer | Readable } = {},
  ): Promise<{ status: number; code: unknown; got: ReceivedRequest | undefined }> {
    const n = backend.received.length;
    const res = await request(`${gw.url}${path}`, { method: (options.method ?? 'GET') as 'GET', headers: options.headers ?? {}, body: options.body ?? null });
    const text = await res.body.text();
    const code = res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(text) as { code: unknown }).code : undefined;
    return { status: res.statusCode, code, got: backend.received.length > n ? backend.received[backend.received.length - 1] : undefined };
  }

  for (const alg of ALGS) {
    it(`${alg}: the backend verifies the signature with the public key; content-digest matches the body it received`, async () => {
      const body = JSON.stringify({ order: 42, note: 'é' });
      const { status, got } = await send(`/${alg}/orders/7?expand=items&x=%20y`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(status, 200);
      assert.ok(got);
      assert.equal(got.body.toString('utf8'), body);
      assert.equal(got.headers['content-digest'], digestOf(got.body));
      const v = verifyReceived(got, 'sig1', alg, publicKeys.get(alg) as KeyObject);
      assert.ok(v.ok, v.why ?? 'signature does not verify');
      assert.deepEqual(v.components, ['@method', '@authority', '@path', '@query', 'content-digest']);
      assert.match(v.params, new RegExp(`^;created=\\d+;keyid="key-${alg}"$`));
      const created = Number(/created=(\d+)/.exec(v.params)?.[1]);
      assert.ok(Math.abs(created - Date.now() / 1000) < 5);
      // Negative controls: another method, path or body does not verify.
      assert.equal(verifyReceived({ ...got, method: 'PUT' }, 'sig1', alg, publicKeys.get(alg) as KeyObject).ok, false);
      assert.equal(verifyReceived({ ...got, url: '/orders/8?expand=items&x=%20y' }, 'sig1', alg, publicKeys.get(alg) as KeyObject).ok, false);
      assert.equal(
        verifyReceived({ ...got, headers: { ...got.headers, 'content-digest': digestOf(Buffer.from('{}')) } }, 'sig1', alg, publicKeys.get(alg) as KeyObject)
          .ok,
        false,
      );
    });
  }

  it('a request without a body or query covers @method @authority @path only, and gets no content-digest', async () => {
    const { got } = await send('/ed25519/status');
    assert.ok(got);
    assert.equal(got.headers['content-digest'], undefined);
    const v = verifyReceived(got, 'sig1', 'ed25519', publicKeys.get('ed25519') as KeyObject);
    assert.ok(v.ok);
    assert.deepEqual(v.components, ['@method', '@authority', '@path']);
  });

  it('a client-sent Signature, Signature-Input and Content-Digest are replaced, never passed along', async () => {
    const { got } = await send('/ed25519/x', {
      method: 'POST',
      headers: {
        signature: 'sig1=:AAAA:, other=:BBBB:',
        'signature-input': 'sig1=();created=1',
        'content-digest': 'sha-256=:AAAA:',
        'content-type': 'text/plain',
      },
      body: 'hello',
    });
    assert.ok(got);
    assert.ok(verifyReceived(got, 'sig1', 'ed25519', publicKeys.get('ed25519') as KeyObject).ok);
    assert.ok(!String(got.headers.signature).includes('other='));
    assert.equal(got.headers['content-digest'], digestOf(Buffer.from('hello')));
  });

  it('a chunked body is buffered, digested and framed with Content-Length', async () => {
    const { status, got } = await send('/rsa-pss-sha512/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Readable.from([Buffer.from('part-1;'), Buffer.from('part-2')]),
    });
    assert.equal(status, 200);
    assert.ok(got);
    assert.equal(got.headers['content-length'], String(got.body.length));
    assert.equal(got.headers['transfer-encoding'], undefined);
    assert.equal(got.headers['content-digest'], digestOf(Buffer.from('part-1;part-2')));
    assert.ok(verifyReceived(got, 'sig1', 'rsa-pss-sha512', publicKeys.get('rsa-pss-sha512') as KeyObject).ok);
  });

  it('@path is the path the backend receives, with the target base path; label, expires, alg and nonce as configured', async () => {
    const { got } = await send('/based/items?id=3');
    assert.ok(got);
    assert.equal(got.url, '/api/v1/items?id=3');
    const v = verifyReceived(got, 'gw', 'ed25519', publicKeys.get('ed25519') as KeyObject);
    assert.ok(v.ok, v.why);
    const created = Number(/created=(\d+)/.exec(v.params)?.[1]);
    assert.match(v.params, /^;created=\d+;expires=\d+;keyid="based";alg="ed25519";nonce="[\w-]{22}"$/);
    assert.equal(Number(/expires=(\d+)/.exec(v.params)?.[1]) - created, 120);
    const again = await send('/based/items?id=3');
    assert.notEqual(/nonce="([^"]+)"/.exec(String(again.got?.headers['signature-input']))?.[1], /nonce="([^"]+)"/.exec(v.params)?.[1]);
  });

  it('configured components: @target-uri and content-type; a request lacking a covered field is 400 and not sent', async () => {
    const ok = await send('/fixed/a?b=1', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(ok.status, 200);
    const input = String(ok.got?.headers['signature-input']);
    assert.match(input, /^sig1=\("@method" "@target-uri" "content-type" "content-digest"\);created=\d+;keyid="fixed"$/);
    const missing = await send('/fixed/a', { method: 'POST', body: 'x' });
    assert.equal(missing.status, 400);
    assert.equal(missing.code, 'PTC_ERR_BAD_REQUEST');
    assert.equal(missing.got, undefined);
  });

  it('a body over maxBodyBytes is 413, nothing sent', async () => {
    const r = await send('/fixed/a', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(2048) });
    assert.equal(r.status, 413);
    assert.equal(r.code, 'PTC_ERR_BODY_TOO_LARGE');
    assert.equal(r.got, undefined);
  });

  it('counts applied credentials per upstream; no log line holds a private key', async () => {
    const samples = await scrape(gw.adminUrl);
    for (const alg of ALGS)
      assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: alg, type: 'httpSignature', result: 'applied' }) >= 1);
    assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'fixed', type: 'httpSignature', result: 'refused' }) >= 2);
    const secrets = [...privatePems.map((p) => p.split('\n')[1] as string), HMAC_SECRET.toString('base64url')];
    for (const line of raw) for (const s of secrets) assert.ok(!line.includes(s), 'a log line holds a key');
  });
});
