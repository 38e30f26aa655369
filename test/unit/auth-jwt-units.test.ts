/** Units of the jwt authenticator that need an injected clock or fetch: the JWKS cache and the duplicate-member scanner. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors, exportJWK, generateKeyPair } from 'jose';
import { JwksCache, JwksUnavailableError } from '../../src/auth/jwks-cache.js';
import { hasDuplicateMembers } from '../../src/auth/jws-scan.js';
import { TokenCache } from '../../src/auth/token-cache.js';

describe('hasDuplicateMembers', () => {
  const cases: [string, boolean][] = [
    ['{"a":1,"b":2}', false],
    ['{"a":1,"a":2}', true],
    ['{"a":1,"\\u0061":2}', true],
    ['{"a":{"b":1},"b":2}', false],
    ['{"a":{"b":1,"b":2}}', true],
    ['{"a":[{"x":1},{"x":2}]}', false],
    ['{"a":"\\"a\\":","b":1}', false],
    ['{"k":[1,"a","a"],"a":0}', false],
  ];
  for (const [text, dup] of cases) it(`${text} → ${dup}`, () => assert.equal(hasDuplicateMembers(text), dup));
});

describe('TokenCache', () => {
  it('expires entries and evicts the least recently used', () => {
    let t = 0;
    const c = new TokenCache<number>(2, () => t);
    c.set('a', 1, 100);
    c.set('b', 2, 100);
    assert.equal(c.get('a'), 1); // a is now most recent
    c.set('c', 3, 100);
    assert.equal(c.get('b'), undefined);
    assert.equal(c.get('a'), 1);
    t = 100;
    assert.equal(c.get('a'), undefined);
  });
});

describe('JwksCache (injected fetch and clock)', async () => {
  const key = async (kid: string) => ({ ...(await exportJWK((await generateKeyPair('ES256')).publicKey)), kid, alg: 'ES256' });
  const k1 = await key('k1');
  const k2 = await key('k2');

  function fixture(opts: { cooldown?: number; maxAge?: number } = {}) {
    let t = 1_000_000;
    let keys = [k1];
    let down = false;
    let calls = 0;
    let changes = 0;
    const release: (() => void)[] = [];
    let hold = false;
    const fakeFetch = (async () => {
      calls++;
      if (hold) await new Promise<void>((r) => release.push(r));
      if (down) throw new TypeError('fetch failed');
      return new Response(JSON.stringify({ keys }), { status: 200 });
    }) as typeof fetch;
    const cache = new JwksCache({
      url: 'http://127.0.0.1:1/jwks',
      timeout: 1000,
      maxAge: opts.maxAge ?? 60_000,
      cooldown: opts.cooldown ?? 30_000,
      fetch: fakeFetch,
      now: () => t,
      onChange: () => changes++,
    });
    return {
      cache,
      tick: (ms: number) => (t += ms),
      setKeys: (k: typeof keys) => (keys = k),
      setDown: (d: boolean) => (down = d),
      hold: (h: boolean) => {
        hold = h;
        if (!h) for (const r of release.splice(0)) r();
      },
      calls: () => calls,
      changes: () => changes,
    };
  }

  it('unknown kids refetch at most once per cooldown, single-flight', async () => {
    const f = fixture();
    await f.cache.getKey({ alg: 'ES256', kid: 'k1' });
    assert.equal(f.calls(), 1);
    f.tick(30_000);
    f.hold(true);
    const flood = Array.from({ length: 50 }, (_, i) => f.cache.getKey({ alg: 'ES256', kid: `x${i}` }).catch((e: unknown) => e));
    f.hold(false);
    const results = await Promise.all(flood);
    assert.ok(results.every((e) => e instanceof errors.JWKSNoMatchingKey));
    assert.equal(f.calls(), 2, 'one refetch for the whole flood');
    await assert.rejects(f.cache.getKey({ alg: 'ES256', kid: 'y' }), errors.JWKSNoMatchingKey);
    assert.equal(f.calls(), 2, 'cooling down');
  });

  it('a new kid is found by the refetch, and a changed set is reported', async () => {
    const f = fixture();
    await f.cache.getKey({ alg: 'ES256', kid: 'k1' });
    f.setKeys([k2, k1]);
    f.tick(30_000);
    await f.cache.getKey({ alg: 'ES256', kid: 'k2' });
    assert.equal(f.calls(), 2);
    assert.equal(f.changes(), 1);
  });

  it('stale keys keep serving while the IdP is down; failed attempts are cooled down too', async () => {
    const f = fixture({ maxAge: 10_000, cooldown: 5_000 });
    await f.cache.getKey({ alg: 'ES256', kid: 'k1' });
    f.setDown(true);
    f.tick(60_000);
    for (let i = 0; i < 10; i++) await f.cache.getKey({ alg: 'ES256', kid: 'k1' });
    await new Promise((r) => setImmediate(r));
    assert.equal(f.calls(), 2, 'one background refresh attempt');
    await assert.rejects(f.cache.getKey({ alg: 'ES256', kid: 'nope' }), errors.JWKSNoMatchingKey);
    assert.equal(f.calls(), 2, 'the failed attempt started the cooldown');
  });

  it('with no keys at all it is unavailable', async () => {
    const f = fixture();
    f.setDown(true);
    await assert.rejects(f.cache.getKey({ alg: 'ES256', kid: 'k1' }), JwksUnavailableError);
    f.setDown(false);
    f.tick(1_000);
    assert.ok((await f.cache.getKey({ alg: 'ES256', kid: 'k1' })) !== undefined);
  });
});
