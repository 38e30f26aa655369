import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuildProblem } from '../../src/config/load.js';
import type { RouteConfig } from '../../src/config/schema.js';
import { compileRouter, hostOf, type Router } from '../../src/core/router.js';

interface Spec {
  readonly path: string;
  readonly host?: string;
  readonly methods?: readonly string[];
}

/** A router whose routes are their names; specs are written the way the schema outputs them. */
function router(specs: Record<string, Spec>): Router<string> {
  return compileRouter(
    Object.entries(specs).map(([name, s]) => ({
      route: name,
      config: {
        name,
        match: { path: s.path, ...(s.host === undefined ? {} : { host: s.host }), ...(s.methods === undefined ? {} : { methods: [...s.methods] }) },
      } as unknown as RouteConfig,
    })),
  );
}

/** The route name chosen for a request, '404', or '405 <allow>'. */
function pick(r: Router<string>, path: string, method = 'GET', host = 'example.com'): string {
  const m = r.match(host, path, method);
  if (m.ok) return m.route;
  return m.allow === undefined ? '404' : `405 ${m.allow.join(', ')}`;
}

function assertTie(specs: Record<string, Spec>, later: number, earlier: number): void {
  assert.throws(
    () => router(specs),
    (err: unknown) => {
      assert.ok(err instanceof BuildProblem, String(err));
      assert.deepEqual(err.path, ['routes', later, 'match']);
      assert.equal(err.message, `matches the same requests as routes[${earlier}] with equal precedence; make one more specific`);
      return true;
    },
  );
}

describe('router: path precedence', () => {
  const r = router({
    prefix: { path: '/users/**' },
    param: { path: '/users/:id' },
    exact: { path: '/users/me' },
    deepPrefix: { path: '/users/me/files/**' },
    deepParam: { path: '/users/:id/orders/:order' },
    literalFirst: { path: '/users/:id/orders/latest' },
    root: { path: '/**' },
  });
  const table: readonly (readonly [string, string])[] = [
    ['/users/me', 'exact'], // exact > param > prefix
    ['/users/42', 'param'], // param > prefix
    ['/users', 'prefix'], // /users/** matches /users itself
    ['/users/', 'prefix'], // a parameter matches exactly one non-empty segment
    ['/users/42/x', 'prefix'],
    ['/users/me/files/a/b', 'deepPrefix'], // longer prefix wins
    ['/users/me/files', 'deepPrefix'],
    ['/users/me/filesx', 'prefix'], // whole segments only
    ['/users/1/orders/7', 'deepParam'],
    ['/users/1/orders/latest', 'literalFirst'], // a literal segment beats a parameter
    ['/users/1/orders/', 'prefix'],
    ['/usersx', 'root'],
    ['/', 'root'],
    ['/anything/else', 'root'],
  ];
  for (const [path, want] of table) it(`${path} → ${want}`, () => assert.equal(pick(r, path), want));

  it('compares parameters left to right: the first literal segment decides', () => {
    const lr = router({ paramFirst: { path: '/:a/b' }, literalFirst: { path: '/a/:b' } });
    assert.equal(pick(lr, '/a/b'), 'literalFirst');
    assert.equal(pick(lr, '/x/b'), 'paramFirst');
    assert.equal(pick(lr, '/a/x'), 'literalFirst');
    assert.equal(pick(lr, '/x/x'), '404');
  });

  it('a longer prefix wins regardless of declaration order', () => {
    const a = router({ short: { path: '/a/**' }, long: { path: '/a/b/c/**' }, mid: { path: '/a/b/**' } });
    assert.equal(pick(a, '/a/b/c/d'), 'long');
    assert.equal(pick(a, '/a/b/x'), 'mid');
    assert.equal(pick(a, '/a/x'), 'short');
  });
});

describe('router: matching', () => {
  it('/orders/** matches /orders and /orders/x but not /ordersx', () => {
    const r = router({ orders: { path: '/orders/**' } });
    assert.equal(pick(r, '/orders'), 'orders');
    assert.equal(pick(r, '/orders/'), 'orders');
    assert.equal(pick(r, '/orders/x'), 'orders');
    assert.equal(pick(r, '/orders/x/y/z'), 'orders');
    assert.equal(pick(r, '/ordersx'), '404');
    assert.equal(pick(r, '/order'), '404');
    assert.equal(pick(r, '/'), '404');
  });

  it('/** matches every path', () => {
    const r = router({ all: { path: '/**' } });
    for (const p of ['/', '/a', '/a/b/', '/%2e']) assert.equal(pick(r, p), 'all');
  });

  it('an exact path matches only itself (trailing slash included)', () => {
    const r = router({ status: { path: '/status' } });
    assert.equal(pick(r, '/status'), 'status');
    assert.equal(pick(r, '/status/'), '404');
    assert.equal(pick(r, '/Status'), '404', 'paths are case-sensitive');
    const root = router({ root: { path: '/' } });
    assert.equal(pick(root, '/'), 'root');
    assert.equal(pick(root, '/a'), '404');
  });

  it('a parameter matches exactly one non-empty segment', () => {
    const r = router({ user: { path: '/users/:id' } });
    assert.equal(pick(r, '/users/42'), 'user');
    assert.equal(pick(r, '/users/a.b-c_d~e'), 'user');
    assert.equal(pick(r, '/users/'), '404');
    assert.equal(pick(r, '/users'), '404');
    assert.equal(pick(r, '/users/42/'), '404');
    assert.equal(pick(r, '/users/42/x'), '404');
    assert.equal(pick(r, '/usersx/42'), '404');
    const two = router({ pair: { path: '/:a/:b' } });
    assert.equal(pick(two, '/x/y'), 'pair');
    assert.equal(pick(two, '/x/'), '404');
    assert.equal(pick(two, '//y'), '404');
  });

  it('a pattern with a trailing slash after a parameter keeps it', () => {
    const r = router({ user: { path: '/users/:id/' } });
    assert.equal(pick(r, '/users/42/'), 'user');
    assert.equal(pick(r, '/users/42'), '404');
    assert.equal(pick(r, '/users/42/x'), '404');
  });
});

describe('router: host precedence', () => {
  const r = router({
    any: { path: '/**' },
    wildcard: { path: '/**', host: '*.example.com' },
    deeperWildcard: { path: '/**', host: '*.eu.example.com' },
    exact: { path: '/**', host: 'api.example.com' },
    exactStatus: { path: '/status', host: 'other.test' },
  });
  const table: readonly (readonly [string, string, string])[] = [
    ['api.example.com', '/x', 'exact'],
    ['www.example.com', '/x', 'wildcard'],
    ['a.b.example.com', '/x', 'wildcard'], // one or more leading labels
    ['x.eu.example.com', '/x', 'deeperWildcard'], // a longer suffix wins
    ['example.com', '/x', 'any'], // the wildcard needs a label in front
    ['badexample.com', '/x', 'any'],
    ['other.test', '/status', 'exactStatus'],
    ['other.test', '/x', 'any'],
  ];
  for (const [host, path, want] of table) it(`${host}${path} → ${want}`, () => assert.equal(pick(r, path, 'GET', host), want));

  it('host beats path: an exact host with a prefix wins over an exact path without host', () => {
    const hp = router({ status: { path: '/status' }, tenant: { path: '/**', host: 'tenant.test' } });
    assert.equal(pick(hp, '/status', 'GET', 'tenant.test'), 'tenant');
    assert.equal(pick(hp, '/status', 'GET', 'other.test'), 'status');
  });

  it('routes with a host do not match other hosts', () => {
    const only = router({ a: { path: '/a', host: 'a.test' } });
    assert.equal(pick(only, '/a', 'GET', 'b.test'), '404');
  });

  it('hostOf lower-cases and drops the port, keeping IPv6 brackets', () => {
    assert.equal(hostOf('API.Example.com:8443'), 'api.example.com');
    assert.equal(hostOf('example.com'), 'example.com');
    assert.equal(hostOf('[::1]:8080'), '[::1]');
    assert.equal(hostOf('[::1]'), '[::1]');
    assert.equal(hostOf(''), '');
  });
});

describe('router: methods', () => {
  it('a route that lists methods beats one that accepts all', () => {
    const r = router({ any: { path: '/items' }, read: { path: '/items', methods: ['GET'] } });
    assert.equal(pick(r, '/items', 'GET'), 'read');
    assert.equal(pick(r, '/items', 'POST'), 'any');
  });

  it('GET implies HEAD', () => {
    const r = router({ read: { path: '/items', methods: ['GET'] } });
    assert.equal(pick(r, '/items', 'HEAD'), 'read');
    const post = router({ write: { path: '/items', methods: ['POST'] } });
    assert.equal(pick(post, '/items', 'HEAD'), '405 POST');
  });

  it('answers 405 with the union of allowed methods, sorted, when only the method is wrong', () => {
    const r = router({ read: { path: '/items', methods: ['GET'] }, write: { path: '/items', methods: ['POST', 'PUT'] }, other: { path: '/x/**' } });
    assert.equal(pick(r, '/items', 'DELETE'), '405 GET, HEAD, POST, PUT');
    assert.equal(pick(r, '/nothing', 'DELETE'), '404');
  });

  it('405 only counts routes whose host and path matched', () => {
    const r = router({ a: { path: '/a', methods: ['GET'], host: 'a.test' }, b: { path: '/b/**', methods: ['PUT'] } });
    assert.equal(pick(r, '/a', 'POST', 'b.test'), '404');
    assert.equal(pick(r, '/b/x', 'POST', 'b.test'), '405 PUT');
  });

  it('disjoint method lists on the same pattern are not a tie', () => {
    const r = router({ read: { path: '/items', methods: ['GET'] }, write: { path: '/items', methods: ['POST'] } });
    assert.equal(pick(r, '/items', 'GET'), 'read');
    assert.equal(pick(r, '/items', 'POST'), 'write');
  });
});

describe('router: ties are build problems naming the later route', () => {
  it('the same exact path twice', () => assertTie({ a: { path: '/x' }, b: { path: '/y' }, c: { path: '/x' } }, 2, 0));
  it('the same prefix twice', () => assertTie({ a: { path: '/x/**' }, b: { path: '/x/**' } }, 1, 0));
  it('/users/:id vs /users/:name', () => assertTie({ a: { path: '/users/:id' }, b: { path: '/users/:name' } }, 1, 0));
  it('overlapping method lists', () => assertTie({ a: { path: '/x', methods: ['GET', 'POST'] }, b: { path: '/x', methods: ['POST'] } }, 1, 0));
  it('GET and HEAD overlap (GET implies HEAD)', () => assertTie({ a: { path: '/x', methods: ['GET'] }, b: { path: '/x', methods: ['HEAD'] } }, 1, 0));
  it('the same wildcard host and path', () => assertTie({ a: { path: '/**', host: '*.a.test' }, b: { path: '/**', host: '*.a.test' } }, 1, 0));
  it('the same exact host and path', () => assertTie({ a: { path: '/', host: 'a.test' }, b: { path: '/', host: 'a.test' } }, 1, 0));

  it('a tie hidden between sort neighbours ([GET] vs [POST] vs [GET, PUT])', () =>
    assertTie({ get: { path: '/x', methods: ['GET'] }, post: { path: '/x', methods: ['POST'] }, getPut: { path: '/x', methods: ['GET', 'PUT'] } }, 2, 0));

  it('different hosts, different shapes and different kinds are not ties', () => {
    router({
      a: { path: '/x', host: 'a.test' },
      b: { path: '/x', host: 'b.test' },
      c: { path: '/x' },
      d: { path: '/x/**' },
      e: { path: '/:p' },
      f: { path: '/:p/y' },
      g: { path: '/x', host: '*.a.test' },
    });
  });
});

describe('router: hosts (for absolute-form request targets)', () => {
  it('holds exactly the named hosts when every route names one', () => {
    const r = router({ a: { path: '/', host: 'a.test' }, b: { path: '/b', host: 'b.test' } });
    assert.ok(r.hosts.has('a.test'));
    assert.ok(r.hosts.has('b.test'));
    assert.ok(!r.hosts.has('c.test'));
    assert.deepEqual([...r.hosts].sort(), ['a.test', 'b.test']);
  });

  it('accepts the subdomains of a wildcard, not the bare domain', () => {
    const r = router({ a: { path: '/', host: '*.example.com' }, b: { path: '/', host: 'a.test' } });
    assert.ok(r.hosts.has('api.example.com'));
    assert.ok(r.hosts.has('a.b.example.com'));
    assert.ok(r.hosts.has('a.test'));
    assert.ok(!r.hosts.has('example.com'));
    assert.ok(!r.hosts.has('evil.test'));
  });

  it('a catch-all route does not add hosts: an absolute-form target must name a host a route names', () => {
    const r = router({ a: { path: '/', host: 'a.test' }, any: { path: '/**' } });
    assert.ok(r.hosts.has('a.test'));
    assert.ok(!r.hosts.has('anything.test'));
    assert.equal(router({ any: { path: '/**' } }).hosts.size, 0);
  });

  it('keeps the routes in config order', () => {
    const r = router({ z: { path: '/**' }, a: { path: '/a' } });
    assert.deepEqual(r.routes, ['z', 'a']);
  });
});
