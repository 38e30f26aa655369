/**
 * The backend verifier kit (`portcullis/verify`): createVerifier and the requireGateway middleware
 * in its three shapes — Express/Connect `(req, res, next)`, plain node:http, and a Fastify
 * `onRequest` hook — on a real node:http server, with tokens signed here.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, type JWK, type JWTPayload, SignJWT } from 'jose';
import { request } from 'undici';
import {
  createVerifier,
  type FastifyLikeReply,
  type FastifyLikeRequest,
  GATEWAY_JWT_TYPE,
  type GatewayClaims,
  GatewayTokenError,
  type GatewayTokenErrorCode,
  requireGateway,
} from '../../src/verify/index.js';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
let jwks: { keys: JWK[] };

async function sign(
  claims: JWTPayload = {},
  options: { key?: KeyObject; typ?: string; kid?: string; iss?: string; aud?: string; iat?: number; exp?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'acme', consumer: 'acme', groups: ['ops'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1', typ: options.typ ?? GATEWAY_JWT_TYPE })
    .setIssuer(options.iss ?? 'portcullis')
    .setAudience(options.aud ?? 'ledger')
    .setIssuedAt(options.iat ?? now)
    .setExpirationTime(options.exp ?? now + 60)
    .sign(options.key ?? privateKey);
}

before(async () => {
  jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
});

describe('createVerifier', () => {
  it('validates its options once, at creation', () => {
    assert.throws(() => createVerifier({ audience: 'ledger' }), /exactly one of "jwksUri" or "keys"/);
    assert.throws(() => createVerifier({ keys: jwks, audience: '' }), /"audience" is required/);
    assert.throws(() => createVerifier({ keys: jwks, jwksUri: 'http://127.0.0.1:1/', audience: 'a' }), /exactly one/);
  });

  it('returns the claims of a valid gateway token', async () => {
    const v = createVerifier({ keys: jwks, audience: 'ledger' });
    const claims = await v.verify(await sign());
    assert.equal(claims.sub, 'acme');
    assert.equal(claims.consumer, 'acme');
    assert.deepEqual(claims.groups, ['ops']);
  });

  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, () => Promise<string>, GatewayTokenErrorCode][] = [
    ['expired', () => sign({}, { iat: now() - 120, exp: now() - 60 }), 'expired'],
    ['another audience', () => sign({}, { aud: 'billing' }), 'audience'],
    ['another issuer', () => sign({}, { iss: 'someone-else' }), 'issuer'],
    ['another token type (an IdP access token)', () => sign({}, { typ: 'at+jwt' }), 'type'],
    ['signed by an unknown key', () => sign({}, { key: stranger, kid: 'k2' }), 'unknown_key'],
    ['signed by another key under a known kid', () => sign({}, { key: stranger }), 'signature'],
    ['older than maxTokenAge', () => sign({}, { iat: now() - 3600, exp: now() + 60 }), 'expired'],
    ['not a JWT', async () => 'not-a-token', 'malformed'],
    ['empty', async () => '', 'missing'],
  ];
  for (const [what, token, code] of cases) {
    it(`rejects a token that is ${what} with code ${code}`, async () => {
      const v = createVerifier({ keys: jwks, audience: 'ledger', clockTolerance: 0 });
      await assert.rejects(v.verify(await token()), (err: unknown) => err instanceof GatewayTokenError && err.code === code && err.status === 401);
    });
  }

  it('honours the clock tolerance', async () => {
    const token = await sign({}, { iat: now() - 70, exp: now() - 2 });
    await assert.rejects(createVerifier({ keys: jwks, audience: 'ledger', clockTolerance: 0 }).verify(token));
    assert.equal((await createVerifier({ keys: jwks, audience: 'ledger', clockTolerance: '30s' }).verify(token)).sub, 'acme');
  });

  it('an unreachable JWKS is jwks_unavailable (503), not a client error', async () => {
    const v = createVerifier({ jwksUri: 'http://127.0.0.1:1/.well-known/jwks.json', audience: 'ledger', jwksOptions: { timeoutDuration: 1000 } });
    await assert.rejects(v.verify(await sign()), (err: unknown) => err instanceof GatewayTokenError && err.code === 'jwks_unavailable' && err.status === 503);
  });
});

describe('requireGateway', () => {
  let server: http.Server;
  let base: string;
  const rejected: GatewayTokenErrorCode[] = [];
  let gate: ReturnType<typeof requireGateway>;
  let customHeader: ReturnType<typeof requireGateway>;

  before(async () => {
    // The JWKS is served by a real HTTP endpoint, as the admin listener does.
    const keys = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      res.end(JSON.stringify(jwks));
    });
    await new Promise<void>((resolve) => keys.listen(0, '127.0.0.1', resolve));
    const jwksUri = `http://127.0.0.1:${(keys.address() as AddressInfo).port}/.well-known/jwks.json`;
    gate = requireGateway({ jwksUri, audience: 'ledger', onReject: (e) => rejected.push(e.code) });
    customHeader = requireGateway({ jwksUri, audience: 'ledger', header: 'X-Gateway-Token' });
    server = http.createServer((incoming, res) => {
      const req = incoming as http.IncomingMessage & { gateway?: GatewayClaims };
      const reply = (claims: GatewayClaims | undefined) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ claims }));
      };
      if (req.url === '/express') {
        // Express/Connect: next() only on success.
        void gate(req, res, (err?: unknown) => (err === undefined ? reply(req.gateway) : res.destroy()));
      } else if (req.url === '/custom') {
        void customHeader(req, res).then((ok) => ok && reply(req.gateway));
      } else {
        // Plain node:http: the resolved boolean.
        void gate(req, res).then((ok) => ok && reply(req.gateway));
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    server.once('close', () => keys.close());
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  for (const path of ['/express', '/plain']) {
    it(`${path}: a valid token passes and its claims are on req.gateway`, async () => {
      const res = await request(`${base}${path}`, { headers: { authorization: `Bearer ${await sign()}` } });
      assert.equal(res.statusCode, 200);
      const body = (await res.body.json()) as { claims: Record<string, unknown> };
      assert.equal(body.claims.sub, 'acme');
      assert.equal(body.claims.aud, 'ledger');
    });

    it(`${path}: no token is 401 with a bare Bearer challenge`, async () => {
      const res = await request(`${base}${path}`);
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="portcullis-gateway"');
      assert.equal(res.headers['content-type'], 'application/problem+json');
      assert.equal(((await res.body.json()) as { status: number }).status, 401);
    });

    it(`${path}: a bad token is 401 with error="invalid_token"`, async () => {
      const res = await request(`${base}${path}`, { headers: { authorization: `Bearer ${await sign({}, { aud: 'billing' })}` } });
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="portcullis-gateway", error="invalid_token"');
      await res.body.dump();
    });
  }

  it('refuses a non-Bearer Authorization and reports why through onReject', async () => {
    const n = rejected.length;
    const res = await request(`${base}/plain`, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    assert.equal(res.statusCode, 401);
    await res.body.dump();
    assert.equal(rejected[n], 'malformed');
  });

  it('reads a bare token from a custom header', async () => {
    const ok = await request(`${base}/custom`, { headers: { 'x-gateway-token': await sign() } });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
    const bearerOnly = await request(`${base}/custom`, { headers: { authorization: `Bearer ${await sign()}` } });
    assert.equal(bearerOnly.statusCode, 401, 'the token is only read from the configured header');
    await bearerOnly.body.dump();
  });

  it('the Fastify onRequest hook sets request.gateway, or replies 401 and returns the reply', async () => {
    const sent: { status?: number; headers: Record<string, string>; payload?: unknown } = { headers: {} };
    const reply: FastifyLikeReply = {
      code(status) {
        sent.status = status;
        return reply;
      },
      header(name, value) {
        sent.headers[name] = value;
        return reply;
      },
      send(payload) {
        sent.payload = payload;
        return reply;
      },
    };
    const good: FastifyLikeRequest = { headers: { authorization: `Bearer ${await sign()}` } };
    assert.equal(await gate.fastify(good, reply), undefined);
    assert.equal(good.gateway?.sub, 'acme');
    assert.equal(sent.status, undefined, 'nothing was sent for a valid token');

    const bad: FastifyLikeRequest = { headers: {} };
    assert.equal(await gate.fastify(bad, reply), reply);
    assert.equal(bad.gateway, undefined);
    assert.equal(sent.status, 401);
    assert.equal(sent.headers['www-authenticate'], 'Bearer realm="portcullis-gateway"');
  });
});
