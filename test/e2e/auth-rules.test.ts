/**
 * The decision rules of src/auth/pipeline.ts as a table: any-of, all-of and ambiguity, each row
 * asserting what the client sees (status, problem code, WWW-Authenticate) and what the backend got.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateApiKey } from '../../src/cli/keys.js';
import { basicAuth, cheapArgon2 } from '../helpers/auth.js';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { exchange } from '../helpers/exchange.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const acmeKey = generateApiKey();
const bobKey = generateApiKey();
const KEY_CHALLENGE = 'APIKey realm="portcullis", header="x-api-key"';
const QUERY_CHALLENGE = 'APIKey realm="portcullis", query="api_key"';
const BASIC_CHALLENGE = 'Basic realm="staff", charset="UTF-8"';

interface Row {
  readonly name: string;
  readonly path: string;
  /** Raw header lines (repeatable). */
  readonly headers: readonly [string, string][];
  readonly status: number;
  readonly code?: string;
  /** Expected WWW-Authenticate values (all of them, in order). */
  readonly challenges?: readonly string[];
  /** Expected X-Consumer-Id at the backend, for 200 rows. */
  readonly consumer?: string;
  readonly method?: string;
}

const key = (k: string): [string, string] => ['X-Api-Key', k];
const basic = (u: string, p: string): [string, string] => ['Authorization', basicAuth(u, p)];

const ROWS: readonly Row[] = [
  // any-of
  { name: 'any-of: valid key', path: '/any', headers: [key(acmeKey.key)], status: 200, consumer: 'acme', method: 'apiKey' },
  { name: 'any-of: valid Basic', path: '/any', headers: [basic('bob', 'bob-pw')], status: 200, consumer: 'bob', method: 'basic' },
  {
    name: 'any-of: nothing → 401 with a challenge per scheme',
    path: '/any',
    headers: [],
    status: 401,
    code: 'PTC_ERR_UNAUTHENTICATED',
    challenges: [KEY_CHALLENGE, BASIC_CHALLENGE],
  },
  {
    name: 'any-of: bad key → 401, its own challenge',
    path: '/any',
    headers: [key('nope')],
    status: 401,
    code: 'PTC_ERR_INVALID_CREDENTIALS',
    challenges: [KEY_CHALLENGE],
  },
  {
    name: 'any-of: bad Basic → 401, never falls through',
    path: '/any',
    headers: [basic('bob', 'wrong')],
    status: 401,
    code: 'PTC_ERR_INVALID_CREDENTIALS',
    challenges: [BASIC_CHALLENGE],
  },
  {
    name: 'any-of: valid key + valid Basic (two schemes) → 400',
    path: '/any',
    headers: [key(acmeKey.key), basic('acme', 'acme-pw')],
    status: 400,
    code: 'PTC_ERR_AMBIGUOUS_CREDENTIALS',
  },
  {
    name: 'any-of: bad key + valid Basic → 400',
    path: '/any',
    headers: [key('nope'), basic('acme', 'acme-pw')],
    status: 400,
    code: 'PTC_ERR_AMBIGUOUS_CREDENTIALS',
  },
  { name: 'any-of: the same key twice → 400', path: '/any', headers: [key(acmeKey.key), key(acmeKey.key)], status: 400, code: 'PTC_ERR_AMBIGUOUS_CREDENTIALS' },
  { name: 'any-of: two different keys → 400', path: '/any', headers: [key(acmeKey.key), key(bobKey.key)], status: 400, code: 'PTC_ERR_AMBIGUOUS_CREDENTIALS' },
  {
    name: 'any-of: key in header and query → 400',
    path: `/anyq?api_key=${acmeKey.key}`,
    headers: [key(acmeKey.key)],
    status: 400,
    code: 'PTC_ERR_AMBIGUOUS_CREDENTIALS',
  },
  {
    name: 'any-of: query key twice → 400',
    path: `/anyq?api_key=${acmeKey.key}&api_key=${acmeKey.key}`,
    headers: [],
    status: 400,
    code: 'PTC_ERR_AMBIGUOUS_CREDENTIALS',
  },
  { name: 'any-of: query key alone', path: `/anyq?api_key=${bobKey.key}`, headers: [], status: 200, consumer: 'bob' },
  {
    name: 'any-of: nothing on key/query route → both challenges',
    path: '/anyq',
    headers: [],
    status: 401,
    code: 'PTC_ERR_UNAUTHENTICATED',
    challenges: [KEY_CHALLENGE, QUERY_CHALLENGE],
  },
  // all-of
  {
    name: 'all-of: key + Basic of one consumer',
    path: '/all',
    headers: [key(acmeKey.key), basic('acme', 'acme-pw')],
    status: 200,
    consumer: 'acme',
    method: 'apiKey+basic',
  },
  {
    name: 'all-of: key only → 401',
    path: '/all',
    headers: [key(acmeKey.key)],
    status: 401,
    code: 'PTC_ERR_UNAUTHENTICATED',
    challenges: [KEY_CHALLENGE, BASIC_CHALLENGE],
  },
  { name: 'all-of: Basic only → 401', path: '/all', headers: [basic('acme', 'acme-pw')], status: 401, code: 'PTC_ERR_UNAUTHENTICATED' },
  {
    name: 'all-of: valid key + wrong password → 401 invalid',
    path: '/all',
    headers: [key(acmeKey.key), basic('acme', 'nope')],
    status: 401,
    code: 'PTC_ERR_INVALID_CREDENTIALS',
    challenges: [BASIC_CHALLENGE],
  },
  {
    name: 'all-of: credentials of two consumers → 401 invalid',
    path: '/all',
    headers: [key(acmeKey.key), basic('bob', 'bob-pw')],
    status: 401,
    code: 'PTC_ERR_INVALID_CREDENTIALS',
  },
  {
    name: 'all-of: a key twice is still ambiguous → 400',
    path: '/all',
    headers: [key(acmeKey.key), key(acmeKey.key), basic('acme', 'acme-pw')],
    status: 400,
    code: 'PTC_ERR_AMBIGUOUS_CREDENTIALS',
  },
  // anonymous
  { name: 'anonymous route: no authentication at all', path: '/open', headers: [key('whatever')], status: 200 },
];

describe('authentication decision rules', () => {
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
  partner-key: { type: apiKey, header: x-api-key }
  query-key: { type: apiKey, query: api_key }
  staff: { type: basic, realm: staff, maxFailures: 1000 }
consumers:
  - { id: acme, apiKeys: [${acmeKey.digest}], basic: { username: acme, passwordHash: "${await cheapArgon2('acme-pw')}" } }
  - { id: bob, apiKeys: [${bobKey.digest}], basic: { username: bob, passwordHash: "${await cheapArgon2('bob-pw')}" } }
routes:
  - { name: any, match: { path: /any }, authenticate: [partner-key, staff], upstream: be }
  - { name: anyq, match: { path: /anyq }, authenticate: [partner-key, query-key], upstream: be }
  - { name: all, match: { path: /all }, authenticate: { allOf: [partner-key, staff] }, upstream: be }
  - { name: open, match: { path: /open }, upstream: be }
`);
  });
  after(async () => {
    await gw.close();
    await backend.close();
  });

  for (const row of ROWS) {
    it(row.name, async () => {
      const n = backend.received.length;
      const head = [`GET ${row.path} HTTP/1.1`, 'Host: gw.test', ...row.headers.map(([k, v]) => `${k}: ${v}`), 'Connection: close', '', ''].join('\r\n');
      const r = await exchange(gw.port, head);
      assert.equal(r.status, row.status, r.body);
      if (row.code !== undefined) assert.equal((JSON.parse(r.body) as { code: string }).code, row.code);
      if (row.challenges !== undefined) {
        const seen = r.raw
          .split('\r\n\r\n')[0]
          ?.split('\r\n')
          .filter((l) => l.toLowerCase().startsWith('www-authenticate:'))
          .map((l) => l.slice(l.indexOf(':') + 1).trim());
        assert.deepEqual(seen, row.challenges);
      }
      if (row.status === 200) {
        const got = backend.received[n]?.headers;
        assert.ok(got, 'the backend received the request');
        assert.equal(got['x-consumer-id'], row.consumer);
        if (row.method !== undefined) assert.equal(got['x-auth-method'], row.method);
        if (row.consumer !== undefined) {
          assert.equal(got['x-api-key'], undefined, 'credentials are stripped');
          assert.equal(got.authorization, undefined, 'credentials are stripped');
        }
      } else {
        assert.equal(backend.received.length, n, 'a refused request never reaches the backend');
      }
    });
  }
});
