/**
 * Outbound `oauth2ClientCredentials` against a real token endpoint (oidc-provider): one token
 * request for a burst of 1,000 requests, refresh before expiry, one retry after an upstream 401,
 * the 401 passed through when the body cannot be replayed, 502 when the token endpoint fails (and
 * nothing sent upstream), and each client authentication method.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, exportJWK, exportPKCS8, generateKeyPair, jwtVerify } from 'jose';
import { Agent, request } from 'undici';
import { echo, startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { startIdP, type TestIdP } from '../helpers/idp.js';
import { metricValue, scrape } from '../helpers/metrics.js';

const POST_CLIENT = { id: 'cc-post', secret: `ccp-${randomBytes(12).toString('hex')}` };
const JWT_CLIENT = 'cc-pkjwt';

describe('outbound oauth2ClientCredentials', () => {
  let idp: TestIdP;
  let backend: TestBackend;
  let rejectFirst: TestBackend;
  let always401: TestBackend;
  let timed: TestBackend;
  /** When the `timed` backend first and last saw each Authorization value. */
  const seen = new Map<string, { first: number; last: number }>();
  let gw: TestGateway;
  let hung: http.Server;
  const raw: string[] = [];
  const agent = new Agent({ connections: 1_000 });

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    idp = await startIdP({
      resources: {
        'urn:cc-orders': { audience: 'cc-orders' },
        'urn:cc-short': { audience: 'cc-short', ttl: 2 },
        'urn:cc-retry': { audience: 'cc-retry' },
        'urn:cc-deny': { audience: 'cc-deny' },
        'urn:cc-post': { audience: 'cc-post' },
        'urn:cc-pkjwt': { audience: 'cc-pkjwt' },
      },
      clients: [
        {
          client_id: POST_CLIENT.id,
          client_secret: POST_CLIENT.secret,
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          scope: 'orders:read',
          token_endpoint_auth_method: 'client_secret_post',
        },
        {
          client_id: JWT_CLIENT,
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          scope: 'orders:read',
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: 'ES256',
          jwks: { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES256', use: 'sig' }] },
        },
      ],
    });
    process.env.PTC_TEST_CC_SECRET = idp.client.secret;
    process.env.PTC_TEST_CC_POST_SECRET = POST_CLIENT.secret;
    process.env.PTC_TEST_CC_KEY = await exportPKCS8(privateKey);

    backend = await startBackend();
    // Rejects the first token it sees (as if it had been revoked), accepts any other.
    let first: string | undefined;
    rejectFirst = await startBackend((req, res, body) => {
      first ??= req.headers.authorization;
      if (req.headers.authorization !== first) return echo(req, res, body);
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'text/plain' });
      res.end('first-token-rejected');
    });
    always401 = await startBackend(
      (req, res) => {
        req.resume();
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'text/plain' });
        res.end('no-token-is-good-enough');
      },
      { stream: true },
    );
    timed = await startBackend((req, res, body) => {
      const auth = req.headers.authorization ?? '';
      const t = Date.now();
      seen.set(auth, { first: seen.get(auth)?.first ?? t, last: t });
      echo(req, res, body);
    });
    // Accepts connections and never answers: a token endpoint that hangs.
    hung = http.createServer(() => {});
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const cc = (audience: string, extra = '') =>
      `{ type: oauth2ClientCredentials, tokenUrl: "${idp.tokenEndpoint}", clientId: ${idp.client.id}, clientSecret: "\${env:PTC_TEST_CC_SECRET}", scope: "orders:read", audience: "${audience}"${extra} }`;
    gw = await startGateway(
      `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
log: { access: false }
upstreams:
  orders: { targets: ["${backend.url}"], auth: ${cc('urn:cc-orders')} }
  short: { targets: ["${timed.url}"], auth: ${cc('urn:cc-short')} }
  retry: { targets: ["${rejectFirst.url}"], auth: ${cc('urn:cc-retry')} }
  deny: { targets: ["${always401.url}"], auth: ${cc('urn:cc-deny')} }
  post:
    targets: ["${backend.url}"]
    auth: { type: oauth2ClientCredentials, tokenUrl: "${idp.tokenEndpoint}", clientId: ${POST_CLIENT.id}, clientSecret: "\${env:PTC_TEST_CC_POST_SECRET}", authMethod: client_secret_post, scope: orders:read, audience: "urn:cc-post" }
  pkjwt:
    targets: ["${backend.url}"]
    auth: { type: oauth2ClientCredentials, tokenUrl: "${idp.tokenEndpoint}", clientId: ${JWT_CLIENT}, privateKeyJwt: { key: "\${env:PTC_TEST_CC_KEY}" }, scope: orders:read, audience: "urn:cc-pkjwt" }
  refused:
    targets: ["${backend.url}"]
    auth: { type: oauth2ClientCredentials, tokenUrl: "http://127.0.0.1:${closedPort}/token", clientId: x, clientSecret: y }
  hung:
    targets: ["${backend.url}"]
    auth: { type: oauth2ClientCredentials, tokenUrl: "http://127.0.0.1:${(hung.address() as AddressInfo).port}/token", clientId: x, clientSecret: y, timeout: 300ms }
  badsecret:
    targets: ["${backend.url}"]
    auth: { type: oauth2ClientCredentials, tokenUrl: "${idp.tokenEndpoint}", clientId: ${idp.client.id}, clientSecret: not-the-secret, audience: "urn:cc-orders" }
routes:
  - { name: orders, match: { path: /orders/** }, upstream: orders, stripPrefix: /orders }
  - { name: short, match: { path: /short/** }, upstream: short, stripPrefix: /short }
  - { name: retry, match: { path: /retry/** }, upstream: retry, stripPrefix: /retry }
  - { name: deny, match: { path: /deny/** }, upstream: deny, stripPrefix: /deny }
  - { name: post, match: { path: /post/** }, upstream: post, stripPrefix: /post }
  - { name: pkjwt, match: { path: /pkjwt/** }, upstream: pkjwt, stripPrefix: /pkjwt }
  - { name: refused, match: { path: /refused/** }, upstream: refused, stripPrefix: /refused }
  - { name: hung, match: { path: /hung/** }, upstream: hung, stripPrefix: /hung }
  - { name: badsecret, match: { path: /badsecret/** }, upstream: badsecret, stripPrefix: /badsecret }
`,
      { raw },
    );
  });

  after(async () => {
    await gw?.close();
    await agent.close();
    hung?.closeAllConnections();
    await new Promise<void>((resolve) => (hung === undefined ? resolve() : hung.close(() => resolve())));
    await Promise.all([backend?.close(), timed?.close(), rejectFirst?.close(), always401?.close(), idp?.close()]);
    delete process.env.PTC_TEST_CC_SECRET;
    delete process.env.PTC_TEST_CC_POST_SECRET;
    delete process.env.PTC_TEST_CC_KEY;
  });

  async function send(path: string, options: { method?: 'GET' | 'POST'; body?: string | Readable; headers?: Record<string, string> } = {}) {
    const res = await request(`${gw.url}${path}`, {
      method: options.method ?? 'GET',
      body: options.body ?? null,
      headers: options.headers ?? {},
      dispatcher: agent,
    });
    const text = await res.body.text();
    const code = res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(text) as { code: unknown }).code : undefined;
    return { status: res.statusCode, text, code };
  }

  /** The Bearer token must verify against the provider's keys as issued to `clientId` for `audience`. */
  async function assertIssued(authorization: string | undefined, clientId: string, audience: string, at?: number): Promise<string> {
    assert.ok(authorization?.startsWith('Bearer '), `expected a Bearer token, got ${authorization}`);
    const token = (authorization as string).slice('Bearer '.length);
    // exp is whole seconds after a truncated iat, so a token may expire up to 1s before expires_in says.
    const options = { issuer: idp.issuer, audience, ...(at === undefined ? {} : { currentDate: new Date(at), clockTolerance: 1 }) };
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(idp.jwksUri)), options);
    assert.equal(payload.client_id, clientId);
    return token;
  }

  it('1,000 concurrent requests on a cold cache cause exactly one token request', async () => {
    const before = idp.tokenRequests;
    const n = backend.received.length;
    const results = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => send(`/orders/item/${i}`, { headers: { authorization: 'Bearer client-token' } })),
    );
    assert.deepEqual(
      results.filter((r) => r.status !== 200).map((r) => r.status),
      [],
    );
    assert.equal(idp.tokenRequests - before, 1);
    const got = backend.received.slice(n);
    assert.equal(got.length, 1_000);
    const tokens = new Set(got.map((r) => r.headers.authorization));
    assert.equal(tokens.size, 1, 'every request carried the same token, never the client one');
    await assertIssued(got[0]?.headers.authorization, idp.client.id, 'cc-orders');
    const metrics = await scrape(gw.adminUrl);
    assert.equal(metricValue(metrics, 'portcullis_outbound_token_cache_total', { upstream: 'orders', result: 'miss' }), 1);
    assert.ok(metricValue(metrics, 'portcullis_outbound_token_cache_total', { upstream: 'orders', result: 'hit' }) >= 1);
    assert.equal(
      metricValue(metrics, 'portcullis_outbound_credentials_total', { upstream: 'orders', type: 'oauth2ClientCredentials', result: 'applied' }),
      1_000,
    );
  });

  it('refreshes the token before it expires, with no failed request', async () => {
    const before = idp.tokenRequests;
    const statuses: number[] = [];
    const end = Date.now() + 3_000; // the token lives 2s: at least one refresh must happen
    while (Date.now() < end) {
      const batch = await Promise.all(Array.from({ length: 5 }, () => send('/short/x')));
      statuses.push(...batch.map((r) => r.status));
      await sleep(40);
    }
    assert.ok(
      statuses.every((s) => s === 200),
      `statuses: ${[...new Set(statuses)]}`,
    );
    const fetched = idp.tokenRequests - before;
    assert.ok(fetched >= 2 && fetched <= 3, `token requests: ${fetched}`);
    assert.ok(seen.size >= 2 && seen.size <= fetched, `tokens used: ${seen.size}`);
    // Every token was valid each time the backend saw it: the last use verifies too (never sent expired).
    for (const [auth, { last }] of seen) await assertIssued(auth, idp.client.id, 'cc-short', last);
  });

  it('an upstream 401 drops the token and retries once with a new one; the client sees 200', async () => {
    const before = idp.tokenRequests;
    const res = await send('/retry/once');
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes('first-token-rejected'), 'the first 401 body never reaches the client');
    assert.equal(rejectFirst.received.length, 2);
    assert.equal(idp.tokenRequests - before, 2);
    const [a, b] = rejectFirst.received.map((r) => r.headers.authorization);
    assert.notEqual(a, b);
    await assertIssued(b, idp.client.id, 'cc-retry');
    // The new token stays cached: the next request needs no token request and no retry.
    const again = await send('/retry/twice');
    assert.equal(again.status, 200);
    assert.equal(rejectFirst.received.length, 3);
    assert.equal(idp.tokenRequests - before, 2);
  });

  it('retries a 401 only once, then relays it', async () => {
    const res = await send('/deny/get');
    assert.equal(res.status, 401);
    assert.equal(res.text, 'no-token-is-good-enough');
    assert.equal(always401.received.length, 2);
  });

  it('a streamed request body cannot be replayed: the 401 is passed through without a retry', async () => {
    const n = always401.received.length;
    const res = await send('/deny/post', { method: 'POST', body: Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]) });
    assert.equal(res.status, 401);
    assert.equal(res.text, 'no-token-is-good-enough');
    assert.equal(always401.received.length - n, 1);
  });

  it('client_secret_post authenticates against the provider', async () => {
    const n = backend.received.length;
    const res = await send('/post/x');
    assert.equal(res.status, 200);
    await assertIssued(backend.received[n]?.headers.authorization, POST_CLIENT.id, 'cc-post');
  });

  it('private_key_jwt authenticates with a signed client assertion', async () => {
    const n = backend.received.length;
    const res = await send('/pkjwt/x');
    assert.equal(res.status, 200, JSON.stringify(gw.logs.filter((l) => l.level !== undefined && Number(l.level) >= 40).slice(-3)));
    await assertIssued(backend.received[n]?.headers.authorization, JWT_CLIENT, 'cc-pkjwt');
  });

  for (const [name, what] of [
    ['refused', 'connection refused'],
    ['hung', 'a token endpoint that never answers (timeout)'],
    ['badsecret', 'a non-2xx answer (invalid_client)'],
  ] as const) {
    it(`token endpoint failure (${what}) → 502 PTC_ERR_UPSTREAM_CREDENTIAL, nothing sent upstream`, async () => {
      const n = backend.received.length;
      const started = Date.now();
      const res = await send(`/${name}/x`);
      assert.equal(res.status, 502);
      assert.equal(res.code, 'PTC_ERR_UPSTREAM_CREDENTIAL');
      assert.ok(Date.now() - started < 3_000);
      assert.equal(backend.received.length, n, 'the backend received nothing');
    });
  }

  it('no secret or token reaches a log line or a metric label', async () => {
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const tokens = new Set(backend.received.map((r) => r.headers.authorization?.slice(7)).filter((t): t is string => t !== undefined));
    for (const text of [raw.join('\n'), metrics]) {
      assert.ok(!text.includes(idp.client.secret));
      assert.ok(!text.includes(POST_CLIENT.secret));
      assert.ok(!text.includes('BEGIN PRIVATE KEY'));
      for (const t of tokens) assert.ok(!text.includes(t));
    }
  });
});
