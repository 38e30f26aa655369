// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${secret:…} references are the subject of these tests
/**
 * The secret store end to end: the real `portcullis secrets` command line (values on stdin, never
 * argv), a wrong master key, key rotation, and a gateway whose upstream client key and passphrase
 * come from the store — with every secret value absent from logs, /metrics and errors.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { BIN, runCli } from '../helpers/cli-process.js';
import { startGateway, type TestGateway, tempDir } from '../helpers/gateway.js';
import { type CertFiles, createCA, createLeaf } from '../helpers/pki.js';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `portcullis secrets …` with `input` on stdin. */
function secrets(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
    if (options.env?.PORTCULLIS_SECRETS_KEY === undefined) delete env.PORTCULLIS_SECRETS_KEY;
    if (options.env?.PORTCULLIS_SECRETS_NEW_KEY === undefined) delete env.PORTCULLIS_SECRETS_NEW_KEY;
    const child = spawn(process.execPath, [BIN, 'secrets', ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

const KEY = 'a long enough master passphrase';
const WRONG = 'some other master passphrase';

describe('portcullis secrets (CLI)', () => {
  const dir = tempDir('ptc-secrets-cli-');
  const file = join(dir, 'portcullis.secrets');
  const env = { PORTCULLIS_SECRETS_KEY: KEY };

  it('set / get / list / delete round-trip, values from stdin without the trailing newline', async () => {
    let r = await secrets(['set', 'db-password', '--file', file], { input: 'p@ss word\n', env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    r = await secrets(['set', 'api-token', '--file', file], { input: 'tok-123', env });
    assert.equal(r.code, 0, r.stderr);
    r = await secrets(['get', 'db-password', '--file', file], { env });
    assert.deepEqual([r.code, r.stdout], [0, 'p@ss word']);
    r = await secrets(['list', '--file', file], { env });
    assert.deepEqual([r.code, r.stdout], [0, 'api-token\ndb-password\n']);
    assert.ok(!readFileSync(file, 'utf8').includes('p@ss word'), 'the file holds no plain text');
    r = await secrets(['delete', 'api-token', '--file', file], { env });
    assert.equal(r.code, 0, r.stderr);
    r = await secrets(['list', '--file', file], { env });
    assert.equal(r.stdout, 'db-password\n');
    r = await secrets(['get', 'api-token', '--file', file], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /secret "api-token" is not in the store/);
  });

  it('a wrong master key is a clear error and exit 1, for every command', async () => {
    for (const args of [['get', 'db-password'], ['list'], ['set', 'x'], ['delete', 'db-password'], ['rotate-key']]) {
      const r = await secrets([...args, '--file', file], { input: 'v', env: { PORTCULLIS_SECRETS_KEY: WRONG, PORTCULLIS_SECRETS_NEW_KEY: KEY } });
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /cannot decrypt: wrong master key or corrupted file/);
      assert.equal(r.stdout, '');
    }
  });

  it('no master key, a value on argv, or no store: usage or config errors', async () => {
    let r = await secrets(['get', 'db-password', '--file', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no master key: set PORTCULLIS_SECRETS_KEY/);
    r = await secrets(['set', 'db-password', 'the-value', '--file', file], { env });
    assert.equal(r.code, 2, 'a value on the command line is refused');
    assert.match(r.stderr, /unexpected argument/);
    r = await secrets(['get', 'x'], { env });
    assert.equal(r.code, 2);
    r = await secrets(['list', '--file', join(dir, 'absent')], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no secret store at/);
  });

  it('-c CONFIG finds the store and key file through the secrets: section', async () => {
    const cdir = tempDir('ptc-secrets-cfg-');
    writeFileSync(join(cdir, 'master.key'), `${randomBytes(32).toString('base64')}\n`);
    writeFileSync(join(cdir, 'portcullis.yaml'), 'secrets: { file: store.json, keyFile: master.key }\nlisteners: [{ address: "127.0.0.1:0" }]\n');
    const cfg = join(cdir, 'portcullis.yaml');
    let r = await secrets(['set', 'k', '-c', cfg], { input: 'v-from-config' });
    assert.equal(r.code, 0, r.stderr);
    r = await secrets(['get', 'k', '-c', cfg]);
    assert.deepEqual([r.code, r.stdout], [0, 'v-from-config']);
    assert.equal((JSON.parse(readFileSync(join(cdir, 'store.json'), 'utf8')) as { kdf: { name: string } }).kdf.name, 'hkdf-sha256');
  });

  it('rotate-key re-encrypts under the new key (from the environment or --new-key-file)', async () => {
    const before = readFileSync(file, 'utf8');
    let r = await secrets(['rotate-key', '--file', file], { env: { PORTCULLIS_SECRETS_KEY: KEY, PORTCULLIS_SECRETS_NEW_KEY: 'the next master passphrase' } });
    assert.equal(r.code, 0, r.stderr);
    assert.notEqual(readFileSync(file, 'utf8'), before);
    r = await secrets(['get', 'db-password', '--file', file], { env });
    assert.equal(r.code, 1, 'the old key no longer opens the store');
    r = await secrets(['get', 'db-password', '--file', file], { env: { PORTCULLIS_SECRETS_KEY: 'the next master passphrase' } });
    assert.deepEqual([r.code, r.stdout], [0, 'p@ss word']);
    const keyFile = join(dir, 'third.key');
    writeFileSync(keyFile, 'a third master passphrase\n');
    r = await secrets(['rotate-key', '--file', file, '--new-key-file', keyFile], { env: { PORTCULLIS_SECRETS_KEY: 'the next master passphrase' } });
    assert.equal(r.code, 0, r.stderr);
    r = await secrets(['get', 'db-password', '--file', file, '--key-file', keyFile]);
    assert.deepEqual([r.code, r.stdout], [0, 'p@ss word']);
    r = await secrets(['rotate-key', '--file', file, '--key-file', keyFile]);
    assert.equal(r.code, 2, 'rotate-key without a new key is a usage error');
  });
});

describe('a gateway using ${secret:…} for its upstream client key', () => {
  let dir: string;
  let clientCA: CertFiles;
  let backend: https.Server;
  let port: number;
  let gw: TestGateway;
  const raw: string[] = [];
  const values: string[] = [];
  const masterKey = randomBytes(32).toString('base64');

  before(async () => {
    dir = tempDir('ptc-secrets-gw-');
    const serverCA = createCA(dir, 'Server CA');
    clientCA = createCA(dir, 'Client CA');
    const server = createLeaf(dir, serverCA, { cn: 'backend', san: ['IP:127.0.0.1'] });
    const client = createLeaf(dir, clientCA, { cn: 'gateway-from-secret', usage: 'client', san: ['DNS:gateway'] });
    const passphrase = `pp-${randomBytes(12).toString('hex')}`;
    const encrypted = execFileSync('openssl', ['pkey', '-in', client.key, '-aes256', '-passout', `pass:${passphrase}`], { encoding: 'utf8' });
    values.push(passphrase, encrypted, ...encrypted.split('\n').filter((l) => l.length > 40), client.keyPem, masterKey);
    writeFileSync(join(dir, 'master.key'), `${masterKey}\n`);
    for (const [name, value] of [
      ['gw-client-key', encrypted],
      ['gw-key-pass', passphrase],
    ] as const) {
      const r = await secrets(['set', name, '--file', join(dir, 'portcullis.secrets'), '--key-file', join(dir, 'master.key')], { input: value });
      assert.equal(r.code, 0, r.stderr);
    }
    // A real mutual-TLS peer: the handshake fails without a client certificate from clientCA.
    backend = https.createServer(
      { cert: server.certPem, key: server.keyPem, ca: clientCA.certPem, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        res.end(`client=${(req.socket as TLSSocket).getPeerCertificate().subject.CN}`);
      },
    );
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    port = (backend.address() as AddressInfo).port;
    gw = await startGateway(
      `
secrets: { file: portcullis.secrets, keyFile: master.key }
listeners: [{ address: "127.0.0.1:0" }]
admin: { address: "127.0.0.1:0" }
upstreams:
  be:
    targets: ["https://127.0.0.1:${port}"]
    tls:
      ca: "${serverCA.cert}"
      cert: "${client.cert}"
      key: "\${secret:gw-client-key}"
      passphrase: "\${secret:gw-key-pass}"
routes:
  - name: api
    match: { path: /api/** }
    upstream: be
`,
      { dir, raw },
    );
  });

  after(async () => {
    await gw?.close();
    backend?.closeAllConnections();
    await new Promise((resolve) => backend?.close(resolve));
  });

  it('presents the client certificate whose encrypted key and passphrase came from the store', async () => {
    const res = await fetch(`${gw.url}/api/x`, { signal: AbortSignal.timeout(5_000) });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'client=gateway-from-secret');
  });

  it('no secret value appears in the log lines, /metrics, the runtime config or reload errors', async () => {
    // A reload that fails on a secret reference logs its problems: they must name, never show.
    const yaml = readFileSync(gw.file, 'utf8');
    writeFileSync(gw.file, yaml.replace('${secret:gw-key-pass}', '${secret:gw-key-pass-typo}'));
    const failed = await gw.gw.reload();
    assert.equal(failed.ok, false);
    writeFileSync(gw.file, yaml);
    assert.equal((await gw.gw.reload()).ok, true);
    await fetch(`${gw.url}/api/y`, { signal: AbortSignal.timeout(5_000) });
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    const { inspect } = await import('node:util');
    const seen = {
      logs: raw.join('\n'),
      metrics,
      config: inspect(gw.gw.runtime.config, { depth: 20 }) + JSON.stringify(gw.gw.runtime.config),
      error: failed.ok ? '' : `${failed.error.message} ${inspect(failed.error)}`,
    };
    assert.match(seen.logs, /gw-key-pass-typo.{0,3} is not in the store/, 'the problem names the secret');
    for (const [where, text] of Object.entries(seen))
      for (const v of values) assert.ok(!text.includes(v.trim()), `a secret value leaked into ${where}: ${v.slice(0, 12)}…`);
  });

  it('portcullis validate with PORTCULLIS_SECRETS_KEY resolves the references; a wrong key fails at the reference line', async () => {
    const env = { ...process.env, PORTCULLIS_SECRETS_KEY: masterKey };
    let r = await runCli(['validate', '-c', gw.file], { env });
    assert.equal(r.code, 0, r.stderr);
    r = await runCli(['validate', '-c', gw.file], { env: { ...process.env, PORTCULLIS_SECRETS_KEY: 'definitely the wrong key' } });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /portcullis\.yaml:\d+ upstreams\.be\.tls\.key: secret store portcullis\.secrets: cannot decrypt: wrong master key or corrupted file/,
    );
    for (const v of values) assert.ok(!(r.stdout + r.stderr).includes(v.trim()));
  });
});
