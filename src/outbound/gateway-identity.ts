/**
 * The gateway's own signing key, for identity assertions it mints to backends (`type: jwt`). The
 * key comes from `gatewayIdentity.key` (a `${secret:…}` holding a PKCS#8 PEM or a private JWK) or,
 * when absent, from `gatewayIdentity.keyFile`, generated at first start and written 0600. Its
 * public half is published as a JWKS on the admin listener (see key-ring.ts).
 */
import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPair, randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, type CryptoKey, importPKCS8, type JWK, type JWTPayload, SignJWT } from 'jose';
import { BuildProblem } from '../config/load.js';
import { reveal } from '../secrets/secret.js';
import { DEFAULT_KEY_FILE, type GatewayAlgorithm, type GatewayIdentityConfig } from './schema.js';
import { GATEWAY_JWT_TYPE } from '../verify/token-type.js';

/** A public JWK as published, with `kid`, `alg` and `use`. */
export type PublicJWK = JWK & { readonly kid: string; readonly alg: GatewayAlgorithm; readonly use: 'sig' };

export interface GatewayIdentity {
  readonly issuer: string;
  readonly algorithm: GatewayAlgorithm;
  readonly kid: string;
  readonly publicJwk: PublicJWK;
  /** gatewayIdentity.publishAhead in ms. */
  readonly publishAhead: number;
  /** Sign `claims` (iss, kid and typ are added; the caller sets aud, iat, exp, jti). */
  sign(claims: JWTPayload): Promise<string>;
  /**
   * Key rotation, publish before use: keep signing with `previous` until `until` (ms epoch) while
   * this key is already published, so backends' JWKS caches know it before any token needs it.
   */
  handOver(previous: GatewayIdentity, until: number): void;
}

const PATH = ['gatewayIdentity'] as const;

/** Load (or generate and persist) the gateway key. Throws BuildProblem with a config path. */
export async function loadGatewayIdentity(cfg: GatewayIdentityConfig, dir: string): Promise<GatewayIdentity> {
  const privateKey =
    cfg.key !== undefined
      ? parsePrivateKey(reveal(cfg.key), [...PATH, 'key'])
      : await keyFromFile(resolve(dir, cfg.keyFile ?? DEFAULT_KEY_FILE), cfg.algorithm);
  const mismatch = checkKey(privateKey, cfg.algorithm);
  if (mismatch !== undefined) throw new BuildProblem([...PATH, cfg.key !== undefined ? 'key' : 'keyFile'], mismatch);
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const signingKey: CryptoKey = await importPKCS8(pem, cfg.algorithm);
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const publicJwk: PublicJWK = Object.freeze({ ...jwk, kid, alg: cfg.algorithm, use: 'sig' });
  const header = { alg: cfg.algorithm, kid, typ: GATEWAY_JWT_TYPE };
  let previous: GatewayIdentity | undefined;
  let until = 0;
  return {
    issuer: cfg.issuer,
    algorithm: cfg.algorithm,
    kid,
    publicJwk,
    publishAhead: cfg.publishAhead,
    sign(claims) {
      if (previous !== undefined) {
        if (Date.now() < until) return previous.sign(claims);
        previous = undefined; // hand-over done: the old key is only published now, never used
      }
      return new SignJWT(claims).setProtectedHeader(header).setIssuer(cfg.issuer).sign(signingKey);
    },
    handOver(prev, deadline) {
      previous = prev;
      until = deadline;
    },
  };
}

/**
 * A private key given as PEM or as a private JWK (JSON), for every outbound credential that signs.
 * `reason` is the config error when it is neither.
 */
export function parsePrivateKey(
  text: string,
  path: readonly (string | number)[],
  reason = 'not a private key (expected a PKCS#8 PEM or a private JWK)',
): KeyObject {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('{')) return createPrivateKey({ key: JSON.parse(trimmed) as JWK & { kty: string }, format: 'jwk' });
    return createPrivateKey(trimmed);
  } catch {
    // Never echo the value or the parser's message: it is a private key, or something that was meant to be one.
    throw new BuildProblem(path, reason);
  }
}

/** Undefined when the key suits the algorithm, else the reason. */
function checkKey(key: KeyObject, alg: GatewayAlgorithm): string | undefined {
  if (key.type !== 'private') return 'a private key is needed, not a public one';
  const t = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails;
  switch (alg) {
    case 'ES256':
      return t === 'ec' && d?.namedCurve === 'prime256v1' ? undefined : `ES256 needs an EC P-256 key, not ${describeKey(key)}`;
    case 'RS256':
      return t === 'rsa' && (d?.modulusLength ?? 0) >= 2048 ? undefined : `RS256 needs an RSA key of at least 2048 bits, not ${describeKey(key)}`;
    case 'EdDSA':
      return t === 'ed25519' ? undefined : `EdDSA needs an Ed25519 key, not ${describeKey(key)}`;
  }
}

function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails;
  return `${key.asymmetricKeyType ?? 'an unknown'} key${d?.namedCurve !== undefined ? ` (${d.namedCurve})` : d?.modulusLength !== undefined ? ` (${d.modulusLength} bits)` : ''}`;
}

const generate = promisify(generateKeyPair);

async function generateKey(alg: GatewayAlgorithm): Promise<KeyObject> {
  switch (alg) {
    case 'ES256':
      return (await generate('ec', { namedCurve: 'P-256' })).privateKey;
    case 'RS256':
      return (await generate('rsa', { modulusLength: 3072 })).privateKey;
    case 'EdDSA':
      return (await generate('ed25519')).privateKey;
  }
}

/**
 * Read the key file, or create it. Creation writes a 0600 temporary file and hard-links it into
 * place: link() fails when the name exists, so concurrent starters (cluster workers) agree on one
 * key and nobody ever reads a half-written file.
 */
async function keyFromFile(file: string, alg: GatewayAlgorithm): Promise<KeyObject> {
  const path = [...PATH, 'keyFile'];
  const existing = await readKeyFile(file, path);
  if (existing !== undefined) return existing;
  const key = await generateKey(alg);
  const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' });
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new BuildProblem(path, `cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    const raced = await readKeyFile(file, path);
    if (raced !== undefined) return raced;
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return key;
}

async function readKeyFile(file: string, path: (string | number)[]): Promise<KeyObject | undefined> {
  let text: string;
  try {
    const st = await stat(file);
    // Like ssh: a private key others can read is refused rather than used.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0)
      throw new BuildProblem(path, `${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof BuildProblem) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BuildProblem(path, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parsePrivateKey(text, path);
}
