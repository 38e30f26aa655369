/**
 * Verification keys of a jwt authenticator that are known at build: a local key file (PEM SPKI,
 * PEM certificate, JWK or JWKS JSON) or an HMAC secret. A key resolver is returned in the shape
 * jose's jwtVerify takes; jose's local JWK set only offers a key for an algorithm of its own
 * family (an RSA key never verifies an HS256 or ES256 token).
 */
import { createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { createLocalJWKSet, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import { BuildProblem, type ConfigPath } from '../config/load.js';

type LocalSet = ReturnType<typeof createLocalJWKSet>;
export type KeyResolver = (header: JWSHeaderParameters) => ReturnType<LocalSet>;

/** JWK key types (and curves) each algorithm needs. */
function family(alg: string): { kty: string; crv?: string } {
  if (alg.startsWith('RS') || alg.startsWith('PS')) return { kty: 'RSA' };
  if (alg === 'ES256') return { kty: 'EC', crv: 'P-256' };
  if (alg === 'ES384') return { kty: 'EC', crv: 'P-384' };
  if (alg === 'ES512') return { kty: 'EC', crv: 'P-521' };
  if (alg === 'EdDSA' || alg === 'Ed25519') return { kty: 'OKP', crv: 'Ed25519' };
  return { kty: 'oct' };
}

function parseKeyFile(text: string, path: ConfigPath): JWK[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (err) {
      throw new BuildProblem(path, `not valid JSON (${(err as Error).message})`);
    }
    const keys = (json as { keys?: unknown }).keys;
    const list = Array.isArray(keys) ? keys : [json];
    for (const k of list) {
      if (k === null || typeof k !== 'object' || typeof (k as JWK).kty !== 'string') throw new BuildProblem(path, 'not a JWK or JWKS');
      if ((k as JWK).d !== undefined || (k as JWK).kty === 'oct') throw new BuildProblem(path, 'holds private or secret key material; give public keys only');
    }
    return list as JWK[];
  }
  if (/PRIVATE KEY-----/.test(trimmed)) throw new BuildProblem(path, 'holds a private key; give the public key (SPKI PEM) or a certificate');
  try {
    const key = trimmed.includes('-----BEGIN CERTIFICATE-----') ? new X509Certificate(trimmed).publicKey : createPublicKey(trimmed);
    return [key.export({ format: 'jwk' }) as JWK];
  } catch (err) {
    throw new BuildProblem(path, `not a PEM public key or certificate (${(err as Error).message})`);
  }
}

export function loadKeyFile(file: string, dir: string, algorithms: readonly string[], path: ConfigPath): KeyResolver {
  const keyPath = [...path, 'keyFile'];
  let text: string;
  try {
    text = readFileSync(isAbsolute(file) ? file : join(dir, file), 'utf8');
  } catch (err) {
    throw new BuildProblem(keyPath, `cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const keys = parseKeyFile(text, keyPath);
  const usable = keys.some((k) => algorithms.some((a) => family(a).kty === k.kty && (family(a).crv === undefined || family(a).crv === k.crv)));
  if (!usable) throw new BuildProblem([...path, 'algorithms'], `no key in "${file}" can verify ${algorithms.join(', ')}`);
  let local: LocalSet;
  try {
    local = createLocalJWKSet({ keys } as JSONWebKeySet);
  } catch (err) {
    throw new BuildProblem(keyPath, (err as Error).message);
  }
  // A token `kid` selects a key only when every key in the file names one; otherwise keys are
  // chosen by algorithm family (a PEM file has no kid to match).
  const byKid = keys.every((k) => typeof k.kid === 'string');
  return (header) => local(byKid ? header : { alg: header.alg as string });
}

export function secretKey(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}
