/**
 * Password hashes for Basic authentication: argon2id (also argon2i/argon2d) via the native `argon2`
 * package, and bcrypt ($2a/$2b/$2y) via `bcryptjs`. Both verify asynchronously: argon2 on the libuv
 * thread pool, bcryptjs in chunks that yield to the event loop. Library errors are translated here
 * and nowhere else: a hash that cannot be verified is a `false`, never a thrown 500.
 */
import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';

// Parameters in any order: the argon2 package writes `m=…,p=…,t=…`, the reference tool `m=…,t=…,p=…`.
const ARGON2 = /^\$argon2(id|i|d)\$v=\d+\$((?:[mtp]=\d+,){2}[mtp]=\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

/** Cost of new argon2id hashes (the argon2 package defaults, OWASP-compatible: 64 MiB, t=3, p=4). */
export const ARGON2_DEFAULTS = { memoryCost: 65536, timeCost: 3, parallelism: 4 } as const;
export const BCRYPT_DEFAULT_COST = 12;

/** Why a stored hash is unusable, or undefined when it is well-formed. */
export function checkPasswordHash(hash: string): string | undefined {
  if (ARGON2.test(hash) || BCRYPT.test(hash)) return undefined;
  return 'not a well-formed argon2 ($argon2id$v=19$m=…,t=…,p=…$salt$hash) or bcrypt ($2b$NN$ + 53 characters) hash; `portcullis keys hash-password` makes one';
}

/** Verify `password` against a stored hash; false (never a throw) for a mismatch or an unusable hash. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    if (hash.startsWith('$argon2')) return await argon2.verify(hash, password);
    // `$2y$` (PHP's name for the fixed algorithm) is the same algorithm as `$2b$`.
    if (hash.startsWith('$2')) return await bcrypt.compare(password, hash.startsWith('$2y$') ? `$2b$${hash.slice(4)}` : hash);
  } catch {}
  return false;
}

/** A new argon2id hash (default) or bcrypt hash of `password`. */
export async function hashPassword(password: string, algorithm: 'argon2id' | 'bcrypt' = 'argon2id'): Promise<string> {
  if (algorithm === 'bcrypt') return bcrypt.hash(password, BCRYPT_DEFAULT_COST);
  return argon2.hash(password, { type: argon2.argon2id, ...ARGON2_DEFAULTS });
}

/**
 * A hash of a random password with the same algorithm and cost as `like`, so an unknown username
 * costs the same verification time as a known one (no user enumeration by timing).
 */
export async function dummyHashLike(like: string | undefined): Promise<string> {
  const secret = randomBytes(18).toString('base64');
  const a = like === undefined ? undefined : ARGON2.exec(like);
  if (a !== null && a !== undefined) {
    const type = a[1] === 'id' ? argon2.argon2id : a[1] === 'i' ? argon2.argon2i : argon2.argon2d;
    const p = Object.fromEntries((a[2] as string).split(',').map((kv) => [kv[0], Number(kv.slice(2))]));
    return argon2.hash(secret, { type, memoryCost: p.m ?? ARGON2_DEFAULTS.memoryCost, timeCost: p.t ?? ARGON2_DEFAULTS.timeCost, parallelism: p.p ?? 1 });
  }
  const b = like === undefined ? undefined : BCRYPT.exec(like);
  if (b !== null && b !== undefined) return bcrypt.hash(secret, Number(b[1]));
  return argon2.hash(secret, { type: argon2.argon2id, ...ARGON2_DEFAULTS });
}
