import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { signToken, startIdP, type TestIdP } from '../helpers/idp.js';
import { metricValue, scrape } from '../helpers/metrics.js';
import { createCA, createLeaf } from '../helpers/pki.js';

interface Problem {
  code: string;
}

const HMAC_SECRET = randomBytes(32).toString('base64url');

describe('jwt authenticator (real OpenID provider)', () => {
  let idp: TestIdP;
  let backend: TestBackend;
  let gw: TestGateway;
  let pemKey: { privateKey: import('node:crypto').KeyObject };
  before(async () => {
    idp = await startIdP({ extraClaims: { groups: ['buyers'] } });
    backend = await startBackend();
    const dir = tempDir();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    pemKey = { privateKey: rsa.privateKey };
    writeFileSync(join(dir, 'local.pem'), rsa.publicKey.export({ type: 'spki', format: 'pem' }));
    gw = await startGateway(
      `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
authenticators:
  idp: { type: jwt, issuer: "${idp.issuer}", audience: orders-api, jwksUri: "${idp.jwksUri}", algorithms: [ES256, RS256] }
  local: { type: jwt, issuer: local-issuer, audience: [orders-api, other], keyFile: local.pem, algorithms: [RS256], scopesClaim: perms, groupsClaim: roles }
  hmac: { type: jwt, issuer: hmac-issuer, audience: orders-api, secret: "${HMAC_SECRET}", algorithms: [HS256], consumerClaim: client_id }
consumers:
  - { id: orders-client, groups: [partners] }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - { name: api, match: { path: /api/** }, upstream: echo, authenticate: [idp] }
  - { name: fwd, match: { path: /fwd/** }, upstream: echo, authenticate: [idp], forwardCredentials: true }
  - { name: local, match: { path: /local/** }, upstream: echo, authenticate: [local] }
  - { name: hmac, match: { path: /hmac/** }, upstream: echo, authenticate: [hmac] }
`,
      { dir },
    );
  });
  after(async () => {
    await gw.close();
    await backend.close();
    await idp.close();
  });

  const get = (path: string, token?: string) => request(`${gw.url}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });

  it('accepts a real ES256 access token and tells the backend who called', async () => {
    const token = await idp.mintAccessToken('orders:read orders:write');
    const before = backend.received.length;
    const res = await get('/api/orders', token);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const seen = backend.received[before]?.headers;
    assert.ok(seen !== undefined);
    assert.equal(seen['x-consumer-id'], 'orders-client');
    assert.equal(seen['x-auth-subject'], 'orders-client');
    assert.equal(seen['x-auth-scopes'], 'orders:read orders:write');
    assert.equal(seen['x-auth-method'], 'jwt');
    assert.equal(seen['x-auth-groups'], 'buyers,partners', 'token groups then consumer groups');
    assert.equal(seen.authorization, undefined, 'the token is not forwarded');
  });

  it('accepts a real RS256 access token (second algorithm of the pinned list)', async () => {
    const token = await idp.mintAccessToken('orders:read', 'urn:orders-api:rs256');
    const res = await get('/api/orders', token);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  });

  it('forwards the Authorization header only with forwardCredentials: true', async () => {
    const token = await idp.mintAccessToken();
    const before = backend.received.length;
    const res = await get('/fwd/x', token);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    assert.equal(backend.received[before]?.headers.authorization, `Bearer ${token}`);
  });

  it('answers 401 with a Bearer challenge when no token is presented', async () => {
    const before = backend.received.length;
    const res = await get('/api/orders');
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="portcullis"');
    assert.equal(((await res.body.json()) as Problem).code, 'PTC_ERR_UNAUTHENTICATED');
    assert.equal(backend.received.length, before);
  });

  it('answers 401 invalid_token for a tampered token, and the backend sees nothing', async () => {
    const token = await idp.mintAccessToken();
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    payload.scope = 'admin';
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
    const before = backend.received.length;
    const res = await get('/api/orders', forged);
    assert.equal(res.statusCode, 401);
    assert.equal(res.headers['www-authenticate'], 'Bearer realm="portcullis", error="invalid_token"');
    const body = await res.body.text();
    assert.equal((JSON.parse(body) as Problem).code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.ok(!body.includes(s), 'the token is not echoed');
    assert.equal(backend.received.length, before);
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'idp', outcome: 'rejected', reason: 'bad_signature' }) >= 1);
  });

  it('an unknown subject is an authenticated principal without consumer metadata', async () => {
    const token = await signToken(idp, idp.keys().ES256, { sub: 'stranger', scope: undefined, scp: ['a', 'b'] });
    const before = backend.received.length;
    const res = await get('/api/orders', token);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const seen = backend.received[before]?.headers ?? {};
    assert.equal(seen['x-consumer-id'], undefined);
    assert.equal(seen['x-auth-subject'], 'stranger');
    assert.equal(seen['x-auth-scopes'], 'a b', 'scp (array) is read when there is no scope claim');
  });

  it('an opaque bearer token is not a JWT: 401 without invalid_token on a jwt-only route', async () => {
    const res = await get('/api/orders', 'opaque-token-value');
    assert.equal(res.statusCode, 401);
    assert.equal(((await res.body.json()) as Problem).code, 'PTC_ERR_UNAUTHENTICATED');
  });

  it('verifies with a local PEM key file, with custom scope/group claims and an audience list', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ perms: 'r w', roles: ['ops'] })
      .setProtectedHeader({ alg: 'RS256', kid: 'whatever' })
      .setIssuer('local-issuer')
      .setAudience('other')
      .setSubject('orders-client')
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(pemKey.privateKey);
    const before = backend.received.length;
    const res = await get('/local/x', token);
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    const seen = backend.received[before]?.headers ?? {};
    assert.equal(seen['x-auth-scopes'], 'r w');
    assert.equal(seen['x-auth-groups'], 'ops,partners');
  });

  it('verifies HS256 with a configured secret and maps the consumer from consumerClaim', async () => {
    const now = Math.floor(Date.now() / 1000);
    const sign = (secret: string) =>
      new SignJWT({ client_id: 'orders-client' })
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('hmac-issuer')
        .setAudience('orders-api')
        .setSubject('svc-1')
        .setIssuedAt(now)
        .setExpirationTime(now + 60)
        .sign(new TextEncoder().encode(secret));
    const before = backend.received.length;
    const ok = await get('/hmac/x', await sign(HMAC_SECRET));
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    assert.equal(backend.received[before]?.headers['x-consumer-id'], 'orders-client');
    assert.equal(backend.received[before]?.headers['x-auth-subject'], 'svc-1');
    const bad = await get('/hmac/x', await sign(randomBytes(32).toString('base64url')));
    assert.equal(bad.statusCode, 401);
    await bad.body.dump();
  });
});

describe('jwt authenticator: JWKS as a JSON key file', () => {
  it('selects the key by kid from a local JWKS file', async () => {
    const backend = await startBackend();
    const dir = tempDir();
    const a = await generateKeyPair('ES256');
    const b = await generateKeyPair('ES256');
    const keys = [
      { ...(await exportJWK(a.publicKey)), kid: 'a' },
      { ...(await exportJWK(b.publicKey)), kid: 'b' },
    ];
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys }));
    const gw = await startGateway(
      `
listeners: [{ address: "127.0.0.1:0" }]
authenticators:
  files: { type: jwt, issuer: iss, audience: aud, keyFile: jwks.json, algorithms: [ES256] }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - { name: api, match: { path: /** }, upstream: echo, authenticate: [files] }
`,
      { dir },
    );
    try {
      const token = (kid: string, key: typeof a.privateKey) =>
        new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('iss').setAudience('aud').setSubject('s').setExpirationTime('1m').sign(key);
      const good = await request(`${gw.url}/x`, { headers: { authorization: `Bearer ${await token('b', b.privateKey)}` } });
      assert.equal(good.statusCode, 200);
      await good.body.dump();
      const wrongKid = await request(`${gw.url}/x`, { headers: { authorization: `Bearer ${await token('a', b.privateKey)}` } });
      assert.equal(wrongKid.statusCode, 401);
      await wrongKid.body.dump();
    } finally {
      await gw.close();
      await backend.close();
    }
  });
});

describe('jwt authenticator: RFC 8705 certificate-bound tokens over mutual TLS', () => {
  let idp: TestIdP;
  let backend: TestBackend;
  let gw: TestGateway;
  let dir: string;
  let alice: { cert: string; key: string; thumbprint: string };
  let mallory: { cert: string; key: string };
  let ca: string;
  before(async () => {
    idp = await startIdP();
    backend = await startBackend();
    dir = tempDir();
    const authority = createCA(dir);
    const server = createLeaf(dir, authority, { cn: 'localhost', usage: 'server' });
    const a = createLeaf(dir, authority, { cn: 'alice', usage: 'client' });
    const m = createLeaf(dir, authority, { cn: 'mallory', usage: 'client' });
    ca = authority.certPem;
    alice = { cert: a.certPem, key: a.keyPem, thumbprint: createHash('sha256').update(new X509Certificate(a.certPem).raw).digest('base64url') };
    mallory = { cert: m.certPem, key: m.keyPem };
    gw = await startGateway(
      `
listeners:
  - address: "127.0.0.1:0"
    tls: { cert: "${server.cert}", key: "${server.key}", clientCa: "${authority.cert}", http2: false }
authenticators:
  idp: { type: jwt, issuer: "${idp.issuer}", audience: orders-api, jwksUri: "${idp.jwksUri}", algorithms: [ES256] }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - { name: api, match: { path: /** }, upstream: echo, authenticate: [idp] }
`,
      { dir },
    );
  });
  after(async () => {
    await gw.close();
    await backend.close();
    await idp.close();
  });

  const call = async (token: string, client?: { cert: string; key: string }) => {
    const dispatcher = new Agent({ connect: { ca, ...(client ?? {}), servername: 'localhost' } });
    try {
      const res = await request(`${gw.url}/x`, { dispatcher, headers: { authorization: `Bearer ${token}` } });
      await res.body.dump();
      return res.statusCode;
    } finally {
      await dispatcher.close();
    }
  };

  it('accepts the bound token from the certificate it is bound to', async () => {
    const token = await signToken(idp, idp.keys().ES256, { cnf: { 'x5t#S256': alice.thumbprint } });
    assert.equal(await call(token, alice), 200);
  });

  it('refuses it from another certificate, and without one (cnf_mismatch)', async () => {
    const token = await signToken(idp, idp.keys().ES256, { cnf: { 'x5t#S256': alice.thumbprint } });
    assert.equal(await call(token, mallory), 401);
    assert.equal(await call(token), 401);
    // the verified-token cache does not skip the binding check
    assert.equal(await call(token, alice), 200);
    assert.equal(await call(token, mallory), 401);
  });

  it('refuses a DPoP-bound token presented as a bearer token', async () => {
    const token = await signToken(idp, idp.keys().ES256, { cnf: { jkt: 'abc' } });
    assert.equal(await call(token, alice), 401);
  });
});
