import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateApiKey } from '../../src/cli/keys.js';
import { assertNoSecret, lastReceived, observable, send } from '../helpers/auth.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

describe('API-key authenticator', () => {
  let backend: TestBackend;
  let gw: TestGateway;
  const acme = generateApiKey();
  const bob = generateApiKey();
  const unknown = generateApiKey().key;

  before(async () => {
    backend = await startBackend();
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  be: { targets: ["${backend.url}"] }
authenticators:
  partner-key: { type: apiKey, header: x-api-key }
  query-key: { type: apiKey, query: api_key }
consumers:
  - id: acme
    groups: [partners, gold]
    apiKeys: [${acme.digest}]
    metadata: { region: eu }
  - id: bob
    apiKeys: [${bob.digest}]
routes:
  - { name: orders, match: { path: /orders/** }, authenticate: [partner-key], upstream: be }
  - { name: search, match: { path: /search }, authenticate: [query-key], upstream: be }
  - { name: passthrough, match: { path: /pass/** }, authenticate: [partner-key], upstream: be, forwardCredentials: true }
  - { name: open, match: { path: /open }, upstream: be }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('a valid key in the header reaches the backend as identity headers, the key itself stripped', async () => {
    const n = backend.received.length;
    const r = await send(`${gw.url}/orders/1`, { 'x-api-key': acme.key });
    assert.equal(r.status, 200);
    const got = lastReceived(backend, n);
    assert.ok(got);
    assert.equal(got['x-consumer-id'], 'acme');
    assert.equal(got['x-auth-subject'], 'acme');
    assert.equal(got['x-auth-groups'], 'partners,gold');
    assert.equal(got['x-auth-method'], 'apiKey');
    assert.equal(got['x-auth-scopes'], undefined);
    assert.equal(got['x-api-key'], undefined);
  });

  it('two consumers are told apart by their keys', async () => {
    const n = backend.received.length;
    assert.equal((await send(`${gw.url}/orders/1`, { 'x-api-key': bob.key })).status, 200);
    assert.equal(lastReceived(backend, n)?.['x-consumer-id'], 'bob');
  });

  it('an unknown key is 401 PTC_ERR_INVALID_CREDENTIALS with the APIKey challenge, and nothing reaches the backend', async () => {
    const n = backend.received.length;
    const r = await send(`${gw.url}/orders/1`, { 'x-api-key': unknown });
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.equal(r.headers['www-authenticate'], 'APIKey realm="portcullis", header="x-api-key"');
    assert.equal(backend.received.length, n);
  });

  it('no key is 401 PTC_ERR_UNAUTHENTICATED with the challenge', async () => {
    const r = await send(`${gw.url}/orders/1`);
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_UNAUTHENTICATED');
    assert.equal(r.headers['www-authenticate'], 'APIKey realm="portcullis", header="x-api-key"');
  });

  it('an empty or oversized key is rejected, never a 500', async () => {
    for (const key of ['', 'k'.repeat(600)]) {
      const r = await send(`${gw.url}/orders/1`, { 'x-api-key': key });
      assert.equal(r.status, 401, `key of ${key.length} chars`);
      assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
    }
  });

  it('a key in the query is accepted and removed from the upstream URL; other parameters keep their encoding', async () => {
    const n = backend.received.length;
    const r = await send(`${gw.url}/search?q=a%20b&api_key=${encodeURIComponent(acme.key)}&page=2`);
    assert.equal(r.status, 200);
    assert.equal(backend.received[n]?.url, '/search?q=a%20b&page=2');
    assert.equal(lastReceived(backend, n)?.['x-consumer-id'], 'acme');
    const bad = await send(`${gw.url}/search?api_key=nope`);
    assert.equal(bad.status, 401);
    assert.equal(bad.headers['www-authenticate'], 'APIKey realm="portcullis", query="api_key"');
  });

  it('forwardCredentials: true keeps the key for the backend', async () => {
    const n = backend.received.length;
    assert.equal((await send(`${gw.url}/pass/x`, { 'x-api-key': acme.key })).status, 200);
    assert.equal(lastReceived(backend, n)?.['x-api-key'], acme.key);
    assert.equal(lastReceived(backend, n)?.['x-consumer-id'], 'acme');
  });

  it('an anonymous route ignores keys and sends no identity', async () => {
    const n = backend.received.length;
    assert.equal((await send(`${gw.url}/open`, { 'x-api-key': acme.key })).status, 200);
    const got = lastReceived(backend, n);
    assert.equal(got?.['x-consumer-id'], undefined);
    assert.equal(got?.['x-auth-method'], undefined);
  });

  it('decisions are counted by authenticator, outcome and reason; the access log names the consumer', async () => {
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'partner-key', outcome: 'allowed' }) >= 2);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'partner-key', outcome: 'rejected', reason: 'unknown_key' }) >= 1);
    const lines = gw.accessLog();
    assert.ok(lines.some((l) => l.consumer === 'acme' && l.auth === 'apiKey' && l.status === 200));
    assert.ok(lines.some((l) => l.code === 'PTC_ERR_INVALID_CREDENTIALS' && l.consumer === undefined));
  });

  it('no key or digest appears in any log line or metric', async () => {
    assertNoSecret(await observable(gw), [acme.key, bob.key, unknown, acme.digest.slice(7), bob.digest.slice(7)]);
  });
});
