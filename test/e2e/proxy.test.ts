import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

describe('proxying', () => {
  let backend: TestBackend;
  let gw: TestGateway;
  before(async () => {
    backend = await startBackend();
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - name: api
    match: { path: /api/** }
    upstream: echo
    stripPrefix: /api
  - name: status
    match: { path: /status }
    respond: { status: 200, json: { ok: true } }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('forwards to the upstream with the prefix stripped and forwarding headers set', async () => {
    const res = await request(`${gw.url}/api/orders/42?x=1`, { headers: { 'x-forwarded-for': '6.6.6.6' } });
    assert.equal(res.statusCode, 200);
    const body = (await res.body.json()) as { url: string; headers: Record<string, string> };
    assert.equal(body.url, '/orders/42?x=1');
    assert.equal(body.headers['x-forwarded-for'], '127.0.0.1', 'a client-sent X-Forwarded-For from an untrusted peer is replaced');
    assert.equal(body.headers['x-forwarded-proto'], 'http');
    assert.match(body.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(res.headers['x-request-id'], body.headers['x-request-id']);
  });

  it('answers static routes without an upstream', async () => {
    const res = await request(`${gw.url}/status`);
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await res.body.json(), { ok: true });
  });

  it('answers 404 problem+json for an unknown path', async () => {
    const res = await request(`${gw.url}/nope`);
    assert.equal(res.statusCode, 404);
    assert.equal(res.headers['content-type'], 'application/problem+json');
    const body = (await res.body.json()) as Record<string, unknown>;
    assert.equal(body.code, 'PTC_ERR_NO_ROUTE');
    assert.equal(body.requestId, res.headers['x-request-id']);
  });
});
