/**
 * Request hygiene, fail closed: hostile and malformed requests through a real gateway, asserting
 * what the client sees (status, problem+json code, request id, no internals) and what the backend
 * received — nothing at all for a refused request.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import { request } from 'undici';
import { startBackend, type TestBackend } from '../helpers/backend.js';
import { type Exchange, exchange } from '../helpers/exchange.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An HTTP/1.1 request from head lines and an optional body. */
function http1(lines: readonly string[], body = ''): string {
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

/** A raw TCP server for peers that misbehave (hang, reset, send odd headers); sockets are tracked for close. */
async function startRawServer(onHead: (socket: net.Socket) => void): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      onHead(socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The reply is an RFC 9457 problem with exactly the public fields, the code, and a request id. */
function assertProblem(res: Exchange, status: number, codes: string | readonly string[], leakPorts: readonly number[] = []): Record<string, unknown> {
  const allowed = typeof codes === 'string' ? [codes] : codes;
  assert.equal(res.status, status, `status (raw: ${JSON.stringify(res.raw.slice(0, 300))})`);
  assert.equal(res.headers['content-type'], 'application/problem+json');
  const body = JSON.parse(res.body) as Record<string, unknown>;
  assert.ok(allowed.includes(body.code as string), `code ${String(body.code)} not in ${allowed.join(', ')}`);
  assert.equal(body.status, status);
  assert.equal(typeof body.title, 'string');
  assert.match(res.headers['x-request-id'] ?? '', UUID);
  assert.equal(body.requestId, res.headers['x-request-id']);
  // Only the public fields: no details, stack, upstream address or other internals.
  assert.deepEqual(Object.keys(body).sort(), ['code', 'requestId', 'status', 'title', 'type']);
  assert.doesNotMatch(res.raw, /\bat [^\s]+:\d+:\d+|node:internal|ECONN|UND_ERR|stack/i);
  for (const p of leakPorts) assert.ok(!res.raw.includes(`:${p}`), `reply leaks port ${p}`);
  return body;
}

// ---------------------------------------------------------------------------------------------

let api: TestBackend;
let admin: TestBackend;
let hop: Awaited<ReturnType<typeof startRawServer>>;
/** Requests the backends began to receive, complete or not (`received` only has complete ones). */
let started = 0;

before(async () => {
  api = await startBackend();
  admin = await startBackend();
  for (const b of [api, admin]) b.server.on('request', () => started++);
  // An upstream whose response carries every kind of hop-by-hop header.
  hop = await startRawServer((socket) => {
    socket.end(
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Internal, close\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\n' +
        'Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nTrailer: X-Checksum\r\nProxy-Authenticate: Basic realm="x"\r\nTE: trailers\r\n' +
        'X-Kept: yes\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
  });
});

after(async () => {
  await Promise.all([api.close(), admin.close(), hop.close()]);
});

beforeEach(() => {
  api.received.length = 0;
  admin.received.length = 0;
  started = 0;
});

// ---------------------------------------------------------------------------------------------

describe('request hygiene on the main gateway', () => {
  let gw: TestGateway;
  let port: number;
  const host = () => `Host: 127.0.0.1:${port}`;

  before(async () => {
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
limits: { maxHeaderCount: 100, maxHeaderBytes: 8kb, maxBodyBytes: 1kb, headersTimeout: 1s }
upstreams:
  api: { targets: ["${api.url}"] }
  admin: { targets: ["${admin.url}"] }
  hop: { targets: ["${hop.url}"] }
routes:
  - name: api
    match: { path: /api/** }
    upstream: api
    stripPrefix: /api
  - name: admin
    match: { path: /admin/** }
    upstream: admin
  - name: hosted
    match: { host: api.test, path: /hosted/** }
    upstream: api
  - name: hop
    match: { path: /hop/** }
    upstream: hop
  - name: readonly
    match: { path: /ro/**, methods: [GET] }
    upstream: api
  - name: ws
    match: { path: /ws }
    upstream: api
    websocket: true
`);
    port = gw.port;
  });
  after(async () => {
    await gw.close(0);
  });

  const nothingReached = () => {
    assert.equal(started, 0, 'a backend began to receive a request');
    assert.equal(api.received.length, 0, `api backend received ${JSON.stringify(api.received.map((r) => r.url))}`);
    assert.equal(admin.received.length, 0, 'admin backend received a request');
  };

  describe('ambiguous request targets get 400 and never reach an upstream', () => {
    const cases: readonly (readonly [string, string, readonly string[]])[] = [
      ['an encoded slash %2F', '/api/a%2Fb', ['PTC_ERR_BAD_PATH']],
      ['an encoded slash %2f', '/api/a%2fb', ['PTC_ERR_BAD_PATH']],
      ['an encoded slash hiding a dot segment', '/api/..%2fadmin', ['PTC_ERR_BAD_PATH']],
      ['an encoded backslash %5C', '/api/a%5Cb', ['PTC_ERR_BAD_PATH']],
      ['an encoded NUL %00', '/api/a%00b', ['PTC_ERR_BAD_PATH']],
      ['an encoded LF %0a', '/api/a%0ab', ['PTC_ERR_BAD_PATH']],
      ['an invalid escape %zz', '/api/a%zz', ['PTC_ERR_BAD_PATH']],
      ['a truncated escape %4', '/api/a%4', ['PTC_ERR_BAD_PATH']],
      // The HTTP parser may refuse some of these itself; either way it is a problem+json 400.
      ['a raw backslash', '/api/a\\b', ['PTC_ERR_BAD_PATH', 'PTC_ERR_BAD_REQUEST']],
      ['a fragment', '/api/a#frag', ['PTC_ERR_BAD_PATH', 'PTC_ERR_BAD_REQUEST']],
      ['a raw non-ASCII byte', '/api/caf\u00e9', ['PTC_ERR_BAD_PATH', 'PTC_ERR_BAD_REQUEST']],
      ['a /.. escaping the root', '/../etc/passwd', ['PTC_ERR_BAD_PATH']],
      ['a /.. escaping the root after a prefix', '/api/../../etc/passwd', ['PTC_ERR_BAD_PATH']],
      ['an encoded /.. escaping the root', '/%2e%2e/api/x', ['PTC_ERR_BAD_PATH']],
    ];
    for (const [what, target, codes] of cases) {
      it(`refuses ${what}`, async () => {
        const res = await exchange(port, Buffer.from(http1([`GET ${target} HTTP/1.1`, host()]), 'latin1'));
        assertProblem(res, 400, codes);
        nothingReached();
      });
    }

    it('refuses OPTIONS * (asterisk-form)', async () => {
      const res = await exchange(port, http1(['OPTIONS * HTTP/1.1', host()]));
      assertProblem(res, 400, 'PTC_ERR_BAD_REQUEST_TARGET');
      nothingReached();
    });

    it('refuses an absolute-form target naming a host no route serves, even when Host agrees', async () => {
      const res = await exchange(port, http1(['GET http://evil.example/api/x HTTP/1.1', 'Host: evil.example']));
      assertProblem(res, 400, 'PTC_ERR_BAD_REQUEST_TARGET');
      nothingReached();
    });

    it('refuses an absolute-form target that disagrees with Host', async () => {
      const res = await exchange(port, http1(['GET http://api.test/hosted/x HTTP/1.1', 'Host: other.example']));
      assertProblem(res, 400, 'PTC_ERR_BAD_REQUEST_TARGET');
      nothingReached();
    });

    it('refuses an absolute-form target with credentials or a non-HTTP scheme', async () => {
      for (const target of ['http://user:pw@api.test/hosted/x', 'ftp://api.test/hosted/x']) {
        const res = await exchange(port, http1([`GET ${target} HTTP/1.1`, 'Host: api.test']));
        assertProblem(res, 400, 'PTC_ERR_BAD_REQUEST_TARGET');
      }
      nothingReached();
    });

    it('accepts an absolute-form target for a host a route names, routing on its normalised path', async () => {
      const res = await exchange(port, http1(['GET http://api.test/hosted/a/../x?q=1 HTTP/1.1', 'Host: api.test']));
      assert.equal(res.status, 200);
      assert.equal(api.received.length, 1);
      assert.equal(api.received[0]?.url, '/hosted/x?q=1');
    });

    // The path of an absolute-form target gets the same single normalisation as origin-form, not the
    // WHATWG URL parser's (which clamps '..' at the root, turns '\\' into '/', and encodes raw bytes).
    const absolutePaths: readonly (readonly [string, string])[] = [
      ['a .. climbing above the root', 'http://api.test/hosted/../../etc/passwd'],
      ['an encoded .. climbing above the root', 'http://api.test/hosted/%2e%2e/%2E%2E/etc/passwd'],
      ['a backslash', 'http://api.test/hosted\\..\\..\\x'],
      ['a backslash in the authority', 'http://api.test\\@evil.example/hosted/x'],
      ['a raw non-ASCII byte', 'http://api.test/hosted/caf\u00e9'],
      ['an encoded slash', 'http://api.test/hosted/a%2Fb'],
      ['a fragment', 'http://api.test/hosted/x#frag'],
    ];
    for (const [what, target] of absolutePaths) {
      it(`refuses an absolute-form target with ${what} in its path`, async () => {
        const res = await exchange(port, Buffer.from(http1([`GET ${target} HTTP/1.1`, 'Host: api.test']), 'latin1'));
        assertProblem(res, 400, ['PTC_ERR_BAD_PATH', 'PTC_ERR_BAD_REQUEST_TARGET', 'PTC_ERR_BAD_REQUEST']);
        nothingReached();
      });
    }

    it('refuses CONNECT (no tunnels) with a problem, without reaching an upstream', async () => {
      const res = await exchange(port, http1(['CONNECT evil.example:443 HTTP/1.1', 'Host: evil.example:443']));
      assertProblem(res, 400, 'PTC_ERR_BAD_REQUEST_TARGET');
      assert.equal(res.headers.connection, 'close');
      nothingReached();
    });
  });

  describe('the normalised path is both matched and forwarded', () => {
    it('routes /api/%2e%2e/admin to the admin route, and the admin backend sees /admin', async () => {
      const res = await exchange(port, http1(['GET /api/%2e%2e/admin HTTP/1.1', host()]));
      assert.equal(res.status, 200);
      assert.equal(api.received.length, 0, 'the api backend must not see a request the router sent elsewhere');
      assert.equal(admin.received.length, 1);
      assert.equal(admin.received[0]?.url, '/admin');
      assert.equal(gw.accessLog().at(-1)?.route, 'admin');
      assert.equal(gw.accessLog().at(-1)?.path, '/admin');
    });

    it('forwards dot segments, duplicate slashes and unreserved escapes resolved', async () => {
      const res = await exchange(port, http1(['GET /api/v1/../orders//%7Euser/./%41?x=%2F HTTP/1.1', host()]));
      assert.equal(res.status, 200);
      assert.equal(api.received.length, 1);
      assert.equal(api.received[0]?.url, '/orders/~user/A?x=%2F', 'query forwarded as received');
    });

    it('upper-cases other escapes before matching and forwarding', async () => {
      const res = await exchange(port, http1(['GET /api/a%2ab HTTP/1.1', host()]));
      assert.equal(res.status, 200);
      assert.equal(api.received[0]?.url, '/a%2Ab');
    });

    it('answers 405 with Allow for a method the route does not accept', async () => {
      const res = await exchange(port, http1(['DELETE /ro/x HTTP/1.1', host()]));
      assertProblem(res, 405, 'PTC_ERR_METHOD_NOT_ALLOWED');
      assert.equal(res.headers.allow, 'GET, HEAD');
      nothingReached();
    });
  });

  describe('framing and duplicate headers', () => {
    const cases: readonly (readonly [string, readonly string[], string, readonly string[]])[] = [
      ['a duplicate Host', ['GET /api/x HTTP/1.1', 'Host: a.example', 'Host: b.example'], '', ['PTC_ERR_DUPLICATE_HEADER']],
      ['a duplicate Host with the same value', ['GET /api/x HTTP/1.1', host(), host()], '', ['PTC_ERR_DUPLICATE_HEADER']],
      [
        'a duplicate Content-Length (same value)',
        ['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Content-Length: 3'],
        'abc',
        ['PTC_ERR_DUPLICATE_HEADER', 'PTC_ERR_BAD_REQUEST'],
      ],
      [
        'a duplicate Content-Length (different values)',
        ['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 3', 'Content-Length: 5'],
        'abcde',
        ['PTC_ERR_DUPLICATE_HEADER', 'PTC_ERR_BAD_REQUEST'],
      ],
      ['a duplicate Authorization', ['GET /api/x HTTP/1.1', 'Host: a', 'Authorization: Bearer a', 'Authorization: Bearer b'], '', ['PTC_ERR_DUPLICATE_HEADER']],
      [
        'Content-Length with Transfer-Encoding (request smuggling)',
        ['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 4', 'Transfer-Encoding: chunked'],
        '0\r\n\r\nGET /admin/smuggled HTTP/1.1\r\nHost: a\r\n\r\n',
        ['PTC_ERR_BAD_REQUEST', 'PTC_ERR_BAD_HEADER'],
      ],
      [
        'a Transfer-Encoding other than chunked',
        ['POST /api/x HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip'],
        'abc',
        ['PTC_ERR_BAD_REQUEST', 'PTC_ERR_BAD_HEADER'],
      ],
      ['a non-numeric Content-Length', ['POST /api/x HTTP/1.1', 'Host: a', 'Content-Length: 3x'], 'abc', ['PTC_ERR_BAD_REQUEST', 'PTC_ERR_BAD_HEADER']],
      ['an obs-fold header line', ['GET /api/x HTTP/1.1', 'Host: a', 'X-Folded: one', ' two'], '', ['PTC_ERR_BAD_REQUEST', 'PTC_ERR_BAD_HEADER']],
      ['a space before the colon', ['GET /api/x HTTP/1.1', 'Host: a', 'X-Bad : v'], '', ['PTC_ERR_BAD_REQUEST', 'PTC_ERR_BAD_HEADER']],
      ['a bare LF line ending', ['GET /api/x HTTP/1.1\nHost: a\nX-A: 1'], '', ['PTC_ERR_BAD_REQUEST']],
    ];
    for (const [what, lines, body, codes] of cases) {
      it(`refuses ${what} with 400, closing the connection`, async () => {
        const res = await exchange(port, http1(lines, body));
        assertProblem(res, 400, codes);
        assert.equal(res.headers.connection, 'close');
        // Give a smuggled second request time to arrive if the gateway had let it through.
        await new Promise((r) => setTimeout(r, 50));
        nothingReached();
      });
    }

    it('refuses an HTTP/1.1 request without Host', async () => {
      const res = await exchange(port, http1(['GET /api/x HTTP/1.1']));
      assertProblem(res, 400, 'PTC_ERR_BAD_REQUEST');
      nothingReached();
    });

    it('answers 431 for 101 headers when maxHeaderCount is 100', async () => {
      const lines = ['GET /api/x HTTP/1.1', host()];
      for (let i = 0; i < 100; i++) lines.push(`X-H${i}: v`);
      const res = await exchange(port, http1(lines));
      assertProblem(res, 431, 'PTC_ERR_TOO_MANY_HEADERS');
      nothingReached();
    });

    it('accepts exactly maxHeaderCount headers', async () => {
      const lines = ['GET /api/x HTTP/1.1', host()];
      for (let i = 0; i < 99; i++) lines.push(`X-H${i}: v`);
      const res = await exchange(port, http1(lines));
      assert.equal(res.status, 200);
      assert.equal(api.received.length, 1);
      assert.equal(api.received[0]?.headers['x-h98'], 'v');
    });

    it('answers 431 for a head over maxHeaderBytes', async () => {
      const res = await exchange(port, http1(['GET /api/x HTTP/1.1', host(), `X-Big: ${'a'.repeat(9 * 1024)}`]));
      assertProblem(res, 431, 'PTC_ERR_HEADERS_TOO_LARGE');
      nothingReached();
    });

    it('answers 413 on a Content-Length over maxBodyBytes without waiting for the body', async () => {
      // Only the head is sent: the decision must not need the body.
      const res = await exchange(port, http1(['POST /api/x HTTP/1.1', host(), 'Content-Length: 2048']));
      assertProblem(res, 413, 'PTC_ERR_BODY_TOO_LARGE');
      assert.equal(res.headers.connection, 'close');
      nothingReached();
    });

    it('answers 413 on a chunked body that grows over maxBodyBytes', async () => {
      const chunk = `400\r\n${'a'.repeat(1024)}\r\n`;
      const res = await exchange(port, [http1(['POST /api/x HTTP/1.1', host(), 'Transfer-Encoding: chunked']), chunk, chunk, '0\r\n\r\n'], { gapMs: 20 });
      assertProblem(res, 413, 'PTC_ERR_BODY_TOO_LARGE');
      assert.equal(res.headers.connection, 'close');
      await new Promise((r) => setTimeout(r, 50));
      // The body streams, so the upstream saw the start of it; the gateway must abort that request
      // rather than let it complete with a truncated body.
      assert.equal(api.received.length, 0, 'the backend never got a complete request');
    });

    it('forwards a chunked body within maxBodyBytes', async () => {
      const res = await exchange(port, http1(['POST /api/x HTTP/1.1', host(), 'Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n'));
      assert.equal(res.status, 200);
      assert.equal(api.received[0]?.body.toString(), 'hello');
      assert.equal(api.received[0]?.headers['transfer-encoding'], 'chunked');
    });
  });

  describe('hop-by-hop headers are removed in both directions', () => {
    it('drops a header the client names in Connection', async () => {
      const res = await exchange(port, http1(['GET /api/x HTTP/1.1', host(), 'Connection: keep-alive, X-Secret', 'X-Secret: s3cr3t', 'X-Other: kept']));
      assert.equal(res.status, 200);
      assert.equal(api.received.length, 1);
      assert.equal(api.received[0]?.headers['x-secret'], undefined);
      assert.equal(api.received[0]?.headers['x-other'], 'kept');
    });

    it('drops a credential the client names in Connection', async () => {
      const res = await exchange(port, http1(['GET /api/x HTTP/1.1', host(), 'Connection: Authorization', 'Authorization: Bearer t']));
      assert.equal(res.status, 200);
      assert.equal(api.received[0]?.headers.authorization, undefined);
    });

    const hopByHop: readonly (readonly [string, string])[] = [
      ['Connection', 'close'],
      ['Keep-Alive', 'timeout=99, max=1000'],
      ['TE', 'trailers'],
      ['Trailer', 'X-Checksum'],
      ['Proxy-Connection', 'close'],
      ['Proxy-Authorization', 'Basic dXNlcjpwdw=='],
      ['Upgrade', 'foo/2'],
      ['HTTP2-Settings', 'AAMAAABkAAQCAAAAAAIAAAAA'],
    ];
    for (const [name, value] of hopByHop) {
      it(`does not forward ${name}: ${value}`, async () => {
        const res = await exchange(port, http1(['GET /api/x HTTP/1.1', host(), `${name}: ${value}`]));
        assert.equal(res.status, 200);
        assert.equal(api.received.length, 1);
        const got = api.received[0]?.rawHeaders ?? [];
        for (let i = 0; i < got.length; i += 2) assert.notEqual(got[i + 1], value, `backend received ${got[i]}: ${got[i + 1]}`);
        if (name !== 'Connection') assert.equal(api.received[0]?.headers[name.toLowerCase()], undefined);
      });
    }

    it('strips hop-by-hop headers of the upstream response, and every header it names in Connection', async () => {
      const res = await exchange(port, http1(['GET /hop/x HTTP/1.1', host(), 'Connection: close']));
      assert.equal(res.status, 200);
      assert.equal(res.headers['x-kept'], 'yes');
      for (const h of ['x-internal', 'keep-alive', 'proxy-connection', 'upgrade', 'trailer', 'proxy-authenticate', 'te'])
        assert.equal(res.headers[h], undefined, `${h} reached the client`);
      assert.equal(res.headers.connection, 'close', "the gateway's own Connection, not the upstream's");
      assert.ok(res.raw.endsWith('hello\r\n0\r\n\r\n') || res.body === 'hello', 'body relayed');
    });
  });

  describe('Expect', () => {
    it('answers an unknown route 404 without sending 100 Continue first', async () => {
      const res = await exchange(port, http1(['POST /nope HTTP/1.1', host(), 'Content-Length: 5', 'Expect: 100-continue']));
      assert.deepEqual(res.interim, []);
      assertProblem(res, 404, 'PTC_ERR_NO_ROUTE');
      nothingReached();
    });

    it('answers 413 for a body over the limit without sending 100 Continue first', async () => {
      const res = await exchange(port, http1(['POST /api/x HTTP/1.1', host(), 'Content-Length: 4096', 'Expect: 100-continue']));
      assert.deepEqual(res.interim, []);
      assertProblem(res, 413, 'PTC_ERR_BODY_TOO_LARGE');
      nothingReached();
    });

    it('sends 100 Continue on an admitted request, then proxies the body', async () => {
      const res = await exchange(port, http1(['POST /api/x HTTP/1.1', host(), 'Content-Length: 5', 'Expect: 100-continue']), {
        onInterim: (status, socket) => {
          if (status === 100) socket.write('hello');
        },
      });
      assert.deepEqual(res.interim, [100]);
      assert.equal(res.status, 200);
      assert.equal(api.received.length, 1);
      assert.equal(api.received[0]?.body.toString(), 'hello');
      assert.equal(api.received[0]?.headers.expect, undefined, 'Expect is hop-by-hop here: the gateway answered it');
    });

    it('answers 417 to an Expect it does not support', async () => {
      const res = await exchange(port, http1(['POST /api/x HTTP/1.1', host(), 'Content-Length: 5', 'Expect: something-else'], 'hello'));
      assertProblem(res, 417, 'PTC_ERR_EXPECTATION_FAILED');
      nothingReached();
    });
  });

  describe('slow clients', () => {
    it('cuts a client that stalls in the middle of the head at headersTimeout (1s)', async () => {
      const started = performance.now();
      const res = await exchange(port, ['GET /api/x HTTP/1.1\r\n', `${host()}\r\n`, 'X-Slow: 1\r\n'], { gapMs: 100, timeoutMs: 5_000 });
      const elapsed = performance.now() - started;
      assert.ok(res.status === 408 || (res.status === 0 && res.closed), `expected 408 or a close, got ${res.status} closed=${res.closed}`);
      if (res.status === 408) assertProblem(res, 408, 'PTC_ERR_REQUEST_TIMEOUT');
      assert.ok(elapsed >= 500 && elapsed < 4_000, `cut after ${Math.round(elapsed)}ms`);
      nothingReached();
    });
  });

  describe('forwarding headers from an untrusted peer', () => {
    it('replaces X-Forwarded-*, X-Request-Id and drops Forwarded/X-Real-IP', async () => {
      const res = await exchange(
        port,
        http1([
          'GET /api/x HTTP/1.1',
          'Host: front.example',
          'X-Forwarded-For: 6.6.6.6',
          'X-Forwarded-Proto: https',
          'X-Forwarded-Host: evil.example',
          'X-Forwarded-Port: 443',
          'X-Request-Id: forged-id',
          'Forwarded: for=6.6.6.6;proto=https',
          'X-Real-IP: 6.6.6.6',
        ]),
      );
      assert.equal(res.status, 200);
      const h = api.received[0]?.headers ?? {};
      assert.equal(h['x-forwarded-for'], '127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'front.example');
      assert.equal(h['x-forwarded-port'], undefined);
      assert.equal(h.forwarded, undefined);
      assert.equal(h['x-real-ip'], undefined);
      assert.match(h['x-request-id'] as string, UUID);
      assert.equal(res.headers['x-request-id'], h['x-request-id']);
      const line = gw.accessLog().find((l) => l.reqId === h['x-request-id']);
      assert.equal(line?.clientIp, '127.0.0.1');
    });
  });

  describe('Upgrade on a route that does not allow WebSockets (gateway with a websocket route)', () => {
    upgradeCases(() => port, true);
  });
});

/**
 * Upgrade requests on a non-websocket route are served as ordinary requests without Upgrade.
 * `interceptsUpgrade`: some route allows WebSockets, so the gateway (not Node) handles Upgrade.
 */
function upgradeCases(port: () => number, interceptsUpgrade: boolean): void {
  const cases: readonly (readonly [string, readonly string[]])[] = [
    ['Upgrade: websocket', ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==']],
    ['Upgrade: h2c', ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA']],
  ];
  for (const [what, extra] of cases) {
    it(`serves ${what} as a normal request; the backend gets no Upgrade`, async () => {
      const res = await exchange(port(), http1(['GET /api/up HTTP/1.1', `Host: 127.0.0.1:${port()}`, ...extra]));
      assert.equal(res.status, 200);
      assert.deepEqual(res.interim, [], 'no 101');
      assert.equal(api.received.length, 1);
      const h = api.received[0]?.headers ?? {};
      assert.equal(api.received[0]?.url, '/up');
      assert.equal(h.upgrade, undefined);
      assert.equal(h['http2-settings'], undefined);
      assert.notEqual((h.connection ?? '').toLowerCase(), 'upgrade');
    });
  }
  const postWithBody = interceptsUpgrade
    ? 'refuses a POST with Upgrade: h2c and a body (the body cannot be recovered once Node hands over the socket)'
    : 'serves a POST with Upgrade: h2c and a body as a normal request, body intact';
  it(postWithBody, async () => {
    const res = await exchange(
      port(),
      http1(
        [
          'POST /api/up HTTP/1.1',
          `Host: 127.0.0.1:${port()}`,
          'Connection: Upgrade, HTTP2-Settings',
          'Upgrade: h2c',
          'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA',
          'Content-Length: 5',
        ],
        'hello',
      ),
    );
    if (interceptsUpgrade) {
      assertProblem(res, 400, 'PTC_ERR_BAD_REQUEST');
      assert.equal(api.received.length, 0, 'never an empty or truncated body upstream');
      return;
    }
    assert.equal(res.status, 200);
    assert.equal(api.received.length, 1);
    assert.equal(api.received[0]?.body.toString(), 'hello');
    assert.equal(api.received[0]?.headers.upgrade, undefined);
  });
  it('refuses an Upgrade request with a bad path like any other', async () => {
    const res = await exchange(port(), http1(['GET /api/a%2Fb HTTP/1.1', `Host: 127.0.0.1:${port()}`, 'Connection: Upgrade', 'Upgrade: h2c']));
    assertProblem(res, 400, 'PTC_ERR_BAD_PATH');
    assert.equal(api.received.length, 0);
  });
}

// ---------------------------------------------------------------------------------------------

describe('upstream behaviour', () => {
  let gw: TestGateway;
  let port: number;
  let dead: number;
  let hung: Awaited<ReturnType<typeof startRawServer>>;
  let reset: Awaited<ReturnType<typeof startRawServer>>;
  let stream: TestBackend;
  const SIZE = 50 * 1024 * 1024;
  const CHUNK = 64 * 1024;
  /** Chunk i of the 50 MiB pattern: generated on the fly, never one 50 MiB buffer. */
  const chunkOf = (i: number) => Buffer.alloc(CHUNK, i % 251);
  let downloadDone = false;
  let uploadFirstByteAt = 0;

  before(async () => {
    dead = await closedPort();
    hung = await startRawServer(() => {}); // reads the head, never answers
    reset = await startRawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`);
      setTimeout(() => socket.resetAndDestroy(), 50);
    });
    stream = await startBackend(
      (req, res) => {
        if (req.url === '/down') {
          downloadDone = false;
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
          let i = 0;
          const pump = () => {
            while (i < SIZE / CHUNK) if (!res.write(chunkOf(i++))) return res.once('drain', pump);
            downloadDone = true;
            res.end();
          };
          pump();
          return;
        }
        // Upload: count and hash as the body streams in.
        uploadFirstByteAt = 0;
        const hash = createHash('sha256');
        let n = 0;
        req.on('data', (c: Buffer) => {
          if (uploadFirstByteAt === 0) uploadFirstByteAt = performance.now();
          n += c.length;
          hash.update(c);
        });
        req.on('end', () => {
          const out = JSON.stringify({ bytes: n, sha256: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(out);
        });
      },
      { stream: true },
    );
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
limits: { maxBodyBytes: 64mb }
upstreams:
  tgt: { targets: ["${api.url}"] }
  keep: { targets: ["${api.url}"], hostHeader: preserve }
  lit: { targets: ["${api.url}"], hostHeader: internal.example }
  dead: { targets: ["http://127.0.0.1:${dead}"] }
  hung: { targets: ["${hung.url}"], timeouts: { response: 300ms } }
  pair: { targets: ["http://127.0.0.1:${dead}", "${api.url}"], ejectFor: 60s }
  reset: { targets: ["${reset.url}"] }
  stream: { targets: ["${stream.url}"] }
routes:
  - { name: tgt, match: { path: /tgt/** }, upstream: tgt, stripPrefix: /tgt }
  - { name: keep, match: { path: /keep/** }, upstream: keep, stripPrefix: /keep }
  - { name: lit, match: { path: /lit/** }, upstream: lit, stripPrefix: /lit }
  - { name: dead, match: { path: /dead/** }, upstream: dead }
  - { name: hung, match: { path: /hung/** }, upstream: hung }
  - { name: pair, match: { path: /pair/** }, upstream: pair }
  - { name: reset, match: { path: /reset/** }, upstream: reset }
  - { name: stream, match: { path: /big/** }, upstream: stream, stripPrefix: /big }
`);
    port = gw.port;
  });
  after(async () => {
    await gw.close(0);
    await Promise.all([hung.close(), reset.close(), stream.close()]);
  });

  describe('Host per upstream', () => {
    const cases: readonly (readonly [string, string, () => string])[] = [
      ['target (default) rewrites Host to the target', '/tgt/x', () => `127.0.0.1:${api.port}`],
      ['preserve forwards the client Host', '/keep/x', () => 'client.example'],
      ['a literal sets that Host', '/lit/x', () => 'internal.example'],
    ];
    for (const [what, path, expected] of cases) {
      it(`hostHeader: ${what}`, async () => {
        const res = await exchange(port, http1([`GET ${path} HTTP/1.1`, 'Host: client.example']));
        assert.equal(res.status, 200);
        assert.equal(api.received.length, 1);
        assert.equal(api.received[0]?.headers.host, expected());
        assert.equal(api.received[0]?.headers['x-forwarded-host'], 'client.example');
      });
    }
  });

  it('answers 502 PTC_ERR_UPSTREAM_UNAVAILABLE when the target refuses, without naming it', async () => {
    const res = await exchange(port, http1(['GET /dead/x HTTP/1.1', 'Host: a']));
    assertProblem(res, 502, 'PTC_ERR_UPSTREAM_UNAVAILABLE', [dead]);
    assert.equal(gw.accessLog().at(-1)?.code, 'PTC_ERR_UPSTREAM_UNAVAILABLE');
  });

  it('answers 504 PTC_ERR_UPSTREAM_TIMEOUT when the target never answers (timeouts.response 300ms)', async () => {
    const started = performance.now();
    const res = await exchange(port, http1(['GET /hung/x HTTP/1.1', 'Host: a']), { timeoutMs: 5_000 });
    assertProblem(res, 504, 'PTC_ERR_UPSTREAM_TIMEOUT', [hung.port]);
    assert.ok(performance.now() - started < 4_000);
  });

  it('retries a bodyless request refused by one target on another, and ejects the refusing target', async () => {
    const metric = async () => {
      const text = await (await request(`${gw.adminUrl}/metrics`)).body.text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('portcullis_upstream_errors_total{') && l.includes('upstream="pair"') && l.includes('kind="refused"'));
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    const before = await metric();
    for (let i = 0; i < 6; i++) {
      const res = await exchange(port, http1([`GET /pair/${i} HTTP/1.1`, 'Host: a']));
      assert.equal(res.status, 200, `request ${i}`);
    }
    assert.deepEqual(
      api.received.map((r) => r.url),
      ['/pair/0', '/pair/1', '/pair/2', '/pair/3', '/pair/4', '/pair/5'],
    );
    // Round-robin without ejection would have hit the closed port every other request.
    assert.equal((await metric()) - before, 1, 'the refusing target was tried once, then ejected');
    for (const l of gw.accessLog().slice(-6)) assert.equal(l.upstream, api.url);
  });

  it('cuts the client connection when the upstream resets mid-response', async () => {
    const res = await exchange(port, http1(['GET /reset/x HTTP/1.1', 'Host: a']), { timeoutMs: 5_000 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '100000');
    assert.equal(res.closed, true, 'the gateway closed the connection');
    assert.equal(res.complete, false, 'the client can tell the response is truncated');
    assert.ok(res.body.length < 100_000);
    assert.equal(gw.accessLog().at(-1)?.code, 'PTC_ERR_UPSTREAM_RESET');
  });

  it('streams a 50 MiB response body through without buffering it', async () => {
    const res = await request(`${gw.url}/big/down`, { bodyTimeout: 30_000, headersTimeout: 10_000 });
    assert.equal(res.statusCode, 200);
    const hash = createHash('sha256');
    const expected = createHash('sha256');
    let n = 0;
    let firstBeforeUpstreamDone: boolean | undefined;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      firstBeforeUpstreamDone ??= !downloadDone;
      n += chunk.length;
      hash.update(chunk);
    }
    for (let i = 0; i < SIZE / CHUNK; i++) expected.update(chunkOf(i));
    assert.equal(n, SIZE);
    assert.equal(hash.digest('hex'), expected.digest('hex'));
    assert.equal(firstBeforeUpstreamDone, true, 'the client got bytes before the upstream finished sending');
  });

  for (const framing of ['content-length', 'chunked'] as const) {
    it(`streams a 50 MiB request body (${framing}) through, the backend receiving before the client finished`, async () => {
      let clientDoneAt = 0;
      const expected = createHash('sha256');
      async function* body() {
        for (let i = 0; i < SIZE / CHUNK; i++) {
          const c = chunkOf(i);
          expected.update(c);
          yield c;
        }
        clientDoneAt = performance.now();
      }
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
      if (framing === 'content-length') headers['content-length'] = String(SIZE);
      const res = await request(`${gw.url}/big/up`, { method: 'POST', headers, body: Readable.from(body()), bodyTimeout: 30_000, headersTimeout: 30_000 });
      assert.equal(res.statusCode, 200);
      const got = (await res.body.json()) as { bytes: number; sha256: string; te: string | null };
      assert.equal(got.bytes, SIZE);
      assert.equal(got.sha256, expected.digest('hex'));
      assert.equal(got.te, framing === 'chunked' ? 'chunked' : null);
      assert.ok(uploadFirstByteAt > 0 && clientDoneAt > 0);
      assert.ok(uploadFirstByteAt < clientDoneAt, 'the backend started receiving before the client finished sending');
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('forwarding headers from a trusted proxy (trustedProxies: [127.0.0.1])', () => {
  let gw: TestGateway;
  let port: number;
  before(async () => {
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
trustedProxies: ["127.0.0.1"]
upstreams:
  api: { targets: ["${api.url}"] }
routes:
  - { name: api, match: { path: /api/** }, upstream: api, stripPrefix: /api }
`);
    port = gw.port;
  });
  after(async () => {
    await gw.close(0);
  });

  it('keeps X-Forwarded-Proto/-Host and X-Request-Id, appends the peer to X-Forwarded-For, and logs the client IP', async () => {
    const res = await exchange(
      port,
      http1([
        'GET /api/x HTTP/1.1',
        'Host: internal.example',
        'X-Forwarded-For: 203.0.113.7',
        'X-Forwarded-Proto: https',
        'X-Forwarded-Host: front.example',
        'X-Request-Id: trusted-req-1',
      ]),
    );
    assert.equal(res.status, 200);
    const h = api.received[0]?.headers ?? {};
    assert.equal(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'https');
    assert.equal(h['x-forwarded-host'], 'front.example');
    assert.equal(h['x-request-id'], 'trusted-req-1');
    assert.equal(res.headers['x-request-id'], 'trusted-req-1');
    assert.equal(gw.accessLog().find((l) => l.reqId === 'trusted-req-1')?.clientIp, '203.0.113.7');
  });

  it('derives the client IP as the right-most untrusted hop of the chain', async () => {
    const res = await exchange(
      port,
      http1(['GET /api/x HTTP/1.1', 'Host: a', 'X-Forwarded-For: 198.51.100.1, 203.0.113.9, 127.0.0.1', 'X-Request-Id: trusted-req-2']),
    );
    assert.equal(res.status, 200);
    assert.equal(api.received[0]?.headers['x-forwarded-for'], '198.51.100.1, 203.0.113.9, 127.0.0.1, 127.0.0.1');
    assert.equal(gw.accessLog().find((l) => l.reqId === 'trusted-req-2')?.clientIp, '203.0.113.9');
  });

  it('replaces an invalid X-Request-Id and a nonsense X-Forwarded-Proto even from a trusted peer', async () => {
    const res = await exchange(port, http1(['GET /api/x HTTP/1.1', 'Host: a', 'X-Request-Id: bad id <script>', 'X-Forwarded-Proto: gopher']));
    assert.equal(res.status, 200);
    const h = api.received[0]?.headers ?? {};
    assert.match(h['x-request-id'] as string, UUID);
    assert.equal(h['x-forwarded-proto'], 'http');
  });
});

describe('Upgrade on a gateway without websocket routes', () => {
  let gw: TestGateway;
  let port = 0;
  before(async () => {
    gw = await startGateway(`
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  api: { targets: ["${api.url}"] }
routes:
  - { name: api, match: { path: /api/** }, upstream: api, stripPrefix: /api }
`);
    port = gw.port;
  });
  after(async () => {
    await gw.close(0);
  });
  upgradeCases(() => port, false);
});
