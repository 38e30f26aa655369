import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { type CertFiles, createCA, createLeaf } from '../helpers/pki.js';

/** Open a TLS connection and report what was negotiated (or the error). */
function handshake(port: number, options: tls.ConnectionOptions): Promise<{ protocol: string | null; alpn: string | false; cn: unknown; serial: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options }, () => {
      const peer = socket.getPeerCertificate();
      const out = { protocol: socket.getProtocol(), alpn: socket.alpnProtocol ?? false, cn: peer.subject?.CN, serial: peer.serialNumber };
      socket.end();
      resolve(out);
    });
    socket.once('error', reject);
    socket.setTimeout(3_000, () => socket.destroy(new Error('handshake timed out')));
  });
}

interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** ms from request to each DATA chunk. */
  chunkTimes: number[];
}

function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    const chunkTimes: number[] = [];
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      chunkTimes.push(Date.now() - t0);
    });
    stream.on('end', () => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks), chunkTimes }));
    stream.on('error', reject);
    stream.setTimeout(5_000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    if (body !== undefined) stream.end(body);
  });
}

function connectH2(url: string, ca: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { ca });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

const tlsConfig = (backend: string, tlsExtra = '') => `
listeners: [{ address: "127.0.0.1:0", tls: { cert: server.pem, key: server-key.pem${tlsExtra} } }]
admin: { address: "127.0.0.1:0" }
upstreams:
  be: { targets: ["${backend}"] }
routes:
  - name: api
    match: { path: /api/** }
    upstream: be
    stripPrefix: /api
`;

describe('TLS listener', () => {
  let dir: string;
  let ca: CertFiles;
  let backend: TestBackend;
  let gw: TestGateway;
  let agent: Agent;

  before(async () => {
    dir = tempDir('ptc-tls-');
    ca = createCA(dir);
    const leaf = createLeaf(dir, ca, { cn: 'first', san: ['IP:127.0.0.1', 'DNS:localhost'] });
    copyFileSync(leaf.cert, join(dir, 'server.pem'));
    copyFileSync(leaf.key, join(dir, 'server-key.pem'));
    backend = await startBackend(async (req, res, body) => {
      if (req.url === '/stream') {
        // Five chunks, 150 ms apart: a client that sees the first early is being streamed to.
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (let i = 0; i < 5; i++) {
          res.write(`chunk-${i};`);
          await new Promise((r) => setTimeout(r, 150));
        }
        res.end();
        return;
      }
      const out = JSON.stringify({
        url: req.url,
        proto: req.headers['x-forwarded-proto'],
        bodyBytes: body.length,
        sum: body.reduce((s, b) => (s + b) % 65536, 0),
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
    gw = await startGateway(tlsConfig(backend.url), { dir });
    agent = new Agent({ connect: { ca: ca.certPem } });
  });
  after(async () => {
    await agent.close();
    await gw.close();
    await backend.close();
  });

  it('serves HTTPS over HTTP/1.1 to a client that trusts the CA', async () => {
    assert.match(gw.url, /^https:/);
    const res = await request(`${gw.url}/api/hello`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    const body = (await res.body.json()) as { url: string; proto: string };
    assert.equal(body.url, '/hello');
    assert.equal(body.proto, 'https');
  });

  it('fails the handshake for a client that does not trust the CA', async () => {
    await assert.rejects(handshake(gw.port, {}), /self[- ]signed|unable to (get|verify)/i);
  });

  it('negotiates h2 by ALPN and falls back to http/1.1', async () => {
    const h2 = await handshake(gw.port, { ca: ca.certPem, ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(h2.alpn, 'h2');
    const h1 = await handshake(gw.port, { ca: ca.certPem, ALPNProtocols: ['http/1.1'] });
    assert.equal(h1.alpn, 'http/1.1');
  });

  it('serves HTTP/2 with a request body and a streamed response', async () => {
    const session = await connectH2(gw.url, ca.certPem);
    try {
      const get = await h2Request(session, { ':method': 'GET', ':path': '/api/h2' });
      assert.equal(get.status, 200);
      assert.equal((JSON.parse(get.body.toString()) as { url: string }).url, '/h2');

      const payload = Buffer.alloc(300_000, 7);
      const post = await h2Request(session, { ':method': 'POST', ':path': '/api/upload', 'content-type': 'application/octet-stream' }, payload);
      assert.equal(post.status, 200);
      const echoed = JSON.parse(post.body.toString()) as { bodyBytes: number; sum: number };
      assert.equal(echoed.bodyBytes, payload.length);
      assert.equal(
        echoed.sum,
        payload.reduce((s, b) => (s + b) % 65536, 0),
      );

      const stream = await h2Request(session, { ':method': 'GET', ':path': '/api/stream' });
      assert.equal(stream.status, 200);
      assert.equal(stream.body.toString(), 'chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;');
      const first = stream.chunkTimes[0] ?? Infinity;
      const last = stream.chunkTimes.at(-1) ?? 0;
      assert.ok(last - first >= 400, `chunks arrived as the backend wrote them (first ${first}ms, last ${last}ms)`);
    } finally {
      session.close();
    }
  });

  it('refuses TLS 1.0 and 1.1 clients', async () => {
    // The client is allowed the old versions (and their ciphers), so the refusal is the server's.
    for (const maxVersion of ['TLSv1', 'TLSv1.1'] as const) {
      await assert.rejects(
        handshake(gw.port, { ca: ca.certPem, minVersion: 'TLSv1', maxVersion, ciphers: 'DEFAULT@SECLEVEL=0' }),
        (err: NodeJS.ErrnoException) => {
          // An alert sent by the server, not a client-side "no protocols available".
          assert.equal(err.code, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
          return true;
        },
      );
    }
    const ok = await handshake(gw.port, { ca: ca.certPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'DEFAULT@SECLEVEL=0' });
    assert.equal(ok.protocol, 'TLSv1.2', 'TLS 1.2 is accepted');
  });

  it('rotates the certificate on reload without dropping the listener or open sessions', async () => {
    const session = await connectH2(gw.url, ca.certPem);
    try {
      const before = await handshake(gw.port, { ca: ca.certPem });
      assert.equal(before.cn, 'first');
      const port = gw.port;

      const next = createLeaf(dir, ca, { cn: 'rotated', san: ['IP:127.0.0.1'] });
      copyFileSync(next.cert, join(dir, 'server.pem'));
      copyFileSync(next.key, join(dir, 'server-key.pem'));
      const r = await gw.gw.reload();
      assert.equal(r.ok, true);

      const afterHs = await handshake(gw.port, { ca: ca.certPem });
      assert.equal(afterHs.cn, 'rotated', 'new connections get the new certificate');
      assert.equal(gw.gw.port(Object.keys(gw.gw.addresses().listeners)[0] as string), port, 'same port');
      const res = await h2Request(session, { ':method': 'GET', ':path': '/api/still-open' });
      assert.equal(res.status, 200, 'a session opened before the reload keeps working');
    } finally {
      session.close();
    }
  });

  it('rejects a reload whose certificate is unreadable and keeps the current one', async () => {
    const current = await handshake(gw.port, { ca: ca.certPem });
    writeFileSync(join(dir, 'server.pem'), 'not a certificate\n');
    const r = await gw.gw.reload();
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error.message, /listeners\[0\]\.tls\.cert: server\.pem is not a PEM file/);
    const still = await handshake(gw.port, { ca: ca.certPem });
    assert.equal(still.serial, current.serial, 'the listener still serves the previous certificate');
    const res = await request(`${gw.url}/api/after-bad-reload`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  });

  it('rejects a reload whose key does not match the certificate', async () => {
    const other = createLeaf(dir, ca, { cn: 'other', san: ['IP:127.0.0.1'] });
    const good = createLeaf(dir, ca, { cn: 'good', san: ['IP:127.0.0.1'] });
    copyFileSync(good.cert, join(dir, 'server.pem'));
    copyFileSync(other.key, join(dir, 'server-key.pem'));
    const r = await gw.gw.reload();
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error.message, /listeners\[0\]\.tls: certificate and key do not form a usable pair/);
    assert.notEqual((await handshake(gw.port, { ca: ca.certPem })).cn, 'good');
  });
});

describe('TLS listener options', () => {
  let dir: string;
  let ca: CertFiles;
  let backend: TestBackend;
  let gw: TestGateway | undefined;

  before(async () => {
    dir = tempDir('ptc-tls-opt-');
    ca = createCA(dir);
    const leaf = createLeaf(dir, ca, { cn: 'opt', san: ['IP:127.0.0.1'] });
    copyFileSync(leaf.cert, join(dir, 'server.pem'));
    copyFileSync(leaf.key, join(dir, 'server-key.pem'));
    backend = await startBackend();
  });
  after(async () => {
    await gw?.close();
    await backend.close();
  });

  it('tls.http2: false offers only HTTP/1.1', async () => {
    gw = await startGateway(tlsConfig(backend.url, ', http2: false'), { dir });
    const hs = await handshake(gw.port, { ca: ca.certPem, ALPNProtocols: ['h2', 'http/1.1'] });
    assert.notEqual(hs.alpn, 'h2');
    const agent = new Agent({ connect: { ca: ca.certPem } });
    try {
      const res = await request(`${gw.url}/api/x`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    } finally {
      await agent.close();
    }
    await gw.close();
    gw = undefined;
  });

  it('tls.minVersion: TLSv1.3 refuses a TLS 1.2 client, also after a reload that sets it', async () => {
    gw = await startGateway(tlsConfig(backend.url), { dir });
    assert.equal((await handshake(gw.port, { ca: ca.certPem, maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
    gw.write(tlsConfig(backend.url, ', minVersion: TLSv1.3'));
    const r = await gw.gw.reload();
    assert.equal(r.ok, true);
    await assert.rejects(handshake(gw.port, { ca: ca.certPem, maxVersion: 'TLSv1.2' }), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
    assert.equal((await handshake(gw.port, { ca: ca.certPem })).protocol, 'TLSv1.3');
    await gw.close();
    gw = undefined;
  });
});
