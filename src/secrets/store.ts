/**
 * The encrypted secret store: one JSON file of named entries, each sealed with AES-256-GCM under
 * a key derived from the master key. docs/secrets.md describes the format:
 *
 *   { "version": 1,
 *     "kdf": { "name": "scrypt", "salt": b64, "N": 32768, "r": 8, "p": 1 } | { "name": "hkdf-sha256", "salt": b64 },
 *     "check": { "iv", "ct", "tag" },                 // proves the master key before any entry is read
 *     "entries": { "NAME": { "iv": b64, "ct": b64, "tag": b64 } } }
 *
 * The salt is random per file (and per rotation), every entry has its own random 96-bit nonce, and
 * the entry name is authenticated as AAD so two entries cannot be swapped. Everything is synchronous:
 * config interpolation is synchronous, and the CLI does one thing and exits.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Secret } from './secret.js';

export const STORE_VERSION = 1;
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const WRONG_KEY_MESSAGE = 'cannot decrypt: wrong master key or corrupted file';

export type SecretStoreErrorCode =
  | 'PTC_SECRETS_WRONG_KEY'
  | 'PTC_SECRETS_FORMAT'
  | 'PTC_SECRETS_NO_FILE'
  | 'PTC_SECRETS_IO'
  | 'PTC_SECRETS_BAD_KEY'
  | 'PTC_SECRETS_BAD_NAME'
  | 'PTC_SECRETS_BAD_VALUE'
  | 'PTC_SECRETS_NOT_FOUND';

/** Every failure of the store, with a stable code; the message never contains a secret value. */
export class SecretStoreError extends Error {
  readonly code: SecretStoreErrorCode;
  constructor(code: SecretStoreErrorCode, message: string) {
    super(message);
    this.name = 'SecretStoreError';
    this.code = code;
  }
}

/**
 * A master key as given: 32 bytes written in base64 are used as key material directly (HKDF-SHA256);
 * anything else is a passphrase, stretched with scrypt. Which KDF sealed a file is in its header.
 */
export interface MasterKey {
  readonly kind: 'raw' | 'passphrase';
  readonly material: Buffer;
}

export function parseMasterKey(text: string): MasterKey {
  const trimmed = text.replace(/\r?\n$/, '');
  if (trimmed === '') throw new SecretStoreError('PTC_SECRETS_BAD_KEY', 'the master key is empty');
  if (/^[A-Za-z0-9+/]{43}=$/.test(trimmed)) {
    const raw = Buffer.from(trimmed, 'base64');
    if (raw.length === 32) return { kind: 'raw', material: raw };
  }
  if (trimmed.length < 12) throw new SecretStoreError('PTC_SECRETS_BAD_KEY', 'a master key passphrase must be at least 12 characters');
  return { kind: 'passphrase', material: Buffer.from(trimmed, 'utf8') };
}

type KDF = { name: 'scrypt'; salt: string; N: number; r: number; p: number } | { name: 'hkdf-sha256'; salt: string };

interface Sealed {
  iv: string;
  ct: string;
  tag: string;
}

interface StoreFile {
  version: number;
  kdf: KDF;
  check: Sealed;
  entries: Record<string, Sealed>;
}

const SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;
const CHECK_AAD = 'portcullis-secrets/v1/check';
const CHECK_PLAIN = 'portcullis';
const entryAAD = (name: string) => `portcullis-secrets/v1/entry/${name}`;

function newKDF(key: MasterKey): KDF {
  const salt = randomBytes(16).toString('base64');
  return key.kind === 'raw' ? { name: 'hkdf-sha256', salt } : { name: 'scrypt', salt, ...SCRYPT };
}

function deriveKey(kdf: KDF, key: MasterKey): Buffer {
  const salt = Buffer.from(kdf.salt, 'base64');
  if (kdf.name === 'hkdf-sha256') return Buffer.from(hkdfSync('sha256', key.material, salt, 'portcullis-secrets/v1', 32));
  return scryptSync(key.material, salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem: 256 * kdf.N * kdf.r + 1024 * 1024 });
}

function seal(key: Buffer, aad: string, plain: Buffer): Sealed {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return { iv: iv.toString('base64'), ct: ct.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

function open(key: Buffer, aad: string, s: Sealed): Buffer {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'base64'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(s.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(s.ct, 'base64')), decipher.final()]);
  } catch {
    throw new SecretStoreError('PTC_SECRETS_WRONG_KEY', WRONG_KEY_MESSAGE);
  }
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isSealed(v: unknown): v is Sealed {
  if (v === null || typeof v !== 'object') return false;
  const s = v as Record<string, unknown>;
  return [s.iv, s.ct, s.tag].every((x) => typeof x === 'string' && B64.test(x)) && Buffer.from(s.iv as string, 'base64').length === 12;
}

function parseFile(text: string, file: string): StoreFile {
  const bad = (why: string) => new SecretStoreError('PTC_SECRETS_FORMAT', `${file} is not a Portcullis secret store (${why})`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw bad('not a JSON object');
  const f = json as Record<string, unknown>;
  if (f.version !== STORE_VERSION) throw bad(`unsupported version ${JSON.stringify(f.version)}; this Portcullis reads version ${STORE_VERSION}`);
  const kdf = f.kdf as Record<string, unknown> | null;
  if (kdf === null || typeof kdf !== 'object' || typeof kdf.salt !== 'string' || !B64.test(kdf.salt)) throw bad('bad kdf');
  if (kdf.name === 'scrypt') {
    // Bounded so a crafted header cannot make the gateway allocate gigabytes.
    const ok = (n: unknown, max: number) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= max;
    if (!ok(kdf.N, 2 ** 20) || ((kdf.N as number) & ((kdf.N as number) - 1)) !== 0 || !ok(kdf.r, 32) || !ok(kdf.p, 16)) throw bad('bad scrypt parameters');
  } else if (kdf.name !== 'hkdf-sha256') throw bad(`unknown kdf ${JSON.stringify(kdf.name)}`);
  if (!isSealed(f.check)) throw bad('bad check value');
  const entries = f.entries as Record<string, unknown> | null;
  if (entries === null || typeof entries !== 'object' || Array.isArray(entries)) throw bad('bad entries');
  const out: Record<string, Sealed> = {};
  for (const [name, e] of Object.entries(entries)) {
    if (!SECRET_NAME.test(name) || !isSealed(e)) throw bad(`bad entry ${JSON.stringify(name.slice(0, 64))}`);
    out[name] = { iv: e.iv, ct: e.ct, tag: e.tag };
  }
  return { version: STORE_VERSION, kdf: kdf as KDF, check: f.check, entries: out };
}

export function assertSecretName(name: string): void {
  if (!SECRET_NAME.test(name))
    throw new SecretStoreError('PTC_SECRETS_BAD_NAME', `"${name}" is not a secret name (1-128 of A-Z a-z 0-9 . _ -, starting with a letter or digit)`);
}

/** An open store: the master key is verified; entries are decrypted one at a time, on demand. */
export class SecretStore {
  readonly file: string;
  #data: StoreFile;
  #key: Buffer;

  private constructor(file: string, data: StoreFile, key: Buffer) {
    this.file = file;
    this.#data = data;
    this.#key = key;
  }

  /** Open an existing store; throws PTC_SECRETS_NO_FILE when there is none, PTC_SECRETS_WRONG_KEY for the wrong key. */
  static open(file: string, masterKey: MasterKey): SecretStore {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new SecretStoreError('PTC_SECRETS_NO_FILE', `no secret store at ${file}`);
      throw new SecretStoreError('PTC_SECRETS_IO', `cannot read ${file} (${code ?? 'error'})`);
    }
    const data = parseFile(text, file);
    const key = deriveKey(data.kdf, masterKey);
    if (open(key, CHECK_AAD, data.check).toString('utf8') !== CHECK_PLAIN) throw new SecretStoreError('PTC_SECRETS_WRONG_KEY', WRONG_KEY_MESSAGE);
    return new SecretStore(file, data, key);
  }

  /** A new, empty store (not written until save()). */
  static create(file: string, masterKey: MasterKey): SecretStore {
    const kdf = newKDF(masterKey);
    const key = deriveKey(kdf, masterKey);
    return new SecretStore(file, { version: STORE_VERSION, kdf, check: seal(key, CHECK_AAD, Buffer.from(CHECK_PLAIN)), entries: {} }, key);
  }

  /** Open the store, or start a new one when the file does not exist yet. */
  static openOrCreate(file: string, masterKey: MasterKey): SecretStore {
    try {
      return SecretStore.open(file, masterKey);
    } catch (err) {
      if (err instanceof SecretStoreError && err.code === 'PTC_SECRETS_NO_FILE') return SecretStore.create(file, masterKey);
      throw err;
    }
  }

  names(): string[] {
    return Object.keys(this.#data.entries).sort();
  }

  has(name: string): boolean {
    return Object.hasOwn(this.#data.entries, name);
  }

  /** The entry as a Secret, or undefined when there is none. A tampered entry throws PTC_SECRETS_WRONG_KEY. */
  get(name: string): Secret | undefined {
    const sealed = this.has(name) ? this.#data.entries[name] : undefined;
    if (sealed === undefined) return undefined;
    return new Secret(open(this.#key, entryAAD(name), sealed).toString('utf8'), name);
  }

  set(name: string, value: string | Secret): void {
    assertSecretName(name);
    const plain = typeof value === 'string' ? value : value.reveal();
    this.#data.entries[name] = seal(this.#key, entryAAD(name), Buffer.from(plain, 'utf8'));
  }

  delete(name: string): boolean {
    if (!this.has(name)) return false;
    delete this.#data.entries[name];
    return true;
  }

  /** Re-encrypt every entry under `next` (new salt, new nonces). Every entry is decrypted first, so a corrupted one aborts. */
  rotate(next: MasterKey): void {
    const plain = this.names().map((n) => [n, this.get(n) as Secret] as const);
    const kdf = newKDF(next);
    const key = deriveKey(kdf, next);
    const entries: Record<string, Sealed> = {};
    for (const [n, s] of plain) entries[n] = seal(key, entryAAD(n), Buffer.from(s.reveal(), 'utf8'));
    this.#data = { version: STORE_VERSION, kdf, check: seal(key, CHECK_AAD, Buffer.from(CHECK_PLAIN)), entries };
    this.#key = key;
  }

  /** Write atomically: a 0600 temp file in the same directory, fsync, rename over the store. */
  save(): void {
    const tmp = join(dirname(this.file), `.${basename(this.file)}.${randomBytes(6).toString('hex')}.tmp`);
    const text = `${JSON.stringify(this.#data, null, 2)}\n`;
    let fd: number | undefined;
    try {
      fd = openSync(tmp, 'wx', 0o600);
      writeSync(fd, text);
      fsyncSync(fd);
      closeSync(fd);
      fd = undefined;
      renameSync(tmp, this.file);
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      rmSync(tmp, { force: true });
      throw new SecretStoreError('PTC_SECRETS_IO', `cannot write ${this.file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
}
