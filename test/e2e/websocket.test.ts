/**
 * WebSocket upgrades on a route that allows them: the handshake is proxied, frames flow both ways,
 * and an upgrade is no way around the edge — authentication runs exactly as for a plain request.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { buildRuntime } from '../../src/core/runtime.js';
import { ConfigError } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { rawRequest } from '../helpers/raw.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const KEY = 'ptc_test_websocket_key_0123456789';
const DIGEST = `sha256:${(await import('node:crypto')).createHash('sha256').update(KEY).digest('hex')}`;

interface Seen {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** A backend that accepts upgrades and echoes the first bytes it receives after the 101. */
async function startWsBackend(): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = http.createServer((_req, res) => res.end('plain'));
  server.on('upgrade', (req, socket) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: test\r\n\r\n');
    socket.on('data', (d: Buffer) => socket.end(Buffer.concat([Buffer.from('echo:'), d])));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const upgradeRequest = (extra: string[] = []) =>
  [
    'GET /ws/chat HTTP/1.1',
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ...extra,
    '',
    'hello',
  ].join('\r\n');

describe('WebSocket upgrades', () => {
  let backend: Awaited<ReturnType<typeof startWsBackend>>;
  let gw: TestGateway;
  before(async () => {
    backend = await startWsBackend();
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
authenticators:
  key: { type: apiKey, header: x-api-key }
consumers:
  - { id: acme, apiKeys: ["${DIGEST}"] }
upstreams:
  ws: { targets: ["http://127.0.0.1:${backend.port}"] }
routes:
  - name: ws
    match: { path: /ws/** }
    upstream: ws
    websocket: true
    authenticate: [key]
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('refuses an unauthenticated upgrade with 401 and a challenge; the backend sees nothing', async () => {
    const before = backend.seen.length;
    const res = await rawRequest(gw.port, upgradeRequest());
    assert.equal(res.status, 401);
    assert.equal(res.headers['content-type'], 'application/problem+json');
    assert.match(res.headers['www-authenticate'] ?? '', /APIKey/);
    assert.equal(JSON.parse(res.body).code, 'PTC_ERR_UNAUTHENTICATED');
    assert.equal(backend.seen.length, before);
  });

  it('refuses an upgrade with a wrong key', async () => {
    const before = backend.seen.length;
    const res = await rawRequest(gw.port, upgradeRequest(['x-api-key: wrong']));
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.body).code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.equal(backend.seen.length, before);
  });

  it('proxies an authenticated upgrade: identity set, key and forged identity stripped, bytes flow', async () => {
    const res = await rawRequest(gw.port, upgradeRequest([`x-api-key: ${KEY}`, 'X-Consumer-Id: evil']));
    assert.equal(res.status, 101);
    assert.match(res.raw, /echo:hello/);
    const seen = backend.seen.at(-1);
    assert.ok(seen);
    assert.equal(seen.headers['x-consumer-id'], 'acme');
    assert.equal(seen.headers['x-api-key'], undefined);
    assert.equal(seen.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
    const line = gw.accessLog().find((l) => l.upgrade === 'websocket' && l.status === 101);
    assert.ok(line, 'the upgrade has an access-log line');
    assert.equal(line.consumer, 'acme');
    assert.equal(line.clientIp, '127.0.0.1');
    assert.equal(line.route, 'ws');
  });

  it('logs and counts a refused upgrade like any refusal', async () => {
    await rawRequest(gw.port, upgradeRequest(['x-api-key: wrong']));
    const line = gw.accessLog().findLast((l) => l.upgrade === 'websocket' && l.status === 401);
    assert.ok(line);
    assert.equal(line.code, 'PTC_ERR_INVALID_CREDENTIALS');
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    assert.match(metrics, /portcullis_refusals_total\{code="PTC_ERR_INVALID_CREDENTIALS"\} [1-9]/);
  });
});

describe('WebSocket routes and outbound credentials', () => {
  it('are a config error together: an upgrade would skip the credential', async () => {
    const yaml = `
listeners: [{ address: "127.0.0.1:0" }]
upstreams:
  ws: { targets: ["http://127.0.0.1:9"], auth: { type: apiKey, in: header, name: x-backend-key, value: "k" } }
routes:
  - { name: ws, match: { path: /ws/** }, upstream: ws, websocket: true }
`;
    const loaded = parseConfig(yaml, 'gw.yaml', '/tmp');
    await assert.rejects(buildRuntime(loaded, createMetrics(), createLogger('silent')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /gw\.yaml:6 routes\[0\]\.websocket: outbound credentials/);
      return true;
    });
  });
});
