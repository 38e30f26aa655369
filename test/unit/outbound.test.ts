// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${env:…} references are part of the configs under test
/** The outbound phase in isolation: config checks, the request edits, the JWT token cache, the key ring. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Identity } from '../../src/auth/types.js';
import { BuildProblem, ConfigError, formatProblem, parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { setFormField, setJsonField, setQueryParam } from '../../src/outbound/edit.js';
import { type GatewayIdentity, loadGatewayIdentity } from '../../src/outbound/gateway-identity.js';
import { createJwtCredential } from '../../src/outbound/jwt.js';
import { KeyRing } from '../../src/outbound/key-ring.js';
import { gatewayIdentitySchema, jwtSchema } from '../../src/outbound/schema.js';
import type { OutboundBuildContext, OutboundRequest } from '../../src/outbound/types.js';
import { tempDir } from '../helpers/gateway.js';

const BASE = `listeners: [{ address: 127.0.0.1:8080 }]
routes: [{ name: r, match: { path: /** }, upstream: u }]
upstreams:
  u:
    targets: [http://127.0.0.1:9000]
`;

function problemsOf(auth: string): string[] {
  try {
    parseConfig(`${BASE}    auth: ${auth}\n`, 'p.yaml', tempDir());
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map(formatProblem);
  }
  return [];
}

describe('outbound config', () => {
  const table: [string, string, RegExp | undefined][] = [
    ['a header key', '{ type: apiKey, name: X-Key, value: k }', undefined],
    ['a JSON body key', '{ type: apiKey, in: jsonBody, field: a.b, value: k, maxBodyBytes: 1kb }', undefined],
    ['a JSON body key without field', '{ type: apiKey, in: jsonBody, value: k }', /upstreams\.u\.auth\.field: in: jsonBody needs `field`/],
    ['a prototype segment', '{ type: apiKey, in: jsonBody, field: a.__proto__, value: k }', /none named __proto__/],
    ['a gateway-owned header', '{ type: apiKey, name: X-Consumer-Id, value: k }', /identity headers the gateway owns/],
    ['a framing header', '{ type: apiKey, name: Content-Length, value: k }', /managed by the gateway/],
    ['a query key without name', '{ type: apiKey, in: query, value: k }', /in: query needs `name`/],
    ['an empty value', '{ type: apiKey, name: X-Key, value: "" }', /value/],
    ['basic', '{ type: basic, username: u, password: p }', undefined],
    ['a jwt', '{ type: jwt, audience: ledger, ttl: 30s, claims: [sub] }', undefined],
    ['a jwt ttl over 10m', '{ type: jwt, ttl: 11m }', /ttl must be between 1s and 10m/],
    ['an unknown claim', '{ type: jwt, claims: [email] }', /claims/],
    ['an unknown type', '{ type: kerberos }', /upstreams\.u\.auth\.type/],
  ];
  for (const [what, auth, expected] of table) {
    it(`${expected === undefined ? 'accepts' : 'refuses'} ${what}`, () => {
      const ps = problemsOf(auth);
      if (expected === undefined) assert.deepEqual(ps, []);
      else
        assert.ok(
          ps.some((p) => expected.test(p)),
          ps.join('\n'),
        );
    });
  }

  it('gatewayIdentity takes key or keyFile, not both', () => {
    const r = gatewayIdentitySchema.safeParse({ key: 'x', keyFile: 'k.pem' });
    assert.equal(r.success, false);
    assert.deepEqual(gatewayIdentitySchema.parse({}).issuer, 'portcullis');
    assert.deepEqual(gatewayIdentitySchema.parse({}).algorithm, 'ES256');
  });
});

describe('request edits', () => {
  it('setQueryParam replaces every copy and keeps the other pairs byte for byte', () => {
    assert.equal(setQueryParam('/a', 'k', 'v w'), '/a?k=v%20w');
    assert.equal(setQueryParam('/a?x=%2F&k=1&k=2&y', 'k', 'v'), '/a?x=%2F&y&k=v');
    assert.equal(setQueryParam('/a?k=1', 'k', 'v'), '/a?k=v');
    assert.equal(setQueryParam('/a?', 'k', 'v'), '/a?k=v');
  });

  it('setJsonField walks and creates objects, and refuses a non-object document', () => {
    const doc: Record<string, unknown> = { a: { b: 1 }, c: [1] };
    assert.equal(setJsonField(doc, ['a', 'key'], 's'), true);
    assert.equal(setJsonField(doc, ['c', 'x'], 's'), true);
    assert.deepEqual(doc, { a: { b: 1, key: 's' }, c: { x: 's' } });
    assert.equal(setJsonField([1], ['a'], 's'), false);
    assert.equal(setJsonField('x', ['a'], 's'), false);
    const parsed = JSON.parse('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
    setJsonField(parsed, ['__proto__', 'k'], 's');
    assert.equal(({} as Record<string, unknown>).k, undefined, 'no prototype pollution');
  });

  it('setFormField replaces the field and appends it encoded', () => {
    assert.equal(setFormField('', 'key', 'a&b'), 'key=a%26b');
    assert.equal(setFormField('a=1&key=x&b=2', 'key', 'v'), 'a=1&b=2&key=v');
  });
});

describe('gateway identity', () => {
  it('generates a key at first start, 0600, and loads the same one next time', async () => {
    const dir = tempDir('ptc-identity-');
    const cfg = gatewayIdentitySchema.parse({ keyFile: 'sub/key.pem' });
    const a = await loadGatewayIdentity(cfg, dir);
    assert.equal(statSync(join(dir, 'sub/key.pem')).mode & 0o777, 0o600);
    const b = await loadGatewayIdentity(cfg, dir);
    assert.equal(a.kid, b.kid);
    assert.equal(a.publicJwk.d, undefined);
    // Concurrent first starts (cluster workers) agree on one key.
    const dir2 = tempDir('ptc-identity-');
    const all = await Promise.all([1, 2, 3, 4].map(() => loadGatewayIdentity(cfg, dir2)));
    assert.equal(new Set(all.map((i) => i.kid)).size, 1);
  });

  it('refuses a key that does not fit the algorithm, without echoing it', async () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const cfg = gatewayIdentitySchema.parse({ key: pem, algorithm: 'RS256' });
    await assert.rejects(loadGatewayIdentity(cfg, tempDir()), (err: unknown) => err instanceof BuildProblem && /RS256 needs an RSA key/.test(err.message));
    const junk = gatewayIdentitySchema.parse({ key: 'not-a-key-at-all' });
    await assert.rejects(
      loadGatewayIdentity(junk, tempDir()),
      (err: unknown) => err instanceof BuildProblem && !err.message.includes('not-a-key-at-all') && err.path.join('.') === 'gatewayIdentity.key',
    );
  });

  it('signs with EdDSA and RS256 too', async () => {
    for (const algorithm of ['EdDSA', 'RS256'] as const) {
      const id = await loadGatewayIdentity(gatewayIdentitySchema.parse({ algorithm }), tempDir());
      assert.equal(id.publicJwk.alg, algorithm);
      assert.equal((await id.sign({ aud: 'x' })).split('.').length, 3);
    }
  });
});

describe('jwt token cache', () => {
  const identity = (subject: string): Identity => ({
    method: 'apiKey',
    authenticator: 'k',
    subject,
    consumer: undefined,
    groups: [],
    scopes: [],
    claims: {},
  });
  const fakeIdentity = (): GatewayIdentity & { signed: number } => {
    const id = {
      issuer: 'portcullis',
      algorithm: 'ES256' as const,
      kid: 'k',
      publicJwk: { kty: 'EC', kid: 'k', alg: 'ES256' as const, use: 'sig' as const },
      publishAhead: 0,
      signed: 0,
      sign: async (claims: Record<string, unknown>) => {
        id.signed++;
        return `token-${String(claims.sub)}-${id.signed}`;
      },
      handOver() {},
    };
    return id;
  };
  const ctx = (identity: GatewayIdentity): OutboundBuildContext =>
    ({
      upstream: 'u',
      path: ['upstreams', 'u', 'auth'],
      dir: '.',
      maxBodyBytes: 1024,
      metrics: createMetrics(),
      logger: createLogger('silent'),
      identity,
    }) as unknown as OutboundBuildContext;
  const req = (id: Identity | undefined): OutboundRequest =>
    ({ method: 'GET', path: '/', headers: {}, identity: id, upstream: 'u' }) as unknown as OutboundRequest;

  it('reuses a token per identity for half its ttl, single-flight, and bounds the cache', async () => {
    let t = 1_000_000_000_000;
    const id = fakeIdentity();
    const cred = createJwtCredential(jwtSchema.parse({ type: 'jwt', ttl: '60s', cacheSize: 2 }), ctx(id), () => t);
    const a1 = req(identity('a'));
    const a2 = req(identity('a'));
    await Promise.all([cred.apply(a1), cred.apply(a2)]);
    assert.equal(id.signed, 1, 'concurrent requests share one signature');
    assert.equal(a1.headers.authorization, a2.headers.authorization);
    t += 29_000;
    await cred.apply(req(identity('a')));
    assert.equal(id.signed, 1, 'reused within half the ttl');
    t += 2_000;
    await cred.apply(req(identity('a')));
    assert.equal(id.signed, 2, 'minted again after half the ttl');
    await cred.apply(req(identity('b')));
    await cred.apply(req(identity('c')));
    await cred.apply(req(identity('a')));
    assert.equal(id.signed, 5, 'a was evicted by the bounded cache');
  });

  it('with cache: false every request gets its own token', async () => {
    const id = fakeIdentity();
    const cred = createJwtCredential(jwtSchema.parse({ type: 'jwt', cache: false }), ctx(id));
    await cred.apply(req(identity('a')));
    await cred.apply(req(identity('a')));
    assert.equal(id.signed, 2);
  });
});

describe('key ring', () => {
  it('publishes a new key before use and keeps the old one past the longest token lifetime', async () => {
    let t = 0;
    const ring = new KeyRing(() => t);
    const dir = tempDir();
    const one = await loadGatewayIdentity(gatewayIdentitySchema.parse({ keyFile: 'one.pem' }), dir);
    const two = await loadGatewayIdentity(gatewayIdentitySchema.parse({ keyFile: 'two.pem', publishAhead: '30s' }), dir);
    ring.publish(one);
    assert.deepEqual(kids(ring), [one.kid]);
    ring.publish(one);
    assert.deepEqual(kids(ring), [one.kid], 'a reload with the same key changes nothing');
    t = 1_000;
    ring.publish(two);
    assert.deepEqual(kids(ring), [two.kid, one.kid]);
    t = 1_000 + 30_000 + 600_000 + 59_000;
    assert.deepEqual(kids(ring), [two.kid, one.kid]);
    t = 1_000 + 30_000 + 600_000 + 61_000;
    assert.deepEqual(kids(ring), [two.kid]);
    ring.publish(undefined);
    assert.deepEqual(kids(ring), [two.kid], 'removing jwt upstreams keeps the last key published for the overlap');
  });
});

function kids(ring: KeyRing): string[] {
  return (JSON.parse(ring.jwks()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
}
