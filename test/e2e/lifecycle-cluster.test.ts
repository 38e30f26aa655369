import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { tempDir } from '../helpers/gateway.js';
import { eventually, freePort, killAll, spawnCli } from '../helpers/cli-process.js';
import { metricValue, scrape } from '../helpers/metrics.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('portcullis start --workers 2', () => {
  let backend: TestBackend;
  after(async () => {
    await killAll();
    await backend?.close();
  });

  it('serves from both workers, aggregates metrics on the primary admin, and stops on SIGTERM', async () => {
    backend = await startBackend();
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = join(tempDir('ptc-cluster-'), 'portcullis.yaml');
    writeFileSync(
      file,
      `listeners: [{ address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${adminPort}" }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - name: api
    match: { path: /api/** }
    upstream: echo
  - name: version
    match: { path: /version }
    respond: { status: 200, body: "one" }
`,
    );
    const cli = spawnCli(['start', '-c', file, '--workers', '2']);
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    await eventually(async () => (await fetch(`${adminUrl}/readyz`)).status === 200, 20_000, 'cluster ready');

    const sent = 24;
    for (let i = 0; i < sent; i++) {
      // A new connection each time, so the primary hands them to the workers in turn.
      const res = await fetch(`http://127.0.0.1:${port}/api/${i}`, { headers: { connection: 'close' } });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    }
    const workerPids = new Set(cli.logs.filter((l) => l.msg === 'request').map((l) => l.pid as number));
    assert.equal(workerPids.size, 2, 'both workers served requests');
    assert.ok(!workerPids.has(cli.child.pid as number), 'the primary does not serve client requests');

    const samples = await scrape(adminUrl);
    assert.equal(metricValue(samples, 'portcullis_requests_total', { route: 'api', status_class: '2xx' }), sent, 'the counter sums every worker');
    assert.equal(metricValue(samples, 'portcullis_request_duration_seconds_count', { route: 'api' }), sent);

    // SIGHUP on the primary reloads every worker.
    writeFileSync(file, readFileSync(file, 'utf8').replace('body: "one"', 'body: "two"'));
    cli.child.kill('SIGHUP');
    await eventually(() => cli.logs.filter((l) => l.msg === 'config reloaded').length === 2, 5_000, 'both workers reloaded');
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/version`, { headers: { connection: 'close' } });
      assert.equal(await res.text(), 'two');
    }
    assert.equal(metricValue(await scrape(adminUrl), 'portcullis_config_reloads_total', { result: 'success' }), 2);

    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    const { code } = await cli.exited;
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 10_000);
    await eventually(() => [...workerPids].every((pid) => !alive(pid)), 3_000, 'workers are gone');
    await assert.rejects(fetch(`http://127.0.0.1:${port}/api/x`), 'the listener is closed');
    await assert.rejects(fetch(`${adminUrl}/healthz`), 'the admin listener is closed');
  });
});
