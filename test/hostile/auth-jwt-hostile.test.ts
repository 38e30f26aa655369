/**
 * Hostile bearer JWTs against a real gateway whose keys come from a real OpenID provider.
 * Each case asserts what the client sees (401/503, challenge, problem code), that the backend saw
 * nothing, and the bounded reject reason counted in portcullis_auth_decisions_total.
 */
import assert from 'node:assert/strict';
import { sign as cryptoSign, KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { type IdPKey, signToken, startIdP, type TestIdP } from '../helpers/idp.js';
import { metricValue, scrape } from '../helpers/metrics.js';

const b64 = (v: string | object) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A JWS over exact header and payload texts (jose would re-serialise them), ES256 or RS256. */
function handMade(headerText: string, payloadText: string, key: Pick<IdPKey, 'alg' | 'privateKey'>): string {
  const input = `${b64(headerText)}.${b64(payloadText)}`;
  const keyObject = KeyObject.from(key.privateKey);
  const sig =
    key.alg === 'ES256'
      ? cryptoSign('sha256', Buffer.from(input), { key: keyObject, dsaEncoding: 'ieee-p1363' })
      : cryptoSign('sha256', Buffer.from(input), keyObject);
  return `${input}.${sig.toString('base64url')}`;
}

interface Fixture {
  idp: TestIdP;
  backend: TestBackend;
  gw: TestGateway;
}

async function call(gw: TestGateway, token: string, path = '/api/x') {
  const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    challenge: res.headers['www-authenticate'],
    code: text === '' ? undefined : (JSON.parse(text) as { code?: string }).code,
    text,
  };
}

async function reasonCount(gw: TestGateway, reason: string, authenticator = 'idp'): Promise<number> {
  return metricValue(await scrape(gw.adminUrl), 'portcullis_auth_decisions_total', { authenticator, outcome: 'rejected', reason });
}

/** Assert a 401 invalid_token with `reason` counted once more, and nothing reaching the backend. */
async function assertRejected(f: Fixture, token: string, reason: string, path = '/api/x', authenticator = 'idp') {
  const before = await reasonCount(f.gw, reason, authenticator);
  const seen = f.backend.received.length;
  const r = await call(f.gw, token, path);
  assert.equal(r.status, 401, r.text);
  assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
  assert.equal(r.challenge, 'Bearer realm="portcullis", error="invalid_token"');
  assert.ok(!r.text.includes(token.slice(-20)), 'no token material in the body');
  assert.equal(f.backend.received.length, seen, 'the backend saw nothing');
  assert.equal(await reasonCount(f.gw, reason, authenticator), before + 1, `reason ${reason}`);
}

describe('hostile JWTs', () => {
  const f = {} as Fixture;
  let evil: TestBackend;
  let attacker: { alg: 'ES256'; kid: string; privateKey: CryptoKey; publicKey: CryptoKey };
  let rsaPem: string;

  before(async () => {
    f.idp = await startIdP();
    f.backend = await startBackend();
    evil = await startBackend();
    const pair = await generateKeyPair('ES256', { extractable: true });
    attacker = { alg: 'ES256', kid: 'attacker', ...pair };
    rsaPem = await exportSPKI(f.idp.keys().RS256.publicKey);
    const dir = tempDir();
    writeFileSync(join(dir, 'rsa.pem'), rsaPem);
    f.gw = await startGateway(
      `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
authenticators:
  idp: { type: jwt, issuer: "${f.idp.issuer}", audience: orders-api, jwksUri: "${f.idp.jwksUri}", algorithms: [ES256, RS256], maxTokenBytes: 2kb }
  rsonly: { type: jwt, issuer: "${f.idp.issuer}", audience: orders-api, jwksUri: "${f.idp.jwksUri}", algorithms: [RS256] }
  rsfile: { type: jwt, issuer: "${f.idp.issuer}", audience: orders-api, keyFile: rsa.pem, algorithms: [RS256] }
  strict: { type: jwt, issuer: "${f.idp.issuer}", audience: orders-api, jwksUri: "${f.idp.jwksUri}", algorithms: [ES256], typ: at+jwt, maxTokenAge: 5m, requiredClaims: [jti] }
upstreams:
  echo: { targets: ["${f.backend.url}"] }
routes:
  - { name: api, match: { path: /api/** }, upstream: echo, authenticate: [idp] }
  - { name: rsonly, match: { path: /rs/** }, upstream: echo, authenticate: [rsonly] }
  - { name: rsfile, match: { path: /rsfile/** }, upstream: echo, authenticate: [rsfile] }
  - { name: strict, match: { path: /strict/** }, upstream: echo, authenticate: [strict] }
`,
      { dir },
    );
    // Warm up: keys fetched, a real token accepted.
    const ok = await call(f.gw, await f.idp.mintAccessToken());
    assert.equal(ok.status, 200);
  });
  after(async () => {
    await f.gw.close();
    await f.backend.close();
    await evil.close();
    await f.idp.close();
  });

  const claims = () => ({ iss: f.idp.issuer, aud: 'orders-api', sub: 'orders-client', iat: now(), exp: now() + 300 });

  for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
    it(`refuses alg "${alg}" (unsigned token)`, async () => {
      await assertRejected(f, `${b64({ alg, typ: 'JWT' })}.${b64(claims())}.`, 'bad_alg');
    });
  }

  it('refuses HS256 signed with the RSA public key (PEM bytes as HMAC secret) on an RS256 authenticator', async () => {
    const rs = f.idp.keys().RS256;
    const token = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: rs.kid }).sign(new TextEncoder().encode(rsaPem));
    await assertRejected(f, token, 'bad_alg', '/rs/x', 'rsonly');
    await assertRejected(f, token, 'bad_alg', '/rsfile/x', 'rsfile');
  });

  it('ignores an embedded jwk header: the attacker key is never used', async () => {
    const jwk = await exportJWK(attacker.publicKey);
    const unknown = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: attacker.kid, jwk }).sign(attacker.privateKey);
    await assertRejected(f, unknown, 'unknown_key');
    const realKid = await new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: f.idp.keys().ES256.kid, jwk }).sign(attacker.privateKey);
    await assertRejected(f, realKid, 'bad_signature');
  });

  it('never fetches jku / x5u URLs and never uses x5c', async () => {
    const header = {
      alg: 'ES256',
      kid: f.idp.keys().ES256.kid,
      jku: `${evil.url}/jwks.json`,
      x5u: `${evil.url}/cert.pem`,
      x5c: [randomBytes(300).toString('base64')],
    };
    const token = await new SignJWT(claims()).setProtectedHeader(header).sign(attacker.privateKey);
    await assertRejected(f, token, 'bad_signature');
    const other = await new SignJWT(claims()).setProtectedHeader({ ...header, kid: randomUUID() }).sign(attacker.privateKey);
    await assertRejected(f, other, 'unknown_key');
    await sleep(50);
    assert.equal(evil.received.length, 0, 'no request reached the jku/x5u server');
  });

  it('refuses an expired token (beyond the 60s clock tolerance)', async () => {
    await assertRejected(f, await signToken(f.idp, f.idp.keys().ES256, { iat: now() - 7200, exp: now() - 3600 }), 'expired');
  });

  it('refuses a token not yet valid (nbf in the future)', async () => {
    await assertRejected(f, await signToken(f.idp, f.idp.keys().ES256, { nbf: now() + 3600 }), 'not_yet_valid');
  });

  it('refuses a token issued in the future (iat beyond the tolerance)', async () => {
    await assertRejected(f, await signToken(f.idp, f.idp.keys().ES256, { iat: now() + 3600, exp: now() + 7200 }), 'iat_future');
  });

  it('refuses a token without exp', async () => {
    await assertRejected(f, await signToken(f.idp, f.idp.keys().ES256, { exp: undefined }), 'missing_claim');
  });

  it('refuses a token from another issuer', async () => {
    await assertRejected(f, await signToken(f.idp, f.idp.keys().ES256, { iss: `${f.idp.issuer}/evil` }), 'bad_issuer');
  });

  it('refuses a token for another audience', async () => {
    await assertRejected(f, await signToken(f.idp, f.idp.keys().ES256, { aud: 'billing-api' }), 'bad_audience');
  });

  it('enforces typ, maxTokenAge and requiredClaims when configured', async () => {
    const es = f.idp.keys().ES256;
    await assertRejected(f, await signToken(f.idp, es, { jti: 'x' }, { typ: 'JWT' }), 'bad_typ', '/strict/x', 'strict');
    await assertRejected(f, await signToken(f.idp, es, { jti: 'x', iat: now() - 3600 }), 'too_old', '/strict/x', 'strict');
    await assertRejected(f, await signToken(f.idp, es), 'missing_claim', '/strict/x', 'strict');
    const ok = await call(f.gw, await signToken(f.idp, es, { jti: 'x' }), '/strict/x');
    assert.equal(ok.status, 200);
  });

  it('a flood of random kids fetches the JWKS at most once per cooldown', async () => {
    const before = f.idp.jwksRequests;
    const statuses: number[] = [];
    for (let batch = 0; batch < 8; batch++) {
      const tokens = await Promise.all(
        Array.from({ length: 25 }, () => new SignJWT(claims()).setProtectedHeader({ alg: 'ES256', kid: randomUUID() }).sign(attacker.privateKey)),
      );
      statuses.push(...(await Promise.all(tokens.map(async (t) => (await call(f.gw, t)).status))));
    }
    assert.equal(statuses.length, 200);
    assert.ok(
      statuses.every((s) => s === 401),
      'all refused',
    );
    assert.ok(f.idp.jwksRequests - before <= 1, `JWKS fetched ${f.idp.jwksRequests - before} times`);
  });

  it('refuses duplicate member names in the payload, even when signed with the real key', async () => {
    const es = f.idp.keys().ES256;
    const c = claims();
    const payload = `{"iss":${JSON.stringify(c.iss)},"aud":"orders-api","sub":"orders-client","sub":"admin","iat":${c.iat},"exp":${c.exp}}`;
    await assertRejected(f, handMade(JSON.stringify({ alg: 'ES256', kid: es.kid }), payload, es), 'duplicate_member');
    const escaped = `{"iss":${JSON.stringify(c.iss)},"aud":"orders-api","sub":"orders-client","s\\u0075b":"admin","iat":${c.iat},"exp":${c.exp}}`;
    await assertRejected(f, handMade(JSON.stringify({ alg: 'ES256', kid: es.kid }), escaped, es), 'duplicate_member');
  });

  it('refuses duplicate member names in the protected header', async () => {
    const es = f.idp.keys().ES256;
    const header = `{"alg":"ES256","kid":"${es.kid}","alg":"none"}`;
    await assertRejected(f, handMade(header, JSON.stringify(claims()), es), 'duplicate_member');
  });

  it('refuses an oversized token before decoding it', async () => {
    // The payload is not even base64url JSON: a parser would answer "malformed", the size cap "too_large".
    const token = `${b64({ alg: 'ES256' })}.${'A'.repeat(3000)}.${'B'.repeat(86)}`;
    await assertRejected(f, token, 'too_large');
  });

  it('__proto__ and constructor claims are inert data', async () => {
    const es = f.idp.keys().ES256;
    const c = claims();
    const payload = `{"__proto__":{"polluted":"yes","scope":"admin"},"constructor":{"prototype":{"polluted":"yes"}},"iss":${JSON.stringify(c.iss)},"aud":"orders-api","sub":"orders-client","iat":${c.iat},"exp":${c.exp}}`;
    const seen = f.backend.received.length;
    const r = await call(f.gw, handMade(JSON.stringify({ alg: 'ES256', kid: es.kid }), payload, es));
    assert.equal(r.status, 200, r.text);
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
    const headers = f.backend.received[seen]?.headers ?? {};
    assert.equal(headers['x-auth-scopes'], undefined, 'a scope under __proto__ is not a scope');
    assert.equal(headers['x-auth-subject'], 'orders-client');
  });

  it('caches verified tokens: the same token many times is verified once', async () => {
    const token = await f.idp.mintAccessToken();
    const count = async (result: string) => metricValue(await scrape(f.gw.adminUrl), 'portcullis_auth_token_cache_total', { authenticator: 'idp', result });
    const [hits, misses] = [await count('hit'), await count('miss')];
    for (let i = 0; i < 20; i++) assert.equal((await call(f.gw, token)).status, 200);
    assert.equal((await count('miss')) - misses, 1);
    assert.equal((await count('hit')) - hits, 19);
  });
});

describe('JWKS rotation and outages', () => {
  let idp: TestIdP;
  let backend: TestBackend;
  before(async () => {
    idp = await startIdP();
    backend = await startBackend();
  });
  after(async () => {
    await backend.close();
    await idp.close();
  });

  const gateway = (extra: string) =>
    startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
authenticators:
  idp: { type: jwt, issuer: "${idp.issuer}", audience: orders-api, jwksUri: "${idp.jwksUri}", algorithms: [ES256, RS256], ${extra} }
upstreams:
  echo: { targets: ["${backend.url}"] }
routes:
  - { name: api, match: { path: /api/** }, upstream: echo, authenticate: [idp] }
`);

  it('key rotation while traffic flows: one extra fetch for the new kid; old tokens work while their key is published', async () => {
    const gw = await gateway('jwksCooldown: 100ms');
    try {
      const old = await idp.mintAccessToken();
      assert.equal((await call(gw, old)).status, 200);
      await idp.rotateKeys({ keepOld: true });
      await sleep(150); // past the cooldown
      const before = idp.jwksRequests;
      const fresh = await idp.mintAccessToken();
      const traffic = await Promise.all([call(gw, fresh), call(gw, old), call(gw, fresh), call(gw, old)]);
      assert.deepEqual(
        traffic.map((r) => r.status),
        [200, 200, 200, 200],
      );
      assert.equal(idp.jwksRequests - before, 1, 'exactly one refetch for the new kid');

      // The old key is withdrawn: once the gateway sees the new set, a cached old token is no longer honoured.
      await idp.rotateKeys({ keepOld: false });
      await sleep(150);
      const newest = await idp.mintAccessToken();
      assert.equal((await call(gw, newest)).status, 200);
      assert.equal((await call(gw, old)).status, 401, 'the verified-token cache was emptied when the key set changed');
    } finally {
      await gw.close();
    }
  });

  it('IdP down after warm-up: cached keys keep serving (stale, refresh failing)', async () => {
    const gw = await gateway('jwksMaxAge: 50ms, jwksCooldown: 50ms, jwksTimeout: 500ms');
    try {
      const first = await idp.mintAccessToken();
      const second = await idp.mintAccessToken('orders:write');
      assert.equal((await call(gw, first)).status, 200);
      idp.setDown(true);
      await sleep(120); // keys are now stale; the background refresh will fail
      for (let i = 0; i < 3; i++) {
        assert.equal((await call(gw, second)).status, 200);
        await sleep(60);
      }
      const unknownKid = await signToken(idp, { ...idp.keys().ES256, kid: 'no-such-kid' });
      const r = await call(gw, unknownKid);
      assert.equal(r.status, 401, 'an unknown kid is refused, not 503, while keys are in hand');
      const samples = await scrape(gw.adminUrl);
      assert.ok(metricValue(samples, 'portcullis_auth_remote_calls_total', { authenticator: 'idp', kind: 'jwks', result: 'error' }) >= 1);
    } finally {
      idp.setDown(false);
      await gw.close();
    }
  });

  it('IdP down with no keys at all: 503 PTC_ERR_AUTH_UNAVAILABLE, then recovery', async () => {
    const token = await idp.mintAccessToken();
    idp.setDown(true);
    const gw = await gateway('jwksTimeout: 500ms, jwksCooldown: 100ms');
    try {
      const r = await call(gw, token);
      assert.equal(r.status, 503);
      assert.equal(r.code, 'PTC_ERR_AUTH_UNAVAILABLE');
      assert.equal(await reasonCount(gw, 'jwks_unavailable'), 0, 'counted as unavailable, not rejected');
      idp.setDown(false);
      await sleep(150);
      assert.equal((await call(gw, token)).status, 200);
    } finally {
      idp.setDown(false);
      await gw.close();
    }
  });
});
