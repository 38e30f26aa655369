// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${env:…} and ${file:…} references are the subject of these tests
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, type ConfigProblem, formatPath, formatProblem, type LoadedConfig, loadConfigFile, parseConfig } from '../../src/config/load.js';
import { parseAddress } from '../../src/config/schema.js';
import { jsonSchema } from '../../src/cli/main.js';
import { tempDir } from '../helpers/gateway.js';

const DIR = tempDir('ptc-config-');

function load(yaml: string, dir = DIR): LoadedConfig {
  return parseConfig(yaml, 'portcullis.yaml', dir);
}

/** The problems of an invalid config, as `LINE path: reason` strings. */
function problems(yaml: string, dir = DIR): ConfigProblem[] {
  try {
    load(yaml, dir);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail('the config was accepted');
}

function only(yaml: string): ConfigProblem {
  const ps = problems(yaml);
  assert.equal(ps.length, 1, `expected one problem, got:\n${ps.map(formatProblem).join('\n')}`);
  return ps[0] as ConfigProblem;
}

/** A config that is valid apart from what a test appends or replaces. */
const MINIMAL = `listeners:
  - address: 127.0.0.1:8080
routes:
  - name: status
    match: { path: /status }
    respond: { status: 200 }
`;

const FULL = `# A complete example: every section.
listeners:
  - address: 127.0.0.1:8080
  - address: "[::1]:8443"
admin:
  address: 127.0.0.1:9901
  allowRemote: false
trustedProxies: [10.0.0.0/8, 192.168.1.1, "::1", "fd00::/8"]
limits:
  maxBodyBytes: 1mb
  maxHeaderCount: 50
  maxHeaderBytes: 32kb
  headersTimeout: 5s
  requestTimeout: 1m
  idleTimeout: 15s
  drainTimeout: 10s
log:
  level: warn
  access: false
upstreams:
  orders:
    targets: [http://127.0.0.1:9000, "https://orders.internal:8443/v1"]
    timeouts: { connect: 500ms, response: 20s }
    hostHeader: preserve
    ejectFor: 30s
    maxConnections: 64
routes:
  - name: orders
    match: { host: api.example.com, path: /orders/**, methods: [get, POST] }
    upstream: orders
    stripPrefix: /orders
    websocket: true
  - name: user
    match: { path: /users/:id }
    upstream: orders
  - name: status
    match: { path: /status }
    respond: { status: 200, json: { ok: true }, headers: { x-served-by: portcullis } }
`;

describe('parseConfig: a valid config', () => {
  it('accepts a full example and normalises units, addresses, hosts and methods', () => {
    const { config, file, dir } = load(FULL);
    assert.equal(file, 'portcullis.yaml');
    assert.equal(dir, DIR);
    assert.deepEqual(config.listeners, [{ address: { host: '127.0.0.1', port: 8080 } }, { address: { host: '::1', port: 8443 } }]);
    assert.deepEqual(config.admin, { address: { host: '127.0.0.1', port: 9901 }, allowRemote: false });
    assert.deepEqual(config.trustedProxies, ['10.0.0.0/8', '192.168.1.1', '::1', 'fd00::/8']);
    assert.deepEqual(config.limits, {
      maxBodyBytes: 1024 * 1024,
      maxHeaderCount: 50,
      maxHeaderBytes: 32 * 1024,
      headersTimeout: 5_000,
      requestTimeout: 60_000,
      idleTimeout: 15_000,
      drainTimeout: 10_000,
    });
    assert.deepEqual(config.log, { level: 'warn', access: false });
    assert.deepEqual(config.upstreams.orders, {
      targets: ['http://127.0.0.1:9000', 'https://orders.internal:8443/v1'],
      timeouts: { connect: 500, response: 20_000 },
      hostHeader: 'preserve',
      ejectFor: 30_000,
      maxConnections: 64,
    });
    const [orders, user, status] = config.routes;
    assert.deepEqual(orders?.match, { host: 'api.example.com', path: '/orders/**', methods: ['GET', 'POST'] });
    assert.equal(orders?.stripPrefix, '/orders');
    assert.equal(orders?.websocket, true);
    assert.equal(user?.websocket, false);
    assert.deepEqual(status?.respond, { status: 200, json: { ok: true }, headers: { 'x-served-by': 'portcullis' } });
  });

  it('fills in every default', () => {
    const { config } = load(MINIMAL);
    assert.deepEqual(config.admin, { address: { host: '127.0.0.1', port: 9901 }, allowRemote: false });
    assert.deepEqual(config.trustedProxies, []);
    assert.deepEqual(config.limits, {
      maxBodyBytes: 10 * 1024 * 1024,
      maxHeaderCount: 100,
      maxHeaderBytes: 16 * 1024,
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      idleTimeout: 30_000,
      drainTimeout: 30_000,
    });
    assert.deepEqual(config.log, { level: 'info', access: true });
    assert.deepEqual(config.upstreams, {});
    const u = load(`${MINIMAL}upstreams:\n  a: { targets: [http://127.0.0.1:1] }\n`).config.upstreams.a;
    assert.deepEqual(u, { targets: ['http://127.0.0.1:1'], timeouts: { connect: 2_000, response: 30_000 }, hostHeader: 'target', ejectFor: 10_000 });
  });

  it('lower-cases route hosts and accepts wildcard and IPv6 literal hosts', () => {
    const { config } = load(`${MINIMAL}  - name: a
    match: { host: API.Example.COM, path: /a }
    respond: { status: 204 }
  - name: b
    match: { host: "*.example.com", path: /b }
    respond: { status: 204 }
  - name: c
    match: { host: "[::1]", path: /c }
    respond: { status: 204 }
`);
    assert.deepEqual(
      config.routes.map((r) => r.match.host),
      [undefined, 'api.example.com', '*.example.com', '[::1]'],
    );
  });

  it('returns a deep-frozen config: mutation throws in strict mode', () => {
    const { config } = load(FULL);
    const route = config.routes[0]!;
    const listener = config.listeners[0]!;
    /** Each mutation must throw a TypeError (ES modules are strict) and leave the value as it was. */
    const mutations: readonly (() => void)[] = [
      () => {
        (config as { log: { level: string } }).log.level = 'debug';
      },
      () => (config.routes as unknown as unknown[]).push({}),
      () => (route.match.methods as string[]).push('DELETE'),
      () => {
        (config.upstreams as Record<string, unknown>).extra = {};
      },
      () => {
        (listener.address as { port: number }).port = 1;
      },
      () => {
        delete (config.limits as { maxBodyBytes?: number }).maxBodyBytes;
      },
    ];
    for (const m of mutations) assert.throws(m, TypeError);
    assert.equal(config.log.level, 'warn');
    assert.equal(config.routes.length, 3);
    assert.deepEqual(route.match.methods, ['GET', 'POST']);
    assert.equal(listener.address.port, 8080);
    assert.equal(config.limits.maxBodyBytes, 1024 * 1024);
    assert.ok(Object.isFrozen(config.routes[2]?.respond?.json));
  });
});

describe('parseConfig: every problem at once, with its line and path', () => {
  it('reports problems all over the file in one error, sorted by line', () => {
    const ps = problems(`listeners:
  - address: 127.0.0.1:8080
    bogus: 1
limits:
  maxBodyBytes: lots
  drainTimeout: forever
upstreams:
  a: { targets: [http://127.0.0.1:9000] }
routes:
  - name: one
    match: { path: /one }
    upstream: a
  - name: one
    match: { path: /two }
    upstream: missing
  - name: three
    match:
      path: three
    upstream: a
extra: true
`);
    assert.deepEqual(
      ps.map((p) => `${p.line} ${p.path}`),
      [
        '3 listeners[0].bogus',
        '5 limits.maxBodyBytes',
        '6 limits.drainTimeout',
        '13 routes[1].name',
        '15 routes[1].upstream',
        '18 routes[2].match.path',
        '20 extra',
      ],
    );
    for (const p of ps) assert.equal(p.file, 'portcullis.yaml');
  });

  it('formats problems as FILE:LINE path: reason', () => {
    const p = only(MINIMAL.replace('/status', 'status'));
    assert.equal(formatProblem(p), 'portcullis.yaml:5 routes[0].match.path: a path pattern starts with /');
    assert.equal(formatProblem({ file: 'f.yaml', line: 1, path: '', reason: 'x' }), 'f.yaml:1 (root): x');
    assert.equal(formatPath(['routes', 2, 'match', 'path']), 'routes[2].match.path');
    assert.equal(formatPath([]), '');
  });

  it('still runs cross-field checks when another field is invalid', () => {
    const ps = problems(`listeners: [{ address: 127.0.0.1:8080, typo: 1 }]
admin: { address: 10.1.2.3:9901 }
routes:
  - { name: a, match: { path: /a }, respond: { status: 200 } }
  - { name: a, match: { path: /b }, upstream: nowhere, unknownKey: 1 }
  - { name: c, match: { path: /c }, upstream: x, respond: { status: 200 }, typo: 2 }
`);
    const got = ps.map((p) => `${p.line} ${p.path}: ${p.reason}`);
    assert.ok(got.includes('1 listeners[0].typo: unknown key "typo"'), got.join('\n'));
    assert.ok(got.includes('2 admin.address: the admin listener must bind a loopback address unless admin.allowRemote is true'), got.join('\n'));
    assert.ok(got.includes('5 routes[1].name: route name "a" is already used by routes[0]'), got.join('\n'));
    assert.ok(got.includes('5 routes[1].upstream: unknown upstream "nowhere"'), got.join('\n'));
    assert.ok(got.includes('6 routes[2].upstream: a route needs exactly one of upstream or respond'), got.join('\n'));
  });
});

describe('parseConfig: one problem per kind', () => {
  /** [what, yaml, line, path, reason (substring or pattern)] */
  const cases: readonly (readonly [string, string, number, string, string | RegExp])[] = [
    ['unknown top-level key', `${MINIMAL}listener: []\n`, 7, 'listener', 'unknown key "listener"'],
    ['unknown nested key', MINIMAL.replace('{ status: 200 }', '{ status: 200, bdy: x }'), 6, 'routes[0].respond.bdy', 'unknown key "bdy"'],
    ['unknown key in limits', `${MINIMAL}limits:\n  maxBody: 1mb\n`, 8, 'limits.maxBody', 'unknown key "maxBody"'],
    [
      'wrong type (string for array)',
      MINIMAL.replace('listeners:\n  - address: 127.0.0.1:8080', 'listeners: 127.0.0.1:8080'),
      1,
      'listeners',
      /expected array/,
    ],
    ['wrong type (string for number)', `${MINIMAL}limits: { maxHeaderCount: many }\n`, 7, 'limits.maxHeaderCount', /expected number/],
    ['wrong type (string for boolean)', `${MINIMAL}log: { access: "yes" }\n`, 7, 'log.access', /expected boolean/],
    ['wrong enum value', `${MINIMAL}log: { level: loud }\n`, 7, 'log.level', /expected one of/],
    ['missing required field', MINIMAL.replace('    respond: { status: 200 }\n', '    respond: {}\n'), 6, 'routes[0].respond.status', 'required'],
    ['missing routes', 'listeners: [{ address: 127.0.0.1:8080 }]\n', 1, 'routes', 'required'],
    ['empty routes', 'listeners: [{ address: 127.0.0.1:8080 }]\nroutes: []\n', 2, 'routes', /at least 1|>=1/],
    ['bad duration', `${MINIMAL}limits: { headersTimeout: 10 seconds }\n`, 7, 'limits.headersTimeout', '"10 seconds" is not a duration'],
    ['negative duration', `${MINIMAL}limits: { idleTimeout: -1 }\n`, 7, 'limits.idleTimeout', 'is not a duration'],
    ['duration past the timer limit', `${MINIMAL}limits: { drainTimeout: 1000h }\n`, 7, 'limits.drainTimeout', 'is not a duration'],
    ['bad size', `${MINIMAL}limits: { maxBodyBytes: 10 megabytes }\n`, 7, 'limits.maxBodyBytes', '"10 megabytes" is not a size'],
    ['fractional byte count', `${MINIMAL}limits: { maxBodyBytes: 1.5 }\n`, 7, 'limits.maxBodyBytes', 'is not a size'],
    ['address without port', MINIMAL.replace('127.0.0.1:8080', 'localhost'), 2, 'listeners[0].address', '"localhost" is not host:port'],
    ['port out of range', MINIMAL.replace('127.0.0.1:8080', '127.0.0.1:65536'), 2, 'listeners[0].address', 'port 65536 is out of range'],
    ['IPv6 without brackets', MINIMAL.replace('127.0.0.1:8080', '"::1:8080"'), 2, 'listeners[0].address', 'IPv6 as [::1]:8080'],
    ['bad IPv6 in brackets', MINIMAL.replace('127.0.0.1:8080', '"[::g]:8080"'), 2, 'listeners[0].address', 'not host:port'],
    [
      'duplicate listener address',
      MINIMAL.replace('  - address: 127.0.0.1:8080\n', '  - address: 127.0.0.1:8080\n  - address: 127.0.0.1:8080\n'),
      3,
      'listeners[1].address',
      'already used by listeners[0]',
    ],
    ['admin on a listener address', `${MINIMAL}admin: { address: 127.0.0.1:8080 }\n`, 7, 'admin.address', 'already used by listeners[0]'],
    ['bad CIDR bits', `${MINIMAL}trustedProxies: [10.0.0.0/33]\n`, 7, 'trustedProxies[0]', 'not an IP address or CIDR range'],
    ['bad CIDR address', `${MINIMAL}trustedProxies:\n  - 10.0.0.0/8\n  - proxy.internal\n`, 9, 'trustedProxies[1]', 'not an IP address or CIDR range'],
    ['bad IPv6 CIDR', `${MINIMAL}trustedProxies: ["::1/129"]\n`, 7, 'trustedProxies[0]', 'not an IP address or CIDR range'],
    ['CIDR with two slashes', `${MINIMAL}trustedProxies: [10.0.0.0/8/8]\n`, 7, 'trustedProxies[0]', 'not an IP address or CIDR range'],
    ['route to an unknown upstream', MINIMAL.replace('respond: { status: 200 }', 'upstream: nope'), 6, 'routes[0].upstream', 'unknown upstream "nope"'],
    [
      'duplicate route names',
      `${MINIMAL}  - name: status\n    match: { path: /other }\n    respond: { status: 200 }\n`,
      7,
      'routes[1].name',
      'route name "status" is already used by routes[0]',
    ],
    [
      'both upstream and respond',
      `${MINIMAL.replace('respond: { status: 200 }', 'respond: { status: 200 }\n    upstream: u')}upstreams:\n  u: { targets: [http://127.0.0.1:1] }\n`,
      7,
      'routes[0].upstream',
      'exactly one of upstream or respond',
    ],
    ['neither upstream nor respond', MINIMAL.replace('    respond: { status: 200 }\n', ''), 4, 'routes[0].upstream', 'exactly one of upstream or respond'],
    ['json and body together', MINIMAL.replace('{ status: 200 }', '{ status: 200, json: 1, body: x }'), 6, 'routes[0].respond', 'either json or body'],
    ['respond status out of range', MINIMAL.replace('{ status: 200 }', '{ status: 100 }'), 6, 'routes[0].respond.status', /100|>=200/],
    [
      'stripPrefix not a prefix of the path',
      MINIMAL.replace('/status }', '/api/** }\n    stripPrefix: /apx'),
      6,
      'routes[0].stripPrefix',
      'whole leading segments of match.path "/api/**"',
    ],
    ['stripPrefix mid-segment', MINIMAL.replace('/status }', '/api/** }\n    stripPrefix: /ap'), 6, 'routes[0].stripPrefix', 'whole leading segments'],
    [
      'stripPrefix with a trailing slash',
      MINIMAL.replace('/status }', '/api/** }\n    stripPrefix: /api/'),
      6,
      'routes[0].stripPrefix',
      'whole leading segments',
    ],
    [
      'stripPrefix over a parameter',
      MINIMAL.replace('/status }', '/users/:id }\n    stripPrefix: /users/:id'),
      6,
      'routes[0].stripPrefix',
      'whole leading segments',
    ],
    ['path without leading slash', MINIMAL.replace('/status', 'status'), 5, 'routes[0].match.path', 'starts with /'],
    ['** not last', MINIMAL.replace('/status', '/a/**/b'), 5, 'routes[0].match.path', '** is only allowed as the last segment'],
    ['dot segment in a pattern', MINIMAL.replace('/status', '/a/../b'), 5, 'routes[0].match.path', '. or .. segments'],
    ['query in a pattern', MINIMAL.replace('/status', '"/a?x=1"'), 5, 'routes[0].match.path', 'must not contain ?'],
    ['double slash in a pattern', MINIMAL.replace('/status', '/a//b'), 5, 'routes[0].match.path', 'must not contain //'],
    ['parameter under a prefix pattern', MINIMAL.replace('/status', '/users/:id/**'), 5, 'routes[0].match.path', 'cannot be combined with a /** prefix'],
    ['bad method', MINIMAL.replace('/status }', '/status, methods: [GET, "GET /x"] }'), 5, 'routes[0].match.methods[1]', 'not an HTTP method'],
    ['bad host', MINIMAL.replace('/status }', '/status, host: "api.*.com" }'), 5, 'routes[0].match.host', 'not a host name'],
    ['bad route name', MINIMAL.replace('name: status', 'name: "a b"'), 4, 'routes[0].name', 'a route name is 1-64 of'],
    ['bad upstream name', `${MINIMAL}upstreams:\n  "bad name": { targets: [http://127.0.0.1:1] }\n`, 8, 'upstreams.bad name', 'an upstream name is 1-64 of'],
    ['target not http(s)', `${MINIMAL}upstreams:\n  u: { targets: [ftp://x] }\n`, 8, 'upstreams.u.targets[0]', 'must be http:// or https://'],
    ['credentials in a target', `${MINIMAL}upstreams:\n  u: { targets: ["http://me:pw@x"] }\n`, 8, 'upstreams.u.targets[0]', 'credentials in a target URL'],
    ['query in a target', `${MINIMAL}upstreams:\n  u: { targets: ["http://x/?a=1"] }\n`, 8, 'upstreams.u.targets[0]', 'must not have a query'],
    ['not a URL', `${MINIMAL}upstreams:\n  u: { targets: [nope] }\n`, 8, 'upstreams.u.targets[0]', '"nope" is not a URL'],
    ['no targets', `${MINIMAL}upstreams:\n  u: { targets: [] }\n`, 8, 'upstreams.u.targets', /at least 1|>=1/],
    ['maxConnections zero', `${MINIMAL}upstreams:\n  u: { targets: [http://x], maxConnections: 0 }\n`, 8, 'upstreams.u.maxConnections', />0/],
    ['non-loopback admin', `${MINIMAL}admin:\n  address: 0.0.0.0:9901\n`, 8, 'admin.address', 'must bind a loopback address unless admin.allowRemote is true'],
    ['non-loopback IPv6 admin', `${MINIMAL}admin: { address: "[::]:9901" }\n`, 7, 'admin.address', 'loopback'],
  ];
  for (const [what, yaml, line, path, reason] of cases) {
    it(what, () => {
      const p = only(yaml);
      assert.equal(p.path, path, formatProblem(p));
      assert.equal(p.line, line, formatProblem(p));
      if (typeof reason === 'string') assert.ok(p.reason.includes(reason), formatProblem(p));
      else assert.match(p.reason, reason);
    });
  }

  it('accepts IPv6 and host-name addresses, port 0, and a remote admin with allowRemote', () => {
    const { config } = load(
      MINIMAL.replace('  - address: 127.0.0.1:8080\n', '  - address: "[::1]:8080"\n  - address: localhost:0\n  - address: "[::]:0"\n') +
        'admin: { address: 0.0.0.0:9901, allowRemote: true }\n',
    );
    assert.deepEqual(
      config.listeners.map((l) => l.address),
      [
        { host: '::1', port: 8080 },
        { host: 'localhost', port: 0 },
        { host: '::', port: 0 },
      ],
    );
    assert.deepEqual(config.admin.address, { host: '0.0.0.0', port: 9901 });
  });

  it('parseAddress explains what is wrong', () => {
    assert.deepEqual(parseAddress('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(parseAddress('example.com:443'), { host: 'example.com', port: 443 });
    assert.equal(parseAddress('[127.0.0.1]:80'), '"127.0.0.1" is not an IPv6 address');
    assert.equal(parseAddress('host:99999'), 'port 99999 is out of range');
    assert.equal(parseAddress(':80'), '":80" is not host:port (IPv6 as [::1]:8080)');
  });
});

describe('parseConfig: reserved keys', () => {
  // Derived from the schema (descriptions that start "Reserved for"), so the test follows the keys
  // as capabilities arrive. JSON is YAML, so the configs are written as JSON.
  const reserved: (string | number)[][] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (node === null || typeof node !== 'object') return;
    const n = node as { description?: unknown; properties?: Record<string, unknown>; items?: unknown; additionalProperties?: unknown; anyOf?: unknown[] };
    if (typeof n.description === 'string' && n.description.startsWith('Reserved for')) {
      reserved.push(path);
      return;
    }
    for (const [k, v] of Object.entries(n.properties ?? {})) walk(v, [...path, k]);
    walk(n.items, [...path, 0]);
    walk(n.additionalProperties, [...path, 'x']);
    for (const v of n.anyOf ?? []) walk(v, path);
  };
  walk(jsonSchema(), []);

  it('the schema reserves at least the keys of the later capabilities', () => {
    assert.ok(reserved.length > 0);
  });

  for (const path of reserved) {
    it(`${formatPath(path)} is refused as not available in this version`, () => {
      const config: Record<string, unknown> = {
        listeners: [{ address: '127.0.0.1:8080' }],
        upstreams: { x: { targets: ['http://127.0.0.1:9000'] } },
        routes: [{ name: 'a', match: { path: '/' }, upstream: 'x' }],
      };
      let at: Record<string | number, unknown> = config;
      for (const seg of path.slice(0, -1)) {
        at[seg] ??= {};
        at = at[seg] as Record<string | number, unknown>;
      }
      at[path[path.length - 1] as string | number] = { anything: true };
      const ps = problems(JSON.stringify(config));
      const p = ps.find((x) => x.path === formatPath(path));
      assert.ok(p, ps.map(formatProblem).join('\n'));
      assert.match(p.reason, /is not available in this version of Portcullis$/);
    });
  }
});

describe('parseConfig: YAML problems', () => {
  it('reports a syntax error with its line', () => {
    const ps = problems('listeners:\n  - address: 127.0.0.1:8080\nroutes:\n  - name: a\n    match: { path: /a\n    respond: { status: 200 }\n');
    assert.ok(ps.length >= 1);
    assert.equal(ps[0]?.path, '');
    assert.match(ps[0]?.reason ?? '', /^YAML: /);
    assert.ok((ps[0]?.line ?? 0) >= 5, formatProblem(ps[0] as ConfigProblem));
  });

  it('reports a bad indentation error on the offending line', () => {
    const p = problems('listeners:\n  - address: 127.0.0.1:8080\n routes: []\n')[0];
    assert.equal(p?.line, 3, formatProblem(p as ConfigProblem));
  });

  it('refuses duplicate keys, pointing at the duplicate', () => {
    const ps = problems(`${MINIMAL}listeners: []\n`);
    assert.equal(ps.length, 1);
    assert.equal(ps[0]?.line, 7);
    assert.match(ps[0]?.reason ?? '', /^YAML: .*unique/);
  });

  it('refuses duplicate keys in nested mappings', () => {
    const p = only(MINIMAL.replace('{ status: 200 }', '{ status: 200, status: 201 }'));
    assert.equal(p.line, 6);
    assert.match(p.reason, /unique/);
  });

  it('refuses a document that is not a mapping', () => {
    for (const text of ['', '# only a comment\n', '- a\n- b\n', 'just a string\n']) {
      const p = only(text);
      assert.equal(p.reason, 'the config must be a YAML mapping', JSON.stringify(text));
    }
  });

  it('does not expand merge keys (<<)', () => {
    const p = only(`${MINIMAL}base: &b { status: 200 }\n`);
    assert.equal(p.path, 'base');
    const q = problems(MINIMAL.replace('respond: { status: 200 }', 'respond: { <<: { status: 200 } }'));
    assert.ok(
      q.some((x) => x.path === 'routes[0].respond.<<'),
      q.map(formatProblem).join('\n'),
    );
  });
});

describe('parseConfig: references', () => {
  // A function replacer: in a replacement string `$$` would itself be an escape.
  const withBody = (body: string) => MINIMAL.replace('{ status: 200 }', () => `{ status: 200, body: ${JSON.stringify(body)} }`);
  const bodyOf = (yaml: string, dir = DIR) => load(yaml, dir).config.routes[0]?.respond?.body;

  it('resolves ${env:NAME}', () => {
    process.env.PTC_TEST_GREETING = 'hello';
    process.env.PTC_TEST_PORT = '8181';
    try {
      assert.equal(bodyOf(withBody('say ${env:PTC_TEST_GREETING}!')), 'say hello!');
      const { config } = load(MINIMAL.replace('127.0.0.1:8080', '"127.0.0.1:${env:PTC_TEST_PORT}"'));
      assert.equal(config.listeners[0]?.address.port, 8181);
    } finally {
      delete process.env.PTC_TEST_GREETING;
      delete process.env.PTC_TEST_PORT;
    }
  });

  it('a missing or empty variable is a problem, never an empty string', () => {
    delete process.env.PTC_TEST_MISSING;
    const p = only(withBody('x${env:PTC_TEST_MISSING}'));
    assert.equal(p.path, 'routes[0].respond.body');
    assert.equal(p.line, 6);
    assert.equal(p.reason, 'environment variable PTC_TEST_MISSING is not set');
    process.env.PTC_TEST_EMPTY = '';
    try {
      assert.equal(only(withBody('${env:PTC_TEST_EMPTY}')).reason, 'environment variable PTC_TEST_EMPTY is not set');
    } finally {
      delete process.env.PTC_TEST_EMPTY;
    }
  });

  it('resolves ${file:PATH} relative to the config directory, dropping one trailing newline', () => {
    const dir = tempDir('ptc-config-ref-');
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'token'), 's3cret\n');
    writeFileSync(join(dir, 'two-lines'), 'a\nb\n\n');
    assert.equal(bodyOf(withBody('[${file:secrets/token}]'), dir), '[s3cret]');
    assert.equal(bodyOf(withBody('${file:./two-lines}'), dir), 'a\nb\n');
    assert.equal(bodyOf(withBody(`\${file:${join(dir, 'secrets', 'token')}}`), DIR), 's3cret', 'absolute paths work too');
  });

  it('an unreadable file is a problem', () => {
    const p = only(withBody('${file:does-not-exist.pem}'));
    assert.equal(p.path, 'routes[0].respond.body');
    assert.equal(p.reason, 'cannot read does-not-exist.pem (ENOENT)');
    const dir = tempDir('ptc-config-ref-');
    mkdirSync(join(dir, 'a-directory'));
    assert.equal(problems(withBody('${file:a-directory}'), dir)[0]?.reason, 'cannot read a-directory (EISDIR)');
  });

  it('$${ escapes a reference, which stays literal', () => {
    process.env.PTC_TEST_GREETING = 'hello';
    try {
      assert.equal(bodyOf(withBody('$${env:PTC_TEST_GREETING} and ${env:PTC_TEST_GREETING}')), '${env:PTC_TEST_GREETING} and hello');
      assert.equal(bodyOf(withBody('$${file:/etc/passwd}')), '${file:/etc/passwd}');
    } finally {
      delete process.env.PTC_TEST_GREETING;
    }
  });

  it('resolves in a single pass: a value that contains a reference is not expanded again', () => {
    process.env.PTC_TEST_TRICK = '${file:/etc/passwd}';
    try {
      assert.equal(bodyOf(withBody('${env:PTC_TEST_TRICK}')), '${file:/etc/passwd}');
    } finally {
      delete process.env.PTC_TEST_TRICK;
    }
  });

  it('refuses unknown schemes', () => {
    assert.match(only(withBody('${vault:db}')).reason, /unknown reference \$\{vault:…\}/);
  });

  it('reports every unresolved reference, each at its own path', () => {
    delete process.env.PTC_TEST_A;
    delete process.env.PTC_TEST_B;
    const ps = problems(`${withBody('${env:PTC_TEST_A}')}upstreams:\n  u: { targets: ["http://\${env:PTC_TEST_B}"] }\n`);
    const refs = ps.filter((p) => p.reason.startsWith('environment variable'));
    assert.deepEqual(
      refs.map((p) => `${p.line} ${p.path}`),
      ['6 routes[0].respond.body', '8 upstreams.u.targets[0]'],
    );
  });

  it('does not touch keys, only values', () => {
    process.env.PTC_TEST_GREETING = 'hello';
    try {
      const p = only(`${MINIMAL}"\${env:PTC_TEST_GREETING}": 1\n`);
      assert.equal(p.path, '${env:PTC_TEST_GREETING}');
      assert.match(p.reason, /unknown key/);
    } finally {
      delete process.env.PTC_TEST_GREETING;
    }
  });
});

describe('parseConfig: __proto__ cannot pollute prototypes', () => {
  it('a top-level __proto__ key is an unknown key, and Object.prototype is untouched', () => {
    const p = only(`${MINIMAL}__proto__: { polluted: true }\n`);
    assert.equal(p.path, '__proto__');
    assert.match(p.reason, /unknown key/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('__proto__ inside free-form JSON stays an own property of a plain object', () => {
    const { config } = load(MINIMAL.replace('{ status: 200 }', '{ status: 200, json: { __proto__: { polluted: true }, a: { __proto__: { b: 1 } } } }'));
    const json = config.routes[0]?.respond?.json as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(json), Object.prototype);
    assert.ok(Object.hasOwn(json, '__proto__'));
    assert.equal(json.polluted, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(JSON.stringify(json), '{"__proto__":{"polluted":true},"a":{"__proto__":{"b":1}}}');
  });

  it('an upstream named __proto__ or constructor does not resolve to an inherited property', () => {
    const p = only(MINIMAL.replace('respond: { status: 200 }', 'upstream: toString'));
    assert.equal(p.reason, 'unknown upstream "toString"');
    const ps = problems(`${MINIMAL.replace('respond: { status: 200 }', 'upstream: __proto__')}upstreams:\n  __proto__: { targets: [http://x] }\n`);
    assert.ok(
      ps.some((x) => x.path === 'routes[0].upstream'),
      ps.map(formatProblem).join('\n'),
    );
    assert.equal(({} as Record<string, unknown>).targets, undefined);
  });

  it('a header map with __proto__ does not change its prototype', () => {
    const { config } = load(MINIMAL.replace('{ status: 200 }', '{ status: 200, headers: { __proto__: x, x-a: b } }'));
    const headers = config.routes[0]?.respond?.headers as Record<string, string>;
    assert.ok(Object.getPrototypeOf(headers) === Object.prototype || Object.getPrototypeOf(headers) === null);
    assert.equal(headers['x-a'], 'b');
  });
});

describe('loadConfigFile', () => {
  it('reads a file and resolves references relative to its directory', async () => {
    const dir = tempDir('ptc-config-file-');
    writeFileSync(join(dir, 'body.txt'), 'from a file\n');
    writeFileSync(join(dir, 'portcullis.yaml'), MINIMAL.replace('{ status: 200 }', '{ status: 200, body: "${file:body.txt}" }'));
    const loaded = await loadConfigFile(join(dir, 'portcullis.yaml'));
    assert.equal(loaded.dir, dir);
    assert.equal(loaded.config.routes[0]?.respond?.body, 'from a file');
  });

  it('a missing file is a ConfigError at line 0', async () => {
    await assert.rejects(loadConfigFile(join(DIR, 'nope.yaml')), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, [{ file: join(DIR, 'nope.yaml'), line: 0, path: '', reason: 'file not found' }]);
      return true;
    });
  });

  it('locates build-time problems by path', () => {
    const loaded = load(FULL);
    const p = loaded.problem(['routes', 1, 'match'], 'x');
    assert.deepEqual(p, { file: 'portcullis.yaml', line: 34, path: 'routes[1].match', reason: 'x' });
  });
});

describe('remote auth endpoints are https (http only to loopback)', () => {
  const base = (auth: string) => `
listeners: [{ address: "127.0.0.1:0" }]
authenticators:
  a: ${auth}
routes:
  - { name: r, match: { path: /** }, respond: { status: 200 }, authenticate: [a] }
`;
  for (const [what, auth] of [
    ['jwksUri', '{ type: jwt, issuer: i, audience: a, algorithms: [ES256], jwksUri: "http://idp.example/jwks" }'],
    ['introspection endpoint', '{ type: introspection, endpoint: "http://idp.example/introspect", clientId: c, clientSecret: s }'],
    ['external url', '{ type: external, url: "http://auth.example/check" }'],
  ] as const) {
    it(`refuses a plain-http ${what} to a remote host`, () => {
      assert.throws(() => parseConfig(base(auth), 'gw.yaml', '/tmp'), /must be https:\/\/ \(http:\/\/ only to a loopback address\)/);
    });
    it(`accepts a plain-http ${what} on loopback`, () => {
      parseConfig(base(auth.replace(/http:\/\/[a-z.]+example/, 'http://127.0.0.1:9')), 'gw.yaml', '/tmp');
    });
  }
});
