import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { parseBasic } from '../../src/auth/basic.js';
import { buildConsumers, normaliseDn } from '../../src/auth/consumers.js';
import { cacheSeconds } from '../../src/auth/external.js';
import { createFailureLimiter } from '../../src/auth/failure-limiter.js';
import { subjectAltNames, subjectDn } from '../../src/auth/mtls.js';
import { checkPasswordHash } from '../../src/auth/password-hash.js';
import { createSingleFlight, TokenCache } from '../../src/auth/token-cache.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('parseBasic (RFC 7617)', () => {
  const cases: [string, string, { username: string; password: string } | undefined][] = [
    ['plain', `Basic ${b64('acme:pw')}`, { username: 'acme', password: 'pw' }],
    ['split on the first colon', `Basic ${b64('a:b:c')}`, { username: 'a', password: 'b:c' }],
    ['empty password', `Basic ${b64('a:')}`, { username: 'a', password: '' }],
    ['UTF-8', `Basic ${b64('jürgen:pässwörd')}`, { username: 'jürgen', password: 'pässwörd' }],
    ['case-insensitive scheme', `basic ${b64('a:b')}`, { username: 'a', password: 'b' }],
    ['unpadded base64', `Basic ${b64('ab:c').replace(/=+$/, '')}`, { username: 'ab', password: 'c' }],
    ['no colon', `Basic ${b64('acme')}`, undefined],
    ['empty user-id', `Basic ${b64(':pw')}`, undefined],
    ['bad base64', 'Basic a*b=', undefined],
    ['impossible length', 'Basic QUFBQQ', undefined],
    ['padding in the middle', 'Basic QQ==QUFB', undefined],
    ['invalid UTF-8', `Basic ${Buffer.from([0xc3, 0x28, 0x3a, 0x61]).toString('base64')}`, undefined],
    ['control character', `Basic ${b64('a:b\nc')}`, undefined],
    ['no token', 'Basic', undefined],
    ['other scheme', `Bearer ${b64('a:b')}`, undefined],
    ['scheme prefix only', `Basicx ${b64('a:b')}`, undefined],
    ['too long', `Basic ${'QUFB'.repeat(2000)}`, undefined],
  ];
  for (const [label, value, expected] of cases) it(label, () => assert.deepEqual(parseBasic(value), expected));
});

describe('certificate identities', () => {
  const cert = (subject: Record<string, string | string[]>, san?: string) => ({ subject, subjectaltname: san }) as unknown as PeerCertificate;

  it('subjectDn renders RFC 4514 order with escaping', () => {
    assert.equal(subjectDn(cert({ C: 'US', O: 'Acme, Inc', OU: ['a', 'b'], CN: 'acme' })), 'CN=acme,OU=b,OU=a,O=Acme\\, Inc,C=US');
  });

  it('normaliseDn: RFC 4514, OpenSSL slash form, Node newline form and spacing all compare equal', () => {
    const forms = [
      'CN=acme,OU=b,OU=a,O=Acme\\, Inc,C=US',
      '/C=US/O=Acme, Inc/OU=a/OU=b/CN=acme',
      'C=US\nO=Acme\\, Inc\nOU=a\nOU=b\nCN=acme',
      'cn=acme, ou=a, ou=b, o="Acme, Inc", c=US',
    ];
    const keys = new Set(forms.map(normaliseDn));
    assert.equal(keys.size, 1, [...keys].join(' | '));
    assert.notEqual(normaliseDn('CN=acme'), normaliseDn('CN=Acme'));
    assert.notEqual(normaliseDn('CN=acme,O=x'), normaliseDn('CN=acme'));
  });

  it('a certificate subject finds the consumer configured with either DN order', () => {
    const dir = buildConsumers([
      { id: 'acme', groups: [], apiKeys: [], metadata: {}, certificate: { subject: 'CN=acme,O=Acme' } },
      { id: 'svc', groups: [], apiKeys: [], metadata: {}, certificate: { uri: 'spiffe://example.org/svc' } },
    ]);
    assert.equal(dir.byCertificate('subject', subjectDn(cert({ O: 'Acme', CN: 'acme' })))?.id, 'acme');
    assert.equal(dir.byCertificate('subject', subjectDn(cert({ CN: 'acme' }))), undefined);
    assert.equal(dir.byCertificate('uri', 'spiffe://example.org/svc')?.id, 'svc');
  });

  it('subjectAltNames parses Node’s escaped form', () => {
    assert.deepEqual(subjectAltNames(cert({}, 'DNS:a.example, URI:spiffe://x/y, IP Address:127.0.0.1')), [
      ['DNS', 'a.example'],
      ['URI', 'spiffe://x/y'],
      ['IP Address', '127.0.0.1'],
    ]);
    assert.deepEqual(subjectAltNames(cert({}, 'URI:"spiffe://x/a, DNS:evil", DNS:b')), [
      ['URI', 'spiffe://x/a, DNS:evil'],
      ['DNS', 'b'],
    ]);
    assert.deepEqual(subjectAltNames(cert({})), []);
  });
});

describe('failure limiter', () => {
  it('blocks after maxFailures for a full window, per key, with injected time', () => {
    let t = 0;
    const l = createFailureLimiter({ maxFailures: 3, windowMs: 1_000, now: () => t });
    l.fail('a');
    l.fail('a');
    assert.equal(l.blockedFor('a'), 0);
    t = 500;
    l.fail('a');
    assert.equal(l.blockedFor('a'), 1_000);
    assert.equal(l.blockedFor('b'), 0);
    t = 1_400;
    assert.equal(l.blockedFor('a'), 100);
    t = 1_500;
    assert.equal(l.blockedFor('a'), 0);
  });

  it('failures older than the window are forgotten', () => {
    let t = 0;
    const l = createFailureLimiter({ maxFailures: 2, windowMs: 100, now: () => t });
    l.fail('a');
    t = 150;
    l.fail('a');
    assert.equal(l.blockedFor('a'), 0);
  });

  it('memory is bounded', () => {
    const l = createFailureLimiter({ maxFailures: 2, windowMs: 60_000, maxEntries: 100 });
    for (let i = 0; i < 10_000; i++) l.fail(`10.0.${i >> 8}.${i & 255}`);
    assert.ok(l.size <= 100);
  });
});

describe('bounded expiring cache and single-flight', () => {
  it('expires entries and stays under its cap', () => {
    let t = 0;
    const c = new TokenCache<number>(3, () => t);
    c.set('a', 1, t + 100);
    assert.equal(c.get('a'), 1);
    t = 100;
    assert.equal(c.get('a'), undefined);
    for (let i = 0; i < 10; i++) c.set(`k${i}`, i, t + 1_000);
    assert.equal(c.size, 3);
    assert.equal(c.get('k9'), 9);
    assert.equal(c.get('k0'), undefined);
    c.set('zero', 0, t);
    assert.equal(c.get('zero'), undefined);
  });

  it('shares one call per key while it is in flight, then forgets it', async () => {
    const flight = createSingleFlight<number>();
    let calls = 0;
    const start = () => Promise.resolve(++calls);
    const [a, b] = await Promise.all([flight('k', start), flight('k', start)]);
    assert.deepEqual([a, b, calls], [1, 1, 1]);
    assert.equal(await flight('k', start), 2);
    await assert.rejects(
      flight('e', () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(await flight('e', start), 3);
  });
});

describe('Cache-Control for external decisions', () => {
  const cases: [string | undefined, number][] = [
    [undefined, 0],
    ['max-age=30', 30],
    ['public, max-age=30', 30],
    ['max-age=30, s-maxage=5', 5],
    ['no-store, max-age=30', 0],
    ['private, max-age=30', 0],
    ['no-cache', 0],
    ['max-age=-1', 0],
    ['max-age=abc', 0],
  ];
  for (const [value, seconds] of cases) it(`${value ?? '(none)'} → ${seconds}s`, () => assert.equal(cacheSeconds(value), seconds));
});

describe('password hash format', () => {
  it('accepts argon2 (either parameter order) and bcrypt, rejects the rest', () => {
    assert.equal(checkPasswordHash('$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo'), undefined);
    assert.equal(checkPasswordHash('$argon2id$v=19$m=65536,p=4,t=3$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo'), undefined);
    assert.equal(checkPasswordHash(`$2y$10$${'a'.repeat(53)}`), undefined);
    assert.ok(checkPasswordHash('$argon2id$garbage') !== undefined);
    assert.ok(checkPasswordHash('$2b$10$short') !== undefined);
  });
});

describe('Basic authenticator hot path', () => {
  it('a recent success is not re-hashed; concurrent identical attempts share one verification', async () => {
    const { createBasicAuthenticator } = await import('../../src/auth/basic.js');
    const { createMetrics } = await import('../../src/observability/metrics.js');
    const { createLogger } = await import('../../src/observability/logger.js');
    const argon2 = (await import('argon2')).default;
    const hash = await argon2.hash('pw', { type: argon2.argon2id, memoryCost: 1024, timeCost: 1, parallelism: 1 });
    const real = buildConsumers([{ id: 'acme', groups: [], apiKeys: [], metadata: {}, basic: { username: 'acme', passwordHash: hash } }]);
    let lookups = 0;
    const consumers = {
      ...real,
      byUsername: (u: string) => {
        lookups++;
        return real.byUsername(u);
      },
    };
    const a = await createBasicAuthenticator(
      'staff',
      { type: 'basic', realm: 'staff', maxFailures: 10, failureWindow: 60_000 },
      { consumers, dir: '.', metrics: createMetrics(), logger: createLogger('silent'), path: ['authenticators', 'staff'] },
    );
    const req = (authorization: string) => ({
      method: 'GET',
      path: '/',
      query: '',
      host: 'h',
      scheme: 'http' as const,
      headers: { authorization },
      clientIp: '10.0.0.1',
      peerCertificate: () => undefined,
    });
    const good = `Basic ${b64('acme:pw')}`;
    const first = await Promise.all([a.authenticate(req(good)), a.authenticate(req(good))]);
    assert.deepEqual(
      first.map((o) => o.kind),
      ['authenticated', 'authenticated'],
    );
    const before = lookups;
    for (let i = 0; i < 5; i++) assert.equal((await a.authenticate(req(good))).kind, 'authenticated');
    assert.equal(lookups, before, 'cache hits do not look up or verify again');
    const bad = await a.authenticate(req(`Basic ${b64('acme:nope')}`));
    assert.equal(bad.kind, 'rejected');
    assert.equal(a.present(req(good)), true);
    assert.equal(a.present(req('Bearer x')), false);
  });
});
