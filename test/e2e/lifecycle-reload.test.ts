import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

/** A backend that answers with its own name, so a test can tell where a request went. */
function named(name: string) {
  return startBackend((req, res) => {
    const out = JSON.stringify({ name, url: req.url });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
    res.end(out);
  });
}

const config = (target: string, extra = '') => `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  svc: { targets: ["${target}"] }
routes:
  - name: svc
    match: { path: /svc/** }
    upstream: svc
${extra}`;

async function whoAnswers(gw: TestGateway, path = '/svc/who'): Promise<string> {
  const res = await request(`${gw.url}${path}`);
  assert.equal(res.statusCode, 200);
  return ((await res.body.json()) as { name: string }).name;
}

describe('hot reload under continuous traffic', () => {
  let a: TestBackend;
  let b: TestBackend;
  let gw: TestGateway;
  before(async () => {
    a = await named('A');
    b = await named('B');
    gw = await startGateway(config(a.url));
  });
  after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });

  it('switches the route between two backends with zero failed requests', async () => {
    let stop = false;
    const failures: string[] = [];
    let sent = 0;
    const loop = async (n: number) => {
      // Bounded: stops when told to, or after 2000 requests per loop at most.
      for (let i = 0; i < 2000 && !stop; i++) {
        sent++;
        try {
          const res = await request(`${gw.url}/svc/loop/${n}/${i}`);
          const body = await res.body.text();
          if (res.statusCode !== 200) failures.push(`${res.statusCode} ${body}`);
        } catch (err) {
          failures.push(`${(err as Error).name}: ${(err as Error).message}`);
        }
      }
    };
    const loops = [0, 1, 2, 3, 4, 5].map(loop);
    try {
      for (let i = 0; i < 10; i++) {
        const [target, name] = i % 2 === 0 ? [b.url, 'B'] : [a.url, 'A'];
        gw.write(config(target));
        const r = await gw.gw.reload();
        assert.equal(r.ok, true, `reload ${i} failed: ${r.ok ? '' : r.error.message}`);
        // Right after the swap, every new request goes to the new backend.
        for (let k = 0; k < 3; k++) assert.equal(await whoAnswers(gw), name, `after reload ${i}`);
        await new Promise((r) => setTimeout(r, 30));
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    assert.deepEqual(failures, []);
    assert.ok(sent > 100, `only ${sent} requests were sent during the reloads`);
    assert.ok(a.received.length > 0 && b.received.length > 0, 'both backends served traffic');
    const samples = await scrape(gw.adminUrl);
    assert.equal(metricValue(samples, 'portcullis_config_reloads_total', { result: 'success' }), 10);
  });
});

describe('in-flight requests across a reload', () => {
  let slow: TestBackend;
  let gw: TestGateway;
  before(async () => {
    slow = await startBackend((req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`slow ${req.url}`);
      }, 800);
    });
    gw = await startGateway(config(slow.url, '  - name: slow\n    match: { path: /slow }\n    upstream: svc\n'));
  });
  after(async () => {
    await gw.close();
    await slow.close();
  });

  it('finishes a request on the old config after a reload removes its route', async () => {
    const inflight = request(`${gw.url}/slow`);
    for (let i = 0; i < 100 && slow.received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(slow.received.length, 1, 'the slow request reached the backend');

    gw.write(config(slow.url)); // no more /slow route
    const r = await gw.gw.reload();
    assert.equal(r.ok, true);
    const gone = await request(`${gw.url}/slow`);
    assert.equal(gone.statusCode, 404, 'a new request sees the new config');
    await gone.body.dump();

    const res = await inflight;
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'slow /slow');
  });
});

describe('invalid reloads are rejected and the old config keeps serving', () => {
  let a: TestBackend;
  let gw: TestGateway;
  before(async () => {
    a = await named('A');
    gw = await startGateway(config(a.url));
  });
  after(async () => {
    await gw.close();
    await a.close();
  });

  const cases: { name: string; yaml: (target: string) => string; problem: RegExp }[] = [
    {
      name: 'YAML syntax error',
      yaml: (t) => `${config(t)}\n  - name: broken\n    match: { path: /x\n`,
      problem: /portcullis\.yaml:\d+ \(root\): YAML: /,
    },
    {
      name: 'schema error',
      yaml: (t) => config(t).replace('upstream: svc', 'upstream: nowhere'),
      problem: /portcullis\.yaml:9 routes\[0\]\.upstream: unknown upstream "nowhere"/,
    },
    {
      name: 'missing certificate file',
      yaml: (t) => config(t).replace('"127.0.0.1:0" }]', '"127.0.0.1:0", tls: { cert: missing.pem, key: missing-key.pem } }]'),
      problem: /portcullis\.yaml:2 listeners\[0\]\.tls\.cert: cannot read missing\.pem \(ENOENT\)/,
    },
  ];

  for (const [i, c] of cases.entries()) {
    it(`rejects a ${c.name}`, async () => {
      const before = metricValue(await scrape(gw.adminUrl), 'portcullis_config_reloads_total', { result: 'failure' });
      const hash = gw.gw.runtime.hash;
      const logsBefore = gw.logs.length;
      gw.write(c.yaml(a.url));
      const r = await gw.gw.reload();
      assert.equal(r.ok, false);

      const line = gw.logs.slice(logsBefore).find((l) => String(l.msg).includes('config reload rejected'));
      assert.ok(line !== undefined, 'an error log line says the reload was rejected');
      assert.equal(line.level, 'error');
      const problems = line.problems as string[];
      assert.ok(
        problems.some((p) => c.problem.test(p)),
        `the log names the problem: ${JSON.stringify(problems)}`,
      );

      const after = metricValue(await scrape(gw.adminUrl), 'portcullis_config_reloads_total', { result: 'failure' });
      assert.equal(after, before + 1);
      assert.equal(after, i + 1);
      assert.equal(gw.gw.runtime.hash, hash, 'the config in force did not change');
      assert.equal(await whoAnswers(gw), 'A', 'the old config keeps serving');
    });
  }

  it('accepts a valid file again after rejected ones', async () => {
    gw.write(config(a.url).replace('/svc/**', '/other/**'));
    const r = await gw.gw.reload();
    assert.equal(r.ok, true);
    assert.equal(await whoAnswers(gw, '/other/x'), 'A');
    assert.equal((await request(`${gw.url}/svc/x`)).statusCode, 404);
  });
});
