import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { Gateway } from '../../src/gateway.js';
import { ConfigError } from '../../src/config/load.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { captureLogger, startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/cli-process.js';
import { rawRequest } from '../helpers/raw.js';
import { metricValue, parseMetrics, scrape } from '../helpers/metrics.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

describe('admin listener', () => {
  let backend: TestBackend;
  let deadPort: number;
  let gw: TestGateway;
  before(async () => {
    backend = await startBackend();
    deadPort = await freePort(); // nothing listens there: the upstream refuses
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  echo: { targets: ["${backend.url}"] }
  dead: { targets: ["http://127.0.0.1:${deadPort}"] }
routes:
  - name: api
    match: { path: /api/** }
    upstream: echo
  - name: broken
    match: { path: /broken }
    upstream: dead
  - name: status
    match: { path: /status }
    respond: { status: 200, json: { ok: true } }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('answers /healthz and /readyz with 200', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await request(`${gw.adminUrl}${path}`);
      assert.equal(res.statusCode, 200, path);
      assert.equal(res.headers['content-type'], 'application/json');
      await res.body.dump();
    }
  });

  it('binds loopback only', () => {
    assert.match(gw.gw.addresses().admin ?? '', /^127\.0\.0\.1:\d+$/);
  });

  it('exposes the request, duration, upstream-error, connection and reload metrics with route labels', async () => {
    for (let i = 0; i < 3; i++) await (await request(`${gw.url}/api/m${i}`)).body.dump();
    await (await request(`${gw.url}/status`)).body.dump();
    await (await request(`${gw.url}/nowhere`)).body.dump();
    const broken = await request(`${gw.url}/broken`);
    assert.equal(broken.statusCode, 502);
    await broken.body.dump();

    const samples = await scrape(gw.adminUrl);
    assert.equal(metricValue(samples, 'portcullis_requests_total', { route: 'api', status_class: '2xx' }), 3);
    assert.equal(metricValue(samples, 'portcullis_requests_total', { route: 'status', status_class: '2xx' }), 1);
    assert.equal(metricValue(samples, 'portcullis_requests_total', { route: 'broken', status_class: '5xx' }), 1);
    assert.ok(metricValue(samples, 'portcullis_requests_total', { status_class: '4xx' }) >= 1, 'the 404 is counted');
    assert.equal(metricValue(samples, 'portcullis_request_duration_seconds_count', { route: 'api' }), 3);
    assert.equal(metricValue(samples, 'portcullis_upstream_errors_total', { upstream: 'dead', kind: 'refused' }), 1);
    assert.ok(
      samples.some((s) => s.name === 'portcullis_open_connections' && s.labels.listener !== undefined),
      'open connections by listener',
    );

    // Reloading the unchanged file is still a successful reload.
    assert.equal((await gw.gw.reload()).ok, true);
    const after = await scrape(gw.adminUrl);
    assert.equal(metricValue(after, 'portcullis_config_reloads_total', { result: 'success' }), 1);
    assert.equal(metricValue(after, 'portcullis_requests_total', { route: 'api', status_class: '2xx' }), 3, 'counters survive a reload');
  });

  it('never turns client-controlled values into label values', async () => {
    const marker = `zz${Math.random().toString(36).slice(2, 10)}`;
    const weird = [`/${marker}`, `/api/${marker}/%2e%2e/${marker}`, `/${marker}?route=${marker}`, `/api/..%2f${marker}`, `/${'a'.repeat(2000)}${marker}`];
    for (const path of weird) {
      const res = await request(`${gw.url}${path}`, {
        method: 'GET',
        headers: { 'x-route': marker, 'user-agent': marker, host: `${marker}.example`, 'x-forwarded-for': marker },
      });
      await res.body.dump();
    }
    for (const method of [`${marker.toUpperCase()}`, 'PURGE']) {
      await rawRequest(gw.port, `${method} /api/${marker} HTTP/1.1\r\nHost: ${marker}\r\nConnection: close\r\n\r\n`);
    }
    await rawRequest(gw.port, `GET /${marker} HTTP/9.9\r\nHost: x\r\n\r\n`);

    const res = await request(`${gw.adminUrl}/metrics`);
    const text = await res.body.text();
    assert.ok(!text.includes(marker), 'no client value appears anywhere in /metrics');
    const samples = parseMetrics(text);
    const routes = new Set(samples.filter((s) => s.name.startsWith('portcullis_request')).map((s) => s.labels.route));
    for (const r of routes) assert.ok(['api', 'broken', 'status', '(none)'].includes(r as string), `unexpected route label ${r}`);
    const classes = new Set(samples.filter((s) => s.name === 'portcullis_requests_total').map((s) => s.labels.status_class));
    for (const c of classes) assert.match(c as string, /^[1-5]xx$/);
  });

  it('is not reachable on the client listener', async () => {
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      const res = await request(`${gw.url}${path}`);
      assert.equal(res.statusCode, 404, path);
      assert.equal(res.headers['content-type'], 'application/problem+json');
      const body = (await res.body.json()) as { code: string };
      assert.equal(body.code, 'PTC_ERR_NO_ROUTE');
    }
  });

  it('answers 404 problem+json for unknown admin paths and 405 for writes', async () => {
    const res = await request(`${gw.adminUrl}/config`);
    assert.equal(res.statusCode, 404);
    assert.equal(res.headers['content-type'], 'application/problem+json');
    await res.body.dump();
    const post = await request(`${gw.adminUrl}/metrics`, { method: 'POST', body: 'x' });
    assert.equal(post.statusCode, 405);
    await post.body.dump();
  });
});

describe('admin address', () => {
  it('refuses a non-loopback admin address unless admin.allowRemote', async () => {
    const dir = tempDir();
    const file = join(dir, 'portcullis.yaml');
    writeFileSync(
      file,
      `listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "0.0.0.0:0" }
routes:
  - name: s
    match: { path: /s }
    respond: { status: 200 }
`,
    );
    const logs: Record<string, unknown>[] = [];
    await assert.rejects(Gateway.start({ file, logger: captureLogger(logs) }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(
        err.problems.map((p) => `${p.line} ${p.path}: ${p.reason}`),
        ['2 admin.address: the admin listener must bind a loopback address unless admin.allowRemote is true'],
      );
      return true;
    });
  });
});
