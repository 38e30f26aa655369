/**
 * `store.redis`: a real redis-server on loopback shared by two gateway instances. One token
 * request serves both; a reload does not leak Redis connections; with Redis killed mid-test the
 * gateways keep serving on their local caches (fail-safe) and count the store failures.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startIdP, type TestIdP } from '../helpers/idp.js';
import { metricValue, scrape } from '../helpers/metrics.js';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;
// Under CI a missing redis-server is a failure (.ci/run installs it), never a skip.
const skip = !haveRedis && process.env.CI !== 'true' ? 'redis-server is not installed (apt-get install redis-server)' : false;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function startRedis(): Promise<{ port: number; proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ptc-redis-'));
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on('error', () => {}); // refused while redis-server starts: retried below
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return { port, proc, dir };
    } catch {
      probe.disconnect();
      await sleep(50);
    }
  }
  proc.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

describe('shared store: redis', { skip }, () => {
  let idp: TestIdP;
  let backend: TestBackend;
  let redis: { port: number; proc: ChildProcess; dir: string };
  let a: TestGateway;
  let b: TestGateway;
  let config: string;

  before(async () => {
    redis = await startRedis();
    idp = await startIdP({ resources: { 'urn:cc-shared': { audience: 'cc-shared' }, 'urn:cc-short': { audience: 'cc-short', ttl: 2 } } });
    process.env.PTC_TEST_CC_SECRET = idp.client.secret;
    backend = await startBackend();
    config = `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
log: { access: false }
store:
  redis: { url: "redis://127.0.0.1:${redis.port}", keyPrefix: "ptc-test:", timeout: 300ms }
upstreams:
  orders:
    targets: ["${backend.url}"]
    auth: { type: oauth2ClientCredentials, tokenUrl: "${idp.tokenEndpoint}", clientId: ${idp.client.id}, clientSecret: "\${env:PTC_TEST_CC_SECRET}", scope: orders:read, audience: "urn:cc-shared" }
  short:
    targets: ["${backend.url}"]
    auth: { type: oauth2ClientCredentials, tokenUrl: "${idp.tokenEndpoint}", clientId: ${idp.client.id}, clientSecret: "\${env:PTC_TEST_CC_SECRET}", scope: orders:read, audience: "urn:cc-short" }
routes:
  - { name: orders, match: { path: /orders/** }, upstream: orders, stripPrefix: /orders }
  - { name: short, match: { path: /short/** }, upstream: short, stripPrefix: /short }
`;
    a = await startGateway(config);
    b = await startGateway(config);
  });

  after(async () => {
    await a?.close();
    await b?.close();
    redis?.proc.kill('SIGKILL');
    await Promise.all([backend?.close(), idp?.close()]);
    if (redis !== undefined) rmSync(redis.dir, { recursive: true, force: true });
    delete process.env.PTC_TEST_CC_SECRET;
  });

  const send = async (gw: TestGateway, path: string): Promise<number> => {
    const res = await request(`${gw.url}${path}`);
    await res.body.dump();
    return res.statusCode;
  };

  it('two instances sharing the store make one token request in total', async () => {
    const before = idp.tokenRequests;
    const n = backend.received.length;
    const statuses = await Promise.all(Array.from({ length: 200 }, (_, i) => send(i % 2 === 0 ? a : b, `/orders/${i}`)));
    assert.ok(statuses.every((s) => s === 200));
    assert.equal(idp.tokenRequests - before, 1);
    assert.equal(new Set(backend.received.slice(n).map((r) => r.headers.authorization)).size, 1);
    const shared = metricValue(await scrape(a.adminUrl), 'portcullis_outbound_token_cache_total', { upstream: 'orders', result: 'shared' });
    const sharedB = metricValue(await scrape(b.adminUrl), 'portcullis_outbound_token_cache_total', { upstream: 'orders', result: 'shared' });
    assert.equal(shared + sharedB, 1, 'the instance that did not fetch read the token from Redis');
  });

  it('a reload closes the replaced Redis connection', async () => {
    const probe = new Redis({ port: redis.port, host: '127.0.0.1' });
    try {
      const clients = async () =>
        String(await probe.call('CLIENT', 'LIST'))
          .trim()
          .split('\n').length;
      const start = await clients();
      for (let i = 0; i < 3; i++) assert.equal((await a.gw.reload()).ok, true);
      let now = await clients();
      for (let i = 0; i < 40 && now !== start; i++) {
        await sleep(50);
        now = await clients();
      }
      assert.equal(now, start);
    } finally {
      probe.disconnect();
    }
  });

  it('with Redis killed, requests keep working on the local cache and the failures are counted', async () => {
    // Both instances hold the short-lived token (one fetched it, the other read it from Redis)…
    assert.deepEqual(await Promise.all([send(a, '/short/x'), send(b, '/short/y')]), [200, 200]);
    redis.proc.kill('SIGKILL');
    await new Promise((resolve) => redis.proc.once('exit', resolve));
    // …and must refresh it without Redis.
    const before = idp.tokenRequests;
    const statuses: number[] = [];
    const end = Date.now() + 2_500; // past the 2s token lifetime: both instances must refresh without Redis
    while (Date.now() < end) {
      statuses.push(...(await Promise.all([send(a, '/short/x'), send(b, '/short/y')])));
      await sleep(50);
    }
    assert.deepEqual([...new Set(statuses)], [200]);
    assert.ok(idp.tokenRequests - before >= 2, 'each instance fetched its own token');
    let fallbacks = 0;
    let errors = 0;
    for (const gw of [a, b]) {
      const m = await scrape(gw.adminUrl);
      fallbacks += metricValue(m, 'portcullis_outbound_token_cache_total', { upstream: 'short', result: 'fallback' });
      errors += metricValue(m, 'portcullis_state_store_errors_total', { backend: 'redis' });
    }
    assert.ok(fallbacks >= 2, `fallbacks: ${fallbacks}`);
    assert.ok(errors >= 2, `store errors: ${errors}`);
  });
});
