import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startIdP, type TestIdP } from '../helpers/idp.js';
import { metricValue, scrape } from '../helpers/metrics.js';

async function call(gw: TestGateway, token: string | undefined, path = '/api/x') {
  const res = await request(`${gw.url}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    challenge: res.headers['www-authenticate'],
    code: text === '' ? undefined : (JSON.parse(text) as { code?: string }).code,
    text,
  };
}

describe('introspection authenticator (real OpenID provider)', () => {
  let idp: TestIdP;
  let backend: TestBackend;
  let gw: TestGateway;
  before(async () => {
    idp = await startIdP({ extraClaims: { groups: ['buyers'] }, resources: { 'urn:billing': { format: 'opaque', audience: 'billing-api' } } });
    backend = await startBackend();
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
authenticators:
  idp: { type: jwt, issuer: "${idp.issuer}", audience: orders-api, jwksUri: "${idp.jwksUri}", algorithms: [ES256, RS256] }
  opaque: { type: introspection, endpoint: "${idp.introspectionEndpoint}", clientId: ${idp.introspector.id}, clientSecret: "${idp.introspector.secret}", issuer: "${idp.issuer}", audience: opaque-api }
  opaquePost: { type: introspection, endpoint: "${idp.introspectionEndpoint}", clientId: ${idp.introspectorPost.id}, clientSecret: "${idp.introspectorPost.secret}", authMethod: client_secret_post }
consumers:
  - { id: orders-client, groups: [partners] }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - { name: api, match: { path: /api/** }, upstream: echo, authenticate: [opaque] }
  - { name: post, match: { path: /post/** }, upstream: echo, authenticate: [opaquePost] }
  - { name: both, match: { path: /both/** }, upstream: echo, authenticate: [idp, opaque] }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
    await idp.close();
  });

  it('accepts an active opaque token and tells the backend who called', async () => {
    const token = await idp.mintAccessToken('orders:read orders:write', 'urn:opaque-api');
    const seen = backend.received.length;
    const r = await call(gw, token);
    assert.equal(r.status, 200, r.text);
    const h = backend.received[seen]?.headers ?? {};
    assert.equal(h['x-auth-method'], 'introspection');
    assert.equal(h['x-auth-subject'], 'orders-client', 'client_id stands in for sub on a client-credentials token');
    assert.equal(h['x-consumer-id'], 'orders-client');
    assert.equal(h['x-auth-scopes'], 'orders:read orders:write');
    assert.equal(h['x-auth-groups'], 'buyers,partners');
    assert.equal(h.authorization, undefined);
  });

  it('caches the result: a second request does not call the endpoint', async () => {
    const token = await idp.mintAccessToken('orders:read', 'urn:opaque-api');
    const before = idp.introspectionRequests;
    assert.equal((await call(gw, token)).status, 200);
    assert.equal((await call(gw, token)).status, 200);
    assert.equal((await call(gw, token)).status, 200);
    assert.equal(idp.introspectionRequests - before, 1);
  });

  it('refuses an unknown token (active: false) with invalid_token', async () => {
    const r = await call(gw, 'not-a-token-the-idp-issued');
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.equal(r.challenge, 'Bearer realm="portcullis", error="invalid_token"');
  });

  it('authenticates to the endpoint with client_secret_post too', async () => {
    const token = await idp.mintAccessToken('orders:read', 'urn:opaque-api');
    assert.equal((await call(gw, token, '/post/x')).status, 200);
  });

  it('checks the audience of the introspection response', async () => {
    // An active token, but issued for another resource server.
    const token = await idp.mintAccessToken('orders:read', 'urn:billing');
    const before = idp.introspectionRequests;
    const r = await call(gw, token);
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.equal(idp.introspectionRequests - before, 1);
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'opaque', outcome: 'rejected', reason: 'bad_audience' }) >= 1);
  });

  it('a route listing [jwt, introspection] sends JWTs to the first and opaque tokens to the second', async () => {
    const jwt = await idp.mintAccessToken('orders:read', 'urn:orders-api');
    const opaque = await idp.mintAccessToken('orders:read', 'urn:opaque-api');
    const seen = backend.received.length;
    assert.equal((await call(gw, jwt, '/both/x')).status, 200);
    assert.equal((await call(gw, opaque, '/both/x')).status, 200);
    assert.equal(backend.received[seen]?.headers['x-auth-method'], 'jwt');
    assert.equal(backend.received[seen + 1]?.headers['x-auth-method'], 'introspection');
  });
});

/** A tiny introspection endpoint answering per token, recording what it received. */
type Answer = { status?: number; body?: string; delayMs?: number; hang?: boolean };

describe('introspection authenticator (scripted endpoint)', () => {
  let endpoint: TestBackend;
  let backend: TestBackend;
  let gw: TestGateway;
  const answers = new Map<string, Answer>();
  const active = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ active: true, sub: 'alice', client_id: 'c1', scope: 'a b', exp: Math.floor(Date.now() / 1000) + 300, ...extra });

  before(async () => {
    endpoint = await startBackend((req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
      const token = new URLSearchParams(body.toString()).get('token') ?? '';
      const a = answers.get(token) ?? { body: JSON.stringify({ active: false }) };
      if (a.hang === true) return; // never answers
      setTimeout(() => {
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json' });
        res.end(a.body ?? '');
      }, a.delayMs ?? 0);
      void req;
    });
    backend = await startBackend();
    const down = await startBackend();
    const downUrl = down.url;
    await down.close();
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
authenticators:
  basic: { type: introspection, endpoint: "${endpoint.url}/introspect", clientId: "gw id", clientSecret: "s3cr:et" }
  slow: { type: introspection, endpoint: "${endpoint.url}/introspect", clientId: gw, clientSecret: s, timeout: 300ms }
  post: { type: introspection, endpoint: "${endpoint.url}/introspect", clientId: gw-post, clientSecret: post-secret, authMethod: client_secret_post }
  checked: { type: introspection, endpoint: "${endpoint.url}/introspect", clientId: gw, clientSecret: s, issuer: https://as.example, audience: orders-api }
  down: { type: introspection, endpoint: "${downUrl}/introspect", clientId: gw, clientSecret: s }
  downAbsent: { type: introspection, endpoint: "${downUrl}/introspect", clientId: gw, clientSecret: s, failureMode: absent }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - { name: api, match: { path: /api/** }, upstream: echo, authenticate: [basic] }
  - { name: post, match: { path: /post/** }, upstream: echo, authenticate: [post] }
  - { name: slow, match: { path: /slow/** }, upstream: echo, authenticate: [slow] }
  - { name: checked, match: { path: /checked/** }, upstream: echo, authenticate: [checked] }
  - { name: down, match: { path: /down/** }, upstream: echo, authenticate: [down] }
  - { name: downAbsent, match: { path: /down-absent/** }, upstream: echo, authenticate: [downAbsent] }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
    await endpoint.close();
  });

  const introspectionCalls = (token: string) => endpoint.received.filter((r) => new URLSearchParams(r.body.toString()).get('token') === token);

  it('client_secret_basic: form-encoded id and secret in Basic, nothing in the body', async () => {
    answers.set('tok-basic', { body: active() });
    assert.equal((await call(gw, 'tok-basic')).status, 200);
    const got = introspectionCalls('tok-basic')[0];
    assert.ok(got !== undefined);
    assert.equal(got.method, 'POST');
    assert.equal(got.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(got.headers.authorization, `Basic ${Buffer.from('gw+id:s3cr%3Aet').toString('base64')}`);
    const form = new URLSearchParams(got.body.toString());
    assert.equal(form.get('client_secret'), null);
    assert.equal(form.get('token_type_hint'), 'access_token');
  });

  it('client_secret_post: id and secret in the body, no Authorization', async () => {
    answers.set('tok-post', { body: active() });
    assert.equal((await call(gw, 'tok-post', '/post/x')).status, 200);
    const got = introspectionCalls('tok-post')[0];
    assert.ok(got !== undefined);
    assert.equal(got.headers.authorization, undefined);
    const form = new URLSearchParams(got.body.toString());
    assert.equal(form.get('client_id'), 'gw-post');
    assert.equal(form.get('client_secret'), 'post-secret');
  });

  it('active: "true" (a string) is inactive → 401', async () => {
    answers.set('tok-string', { body: JSON.stringify({ active: 'true', sub: 'alice' }) });
    const r = await call(gw, 'tok-string');
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
  });

  it('active: false → 401, and the inactive result is cached briefly', async () => {
    answers.set('tok-inactive', { body: JSON.stringify({ active: false }) });
    assert.equal((await call(gw, 'tok-inactive')).status, 401);
    assert.equal((await call(gw, 'tok-inactive')).status, 401);
    assert.equal(introspectionCalls('tok-inactive').length, 1);
  });

  it('an active token whose exp has passed is refused', async () => {
    answers.set('tok-expired', { body: active({ exp: Math.floor(Date.now() / 1000) - 10 }) });
    assert.equal((await call(gw, 'tok-expired')).status, 401);
  });

  it('checks issuer and audience when configured', async () => {
    answers.set('tok-good', { body: active({ iss: 'https://as.example', aud: ['orders-api', 'x'] }) });
    answers.set('tok-iss', { body: active({ iss: 'https://evil.example', aud: 'orders-api' }) });
    answers.set('tok-aud', { body: active({ iss: 'https://as.example', aud: 'billing' }) });
    assert.equal((await call(gw, 'tok-good', '/checked/x')).status, 200);
    assert.equal((await call(gw, 'tok-iss', '/checked/x')).status, 401);
    assert.equal((await call(gw, 'tok-aud', '/checked/x')).status, 401);
  });

  it('endpoint errors are 503 PTC_ERR_AUTH_UNAVAILABLE: 500, bad JSON, timeout', async () => {
    answers.set('tok-500', { status: 500, body: 'oops' });
    answers.set('tok-json', { body: '{"active": tru' });
    answers.set('tok-array', { body: '[true]' });
    answers.set('tok-hang', { hang: true });
    for (const t of ['tok-500', 'tok-json', 'tok-array', 'tok-hang']) {
      const r = await call(gw, t, t === 'tok-hang' ? '/slow/x' : '/api/x');
      assert.equal(r.status, 503, t);
      assert.equal(r.code, 'PTC_ERR_AUTH_UNAVAILABLE', t);
      assert.ok(!r.text.includes(t), 'no token in the body');
    }
    // failures are not cached: the endpoint recovers, the token works
    answers.set('tok-500', { body: active() });
    assert.equal((await call(gw, 'tok-500')).status, 200);
  });

  it('endpoint down → 503; with failureMode: absent → 401 (credential treated as not presented)', async () => {
    const r = await call(gw, 'anything', '/down/x');
    assert.equal(r.status, 503);
    assert.equal(r.code, 'PTC_ERR_AUTH_UNAVAILABLE');
    const a = await call(gw, 'anything', '/down-absent/x');
    assert.equal(a.status, 401);
    assert.equal(a.code, 'PTC_ERR_UNAUTHENTICATED');
  });

  it('concurrent requests with one token share one introspection call', async () => {
    answers.set('tok-flight', { body: active(), delayMs: 100 });
    const statuses = await Promise.all(Array.from({ length: 10 }, () => call(gw, 'tok-flight').then((r) => r.status)));
    assert.deepEqual(statuses, Array(10).fill(200));
    assert.equal(introspectionCalls('tok-flight').length, 1);
  });

  it('cache hits are counted, tokens never appear in metrics or logs', async () => {
    answers.set('tok-secret-value', { body: active() });
    for (let i = 0; i < 3; i++) assert.equal((await call(gw, 'tok-secret-value')).status, 200);
    await sleep(10);
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    assert.ok(!text.includes('tok-secret-value'));
    assert.ok(metricValue(await scrape(gw.adminUrl), 'portcullis_auth_token_cache_total', { authenticator: 'basic', result: 'hit' }) >= 2);
    assert.ok(!JSON.stringify(gw.logs).includes('tok-secret-value'));
    assert.ok(!JSON.stringify(gw.logs).includes('s3cr'));
  });
});
