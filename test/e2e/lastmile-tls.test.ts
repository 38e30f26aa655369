/**
 * Verified TLS and mutual TLS to a real nginx backend: the chain and name are always verified, a
 * failed handshake is 502 PTC_ERR_UPSTREAM_TLS with nothing sent (nginx logs no request), pins,
 * client certificates rotated by a reload, certificate expiry metrics, and the loud insecure switch.
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, formatProblem } from '../../src/config/load.js';
import { pinOfCertificate } from '../../src/upstream/tls.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';
import { nginxSkip, startNginx, type TestNginx } from '../helpers/nginx.js';
import { type CertFiles, createCA, createLeaf, createSelfSigned } from '../helpers/pki.js';

const INSECURE = 'I understand this disables upstream authentication';

interface Reply {
  status: number;
  code: string | undefined;
  body: string;
  contentType: string | null;
}

async function get(gw: TestGateway, path = '/api/hello'): Promise<Reply> {
  const res = await fetch(`${gw.url}${path}`, { signal: AbortSignal.timeout(5_000) });
  const body = await res.text();
  const contentType = res.headers.get('content-type');
  const code = contentType === 'application/problem+json' ? (JSON.parse(body) as { code: string }).code : undefined;
  return { status: res.status, code, body, contentType };
}

/** A gateway proxying /api/** to one upstream `orders` with the given `tls:` block (YAML flow). */
function config(port: number, tls: string | undefined, extra = ''): string {
  return `
listeners: [{ address: "127.0.0.1:0"${extra} }]
admin: { address: "127.0.0.1:0" }
upstreams:
  orders:
    targets: ["https://127.0.0.1:${port}"]
${tls === undefined ? '' : `    tls: ${tls}\n`}routes:
  - name: api
    match: { path: /api/** }
    upstream: orders
    stripPrefix: /api
`;
}

describe('upstream TLS to nginx', { skip: nginxSkip() }, () => {
  let dir: string;
  let backendCA: CertFiles;
  let clientCA: CertFiles;
  let server: CertFiles;
  let client: CertFiles;
  let mtls: TestNginx;
  const started: { close(): Promise<void> }[] = [];
  const gateway = async (yaml: string) => {
    const gw = await startGateway(yaml, { dir });
    started.push(gw);
    return gw;
  };
  const nginx = async (cert: CertFiles, clientCa?: string) => {
    const n = await startNginx(dir, { cert: cert.cert, key: cert.key, ...(clientCa !== undefined ? { clientCa } : {}) });
    started.push(n);
    return n;
  };

  before(async () => {
    dir = tempDir('ptc-lastmile-tls-');
    backendCA = createCA(dir, 'Backend CA');
    clientCA = createCA(dir, 'Gateway Client CA');
    server = createLeaf(dir, backendCA, { cn: 'orders.internal', san: ['DNS:orders.internal'] });
    client = createLeaf(dir, clientCA, { cn: 'gateway-1', usage: 'client', san: ['DNS:gateway-1'] });
    mtls = await nginx(server, clientCA.cert);
  });

  after(async () => {
    await Promise.all(started.map((s) => s.close()));
  });

  const mtlsBlock = (c: CertFiles = client) => `{ ca: "${backendCA.cert}", servername: orders.internal, cert: "${c.cert}", key: "${c.key}" }`;

  it('mutual TLS: nginx verifies the gateway client certificate and answers', async () => {
    const gw = await gateway(config(mtls.port, mtlsBlock()));
    const r = await get(gw);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /client=CN=gateway-1/);
    assert.match(mtls.accessLog().at(-1) ?? '', /^200 "GET \/hello HTTP\/1.1" "CN=gateway-1"$/);
  });

  it("without the gateway's client certificate nginx refuses the request; its 400 is relayed as the backend's answer", async () => {
    // nginx completes the handshake and answers 400 itself (ssl_verify_client on): that is an HTTP
    // response from the backend, so the gateway relays it like any other (docs/upstream-tls.md).
    const gw = await gateway(config(mtls.port, `{ ca: "${backendCA.cert}", servername: orders.internal }`));
    const before = mtls.accessLog().length;
    const r = await get(gw);
    assert.equal(r.status, 400);
    assert.match(r.body, /No required SSL certificate was sent/);
    assert.equal(r.code, undefined, 'not a gateway refusal');
    assert.match(mtls.accessLog().slice(before).join('\n'), /^400 "GET \/hello HTTP\/1.1" "-"$/);
  });

  describe('a backend certificate that does not verify → 502 PTC_ERR_UPSTREAM_TLS, nothing reaches the backend', () => {
    const cases: [string, () => CertFiles, (port: number) => string][] = [
      [
        'self-signed',
        () => createSelfSigned(dir, 'orders.internal', ['DNS:orders.internal']),
        () => `{ ca: "${backendCA.cert}", servername: orders.internal }`,
      ],
      [
        'a CA certificate used as a server certificate',
        () => createCA(dir, 'orders.internal as CA'),
        () => `{ ca: "${backendCA.cert}", servername: orders.internal }`,
      ],
      [
        'wrong host',
        () => createLeaf(dir, backendCA, { cn: 'other.internal', san: ['DNS:other.internal'] }),
        () => `{ ca: "${backendCA.cert}", servername: orders.internal }`,
      ],
      [
        'expired',
        () => createLeaf(dir, backendCA, { cn: 'orders-expired', san: ['DNS:orders.internal'], days: -1 }),
        () => `{ ca: "${backendCA.cert}", servername: orders.internal }`,
      ],
      ['signed by a CA the gateway does not trust (system roots by default)', () => server, () => '{ servername: orders.internal }'],
      ['IP target, certificate for a host name only (no servername)', () => server, () => `{ ca: "${backendCA.cert}" }`],
    ];
    for (const [name, cert, tls] of cases) {
      it(name, async () => {
        const n = await nginx(cert());
        const gw = await gateway(config(n.port, tls(n.port)));
        const r = await get(gw);
        assert.equal(r.status, 502, r.body);
        assert.equal(r.code, 'PTC_ERR_UPSTREAM_TLS');
        assert.deepEqual(n.accessLog(), [], 'the backend logged no request');
        const line = gw.accessLog().at(-1);
        assert.equal(line?.code, 'PTC_ERR_UPSTREAM_TLS');
        assert.match(String(line?.details), /^tls: /);
        const samples = await scrape(gw.adminUrl);
        assert.equal(metricValue(samples, 'portcullis_upstream_errors_total', { upstream: 'orders', kind: 'tls' }), 1);
      });
    }
  });

  it('SPKI pin: a match is served, a mismatch fails the handshake (502, nothing sent)', async () => {
    const good = pinOfCertificate(server.certPem);
    const gwOk = await gateway(config(mtls.port, mtlsBlock().replace(/ }$/, `, pin: ["${good}"] }`)));
    assert.equal((await get(gwOk)).status, 200);

    const wrong = pinOfCertificate(backendCA.certPem); // a real key, but not the server's
    const gwBad = await gateway(config(mtls.port, mtlsBlock().replace(/ }$/, `, pin: ["${wrong}"] }`)));
    const before = mtls.accessLog().length;
    const r = await get(gwBad);
    assert.equal(r.status, 502);
    assert.equal(r.code, 'PTC_ERR_UPSTREAM_TLS');
    assert.equal(mtls.accessLog().length, before, 'nginx logged no request');
    assert.match(String(gwBad.accessLog().at(-1)?.details), /PTC_TLS_PIN_MISMATCH/);
  });

  it('a reload picks up a rotated client certificate and key', async () => {
    const first = createLeaf(dir, clientCA, { cn: 'gateway-rot-1', usage: 'client', san: ['DNS:gateway'] });
    const second = createLeaf(dir, clientCA, { cn: 'gateway-rot-2', usage: 'client', san: ['DNS:gateway'] });
    const live = { cert: join(dir, 'live-client.pem'), key: join(dir, 'live-client-key.pem') };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const gw = await gateway(config(mtls.port, mtlsBlock({ ...first, ...live })));
    assert.match((await get(gw)).body, /CN=gateway-rot-1/);
    copyFileSync(second.cert, live.cert);
    copyFileSync(second.key, live.key);
    assert.match((await get(gw)).body, /CN=gateway-rot-1/, 'nothing changes before the reload');
    const result = await gw.gw.reload();
    assert.equal(result.ok, true);
    assert.match((await get(gw)).body, /CN=gateway-rot-2/);
  });

  it('days until expiry of every certificate as a metric, and a warning 14 days ahead', async () => {
    const listener = createLeaf(dir, backendCA, { cn: 'gateway-listener', san: ['IP:127.0.0.1'] });
    const gw = await gateway(config(mtls.port, mtlsBlock(), `, tls: { cert: "${listener.cert}", key: "${listener.key}" }`));
    const samples = await scrape(gw.adminUrl);
    const days = (kind: string, name: string) =>
      samples.find((s) => s.name === 'portcullis_certificate_expiry_days' && s.labels.kind === kind && s.labels.name === name)?.value;
    for (const [kind, name] of [
      ['listener', '127.0.0.1:0'],
      ['upstream-client', 'orders'],
      ['upstream-ca', 'orders'],
    ] as const) {
      const d = days(kind, name);
      assert.ok(d !== undefined && d > 1 && d <= 2.01, `${kind}/${name}: ${d}`);
    }
    const warnings = gw.logs.filter((l) => l.msg === 'certificate expires in less than 14 days');
    assert.deepEqual([...new Set(warnings.map((w) => w.kind))].sort(), ['listener', 'upstream-ca', 'upstream-client']);
  });

  it('a missing or unusable CA, certificate or key is a config error at its line', async () => {
    const problems = async (tls: string) => {
      try {
        const gw = await gateway(config(mtls.port, tls));
        await gw.close();
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems.map(formatProblem);
      }
      assert.fail('the config was accepted');
    };
    assert.match(
      (await problems(`{ ca: "${join(dir, 'absent.pem')}" }`)).join('\n'),
      /portcullis\.yaml:7 upstreams\.orders\.tls\.ca: cannot read .*absent\.pem \(ENOENT\)/,
    );
    assert.match((await problems(`{ cert: "${client.cert}", key: "${join(dir, 'absent-key.pem')}" }`)).join('\n'), /upstreams\.orders\.tls\.key: cannot read/);
    assert.match(
      (await problems(`{ cert: "${client.cert}", key: "${server.key}" }`)).join('\n'),
      /upstreams\.orders\.tls\.key: client certificate and key do not form a usable pair/,
    );
    assert.match((await problems(`{ ca: "${join(dir, 'nginx.conf')}" }`)).join('\n'), /tls\.ca: cannot read|is not a PEM file/);
  });

  it('tls on an http:// target is a config error', async () => {
    try {
      await gateway(config(mtls.port, '{ minVersion: TLSv1.3 }').replace('https://', 'http://'));
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /upstreams\.orders\.targets\[0\]: tls applies to https:\/\/ targets only/);
    }
  });

  it('insecureSkipVerify (the exact sentence) turns verification off and is logged at every load', async () => {
    const n = await nginx(createSelfSigned(dir, 'insecure.internal'));
    const gw = await gateway(config(n.port, `{ insecureSkipVerify: "${INSECURE}" }`));
    assert.equal((await get(gw)).status, 200);
    const loud = () => gw.logs.filter((l) => l.level === 'warn' && /UPSTREAM TLS VERIFICATION IS OFF/.test(String(l.msg))).length;
    assert.equal(loud(), 1);
    assert.equal((await gw.gw.reload()).ok, true);
    assert.equal(loud(), 2);
  });

  it('minVersion TLSv1.3 is enforced against a backend that speaks it', async () => {
    const gw = await gateway(config(mtls.port, mtlsBlock().replace(/ }$/, ', minVersion: TLSv1.3 }')));
    assert.equal((await get(gw)).status, 200);
  });
});
