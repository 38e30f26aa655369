/**
 * Outbound `apiKey` (header, query, JSON body field, form field) and `basic` credentials, through a
 * real gateway to a recording backend: what the backend receives, that a client-sent copy is
 * replaced, that a re-written body is framed right, and the 413/415 refusals.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend, type ReceivedRequest, type TestBackend } from '../helpers/backend.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { metricValue, scrape } from '../helpers/metrics.js';

const KEY = `bk_${randomBytes(18).toString('base64url')}`;
const PASSWORD = `pw_${randomBytes(18).toString('base64url')}`;

describe('outbound apiKey and basic credentials', () => {
  let backend: TestBackend;
  let gw: TestGateway;
  const raw: string[] = [];

  before(async () => {
    process.env.PTC_TEST_BACKEND_KEY = KEY;
    process.env.PTC_TEST_BACKEND_PASSWORD = PASSWORD;
    backend = await startBackend();
    gw = await startGateway(
      `
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
limits: { maxBodyBytes: 64kb }
upstreams:
  hdr:
    targets: ["${backend.url}"]
    auth: { type: apiKey, in: header, name: X-Backend-Key, value: "\${env:PTC_TEST_BACKEND_KEY}" }
  qry:
    targets: ["${backend.url}"]
    auth: { type: apiKey, in: query, name: api_key, value: "\${env:PTC_TEST_BACKEND_KEY}" }
  json:
    targets: ["${backend.url}"]
    auth: { type: apiKey, in: jsonBody, field: auth.key, value: "\${env:PTC_TEST_BACKEND_KEY}", maxBodyBytes: 1kb }
  form:
    targets: ["${backend.url}"]
    auth: { type: apiKey, in: form, name: key, value: "\${env:PTC_TEST_BACKEND_KEY}", maxBodyBytes: 1kb }
  basic:
    targets: ["${backend.url}"]
    auth: { type: basic, username: svc-gateway, password: "\${env:PTC_TEST_BACKEND_PASSWORD}" }
  plain:
    targets: ["${backend.url}"]
routes:
  - { name: hdr, match: { path: /h/** }, upstream: hdr, stripPrefix: /h }
  - { name: qry, match: { path: /q/** }, upstream: qry, stripPrefix: /q }
  - { name: json, match: { path: /j/** }, upstream: json, stripPrefix: /j }
  - { name: form, match: { path: /f/** }, upstream: form, stripPrefix: /f }
  - { name: basic, match: { path: /b/** }, upstream: basic, stripPrefix: /b }
  - { name: plain, match: { path: /p/** }, upstream: plain, stripPrefix: /p }
`,
      { raw },
    );
  });
  after(async () => {
    await gw.close();
    await backend.close();
    delete process.env.PTC_TEST_BACKEND_KEY;
    delete process.env.PTC_TEST_BACKEND_PASSWORD;
  });

  /** Send through the gateway; return the status, the problem code and what the backend received (if it was called). */
  async function send(
    path: string,
    options: { method?: string; headers?: Record<string, string>; body?: string | Buffer | Readable } = {},
  ): Promise<{ status: number; code: unknown; got: ReceivedRequest | undefined }> {
    const n = backend.received.length;
    const res = await request(`${gw.url}${path}`, { method: (options.method ?? 'GET') as 'GET', headers: options.headers ?? {}, body: options.body ?? null });
    const text = await res.body.text();
    const code = res.headers['content-type'] === 'application/problem+json' ? (JSON.parse(text) as { code: unknown }).code : undefined;
    return { status: res.statusCode, code, got: backend.received.length > n ? backend.received[backend.received.length - 1] : undefined };
  }

  const headerCount = (got: ReceivedRequest, name: string) => got.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === name).length;

  /** The framing the backend saw matches the body it received. */
  function assertFramed(got: ReceivedRequest): void {
    assert.equal(got.headers['content-length'], String(got.body.length));
    assert.equal(got.headers['transfer-encoding'], undefined);
  }

  describe('in: header', () => {
    it('sends the key in the configured header', async () => {
      const { status, got } = await send('/h/items');
      assert.equal(status, 200);
      assert.equal(got?.headers['x-backend-key'], KEY);
      assert.equal(got?.url, '/items');
    });

    it('replaces a client-sent copy of the header, never duplicating it', async () => {
      const { got } = await send('/h/items', { headers: { 'X-Backend-Key': 'client-chosen' } });
      assert.ok(got);
      assert.equal(got.headers['x-backend-key'], KEY);
      assert.equal(headerCount(got, 'x-backend-key'), 1);
    });

    it('upstreams without auth get no credential', async () => {
      const { got } = await send('/p/items');
      assert.equal(got?.headers['x-backend-key'], undefined);
    });
  });

  describe('in: query', () => {
    it('appends the key as a query parameter, replacing the client copy and keeping other parameters as sent', async () => {
      const { got } = await send('/q/search?a=1&api_key=client&b=x%20y&API_KEY=other');
      assert.ok(got);
      const url = new URL(got.url, 'http://x');
      assert.deepEqual(url.searchParams.getAll('api_key'), [KEY]);
      assert.equal(url.pathname, '/search');
      assert.equal(got.url.split('?')[1]?.startsWith('a=1&b=x%20y&API_KEY=other&'), true);
    });

    it('adds a query when there was none', async () => {
      const { got } = await send('/q/search');
      assert.equal(got?.url, `/search?api_key=${encodeURIComponent(KEY)}`);
    });
  });

  describe('in: jsonBody', () => {
    it('sets the field in the JSON body, replacing the client value, and re-frames the body', async () => {
      const body = JSON.stringify({ auth: { key: 'client', scope: 'x' }, items: [1, 2], note: 'é' });
      const { status, got } = await send('/j/rpc', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body });
      assert.equal(status, 200);
      assert.ok(got);
      assert.deepEqual(JSON.parse(got.body.toString('utf8')), { auth: { key: KEY, scope: 'x' }, items: [1, 2], note: 'é' });
      assertFramed(got);
    });

    it('creates the intermediate objects of the path', async () => {
      const { got } = await send('/j/rpc', { method: 'POST', headers: { 'content-type': 'application/vnd.api+json' }, body: '{"a":1,"auth":"flat"}' });
      assert.ok(got);
      assert.deepEqual(JSON.parse(got.body.toString('utf8')), { a: 1, auth: { key: KEY } });
    });

    it('collapses duplicate client keys, so the backend cannot pick the client copy', async () => {
      const { got } = await send('/j/rpc', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"auth":{"key":"x","key":"y"}}' });
      assert.ok(got);
      assert.equal(got.body.toString('utf8'), JSON.stringify({ auth: { key: KEY } }));
    });

    it('frames a chunked client body with Content-Length upstream', async () => {
      const { status, got } = await send('/j/rpc', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Readable.from([Buffer.from('{"auth":'), Buffer.from('{},"n":'), Buffer.from('42}')]),
      });
      assert.equal(status, 200);
      assert.ok(got);
      assert.deepEqual(JSON.parse(got.body.toString('utf8')), { auth: { key: KEY }, n: 42 });
      assertFramed(got);
    });

    it('a request without a body gets a JSON body holding only the key', async () => {
      const { got } = await send('/j/rpc');
      assert.ok(got);
      assert.equal(got.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(got.body.toString('utf8')), { auth: { key: KEY } });
      assertFramed(got);
    });

    const unsupported: [string, Record<string, string>, string][] = [
      ['text/plain', { 'content-type': 'text/plain' }, '{"a":1}'],
      ['no content type', {}, '{"a":1}'],
      ['unparseable JSON', { 'content-type': 'application/json' }, '{"a":'],
      ['a JSON array', { 'content-type': 'application/json' }, '[1,2]'],
      ['a compressed body', { 'content-type': 'application/json', 'content-encoding': 'gzip' }, '{"a":1}'],
      ['a non-UTF-8 charset', { 'content-type': 'application/json; charset=utf-16' }, '{"a":1}'],
    ];
    for (const [what, headers, body] of unsupported) {
      it(`refuses ${what} with 415 PTC_ERR_UNSUPPORTED_MEDIA_TYPE, without calling the backend`, async () => {
        const r = await send('/j/rpc', { method: 'POST', headers, body });
        assert.equal(r.status, 415);
        assert.equal(r.code, 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE');
        assert.equal(r.got, undefined);
      });
    }

    it('refuses a body over the cap with 413 (declared length)', async () => {
      const r = await send('/j/rpc', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pad: 'x'.repeat(2048) }) });
      assert.equal(r.status, 413);
      assert.equal(r.code, 'PTC_ERR_BODY_TOO_LARGE');
      assert.equal(r.got, undefined);
    });

    it('refuses a chunked body over the cap with 413', async () => {
      const r = await send('/j/rpc', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Readable.from([Buffer.from('{"pad":"'), Buffer.alloc(800, 0x61), Buffer.alloc(800, 0x61), Buffer.from('"}')]),
      });
      assert.equal(r.status, 413);
      assert.equal(r.code, 'PTC_ERR_BODY_TOO_LARGE');
      assert.equal(r.got, undefined);
    });
  });

  describe('in: form', () => {
    it('replaces the form field and keeps the other fields as sent', async () => {
      const { status, got } = await send('/f/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'a=1&key=client&b=x+y&key=again',
      });
      assert.equal(status, 200);
      assert.ok(got);
      assert.equal(got.body.toString('latin1'), `a=1&b=x+y&key=${encodeURIComponent(KEY)}`);
      assertFramed(got);
    });

    it('refuses a body that is not a urlencoded form with 415', async () => {
      const r = await send('/f/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"key":"x"}' });
      assert.equal(r.status, 415);
      assert.equal(r.code, 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE');
      assert.equal(r.got, undefined);
    });
  });

  describe('basic', () => {
    it('sends Basic credentials, replacing the client Authorization header', async () => {
      const { got } = await send('/b/x', { headers: { authorization: 'Bearer client-token' } });
      assert.ok(got);
      assert.equal(got.headers.authorization, `Basic ${Buffer.from(`svc-gateway:${PASSWORD}`).toString('base64')}`);
      assert.equal(headerCount(got, 'authorization'), 1);
    });
  });

  it('counts applied and refused credentials per upstream and type', async () => {
    const samples = await scrape(gw.adminUrl);
    assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'hdr', type: 'apiKey', result: 'applied' }) >= 2);
    assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'json', type: 'apiKey', result: 'refused' }) >= 6);
    assert.ok(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'basic', type: 'basic', result: 'applied' }) >= 1);
    assert.equal(metricValue(samples, 'portcullis_outbound_credentials_total', { upstream: 'plain' }), 0);
  });

  it('never writes the key or the password to a log line or a metric', async () => {
    const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text();
    for (const text of [raw.join('\n'), metrics]) {
      assert.equal(text.includes(KEY), false);
      assert.equal(text.includes(PASSWORD), false);
    }
    const refused = gw.accessLog().filter((l) => l.code === 'PTC_ERR_UNSUPPORTED_MEDIA_TYPE');
    assert.ok(refused.length > 0);
    assert.match(String(refused[0]?.details), /^outbound: /);
  });
});
