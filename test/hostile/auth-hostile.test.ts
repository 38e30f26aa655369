/** Clients that try to forge an identity, smuggle credentials past the gateway, or guess passwords. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import { generateApiKey } from '../../src/cli/keys.js';
import { basicAuth, cheapArgon2, rawNames } from '../helpers/auth.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { BIN } from '../helpers/cli-process.js';
import { exchange } from '../helpers/exchange.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

function head(path: string, lines: readonly string[]): string {
  return [`GET ${path} HTTP/1.1`, 'Host: gw.test', ...lines, 'Connection: close', '', ''].join('\r\n');
}

const code = (body: string) => (JSON.parse(body) as { code: string }).code;

describe('hostile clients against authentication', () => {
  let backend: TestBackend;
  let gw: TestGateway;
  const acme = generateApiKey();
  const FORGED = [
    'X-Consumer-Id: admin',
    'X_Consumer_Id: admin',
    'x-consumer-ID: admin',
    'X-Auth-Subject: root',
    'X-Auth-Groups: admins',
    'X_Auth_Method: jwt',
    'X-Portcullis-Trusted: 1',
  ];

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
  staff: { type: basic, realm: staff, maxFailures: 1000 }
consumers:
  - { id: acme, apiKeys: [${acme.digest}], basic: { username: acme, passwordHash: "${await cheapArgon2('s3cret')}" } }
routes:
  - { name: keyed, match: { path: /keyed/** }, authenticate: [partner-key, query-key], upstream: be }
  - { name: staff, match: { path: /staff/** }, authenticate: [staff], upstream: be }
  - { name: open, match: { path: /open/** }, upstream: be }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('forged identity headers never reach the backend on an anonymous route', async () => {
    const n = backend.received.length;
    const r = await exchange(gw.port, head('/open/x', FORGED));
    assert.equal(r.status, 200);
    assert.equal(backend.received.length, n + 1);
    const names = rawNames(backend);
    for (const bad of ['x-consumer-id', 'x_consumer_id', 'x-auth-subject', 'x-auth-groups', 'x_auth_method', 'x-portcullis-trusted'])
      assert.ok(!names.includes(bad), `${bad} reached the backend`);
  });

  it('forged identity headers are replaced by the real identity on an authenticated route', async () => {
    const n = backend.received.length;
    const r = await exchange(gw.port, head('/keyed/x', [...FORGED, `X-Api-Key: ${acme.key}`]));
    assert.equal(r.status, 200);
    const got = backend.received[n];
    assert.ok(got);
    assert.equal(got.headers['x-consumer-id'], 'acme');
    assert.equal(got.headers['x-auth-subject'], 'acme');
    assert.equal(got.headers['x-auth-method'], 'apiKey');
    assert.equal(got.headers['x-auth-groups'], undefined);
    const names = rawNames(backend);
    assert.equal(names.filter((h) => h === 'x-consumer-id').length, 1);
    assert.ok(!names.includes('x_consumer_id') && !names.includes('x-portcullis-trusted'));
  });

  it('Connection: X-Consumer-Id cannot make the gateway drop the identity it sets', async () => {
    const n = backend.received.length;
    const raw = [`GET /keyed/x HTTP/1.1`, 'Host: gw.test', `X-Api-Key: ${acme.key}`, 'Connection: close, X-Consumer-Id, X-Auth-Method', '', ''].join('\r\n');
    const r = await exchange(gw.port, raw);
    assert.equal(r.status, 200);
    assert.equal(backend.received[n]?.headers['x-consumer-id'], 'acme');
    assert.equal(backend.received[n]?.headers['x-auth-method'], 'apiKey');
  });

  it('Connection: Authorization makes the credential hop-by-hop: it neither authenticates nor reaches the backend', async () => {
    const n = backend.received.length;
    const raw = ['GET /staff/x HTTP/1.1', 'Host: gw.test', `Authorization: ${basicAuth('acme', 's3cret')}`, 'Connection: close, Authorization', '', ''].join(
      '\r\n',
    );
    const r = await exchange(gw.port, raw);
    assert.equal(r.status, 401);
    assert.equal(code(r.body), 'PTC_ERR_UNAUTHENTICATED');
    assert.equal(backend.received.length, n);
  });

  it('Connection: X-Api-Key on an open route: the key is dropped, not forwarded', async () => {
    const n = backend.received.length;
    const raw = ['GET /open/x HTTP/1.1', 'Host: gw.test', `X-Api-Key: ${acme.key}`, 'Connection: close, x-api-key', '', ''].join('\r\n');
    assert.equal((await exchange(gw.port, raw)).status, 200);
    assert.equal(backend.received[n]?.headers['x-api-key'], undefined);
  });

  it('two Authorization headers are refused before any authenticator runs', async () => {
    const r = await exchange(gw.port, head('/staff/x', [`Authorization: ${basicAuth('acme', 's3cret')}`, `Authorization: ${basicAuth('acme', 'other')}`]));
    assert.equal(r.status, 400);
    assert.equal(code(r.body), 'PTC_ERR_DUPLICATE_HEADER');
  });

  it('a key in both the header and the query is ambiguous (400), even when both are valid', async () => {
    const r = await exchange(gw.port, head(`/keyed/x?api_key=${acme.key}`, [`X-Api-Key: ${acme.key}`]));
    assert.equal(r.status, 400);
    assert.equal(code(r.body), 'PTC_ERR_AMBIGUOUS_CREDENTIALS');
  });

  const MALFORMED: readonly [string, string][] = [
    ['bad base64', 'Basic !!!not-base64!!!'],
    ['base64 without a colon', `Basic ${Buffer.from('acmes3cret').toString('base64')}`],
    ['empty', 'Basic'],
    ['empty after the scheme', 'Basic    '],
    ['empty user-id', `Basic ${Buffer.from(':s3cret').toString('base64')}`],
    ['invalid UTF-8', `Basic ${Buffer.from([0x61, 0xff, 0xfe, 0x3a, 0x41]).toString('base64')}`],
    ['a control character', `Basic ${Buffer.from('acme:s3\x00cret').toString('base64')}`],
    ['huge', `Basic ${'QUFB'.repeat(3_000)}`],
    ['truncated base64', `Basic ${Buffer.from('acme:s3cret').toString('base64').slice(0, 5)}`],
  ];
  for (const [label, value] of MALFORMED) {
    it(`malformed Basic (${label}) → 401 PTC_ERR_INVALID_CREDENTIALS, never a 500`, async () => {
      const n = backend.received.length;
      const r = await exchange(gw.port, head('/staff/x', [`Authorization: ${value}`]));
      assert.equal(r.status, 401);
      assert.equal(code(r.body), 'PTC_ERR_INVALID_CREDENTIALS');
      assert.equal(r.headers['www-authenticate'], 'Basic realm="staff", charset="UTF-8"');
      assert.equal(backend.received.length, n);
    });
  }
});

describe('online password guessing', () => {
  let backend: TestBackend;
  let gw: TestGateway;

  before(async () => {
    backend = await startBackend();
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  be: { targets: ["${backend.url}"] }
authenticators:
  staff: { type: basic, realm: staff, maxFailures: 3, failureWindow: 1m }
consumers:
  - { id: acme, basic: { username: acme, passwordHash: "${await cheapArgon2('s3cret')}" } }
routes:
  - { name: staff, match: { path: /staff/** }, authenticate: [staff], upstream: be }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  it('after maxFailures wrong guesses the client gets 429 with Retry-After, even for the right password', async () => {
    for (const guess of ['a', 'b', 'c']) {
      const r = await exchange(gw.port, head('/staff/x', [`Authorization: ${basicAuth('acme', guess)}`]));
      assert.equal(r.status, 401);
    }
    const n = backend.received.length;
    for (const pw of ['d', 's3cret']) {
      const r = await exchange(gw.port, head('/staff/x', [`Authorization: ${basicAuth('acme', pw)}`]));
      assert.equal(r.status, 429);
      assert.equal(code(r.body), 'PTC_ERR_TOO_MANY_FAILURES');
      const retry = Number(r.headers['retry-after']);
      assert.ok(retry > 0 && retry <= 60, `Retry-After ${r.headers['retry-after']}`);
    }
    assert.equal(backend.received.length, n);
    const lines = gw.accessLog().filter((l) => l.status === 429);
    assert.equal(lines.length, 2);
    assert.ok(!JSON.stringify(gw.logs).includes('s3cret'));
  });

  it('a config reload does not forgive the failed guesses', async () => {
    const result = await gw.gw.reload();
    assert.equal(result.ok, true);
    const r = await exchange(gw.port, head('/staff/x', [`Authorization: ${basicAuth('acme', 's3cret')}`]));
    assert.equal(r.status, 429);
    assert.equal(code(r.body), 'PTC_ERR_TOO_MANY_FAILURES');
  });
});

describe('portcullis keys (built CLI)', () => {
  function run(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      child.stdin.end(stdin ?? '');
    });
  }

  it('keys generate prints a ptc_ key (32 random bytes) and its sha256 digest; each run differs', async () => {
    const a = await run(['keys', 'generate']);
    const b = await run(['keys', 'generate']);
    assert.equal(a.code, 0, a.stderr);
    const key = /^key:\s+(ptc_[A-Za-z0-9_-]{43})$/m.exec(a.stdout)?.[1];
    const digest = /^digest:\s+sha256:([0-9a-f]{64})$/m.exec(a.stdout)?.[1];
    assert.ok(key && digest, a.stdout);
    assert.equal(Buffer.from(key.slice(4), 'base64url').length, 32);
    assert.equal(digest, createHash('sha256').update(key).digest('hex'));
    assert.notEqual(a.stdout, b.stdout);
  });

  it('keys hash-password reads stdin and prints an argon2id hash that verifies', async () => {
    const r = await run(['keys', 'hash-password'], 'correct horse battery\n');
    assert.equal(r.code, 0, r.stderr);
    const hash = r.stdout.trim();
    assert.match(hash, /^\$argon2id\$/);
    assert.ok(await argon2.verify(hash, 'correct horse battery'));
    assert.ok(!r.stdout.includes('correct horse') && !r.stderr.includes('correct horse'));
  });

  it('keys hash-password --bcrypt prints a bcrypt hash', async () => {
    const r = await run(['keys', 'hash-password', '--bcrypt'], 'tr0ub4dor');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^\$2b\$12\$/);
    assert.ok(await bcrypt.compare('tr0ub4dor', r.stdout.trim()));
  });

  it('a password is never taken from argv; an empty one is a usage error', async () => {
    const argv = await run(['keys', 'hash-password', 'hunter2'], 'x');
    assert.equal(argv.code, 2);
    assert.ok(!argv.stdout.includes('$argon2'));
    const empty = await run(['keys', 'hash-password'], '');
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /empty password/);
    const unknown = await run(['keys', 'rotate']);
    assert.equal(unknown.code, 2);
  });

  it('--help lists the keys commands', async () => {
    const r = await run(['--help']);
    assert.match(r.stdout, /keys generate/);
    assert.match(r.stdout, /keys hash-password/);
  });
});
