// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${file:…} references are part of the configs under test
/**
 * Gateway-minted JWTs, end to end: an authenticated client (API key → consumer) calls through the
 * gateway; the backend verifies the token with the `portcullis/verify` kit against the JWKS the
 * admin listener serves. Replaying the token to another audience, after expiry, or calling the
 * backend around the gateway is refused.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { request } from 'undici';
import { DEFAULT_KEY_FILE } from '../../src/outbound/schema.js';
import { type GatewayMiddleware, type GatewayTokenErrorCode, requireGateway } from '../../src/verify/index.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

const CLIENT_KEY = `ck_${randomBytes(24).toString('base64url')}`;
const digest = `sha256:${createHash('sha256').update(CLIENT_KEY).digest('hex')}`;

interface Verified {
  readonly status: number;
  readonly claims: Record<string, unknown> | undefined;
  readonly token: string | undefined;
}

/** A backend that admits only requests carrying a gateway JWT for `audience`, and echoes the claims. */
async function verifiedBackend(gate: () => GatewayMiddleware): Promise<TestBackend> {
  return startBackend((req, res) => {
    void gate()(req, res).then((ok) => {
      if (!ok) return;
      const body = JSON.stringify({ claims: (req as http.IncomingMessage & { gateway?: unknown }).gateway });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
}

describe('outbound gateway JWT', () => {
  let ledger: TestBackend;
  let other: TestBackend;
  let short: TestBackend;
  let gw: TestGateway;
  const gates: Record<string, GatewayMiddleware> = {};
  const rejected: GatewayTokenErrorCode[] = [];
  const raw: string[] = [];

  const config = (identity: string) => `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
${identity}
authenticators:
  keys: { type: apiKey, header: x-api-key }
consumers:
  - { id: acme, groups: [ops, billing], apiKeys: [${digest}] }
upstreams:
  ledger:
    targets: ["${ledger.url}"]
    auth: { type: jwt, audience: ledger, ttl: 60s, claims: [sub, consumer, groups, scopes] }
  other:
    targets: ["${other.url}"]
    auth: { type: jwt }
  short:
    targets: ["${short.url}"]
    auth: { type: jwt, ttl: 2s, cache: false, header: X-Gateway-Token }
routes:
  - { name: ledger, match: { path: /ledger/** }, authenticate: [keys], upstream: ledger, stripPrefix: /ledger }
  - { name: ledger-open, match: { path: /open-ledger/** }, upstream: ledger, stripPrefix: /open-ledger }
  - { name: other, match: { path: /other/** }, authenticate: [keys], upstream: other, stripPrefix: /other }
  - { name: short, match: { path: /short/** }, authenticate: [keys], upstream: short, stripPrefix: /short }
`;

  before(async () => {
    ledger = await verifiedBackend(() => gates.ledger as GatewayMiddleware);
    other = await verifiedBackend(() => gates.other as GatewayMiddleware);
    short = await verifiedBackend(() => gates.short as GatewayMiddleware);
    gw = await startGateway(config(''), { raw });
    const jwksUri = `${gw.adminUrl}/.well-known/jwks.json`;
    const onReject = (e: { code: GatewayTokenErrorCode }) => rejected.push(e.code);
    // A short JWKS refetch cooldown: the rotation test publishes a new key only 1s ahead of use.
    gates.ledger = requireGateway({ jwksUri, audience: 'ledger', clockTolerance: 0, onReject, jwksOptions: { cooldownDuration: 500 } });
    gates.other = requireGateway({ jwksUri, audience: 'other', clockTolerance: 0, onReject });
    gates.short = requireGateway({ jwksUri, audience: 'short', clockTolerance: 0, header: 'x-gateway-token', onReject });
  });
  after(async () => {
    await gw.close();
    await Promise.all([ledger.close(), other.close(), short.close()]);
  });

  /** Call through the gateway; return the backend's verdict and the token it received. */
  async function viaGateway(
    path: string,
    headers: Record<string, string> = { 'x-api-key': CLIENT_KEY },
    backend = ledger,
    header = 'authorization',
  ): Promise<Verified> {
    const res = await request(`${gw.url}${path}`, { headers });
    const body = (await res.body.json()) as { claims?: Record<string, unknown> };
    const sent = backend.received[backend.received.length - 1]?.headers[header];
    const token = typeof sent === 'string' ? sent.replace(/^Bearer /, '') : undefined;
    return { status: res.statusCode, claims: body.claims, token };
  }

  /** Call a backend directly, around the gateway, with a token of our choosing. */
  async function direct(backend: TestBackend, token: string | undefined, header = 'authorization'): Promise<number> {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers[header] = header === 'authorization' ? `Bearer ${token}` : token;
    const res = await request(backend.url, { headers });
    await res.body.dump();
    return res.statusCode;
  }

  it('serves the public key, and only the public key, as a JWKS on the admin listener', async () => {
    const res = await request(`${gw.adminUrl}/.well-known/jwks.json`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/jwk-set+json');
    const { keys } = (await res.body.json()) as { keys: Record<string, unknown>[] };
    assert.equal(keys.length, 1);
    assert.equal(keys[0]?.alg, 'ES256');
    assert.equal(keys[0]?.use, 'sig');
    assert.equal(keys[0]?.kty, 'EC');
    assert.equal(typeof keys[0]?.kid, 'string');
    assert.equal(keys[0]?.d, undefined, 'no private key material');
  });

  it('generated the gateway key at first start into a 0600 file next to the config (a temp dir here)', () => {
    const st = statSync(join(gw.dir, DEFAULT_KEY_FILE));
    assert.equal(st.mode & 0o777, 0o600);
  });

  it('the backend verifies the token and receives the identity of the authenticated consumer', async () => {
    const r = await viaGateway('/ledger/accounts', { 'x-api-key': CLIENT_KEY, authorization: 'Bearer forged-by-client' });
    assert.equal(r.status, 200);
    const c = r.claims as Record<string, unknown>;
    assert.equal(c.iss, 'portcullis');
    assert.equal(c.aud, 'ledger');
    assert.equal(c.sub, 'acme');
    assert.equal(c.consumer, 'acme');
    assert.deepEqual(c.groups, ['ops', 'billing']);
    assert.equal(c.scope, undefined, 'no scopes on an API-key identity');
    assert.equal(typeof c.jti, 'string');
    assert.ok((c.exp as number) - (c.iat as number) <= 60);
    const header = decodeProtectedHeader(r.token as string);
    assert.equal(header.typ, 'portcullis-gateway+jwt');
    assert.equal(header.alg, 'ES256');
    const got = ledger.received[ledger.received.length - 1];
    assert.equal(got?.headers['x-api-key'], undefined, 'the client credential was stripped');
  });

  it('a backend called around the gateway, without a token, answers 401 with a Bearer challenge', async () => {
    const res = await request(ledger.url);
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="portcullis-gateway"');
    await res.body.dump();
  });

  it('a token replayed to an upstream with another audience is refused there', async () => {
    const { token } = await viaGateway('/ledger/a');
    assert.equal(await direct(ledger, token), 200, 'still good for its own audience');
    const before = rejected.length;
    assert.equal(await direct(other, token), 401);
    assert.equal(rejected[before], 'audience');
    // And the other way round: other's token does not open ledger.
    const mine = await viaGateway('/other/a', undefined, other);
    assert.equal(mine.status, 200);
    assert.equal(mine.claims?.aud, 'other', 'audience defaults to the upstream name');
    assert.equal(await direct(ledger, mine.token), 401);
  });

  it('a token is refused once it expired', async () => {
    const r = await viaGateway('/short/a', undefined, short, 'x-gateway-token');
    assert.equal(r.status, 200);
    const { exp, iat } = decodeJwt(r.token as string);
    assert.ok((exp as number) - (iat as number) <= 2);
    assert.equal(await direct(short, r.token, 'x-gateway-token'), 200);
    await new Promise((resolve) => setTimeout(resolve, (exp as number) * 1000 - Date.now() + 50));
    const before = rejected.length;
    assert.equal(await direct(short, r.token, 'x-gateway-token'), 401);
    assert.equal(rejected[before], 'expired');
    // The gateway mints a fresh one for the next request.
    assert.equal((await viaGateway('/short/a', undefined, short, 'x-gateway-token')).status, 200);
  });

  it('a tampered token or one for an unknown key is refused', async () => {
    const { token } = await viaGateway('/ledger/a');
    const [h, p, s] = (token as string).split('.');
    const payload = JSON.parse(Buffer.from(p as string, 'base64url').toString()) as Record<string, unknown>;
    payload.sub = 'admin';
    const tampered = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    assert.equal(await direct(ledger, tampered), 401);
  });

  it('reuses a minted token for the same identity (cache hit) and mints per identity', async () => {
    const a = await viaGateway('/ledger/a');
    const b = await viaGateway('/ledger/b');
    assert.equal(a.claims?.jti, b.claims?.jti);
    const anon = await viaGateway('/open-ledger/a', {});
    assert.equal(anon.status, 200);
    assert.equal(anon.claims?.sub, undefined, 'an anonymous route carries no identity claims');
    assert.notEqual(anon.claims?.jti, a.claims?.jti);
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_outbound_token_cache_total', { upstream: 'ledger', result: 'hit' }) >= 1);
    assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'ledger', type: 'jwt', result: 'applied' }) >= 3);
  });

  it('a reload that changes the key publishes the new key before using it, and keeps the old one published', async () => {
    const old = await viaGateway('/ledger/rotation');
    const oldKid = decodeProtectedHeader(old.token as string).kid;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(gw.dir, 'rotated.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    gw.write(config('gatewayIdentity: { key: "${file:rotated.pem}", publishAhead: 1s }'));
    const result = await gw.gw.reload();
    assert.equal(result.ok, true);
    const res = await request(`${gw.adminUrl}/.well-known/jwks.json`);
    const kids = ((await res.body.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    assert.equal(kids.length, 2);
    assert.notEqual(kids[0], oldKid, 'the new key is published at once, first');
    assert.equal(kids[1], oldKid, 'the previous key is still published');
    const during = await viaGateway('/ledger/rotation');
    assert.equal(during.status, 200);
    assert.equal(decodeProtectedHeader(during.token as string).kid, oldKid, 'still signing with the previous key while the new one propagates');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const fresh = await viaGateway('/open-ledger/rotation', {});
    assert.equal(fresh.status, 200, 'a backend that refetched the JWKS verifies the new key');
    assert.equal(decodeProtectedHeader(fresh.token as string).kid, kids[0]);
    assert.equal(await direct(ledger, old.token), 200, 'a token signed before the rotation still verifies');
  });

  it('never logs a token or the private key', () => {
    const text = raw.join('\n');
    assert.equal(/eyJ[A-Za-z0-9_-]+\.eyJ/.test(text), false);
    assert.equal(text.includes('PRIVATE KEY'), false);
  });
});
