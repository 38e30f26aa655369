import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { assertNoSecret, basicAuth, cheapArgon2, lastReceived, observable, send } from '../helpers/auth.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

describe('Basic authenticator', () => {
  let backend: TestBackend;
  let gw: TestGateway;
  const hashes: string[] = [];
  const CHALLENGE = 'Basic realm="staff", charset="UTF-8"';

  before(async () => {
    backend = await startBackend();
    const argon = await cheapArgon2('correct horse');
    const b2b = await bcrypt.hash('bcrypt-pw', 4);
    const b2y = `$2y$${(await bcrypt.hash('php-pw', 4)).slice(4)}`;
    const b2a = `$2a$${(await bcrypt.hash('old-pw', 4)).slice(4)}`;
    const utf8 = await cheapArgon2('pässwörd:with:colons');
    hashes.push(argon, b2b, b2y, b2a, utf8);
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  be: { targets: ["${backend.url}"] }
authenticators:
  staff: { type: basic, realm: staff, maxFailures: 50 }
consumers:
  - { id: acme, groups: [staff], basic: { username: acme, passwordHash: "${argon}" } }
  - { id: bee, basic: { username: bee, passwordHash: "${b2b}" } }
  - { id: php, basic: { username: php, passwordHash: "${b2y}" } }
  - { id: old, basic: { username: old, passwordHash: "${b2a}" } }
  - { id: jurgen, basic: { username: "jürgen", passwordHash: "${utf8}" } }
routes:
  - { name: admin, match: { path: /admin/** }, authenticate: [staff], upstream: be }
  - { name: keep, match: { path: /keep/** }, authenticate: [staff], upstream: be, forwardCredentials: true }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('argon2id: the right password reaches the backend as identity, Authorization stripped', async () => {
    const n = backend.received.length;
    const r = await send(`${gw.url}/admin/x`, { authorization: basicAuth('acme', 'correct horse') });
    assert.equal(r.status, 200);
    const got = lastReceived(backend, n);
    assert.equal(got?.['x-consumer-id'], 'acme');
    assert.equal(got?.['x-auth-subject'], 'acme');
    assert.equal(got?.['x-auth-groups'], 'staff');
    assert.equal(got?.['x-auth-method'], 'basic');
    assert.equal(got?.authorization, undefined);
  });

  for (const [user, pw, label] of [
    ['bee', 'bcrypt-pw', '$2b$'],
    ['php', 'php-pw', '$2y$ (verified as $2b$)'],
    ['old', 'old-pw', '$2a$'],
  ] as const) {
    it(`bcrypt ${label} verifies`, async () => {
      const n = backend.received.length;
      assert.equal((await send(`${gw.url}/admin/x`, { authorization: basicAuth(user, pw) })).status, 200);
      assert.equal(lastReceived(backend, n)?.['x-consumer-id'], user);
    });
  }

  it('UTF-8 usernames and passwords with colons: split on the first colon (RFC 7617 §2)', async () => {
    const n = backend.received.length;
    assert.equal((await send(`${gw.url}/admin/x`, { authorization: basicAuth('jürgen', 'pässwörd:with:colons') })).status, 200);
    const got = lastReceived(backend, n);
    assert.equal(got?.['x-consumer-id'], 'jurgen');
    assert.equal(got?.['x-auth-subject'], 'j%C3%BCrgen');
  });

  it('a wrong password is 401 PTC_ERR_INVALID_CREDENTIALS with the Basic challenge', async () => {
    const n = backend.received.length;
    const r = await send(`${gw.url}/admin/x`, { authorization: basicAuth('acme', 'Correct horse') });
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.equal(r.headers['www-authenticate'], CHALLENGE);
    assert.equal(backend.received.length, n);
  });

  it('an unknown user is answered exactly like a wrong password', async () => {
    const r = await send(`${gw.url}/admin/x`, { authorization: basicAuth('mallory', 'correct horse') });
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_INVALID_CREDENTIALS');
    assert.equal(r.headers['www-authenticate'], CHALLENGE);
  });

  it('no credential is 401 PTC_ERR_UNAUTHENTICATED with the challenge', async () => {
    const r = await send(`${gw.url}/admin/x`);
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_UNAUTHENTICATED');
    assert.equal(r.headers['www-authenticate'], CHALLENGE);
  });

  it('a Bearer token on a Basic-only route is not a Basic credential', async () => {
    const r = await send(`${gw.url}/admin/x`, { authorization: 'Bearer abc' });
    assert.equal(r.status, 401);
    assert.equal(r.code, 'PTC_ERR_UNAUTHENTICATED');
  });

  it('the scheme name is case-insensitive', async () => {
    const value = basicAuth('acme', 'correct horse').replace('Basic', 'bAsIc');
    assert.equal((await send(`${gw.url}/admin/x`, { authorization: value })).status, 200);
  });

  it('forwardCredentials: true keeps Authorization for the backend', async () => {
    const n = backend.received.length;
    const value = basicAuth('acme', 'correct horse');
    assert.equal((await send(`${gw.url}/keep/x`, { authorization: value })).status, 200);
    assert.equal(lastReceived(backend, n)?.authorization, value);
  });

  it('many concurrent requests with the same credential all succeed', async () => {
    const value = basicAuth('bee', 'bcrypt-pw');
    const replies = await Promise.all(Array.from({ length: 20 }, () => send(`${gw.url}/admin/x`, { authorization: value })));
    assert.deepEqual(
      replies.map((r) => r.status),
      replies.map(() => 200),
    );
  });

  it('metrics count allowed and rejected with bounded reasons; no password or hash is ever logged', async () => {
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'staff', outcome: 'allowed' }) >= 5);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'staff', outcome: 'rejected', reason: 'bad_password' }) >= 1);
    assert.ok(metricValue(samples, 'portcullis_auth_decisions_total', { authenticator: 'staff', outcome: 'rejected', reason: 'unknown_user' }) >= 1);
    assert.ok(gw.accessLog().some((l) => l.consumer === 'acme' && l.auth === 'basic'));
    const text = await observable(gw);
    assertNoSecret(text, [
      'correct horse',
      'Correct horse',
      'bcrypt-pw',
      'php-pw',
      'pässwörd',
      basicAuth('acme', 'correct horse').slice(6),
      ...hashes.map((h) => h.slice(-20)),
    ]);
  });
});
