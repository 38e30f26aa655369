import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { generateApiKey } from '../../src/cli/keys.js';
import { lastReceived, send } from '../helpers/auth.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { freePort } from '../helpers/cli-process.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

/** A real auth service on loopback: decides by the Authorization / Cookie it was shown, records every call. */
async function startAuthService() {
  const calls: http.IncomingHttpHeaders[] = [];
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    calls.push(req.headers);
    paths.push(req.url ?? '');
    const auth = req.headers.authorization ?? '';
    switch (auth) {
      case 'Bearer good':
        res.writeHead(200, { 'x-user-id': '42', 'x-auth-user': 'acme', 'cache-control': 'max-age=60', 'x-internal': 'secret-ish' });
        return res.end('ok');
      case 'Bearer nostore':
        res.writeHead(200, { 'x-auth-user': 'nobody', 'cache-control': 'no-store' });
        return res.end();
      case 'Bearer private':
        res.writeHead(200, { 'cache-control': 'private, max-age=60' });
        return res.end();
      case 'Bearer bad':
        res.writeHead(401, {
          'www-authenticate': 'Bearer realm="ext", error="invalid_token"',
          'content-type': 'text/plain',
          connection: 'close, x-drop',
          'x-drop': 'hop-by-hop',
        });
        return res.end('token rejected');
      case 'Bearer forbidden':
        res.writeHead(403, { 'content-type': 'application/json' });
        return res.end('{"why":"no"}');
      case 'Bearer slow':
        return; // never answers: the gateway's timeout must fire
      case 'Bearer huge':
        res.writeHead(401, { 'content-type': 'text/plain' });
        return res.end('x'.repeat(200_000));
    }
    const location = `https://login.example/?rd=${encodeURIComponent(`${req.headers['x-forwarded-proto']}://${req.headers['x-forwarded-host']}${req.headers['x-forwarded-uri']}`)}`;
    res.writeHead(302, { location, 'set-cookie': 'state=xyz; HttpOnly' });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('external authenticator', () => {
  let auth: Awaited<ReturnType<typeof startAuthService>>;
  let backend: TestBackend;
  let gw: TestGateway;
  const key = generateApiKey();

  before(async () => {
    auth = await startAuthService();
    backend = await startBackend();
    const dead = await freePort();
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  be: { targets: ["${backend.url}"] }
authenticators:
  bespoke:
    type: external
    url: ${auth.url}/check
    timeout: 300ms
    responseHeaders: [x-user-id, x-auth-user]
    subjectHeader: x-auth-user
  cached:
    type: external
    url: ${auth.url}/check
    responseHeaders: [x-user-id]
    cache: { maxTtl: 30s, maxEntries: 100 }
  envoy:
    type: external
    url: ${auth.url}/authz
    appendPath: true
  down: { type: external, url: "http://127.0.0.1:${dead}/check", timeout: 300ms }
  down-absent: { type: external, url: "http://127.0.0.1:${dead}/check", timeout: 300ms, failureMode: absent }
  partner-key: { type: apiKey, header: x-api-key }
consumers:
  - { id: acme, groups: [partners] }
  - { id: keyed, apiKeys: [${key.digest}] }
routes:
  - { name: app, match: { path: /app/** }, authenticate: [bespoke], upstream: be }
  - { name: fwd, match: { path: /fwd/** }, authenticate: [bespoke], upstream: be, forwardCredentials: true }
  - { name: cached, match: { path: /cached/** }, authenticate: [cached], upstream: be }
  - { name: envoy, match: { path: /envoy/** }, authenticate: [envoy], upstream: be }
  - { name: down, match: { path: /down/** }, authenticate: [down], upstream: be }
  - { name: fallback, match: { path: /fallback/** }, authenticate: [down-absent, partner-key], upstream: be }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
    await auth.close();
  });

  it('the auth service is shown X-Forwarded-* and only the allowlisted client headers', async () => {
    const before = auth.calls.length;
    await send(`${gw.url}/app/a/../b//c?x=1&y=%2F`, { authorization: 'Bearer good', cookie: 'sid=1', 'x-other': 'not for you' });
    const seen = auth.calls[before];
    assert.ok(seen);
    assert.equal(auth.paths[before], '/check');
    assert.equal(seen['x-forwarded-method'], 'GET');
    assert.equal(seen['x-forwarded-uri'], '/app/b/c?x=1&y=%2F');
    assert.equal(seen['x-forwarded-host'], gw.url.slice('http://'.length));
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.authorization, 'Bearer good');
    assert.equal(seen.cookie, 'sid=1');
    assert.equal(seen['x-other'], undefined);
  });

  it('200 allows: the listed response headers are set upstream, the subject header names the consumer', async () => {
    const n = backend.received.length;
    const r = await send(`${gw.url}/app/x`, { authorization: 'Bearer good', 'x-user-id': '999' });
    assert.equal(r.status, 200);
    const got = lastReceived(backend, n);
    assert.equal(got?.['x-user-id'], '42');
    assert.equal(got?.['x-auth-user'], 'acme');
    assert.equal(got?.['x-internal'], undefined);
    assert.equal(got?.['x-consumer-id'], 'acme');
    assert.equal(got?.['x-auth-subject'], 'acme');
    assert.equal(got?.['x-auth-groups'], 'partners');
    assert.equal(got?.['x-auth-method'], 'external');
    // The client's own headers are the auth service's business and are forwarded.
    assert.equal(got?.authorization, 'Bearer good');
  });

  it('a response header the service did not set this time cannot be supplied by the client', async () => {
    for (const path of ['/app/x', '/fwd/x']) {
      const n = backend.received.length;
      const r = await send(`${gw.url}${path}`, { authorization: 'Bearer nostore', 'x-user-id': '999', 'X-Auth-User': 'acme' });
      assert.equal(r.status, 200);
      const got = lastReceived(backend, n);
      assert.equal(got?.['x-user-id'], undefined, path);
      assert.equal(got?.['x-auth-user'], 'nobody', path);
      assert.equal(got?.['x-auth-subject'], 'nobody');
      assert.equal(got?.['x-consumer-id'], undefined);
    }
  });

  it('302 to a login page is relayed with its Location and cookies', async () => {
    const n = backend.received.length;
    const r = await send(`${gw.url}/app/page?q=1`, { cookie: 'session=expired' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, `https://login.example/?rd=${encodeURIComponent(`http://${gw.url.slice(7)}/app/page?q=1`)}`);
    assert.equal(r.headers['set-cookie'], 'state=xyz; HttpOnly');
    assert.ok(r.headers['x-request-id']);
    assert.equal(backend.received.length, n);
  });

  it('401 with the service challenge and body is relayed; hop-by-hop headers are dropped', async () => {
    const r = await send(`${gw.url}/app/x`, { authorization: 'Bearer bad' });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="ext", error="invalid_token"');
    assert.equal(r.text, 'token rejected');
    assert.equal(r.headers['x-drop'], undefined);
    const f = await send(`${gw.url}/app/x`, { authorization: 'Bearer forbidden' });
    assert.equal(f.status, 403);
    assert.equal(f.text, '{"why":"no"}');
    assert.equal(f.headers['content-type'], 'application/json');
  });

  it('an oversized reply from the service fails closed (503), never half relayed', async () => {
    const r = await send(`${gw.url}/app/x`, { authorization: 'Bearer huge' });
    assert.equal(r.status, 503);
    assert.equal(r.code, 'PTC_ERR_AUTH_UNAVAILABLE');
  });

  it('a timeout is 503 PTC_ERR_AUTH_UNAVAILABLE (fail closed)', async () => {
    const t0 = Date.now();
    const r = await send(`${gw.url}/app/x`, { authorization: 'Bearer slow' });
    assert.equal(r.status, 503);
    assert.equal(r.code, 'PTC_ERR_AUTH_UNAVAILABLE');
    assert.ok(Date.now() - t0 < 2_000, 'bounded by the configured timeout');
  });

  it('connection refused is 503 PTC_ERR_AUTH_UNAVAILABLE', async () => {
    const r = await send(`${gw.url}/down/x`, { authorization: 'Bearer good' });
    assert.equal(r.status, 503);
    assert.equal(r.code, 'PTC_ERR_AUTH_UNAVAILABLE');
  });

  it('failureMode: absent falls through to the next authenticator, or 401; the fail-open is counted', async () => {
    const n = backend.received.length;
    assert.equal((await send(`${gw.url}/fallback/x`, { 'x-api-key': key.key })).status, 200);
    assert.equal(lastReceived(backend, n)?.['x-consumer-id'], 'keyed');
    const none = await send(`${gw.url}/fallback/x`);
    assert.equal(none.status, 401);
    assert.equal(none.code, 'PTC_ERR_UNAUTHENTICATED');
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'down-absent', outcome: 'failed_open' }) >= 2);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'down', outcome: 'unavailable', reason: 'connect_failed' }) >= 1);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'bespoke', outcome: 'unavailable', reason: 'timeout' }) >= 1);
  });

  it('the decision cache: a cacheable allow is asked once; the cache key includes the URI and the headers', async () => {
    const before = auth.calls.length;
    for (let i = 0; i < 3; i++) {
      const n = backend.received.length;
      assert.equal((await send(`${gw.url}/cached/a`, { authorization: 'Bearer good' })).status, 200);
      assert.equal(lastReceived(backend, n)?.['x-user-id'], '42', 'cached decisions keep their upstream headers');
    }
    assert.equal(auth.calls.length - before, 1);
    await send(`${gw.url}/cached/b`, { authorization: 'Bearer good' });
    assert.equal(auth.calls.length - before, 2);
    await send(`${gw.url}/cached/a`, { authorization: 'Bearer good', cookie: 'other=1' });
    assert.equal(auth.calls.length - before, 3);
  });

  it('the decision cache honours no-store and private, and never caches a denial', async () => {
    for (const token of ['Bearer nostore', 'Bearer private', 'Bearer bad']) {
      const before = auth.calls.length;
      await send(`${gw.url}/cached/z`, { authorization: token });
      await send(`${gw.url}/cached/z`, { authorization: token });
      assert.equal(auth.calls.length - before, 2, token);
    }
  });

  it('appendPath: the request path is appended to the url (Envoy ext_authz convention)', async () => {
    const before = auth.calls.length;
    await send(`${gw.url}/envoy/orders/7?a=b`, { authorization: 'Bearer good' });
    assert.equal(auth.paths[before], '/authz/envoy/orders/7?a=b');
  });
});

describe('external authenticator config', () => {
  it('responseHeaders cannot name a header the gateway sets', async () => {
    const { ConfigError, formatProblem } = await import('../../src/config/load.js');
    await assert.rejects(
      startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
authenticators:
  ext: { type: external, url: "http://127.0.0.1:9/check", responseHeaders: [x-consumer-id] }
routes: [{ name: r, match: { path: / }, respond: { status: 200 }, authenticate: [ext] }]
`),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.problems.map(formatProblem).join('\n'), /authenticators\.ext\.responseHeaders\[0\]: "x-consumer-id" is set by the gateway/);
        return true;
      },
    );
  });
});
