import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cleanResponseHeaders, copyResponseHeaders, isValidRequestId, type ScannedHeaders, scanRequestHeaders } from '../../src/core/headers.js';

function scan(raw: string[], max = 100): ScannedHeaders {
  const r = scanRequestHeaders(raw, max);
  assert.ok(!('code' in r), `unexpected refusal ${JSON.stringify(r)}`);
  return r;
}

function refusalCode(raw: string[], max = 100): string | undefined {
  const r = scanRequestHeaders(raw, max);
  return 'code' in r ? r.code : undefined;
}

describe('scanRequestHeaders', () => {
  it('copies end-to-end headers, keeping repeated ones as a list', () => {
    const h = scan(['Accept', 'a/b', 'X-Custom', '1', 'x-custom', '2', 'Cookie', 'c=1']);
    assert.deepEqual({ ...h.out }, { accept: 'a/b', 'x-custom': ['1', '2'], cookie: 'c=1' });
  });

  it('uses a null-prototype map, so __proto__ is just a header', () => {
    const h = scan(['__proto__', 'x']);
    assert.equal(Object.getPrototypeOf(h.out), null);
    assert.equal(Object.getOwnPropertyDescriptor(h.out, '__proto__')?.value, 'x');
  });

  const hopByHop = [
    'Connection',
    'Keep-Alive',
    'Proxy-Connection',
    'TE',
    'Trailer',
    'Transfer-Encoding',
    'Upgrade',
    'HTTP2-Settings',
    'Proxy-Authorization',
    'Proxy-Authenticate',
  ];
  for (const name of hopByHop) {
    it(`never copies the hop-by-hop header ${name}`, () => {
      const h = scan([name, 'v', 'Accept', '*/*']);
      assert.equal(h.out[name.toLowerCase()], undefined);
      assert.equal(h.out.accept, '*/*');
    });
  }

  for (const name of [
    'Host',
    'Content-Length',
    'Expect',
    'X-Forwarded-For',
    'X-Forwarded-Proto',
    'X-Forwarded-Host',
    'X-Forwarded-Port',
    'X-Real-IP',
    'Forwarded',
    'X-Request-Id',
  ]) {
    it(`does not copy ${name} (framing, or set by the gateway)`, () => {
      const h = scan([name, '1']);
      assert.equal(h.out[name.toLowerCase()], undefined);
    });
  }

  it('drops every header named in Connection (RFC 9110 §7.6.1), across several Connection lines', () => {
    const h = scan(['Connection', 'keep-alive, X-Secret', 'connection', ' x-other ,', 'X-Secret', 's', 'X-Other', 'o', 'X-Kept', 'k']);
    assert.deepEqual({ ...h.out }, { 'x-kept': 'k' });
  });

  it('reports the values the gateway needs', () => {
    const h = scan([
      'Host',
      'api.example',
      'Content-Length',
      '5',
      'Expect',
      '100-continue',
      'Upgrade',
      'websocket',
      'X-Forwarded-For',
      '1.1.1.1',
      'x-forwarded-for',
      '2.2.2.2',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'front.example',
      'X-Request-Id',
      'abc',
    ]);
    assert.equal(h.host, 'api.example');
    assert.equal(h.contentLength, '5');
    assert.equal(h.chunked, false);
    assert.equal(h.expect, '100-continue');
    assert.equal(h.upgrade, 'websocket');
    assert.equal(h.xForwardedFor, '1.1.1.1,2.2.2.2');
    assert.equal(h.xForwardedProto, 'https');
    assert.equal(h.xForwardedHost, 'front.example');
    assert.equal(h.requestId, 'abc');
  });

  it('notes a Transfer-Encoding body', () => {
    assert.equal(scan(['Transfer-Encoding', 'chunked']).chunked, true);
  });

  it('skips HTTP/2 pseudo-headers', () => {
    const h = scan([':method', 'GET', ':path', '/', ':authority', 'a.example', 'accept', '*/*']);
    assert.deepEqual({ ...h.out }, { accept: '*/*' });
  });

  const duplicates: readonly (readonly [string, string[]])[] = [
    ['Host', ['Host', 'a', 'host', 'b']],
    ['Host with the same value', ['Host', 'a', 'Host', 'a']],
    ['Content-Length', ['Content-Length', '1', 'content-length', '2']],
    ['Content-Length with the same value', ['Content-Length', '1', 'Content-Length', '1']],
    ['Authorization', ['Authorization', 'Bearer a', 'authorization', 'Bearer b']],
  ];
  for (const [what, raw] of duplicates) {
    it(`refuses a duplicate ${what}`, () => {
      assert.equal(refusalCode(raw), 'PTC_ERR_DUPLICATE_HEADER');
    });
  }

  it('refuses more than maxCount headers with PTC_ERR_TOO_MANY_HEADERS, and accepts exactly maxCount', () => {
    const raw = (n: number) => Array.from({ length: n }, (_, i) => [`x-h${i}`, 'v']).flat();
    assert.equal(refusalCode(raw(4), 3), 'PTC_ERR_TOO_MANY_HEADERS');
    assert.equal(refusalCode(raw(3), 3), undefined);
  });
});

describe('cleanResponseHeaders', () => {
  it('removes hop-by-hop headers and every header the upstream names in Connection', () => {
    const h: Record<string, string | string[] | undefined> = {
      connection: 'keep-alive, X-Internal',
      'x-internal': 'secret',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      te: 'trailers',
      trailer: 'x-checksum',
      'http2-settings': 'AAA',
      'proxy-authenticate': 'Basic',
      'content-type': 'text/plain',
      'x-kept': '1',
    };
    cleanResponseHeaders(h);
    assert.deepEqual(h, { 'content-type': 'text/plain', 'x-kept': '1' });
  });

  it('handles Connection given as a list', () => {
    const h: Record<string, string | string[] | undefined> = { connection: ['x-a', 'X-B'], 'x-a': '1', 'x-b': '2', 'x-c': '3' };
    cleanResponseHeaders(h);
    assert.deepEqual(h, { 'x-c': '3' });
  });

  it('keeps Content-Length even when Connection names it (framing the gateway relies on)', () => {
    const h: Record<string, string | string[] | undefined> = { connection: 'content-length', 'content-length': '3' };
    cleanResponseHeaders(h);
    assert.deepEqual(h, { 'content-length': '3' });
  });
});

describe('copyResponseHeaders (the proxy hot path) matches cleanResponseHeaders', () => {
  type Headers = Record<string, string | string[] | undefined>;
  const cases: [string, Headers][] = [
    ['a keep-alive backend', { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'content-type': 'a/b', 'content-length': '2', date: 'x' }],
    ['Connection: close', { connection: 'close', 'content-type': 'a/b' }],
    ['every hop-by-hop header and a listed one', { connection: 'keep-alive, X-Internal', 'x-internal': 's', te: 't', upgrade: 'h2c', 'x-kept': '1' }],
    ['Connection as a list', { connection: ['x-a', 'X-B'], 'x-a': '1', 'x-b': '2', 'x-c': '3' }],
    ['Connection naming Content-Length', { connection: 'content-length', 'content-length': '3' }],
    ['repeated headers and undefined values', { 'set-cookie': ['a=1', 'b=2'], 'x-gone': undefined }],
  ];
  for (const [name, headers] of cases)
    it(name, () => {
      const before = structuredClone(headers);
      const expected = structuredClone(headers);
      cleanResponseHeaders(expected);
      for (const k of Object.keys(expected)) if (expected[k] === undefined) delete expected[k];
      assert.deepEqual(copyResponseHeaders(headers), expected);
      assert.deepEqual(headers, before, 'the upstream object is not mutated');
    });
});

describe('isValidRequestId', () => {
  for (const ok of ['abc', 'A-1_2.3:4', 'x'.repeat(128)]) it(`accepts ${ok.slice(0, 20)}`, () => assert.equal(isValidRequestId(ok), true));
  for (const bad of ['', 'x'.repeat(129), 'a b', 'a\r\nb', 'é', 'a/b'])
    it(`refuses ${JSON.stringify(bad.slice(0, 20))}`, () => assert.equal(isValidRequestId(bad), false));
});
