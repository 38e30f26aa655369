import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normaliseTarget } from '../../src/core/path.js';

/** [raw target, expected path, expected query] */
const accepted: readonly (readonly [string, string, string])[] = [
  ['/', '/', ''],
  ['/api/orders', '/api/orders', ''],
  ['/api/orders?x=1&y=%2F', '/api/orders', '?x=1&y=%2F'],
  // RFC 3986 §6.2.2.2: percent-encoded unreserved characters are decoded.
  ['/%41bc', '/Abc', ''],
  ['/a%7Eb', '/a~b', ''],
  ['/a%7eb', '/a~b', ''],
  ['/%2D%2E%5F%30', '/-._0', ''],
  // Other escapes are kept, upper-cased (RFC 3986 §6.2.2.1).
  ['/a%2ab', '/a%2Ab', ''],
  ['/a%20b', '/a%20b', ''],
  ['/caf%c3%a9', '/caf%C3%A9', ''],
  ['/a%3Fb', '/a%3Fb', ''],
  // Dot segments (RFC 3986 §5.2.4).
  ['/a/./b', '/a/b', ''],
  ['/a/b/../c', '/a/c', ''],
  ['/a/%2e%2e/b', '/b', ''],
  ['/a/%2E%2E/b', '/b', ''],
  ['/a/.%2e/b', '/b', ''],
  ['/a/%2e/b', '/a/b', ''],
  ['/a/b/..', '/a/', ''],
  ['/a/b/.', '/a/b/', ''],
  ['/a/..', '/', ''],
  ['/a/.hidden/..b', '/a/.hidden/..b', ''],
  ['/a/b/../c?q=/../x', '/a/c', '?q=/../x'],
  // Duplicate slashes merged.
  ['//a', '/a', ''],
  ['/a//b', '/a/b', ''],
  ['/a///b//', '/a/b/', ''],
  ['//', '/', ''],
  // Trailing slash preserved.
  ['/a/b/', '/a/b/', ''],
  ['/a/%41/', '/a/A/', ''],
  // Characters RFC 3986 allows raw in a path.
  ["/a:b@c!$&'()*+,;=-._~", "/a:b@c!$&'()*+,;=-._~", ''],
];

/** [raw target, why] — each must be refused. */
const refused: readonly (readonly [string, string])[] = [
  ['/a%2Fb', 'encoded slash'],
  ['/a%2fb', 'encoded slash, lower case'],
  ['/a%5Cb', 'encoded backslash'],
  ['/a%5cb', 'encoded backslash, lower case'],
  ['/a%00b', 'encoded NUL'],
  ['/a%0ab', 'encoded LF'],
  ['/a%0Db', 'encoded CR'],
  ['/a%7Fb', 'encoded DEL'],
  ['/a%zzb', 'invalid escape'],
  ['/a%4', 'truncated escape'],
  ['/a%', 'bare percent'],
  ['/a%g1', 'non-hex digit'],
  ['/a\\b', 'raw backslash'],
  ['/a b', 'raw space'],
  ['/a\tb', 'raw tab'],
  ['/a\u0001b', 'raw control character'],
  ['/a\u007fb', 'raw DEL'],
  ['/caf\u00e9', 'raw non-ASCII'],
  ['/a"b', 'raw double quote'],
  ['/a<b>', 'raw angle brackets'],
  ['/a#frag', 'fragment in the path'],
  ['/a?x=1#frag', 'fragment after the query'],
  ['/a?x=1 2', 'space in the query'],
  ['/..', '.. above the root'],
  ['/../a', '.. above the root, then a segment'],
  ['/a/../../b', '.. climbing above the root'],
  ['/%2e%2e/a', 'encoded .. above the root'],
  ['*', 'asterisk-form'],
  ['http://example.com/', 'absolute-form is not origin-form'],
  ['', 'empty target'],
];

describe('normaliseTarget', () => {
  for (const [raw, path, query] of accepted) {
    it(`normalises ${JSON.stringify(raw)} to ${path}${query}`, () => {
      assert.deepEqual(normaliseTarget(raw), { path, query });
    });
  }

  for (const [raw, why] of refused) {
    it(`refuses ${JSON.stringify(raw)} (${why})`, () => {
      const r = normaliseTarget(raw);
      assert.equal(typeof r, 'string', `expected a refusal, got ${JSON.stringify(r)}`);
    });
  }

  it('is idempotent: a normalised path normalises to itself', () => {
    for (const [raw] of accepted) {
      const once = normaliseTarget(raw);
      assert.notEqual(typeof once, 'string');
      const { path, query } = once as { path: string; query: string };
      assert.deepEqual(normaliseTarget(path + query), once, raw);
    }
  });
});
