import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import http2 from 'node:http2';
import { startGateway, tempDir } from '../helpers/gateway.js';
import { createCA, createLeaf } from '../helpers/pki.js';
import { eventually, freePort, killAll, type RunningCli, spawnCli } from '../helpers/cli-process.js';

function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

async function readyz(adminPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
  await res.arrayBuffer();
  return res.status;
}

/** Start `portcullis start` on free ports with a route /slow to `backend`, and wait until it serves. */
async function startCli(backend: TestBackend, drainTimeout: string): Promise<{ cli: RunningCli; port: number; adminPort: number }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(tempDir('ptc-drain-'), 'portcullis.yaml');
  writeFileSync(
    file,
    `listeners: [{ address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${adminPort}" }
limits: { drainTimeout: ${drainTimeout} }
upstreams:
  slow: { targets: ["${backend.url}"], timeouts: { response: 60s } }
routes:
  - name: slow
    match: { path: /slow }
    upstream: slow
`,
  );
  const cli = spawnCli(['start', '-c', file]);
  await cli.waitForLog((l) => l.msg === 'portcullis started', 15_000);
  return { cli, port, adminPort };
}

describe('SIGTERM drains gracefully', () => {
  const backends: TestBackend[] = [];
  const agent = new Agent({ connections: 10 });
  afterEach(killAll);
  after(async () => {
    await agent.close();
    for (const b of backends) await b.close();
  });

  it('lets an in-flight request finish, refuses new connections, reports not-ready, and exits 0', async () => {
    const backend = await startBackend((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('finished');
      }, 1_500);
    });
    backends.push(backend);
    const { cli, port, adminPort } = await startCli(backend, '10s');
    assert.equal(await readyz(adminPort), 200);

    const inflight = request(`http://127.0.0.1:${port}/slow`, { dispatcher: agent });
    await eventually(() => backend.received.length === 1, 5_000, 'the request reached the backend');
    const t0 = Date.now();
    cli.child.kill('SIGTERM');

    await eventually(async () => (await readyz(adminPort)) === 503, 1_000, '/readyz 503 while draining');
    await eventually(async () => (await connectOutcome(port)) === 'ECONNREFUSED', 1_000, 'new connections refused');
    assert.equal(backend.received.length, 1);

    const res = await inflight;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'finished');

    const { code, signal } = await cli.exited;
    assert.equal(signal, null);
    assert.equal(code, 0);
    const took = Date.now() - t0;
    assert.ok(took < 5_000, `exited ${took}ms after SIGTERM; the request needed ~1.5s and the bound is 10s`);
    assert.ok(
      cli.logs.some((l) => l.msg === 'draining'),
      'logs that it is draining',
    );
  });

  it('cuts a request that outlives drainTimeout and still exits 0 within the bound', async () => {
    const backend = await startBackend(() => {
      // Never answers: only the drain bound can end this request.
    });
    backends.push(backend);
    const { cli, port } = await startCli(backend, '600ms');
    const inflight = request(`http://127.0.0.1:${port}/slow`, { dispatcher: agent }).then(
      (r) => `status ${r.statusCode}`,
      (err: Error) => `failed: ${err.message}`,
    );
    await eventually(() => backend.received.length === 1, 5_000, 'the request reached the backend');
    const t0 = Date.now();
    cli.child.kill('SIGTERM');

    const outcome = await inflight;
    const cutAfter = Date.now() - t0;
    assert.match(outcome, /^failed: /, 'the client sees its request cut, not a made-up response');
    assert.ok(cutAfter >= 500, `cut after ${cutAfter}ms, not before the bound`);

    const { code } = await cli.exited;
    const took = Date.now() - t0;
    assert.equal(code, 0);
    assert.ok(took < 4_000, `exited ${took}ms after SIGTERM with a 600ms bound`);
  });
});

describe('draining an HTTP/2 listener', () => {
  it('finishes an in-flight HTTP/2 stream and refuses new connections', async () => {
    const dir = tempDir('ptc-drain-h2-');
    const ca = createCA(dir);
    const leaf = createLeaf(dir, ca, { cn: 'drain', san: ['IP:127.0.0.1'] });
    const backend = await startBackend((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('h2 finished');
      }, 700);
    });
    const gw = await startGateway(
      `listeners: [{ address: "127.0.0.1:0", tls: { cert: ${leaf.cert}, key: ${leaf.key} } }]
admin: { address: "127.0.0.1:0" }
upstreams: { slow: { targets: ["${backend.url}"] } }
routes: [{ name: slow, match: { path: /slow }, upstream: slow }]
`,
      { dir },
    );
    const session = http2.connect(gw.url, { ca: ca.certPem });
    try {
      const reply = new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/slow' });
        let status = 0;
        let body = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
      });
      await eventually(() => backend.received.length === 1, 5_000, 'the request reached the backend');
      const closing = gw.close(5_000);
      await eventually(async () => (await fetch(`${gw.adminUrl}/readyz`)).status === 503, 1_000, '/readyz 503 while draining');
      assert.equal(await connectOutcome(gw.port), 'ECONNREFUSED');
      assert.deepEqual(await reply, { status: 200, body: 'h2 finished' });
      await closing;
    } finally {
      session.destroy();
      await gw.close();
      await backend.close();
    }
  });
});
