// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${secret:…} references are the subject of these tests
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { ConfigError, formatProblem, parseConfig } from '../../src/config/load.js';
import { Secret } from '../../src/secrets/secret.js';
import { parseMasterKey, SecretStore, SecretStoreError, WRONG_KEY_MESSAGE } from '../../src/secrets/store.js';
import { tempDir } from '../helpers/gateway.js';

const PASSPHRASE = parseMasterKey('correct horse battery staple');
const OTHER = parseMasterKey('incorrect horse battery staple');
const RAW = parseMasterKey(randomBytes(32).toString('base64'));

function storeWith(entries: Record<string, string>, key = PASSPHRASE): string {
  const file = join(tempDir('ptc-store-'), 'portcullis.secrets');
  const store = SecretStore.create(file, key);
  for (const [k, v] of Object.entries(entries)) store.set(k, v);
  store.save();
  return file;
}

function rejects(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SecretStoreError, String(err));
    assert.equal(err.code, code);
    if (message !== undefined) assert.match(err.message, message);
    return true;
  });
}

describe('secret store: format', () => {
  it('round-trips entries through the file and reads them back as Secrets', () => {
    const file = storeWith({ 'db-password': 'hunter2-hunter2', api: 'k-123' });
    const store = SecretStore.open(file, PASSPHRASE);
    assert.deepEqual(store.names(), ['api', 'db-password']);
    const s = store.get('db-password');
    assert.ok(s instanceof Secret);
    assert.equal(s.reveal(), 'hunter2-hunter2');
    assert.equal(s.name, 'db-password');
    assert.equal(store.get('absent'), undefined);
  });

  it('is versioned JSON with a per-file salt, a 96-bit nonce per entry and no plain text; mode 0600', () => {
    const file = storeWith({ a: 'value-a-plain', b: 'value-b-plain' });
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes('value-a-plain') && !text.includes('value-b-plain'));
    const json = JSON.parse(text) as {
      version: number;
      kdf: { name: string; salt: string; N: number };
      entries: Record<string, { iv: string; ct: string; tag: string }>;
    };
    assert.equal(json.version, 1);
    assert.equal(json.kdf.name, 'scrypt', 'a passphrase is stretched with scrypt');
    assert.equal(Buffer.from(json.kdf.salt, 'base64').length, 16);
    assert.equal(Buffer.from(json.entries.a?.iv ?? '', 'base64').length, 12);
    assert.notEqual(json.entries.a?.iv, json.entries.b?.iv);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const again = JSON.parse(readFileSync(storeWith({ a: 'value-a-plain' }), 'utf8')) as typeof json;
    assert.notEqual(again.kdf.salt, json.kdf.salt, 'every file has its own salt');
  });

  it('uses HKDF for a base64 32-byte master key', () => {
    const file = storeWith({ a: 'x-value' }, RAW);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as { kdf: { name: string } }).kdf.name, 'hkdf-sha256');
    assert.equal(SecretStore.open(file, RAW).get('a')?.reveal(), 'x-value');
    rejects(() => SecretStore.open(file, PASSPHRASE), 'PTC_SECRETS_WRONG_KEY');
  });

  it('refuses the wrong master key with a clear message, even for an empty store', () => {
    rejects(() => SecretStore.open(storeWith({ a: '1-value' }), OTHER), 'PTC_SECRETS_WRONG_KEY', new RegExp(WRONG_KEY_MESSAGE));
    rejects(() => SecretStore.open(storeWith({}), OTHER), 'PTC_SECRETS_WRONG_KEY');
  });

  it('detects a tampered ciphertext, tag or nonce', () => {
    for (const field of ['ct', 'tag', 'iv'] as const) {
      const file = storeWith({ a: 'tamper-me-please' });
      const json = JSON.parse(readFileSync(file, 'utf8')) as { entries: Record<string, Record<string, string>> };
      const entry = json.entries.a as Record<string, string>;
      const bytes = Buffer.from(entry[field] as string, 'base64');
      bytes[0] = (bytes[0] as number) ^ 1;
      entry[field] = bytes.toString('base64');
      writeFileSync(file, JSON.stringify(json));
      const store = SecretStore.open(file, PASSPHRASE); // the header is intact
      rejects(() => store.get('a'), 'PTC_SECRETS_WRONG_KEY', /cannot decrypt/);
    }
  });

  it('detects swapped entries (the name is authenticated)', () => {
    const file = storeWith({ admin: 'admin-password', guest: 'guest-password' });
    const json = JSON.parse(readFileSync(file, 'utf8')) as { entries: Record<string, unknown> };
    [json.entries.admin, json.entries.guest] = [json.entries.guest, json.entries.admin];
    writeFileSync(file, JSON.stringify(json));
    const store = SecretStore.open(file, PASSPHRASE);
    rejects(() => store.get('admin'), 'PTC_SECRETS_WRONG_KEY');
    rejects(() => store.get('guest'), 'PTC_SECRETS_WRONG_KEY');
  });

  it('detects an entry copied from another store', () => {
    const a = storeWith({ x: 'from-store-a' });
    const b = storeWith({ x: 'from-store-b' });
    const ja = JSON.parse(readFileSync(a, 'utf8')) as { entries: Record<string, unknown> };
    const jb = JSON.parse(readFileSync(b, 'utf8')) as { entries: Record<string, unknown> };
    jb.entries.x = ja.entries.x;
    writeFileSync(b, JSON.stringify(jb));
    rejects(() => SecretStore.open(b, PASSPHRASE).get('x'), 'PTC_SECRETS_WRONG_KEY');
  });

  it('refuses files that are not a store, an unknown version, and hostile scrypt parameters', () => {
    const dir = tempDir('ptc-store-');
    const write = (v: unknown) => {
      const f = join(dir, `s-${randomBytes(4).toString('hex')}`);
      writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
      return f;
    };
    rejects(() => SecretStore.open(write('not json'), PASSPHRASE), 'PTC_SECRETS_FORMAT');
    const good = JSON.parse(readFileSync(storeWith({}), 'utf8')) as Record<string, unknown> & { kdf: Record<string, unknown> };
    rejects(() => SecretStore.open(write({ ...good, version: 2 }), PASSPHRASE), 'PTC_SECRETS_FORMAT', /unsupported version 2/);
    rejects(() => SecretStore.open(write({ ...good, kdf: { ...good.kdf, N: 2 ** 30 } }), PASSPHRASE), 'PTC_SECRETS_FORMAT', /scrypt/);
    rejects(() => SecretStore.open(join(dir, 'absent'), PASSPHRASE), 'PTC_SECRETS_NO_FILE');
  });

  it('rotate re-encrypts everything under the new key; the old key stops working', () => {
    const file = storeWith({ a: 'alpha-value', b: 'beta-value' });
    const before = JSON.parse(readFileSync(file, 'utf8')) as { kdf: { salt: string } };
    const store = SecretStore.open(file, PASSPHRASE);
    store.rotate(RAW);
    store.save();
    const after = SecretStore.open(file, RAW);
    assert.deepEqual(
      after.names().map((n) => after.get(n)?.reveal()),
      ['alpha-value', 'beta-value'],
    );
    assert.notEqual((JSON.parse(readFileSync(file, 'utf8')) as { kdf: { salt: string } }).kdf.salt, before.kdf.salt);
    rejects(() => SecretStore.open(file, PASSPHRASE), 'PTC_SECRETS_WRONG_KEY');
  });

  it('refuses bad names, empty and short master keys', () => {
    const store = SecretStore.create(join(tempDir(), 's'), PASSPHRASE);
    rejects(() => store.set('../x', 'v'), 'PTC_SECRETS_BAD_NAME');
    rejects(() => store.set('a}b', 'v'), 'PTC_SECRETS_BAD_NAME');
    rejects(() => parseMasterKey(''), 'PTC_SECRETS_BAD_KEY');
    rejects(() => parseMasterKey('short'), 'PTC_SECRETS_BAD_KEY');
  });
});

describe('Secret', () => {
  const s = new Secret('the-plain-value', 'api-key');
  it('prints [redacted] in util.inspect, JSON, String and template literals', () => {
    for (const shown of [inspect(s), inspect({ nested: { s } }, { depth: 10 }), JSON.stringify({ s }), String(s), `${s}`, `${[s]}`]) {
      assert.ok(!shown.includes('the-plain-value'), shown);
      assert.match(shown, /\[redacted\]/);
    }
    assert.equal(s.reveal(), 'the-plain-value');
  });
});

describe('${secret:NAME} references', () => {
  const dir = tempDir('ptc-secret-ref-');
  writeFileSync(join(dir, 'master.key'), 'correct horse battery staple\n');
  const store = SecretStore.create(join(dir, 'portcullis.secrets'), PASSPHRASE);
  store.set('backend-key', 'k3y-value-123');
  store.save();
  writeFileSync(join(dir, 'wrong.key'), 'not the right passphrase\n');

  const config = (value: string, secrets = '{ file: portcullis.secrets, keyFile: master.key }') => `listeners:
  - address: 127.0.0.1:8080
secrets: ${secrets}
upstreams:
  be:
    targets: [https://127.0.0.1:9443]
    tls:
      cert: client.pem
      key: ${value}
routes:
  - name: a
    match: { path: /a }
    upstream: be
`;
  const problemsOf = (yaml: string) => {
    try {
      parseConfig(yaml, 'portcullis.yaml', dir);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map(formatProblem);
    }
    assert.fail('accepted');
  };

  it('resolve to a Secret when the reference is the whole value', () => {
    const loaded = parseConfig(config('"${secret:backend-key}"'), 'portcullis.yaml', dir);
    const key = loaded.config.upstreams.be?.tls?.key;
    assert.ok(key instanceof Secret);
    assert.equal(key.reveal(), 'k3y-value-123');
    assert.ok(!inspect(loaded.config, { depth: 20 }).includes('k3y-value-123'));
    assert.ok(!JSON.stringify(loaded.config).includes('k3y-value-123'));
    assert.deepEqual(loaded.config.secrets, { file: 'portcullis.secrets', keyFile: 'master.key' });
  });

  it('a secret embedded in a larger string is an error at its line', () => {
    assert.deepEqual(problemsOf(config('"-----${secret:backend-key}"')), [
      'portcullis.yaml:9 upstreams.be.tls.key: a secret must be the whole value ("${secret:NAME}" with nothing around it)',
    ]);
  });

  it('an unknown name, a missing store, a wrong key or no store section are errors at the reference', () => {
    assert.match(problemsOf(config('"${secret:nope}"'))[0] ?? '', /^portcullis\.yaml:9 upstreams\.be\.tls\.key: secret "nope" is not in the store/);
    assert.match(
      problemsOf(config('"${secret:backend-key}"', '{ file: absent.secrets, keyFile: master.key }'))[0] ?? '',
      /^portcullis\.yaml:9 upstreams\.be\.tls\.key: secret store absent\.secrets: no secret store at /,
    );
    assert.match(
      problemsOf(config('"${secret:backend-key}"', '{ file: portcullis.secrets, keyFile: wrong.key }'))[0] ?? '',
      /^portcullis\.yaml:9 upstreams\.be\.tls\.key: secret store portcullis\.secrets: cannot decrypt: wrong master key or corrupted file$/,
    );
    assert.match(
      problemsOf(config('"${secret:backend-key}"', '{ file: portcullis.secrets }'))[0] ?? '',
      /no master key: set PORTCULLIS_SECRETS_KEY or secrets\.keyFile/,
    );
    assert.match(
      problemsOf(config('"${secret:backend-key}"').replace(/^secrets:.*$/m, ''))[0] ?? '',
      /upstreams\.be\.tls\.key: no secret store is configured \(add secrets\.file\)/,
    );
  });

  it('a secret where plain text is expected is refused without showing it', () => {
    const ps = problemsOf(`${config('client-key.pem')}    forwardCredentials: true\n`.replace('name: a', 'name: "${secret:backend-key}"'));
    assert.ok(
      ps.some((p) => /routes\[0\]\.name: a secret reference is not accepted here/.test(p)),
      ps.join('\n'),
    );
    assert.ok(!ps.join('\n').includes('k3y-value-123'));
  });
});

describe('upstream tls schema', () => {
  const dir = tempDir('ptc-utls-');
  const config = (tls: string) => `listeners:
  - address: 127.0.0.1:8080
upstreams:
  be:
    targets: [https://127.0.0.1:9443]
    tls: ${tls}
routes:
  - name: a
    match: { path: /a }
    upstream: be
`;
  const problemsOf = (yaml: string) => {
    try {
      parseConfig(yaml, 'portcullis.yaml', dir);
      return [];
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems.map(formatProblem);
    }
  };

  it('insecureSkipVerify accepts only the exact sentence', () => {
    assert.deepEqual(problemsOf(config('{ insecureSkipVerify: "I understand this disables upstream authentication" }')), []);
    assert.deepEqual(problemsOf(config('{ insecureSkipVerify: "yes" }')), [
      'portcullis.yaml:6 upstreams.be.tls.insecureSkipVerify: to turn verification off, insecureSkipVerify must be exactly "I understand this disables upstream authentication"',
    ]);
    assert.equal(problemsOf(config('{ insecureSkipVerify: true }')).length, 1);
    assert.match(
      problemsOf(config('{ ca: ca.pem, insecureSkipVerify: "I understand this disables upstream authentication" }')).join('\n'),
      /tls\.ca: ca has no effect with insecureSkipVerify/,
    );
  });

  it('checks cert/key pairing, pins and minVersion', () => {
    assert.match(problemsOf(config('{ cert: c.pem }')).join('\n'), /tls\.cert: cert and key go together/);
    assert.match(problemsOf(config('{ pin: [abc] }')).join('\n'), /tls\.pin\[0\]: a pin is sha256\//);
    assert.match(problemsOf(config('{ minVersion: TLSv1.1 }')).join('\n'), /tls\.minVersion/);
    assert.deepEqual(problemsOf(config(`{ pin: ["sha256/${Buffer.alloc(32).toString('base64')}"], minVersion: TLSv1.3, servername: api.internal }`)), []);
  });
});
