/**
 * The oauth2ClientCredentials cache with an injected clock, against a minimal token endpoint on
 * loopback whose answers each test sets: expiry minus skew, refresh-ahead, the default lifetime when
 * expires_in is missing, invalidation of only the refused token, the failure cooldown, and the
 * memory store's lock.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ConfigError, formatProblem, loadConfigFile } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { clientCredentialsSchema } from '../../src/outbound/client-credentials-schema.js';
import { createClientCredentialsCredential, FAILURE_COOLDOWN_MS } from '../../src/outbound/client-credentials.js';
import type { OutboundCredential, OutboundRequest } from '../../src/outbound/types.js';
import { createMemoryStore } from '../../src/state/memory.js';

describe('oauth2ClientCredentials cache (injected clock)', () => {
  let server: http.Server;
  let tokenUrl: string;
  let answer: { status: number; body: Record<string, unknown> } = { status: 200, body: {} };
  let requests = 0;
  let clock = 1_000_000;
  const now = () => clock;

  before(async () => {
    server = http.createServer((req, res) => {
      requests++;
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({ access_token: `t${requests}`, token_type: 'Bearer', ...answer.body });
        res.writeHead(answer.status, { 'content-type': 'application/json' });
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    tokenUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  function credential(extra: Record<string, unknown> = {}): OutboundCredential {
    const cfg = clientCredentialsSchema.parse({ type: 'oauth2ClientCredentials', tokenUrl, clientId: 'c', clientSecret: 's', ...extra });
    return createClientCredentialsCredential(
      cfg,
      {
        upstream: 'u',
        path: ['upstreams', 'u', 'auth'],
        dir: '.',
        maxBodyBytes: 1024,
        metrics: createMetrics(),
        logger: createLogger('silent'),
        identity: undefined,
        store: createMemoryStore(now),
      },
      now,
    );
  }

  const req = (): OutboundRequest => ({
    method: 'GET',
    path: '/',
    headers: { authorization: 'Bearer from-client' },
    identity: undefined,
    upstream: 'u',
    body: { present: false, read: async () => Buffer.alloc(0), replace: () => {} },
  });

  async function apply(c: OutboundCredential): Promise<string | unknown> {
    const r = req();
    const result = await c.apply(r);
    return result === undefined ? r.headers.authorization : result;
  }

  /** Let a background refresh (a real HTTP exchange) finish. */
  async function settle(n: number): Promise<void> {
    for (let i = 0; i < 200 && requests < n; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    await tick();
  }

  it('uses a token until expires_in minus 10% skew, refreshing in the background from 80%', async () => {
    answer = { status: 200, body: { expires_in: 100 } };
    const start = requests;
    const c = credential();
    assert.equal(await apply(c), `Bearer t${start + 1}`);
    clock += 79_000;
    assert.equal(await apply(c), `Bearer t${start + 1}`);
    assert.equal(requests, start + 1, 'no refresh before 80%');
    clock += 2_000; // 81s: due for refresh, still served from cache while the new one is fetched
    assert.equal(await apply(c), `Bearer t${start + 1}`);
    await settle(start + 2);
    assert.equal(await apply(c), `Bearer t${start + 2}`);
  });

  it('without expires_in a token lives defaultLifetime (5m), never forever', async () => {
    answer = { status: 200, body: {} };
    const start = requests;
    const c = credential({ refreshAhead: 0.95 });
    await apply(c);
    clock += 5 * 60_000 * 0.9 - 1; // just under 5m minus the 10% skew
    assert.equal(await apply(c), `Bearer t${start + 1}`);
    clock += 5 * 60_000;
    assert.notEqual(await apply(c), `Bearer t${start + 1}`);
  });

  it('an explicit skew applies', async () => {
    answer = { status: 200, body: { expires_in: 60 } };
    const start = requests;
    const c = credential({ skew: '20s', refreshAhead: 0.95 });
    await apply(c);
    clock += 40_000; // expires at 60s - 20s = 40s: a new token, fetched in the foreground
    assert.equal(await apply(c), `Bearer t${start + 2}`);
  });

  it('invalidate drops only the token the refused request carried, once per cooldown', async () => {
    answer = { status: 200, body: { expires_in: 3600 } };
    const start = requests;
    const c = credential();
    const stale = req();
    stale.headers.authorization = 'Bearer some-older-token';
    await apply(c);
    c.invalidate?.(stale);
    assert.equal(await apply(c), `Bearer t${start + 1}`, 'a 401 for another token changes nothing');
    const refused = req();
    await c.apply(refused);
    c.invalidate?.(refused);
    assert.equal(await apply(c), `Bearer t${start + 2}`);
    const again = req();
    await c.apply(again);
    c.invalidate?.(again); // within the cooldown: ignored
    assert.equal(await apply(c), `Bearer t${start + 2}`);
  });

  it('a failed token request refuses with PTC_ERR_UPSTREAM_CREDENTIAL and fails fast for the cooldown', async () => {
    answer = { status: 400, body: { error: 'invalid_scope' } };
    const start = requests;
    const c = credential();
    const r = (await apply(c)) as { code: string; details: string };
    assert.equal(r.code, 'PTC_ERR_UPSTREAM_CREDENTIAL');
    assert.match(r.details, /400 invalid_scope/);
    assert.equal(((await apply(c)) as { code: string }).code, 'PTC_ERR_UPSTREAM_CREDENTIAL');
    assert.equal(requests, start + 1, 'no second request within the cooldown');
    answer = { status: 200, body: { expires_in: 60 } };
    clock += FAILURE_COOLDOWN_MS;
    assert.equal(await apply(c), `Bearer t${start + 2}`);
  });

  it('a response without access_token or with another token_type is a failure', async () => {
    for (const body of [{ access_token: undefined }, { token_type: 'DPoP' }]) {
      answer = { status: 200, body };
      clock += FAILURE_COOLDOWN_MS;
      const r = (await apply(credential())) as { code?: string };
      assert.equal(r.code, 'PTC_ERR_UPSTREAM_CREDENTIAL');
    }
  });

  it('the schema refuses plain http to a non-loopback host and a secret together with a key', () => {
    const base = { type: 'oauth2ClientCredentials', clientId: 'c' };
    assert.equal(clientCredentialsSchema.safeParse({ ...base, tokenUrl: 'http://idp.example/token', clientSecret: 's' }).success, false);
    assert.equal(clientCredentialsSchema.safeParse({ ...base, tokenUrl: 'https://idp.example/token' }).success, false);
    assert.equal(
      clientCredentialsSchema.safeParse({ ...base, tokenUrl: 'https://idp.example/token', clientSecret: 's', privateKeyJwt: { key: 'k' } }).success,
      false,
    );
    assert.equal(clientCredentialsSchema.safeParse({ ...base, tokenUrl: 'https://idp.example/token', clientSecret: 's' }).success, true);
  });
});

describe('memory store', () => {
  it('expires values and holds a lock until released or expired', async () => {
    let t = 0;
    const s = createMemoryStore(() => t);
    await s.set('k', 'v', 100);
    assert.equal(await s.get('k'), 'v');
    t = 100;
    assert.equal(await s.get('k'), undefined);
    const unlock = await s.lock('l', 50);
    assert.ok(unlock !== undefined);
    assert.equal(await s.lock('l', 50), undefined);
    await unlock();
    const again = await s.lock('l', 50);
    assert.ok(again !== undefined);
    t = 200; // expired: someone else may take it, and the old holder's release leaves theirs alone
    const other = await s.lock('l', 50);
    assert.ok(other !== undefined);
    await again();
    assert.equal(await s.lock('l', 50), undefined);
  });
});

describe('store config', () => {
  async function load(yaml: string): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'ptc-store-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(file, yaml);
    try {
      await loadConfigFile(file);
      return 'ok';
    } catch (err) {
      return err instanceof ConfigError ? err.problems.map(formatProblem).join('\n') : String(err);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const base = 'listeners: [{ address: "127.0.0.1:0" }]\nroutes:\n  - { name: o, match: { path: /o }, respond: { status: 200 } }\n';

  it('accepts store.redis and names a bad URL without repeating it', async () => {
    assert.equal(await load(`${base}store:\n  redis: { url: "redis://127.0.0.1:6379" }\n`), 'ok');
    const bad = await load(`${base}store:\n  redis: { url: "http://user:hunter2@127.0.0.1:6379" }\n`);
    assert.match(bad, /:5 store\.redis\.url: not a redis:\/\/ or rediss:\/\/ URL with a host/);
    assert.ok(!bad.includes('hunter2'));
  });
});
