import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { generateApiKey } from '../../src/cli/keys.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { type CertFiles, createCA, createLeaf } from '../helpers/pki.js';

interface TlsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  code: string | undefined;
}

/** One HTTPS request on a fresh connection, optionally with a client certificate. */
function get(port: number, path: string, ca: string, client?: CertFiles, headers: Record<string, string> = {}): Promise<TlsReply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: 'localhost',
        ca,
        agent: false,
        headers,
        ...(client === undefined ? {} : { cert: client.certPem, key: client.keyPem }),
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => {
          const code = String(res.headers['content-type'] ?? '').includes('problem+json') ? (JSON.parse(body) as { code: string }).code : undefined;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, code });
        });
      },
    );
    req.on('error', reject);
    req.setTimeout(3_000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

describe('mTLS authenticator', () => {
  let dir: string;
  let ca: CertFiles;
  let acme: CertFiles;
  let spiffe: CertFiles;
  let stranger: CertFiles;
  let forged: CertFiles;
  let backend: TestBackend;
  let optional: TestGateway;
  let required: TestGateway;
  const key = generateApiKey();

  const config = (mode: string, http2: boolean) => `
listeners: [{ address: "127.0.0.1:0", tls: { cert: server.pem, key: server-key.pem, clientCa: ca.pem, clientCert: ${mode}, http2: ${http2} } }]
admin: { address: "127.0.0.1:0" }
upstreams:
  be: { targets: ["${backend.url}"] }
authenticators:
  partner-tls: { type: mtls }
  strict-tls: { type: mtls, requireConsumer: true }
  partner-key: { type: apiKey, header: x-api-key }
consumers:
  - { id: acme, groups: [partners], certificate: { subject: "CN=acme" } }
  - { id: svc, certificate: { uri: "spiffe://example.org/ns/prod/sa/svc" } }
  - { id: keyed, apiKeys: [${key.digest}] }
routes:
  - { name: tls, match: { path: /tls/** }, authenticate: [partner-tls], upstream: be }
  - { name: strict, match: { path: /strict/** }, authenticate: [strict-tls], upstream: be }
  - { name: either, match: { path: /either/** }, authenticate: [partner-key, partner-tls], upstream: be }
  - { name: both, match: { path: /both/** }, authenticate: { allOf: [partner-tls, partner-key] }, upstream: be }
`;

  before(async () => {
    dir = tempDir();
    ca = createCA(dir, 'ca');
    const server = createLeaf(dir, ca, { cn: 'server', san: ['DNS:localhost', 'IP:127.0.0.1'] });
    acme = createLeaf(dir, ca, { cn: 'acme', usage: 'client', san: ['DNS:acme.client'] });
    spiffe = createLeaf(dir, ca, { cn: 'workload', usage: 'client', san: ['URI:spiffe://example.org/ns/prod/sa/svc'] });
    stranger = createLeaf(dir, ca, { cn: 'stranger', usage: 'client', san: ['DNS:stranger.client'] });
    const rogueDir = tempDir();
    const rogue = createCA(rogueDir, 'rogue');
    forged = createLeaf(rogueDir, rogue, { cn: 'acme', usage: 'client', san: ['DNS:acme.client'] });
    const { copyFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    copyFileSync(ca.cert, join(dir, 'ca.pem'));
    copyFileSync(server.cert, join(dir, 'server.pem'));
    copyFileSync(server.key, join(dir, 'server-key.pem'));
    backend = await startBackend();
    optional = await startGateway(config('optional', false), { dir });
    const dir2 = tempDir();
    for (const f of ['ca.pem', 'server.pem', 'server-key.pem']) copyFileSync(join(dir, f), join(dir2, f));
    required = await startGateway(config('required', true), { dir: dir2 });
  });
  after(async () => {
    await optional.close();
    await required.close();
    await backend.close();
  });

  it('a verified certificate maps by subject DN to a consumer; the backend gets the identity', async () => {
    const n = backend.received.length;
    const r = await get(optional.port, '/tls/x', ca.certPem, acme);
    assert.equal(r.status, 200);
    const got = backend.received[n]?.headers;
    assert.equal(got?.['x-consumer-id'], 'acme');
    assert.equal(got?.['x-auth-subject'], 'CN=acme');
    assert.equal(got?.['x-auth-groups'], 'partners');
    assert.equal(got?.['x-auth-method'], 'mtls');
  });

  it('a SPIFFE URI SAN maps to a consumer', async () => {
    const n = backend.received.length;
    assert.equal((await get(optional.port, '/tls/x', ca.certPem, spiffe)).status, 200);
    assert.equal(backend.received[n]?.headers['x-consumer-id'], 'svc');
    assert.equal(backend.received[n]?.headers['x-auth-subject'], 'CN=workload');
  });

  it('a verified certificate without a consumer: identity by subject, or 401 with requireConsumer', async () => {
    const n = backend.received.length;
    assert.equal((await get(optional.port, '/tls/x', ca.certPem, stranger)).status, 200);
    assert.equal(backend.received[n]?.headers['x-consumer-id'], undefined);
    assert.equal(backend.received[n]?.headers['x-auth-subject'], 'CN=stranger');
    const strict = await get(optional.port, '/strict/x', ca.certPem, stranger);
    assert.equal(strict.status, 401);
    assert.equal(strict.code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.equal((await get(optional.port, '/strict/x', ca.certPem, acme)).status, 200);
  });

  it('optional listener: no certificate → 401 PTC_ERR_UNAUTHENTICATED', async () => {
    const r = await get(optional.port, '/tls/x', ca.certPem);
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_UNAUTHENTICATED');
  });

  it('optional listener: a certificate from an untrusted CA with the same CN authenticates nothing', async () => {
    const n = backend.received.length;
    const r = await get(optional.port, '/tls/x', ca.certPem, forged);
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_UNAUTHENTICATED');
    assert.equal(backend.received.length, n);
  });

  it('a client certificate alongside an API key is not ambiguous', async () => {
    const n = backend.received.length;
    const r = await get(optional.port, '/either/x', ca.certPem, stranger, { 'x-api-key': key.key });
    assert.equal(r.status, 200);
    assert.equal(backend.received[n]?.headers['x-consumer-id'], 'keyed');
    assert.equal(backend.received[n]?.headers['x-auth-method'], 'apiKey');
  });

  it('allOf [mtls, apiKey]: both needed; two different consumers are refused', async () => {
    const n = backend.received.length;
    const ok = await get(optional.port, '/both/x', ca.certPem, stranger, { 'x-api-key': key.key });
    assert.equal(ok.status, 200);
    assert.equal(backend.received[n]?.headers['x-auth-method'], 'mtls+apiKey');
    assert.equal(backend.received[n]?.headers['x-consumer-id'], 'keyed');
    assert.equal((await get(optional.port, '/both/x', ca.certPem, undefined, { 'x-api-key': key.key })).code, 'PTC_ERR_UNAUTHENTICATED');
    const clash = await get(optional.port, '/both/x', ca.certPem, acme, { 'x-api-key': key.key });
    assert.equal(clash.status, 401);
    assert.equal(clash.code, 'PTC_ERR_INVALID_CREDENTIALS');
  });

  it('required listener: a trusted certificate is served', async () => {
    const n = backend.received.length;
    assert.equal((await get(required.port, '/tls/x', ca.certPem, acme)).status, 200);
    assert.equal(backend.received[n]?.headers['x-consumer-id'], 'acme');
  });

  it('HTTP/2: the client certificate of the session authenticates its streams', async () => {
    const session = http2.connect(`https://localhost:${required.port}`, { ca: ca.certPem, cert: spiffe.certPem, key: spiffe.keyPem });
    try {
      const n = backend.received.length;
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/tls/h2' });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
      assert.equal(status, 200);
      assert.equal(backend.received[n]?.headers['x-consumer-id'], 'svc');
    } finally {
      session.close();
    }
  });

  it('required listener: no certificate or an untrusted one fails the handshake', async () => {
    const n = backend.received.length;
    await assert.rejects(get(required.port, '/tls/x', ca.certPem));
    await assert.rejects(get(required.port, '/tls/x', ca.certPem, forged));
    assert.equal(backend.received.length, n);
  });

  it('a reload from optional to required applies to new connections without rebinding', async () => {
    assert.equal((await get(optional.port, '/tls/x', ca.certPem)).status, 401);
    const port = optional.port;
    optional.write(config('required', false));
    const result = await optional.gw.reload();
    assert.ok(result.ok, result.ok ? '' : String(result.error));
    assert.equal(optional.gw.port(Object.keys(optional.gw.addresses().listeners)[0] as string), port);
    await assert.rejects(get(port, '/tls/x', ca.certPem));
    assert.equal((await get(port, '/tls/x', ca.certPem, acme)).status, 200);
  });
});

describe('listener clientCa errors', () => {
  it('a missing clientCa file is a config error naming the file and line', async () => {
    const { ConfigError, formatProblem } = await import('../../src/config/load.js');
    await assert.rejects(
      startGateway(`
listeners:
  - address: "127.0.0.1:0"
    tls: { cert: none.pem, key: none-key.pem, clientCa: missing-ca.pem }
routes: [{ name: r, match: { path: / }, respond: { status: 200 } }]
`),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const text = err.problems.map(formatProblem).join('\n');
        assert.match(text, /portcullis\.yaml:4 listeners\[0\]\.tls\.clientCa: cannot read missing-ca\.pem/);
        return true;
      },
    );
  });
});
