/**
 * `portcullis keys`: credential material for consumers.
 *   keys generate                  a new random API key (shown once) and the sha256 digest to configure
 *   keys hash-password [--bcrypt]  read a password from stdin (never argv; not echoed on a terminal),
 *                                  print its argon2id (or bcrypt) hash for consumers[].basic.passwordHash
 */
import { randomBytes } from 'node:crypto';
import { hasControlCharacter } from '../auth/basic.js';
import { sha256Hex } from '../auth/consumers.js';
import { hashPassword } from '../auth/password-hash.js';

export const API_KEY_PREFIX = 'ptc_';

/** 32 random bytes, base64url, with a recognisable prefix (so secret scanners can find leaked keys). */
export function generateApiKey(): { key: string; digest: string } {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { key, digest: `sha256:${sha256Hex(key)}` };
}

/** Read one line from a terminal without echoing it. */
function readHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err === undefined) resolve(value);
      else reject(err);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  // One trailing newline is the end of the line, not part of the password (`echo pw | …`).
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

async function readPassword(): Promise<string> {
  if (process.stdin.isTTY !== true) return readStdin();
  const first = await readHidden('Password: ');
  const again = await readHidden('Repeat password: ');
  if (first !== again) throw new Error('the passwords do not match');
  return first;
}

/** Run `keys <sub>`; returns an exit code (0 ok, 2 usage). */
export async function keysCommand(sub: string | undefined, options: { bcrypt: boolean }, usage: (message: string) => never): Promise<number> {
  switch (sub) {
    case 'generate': {
      const { key, digest } = generateApiKey();
      process.stdout.write(`key:    ${key}\ndigest: ${digest}\n`);
      process.stderr.write('Give the key to the consumer (it is shown only once); put the digest in consumers[].apiKeys.\n');
      return 0;
    }
    case 'hash-password': {
      let password: string;
      try {
        password = await readPassword();
      } catch (err) {
        usage((err as Error).message);
      }
      if (password === '') usage('empty password (pipe it on stdin, e.g. `printf %s "$PW" | portcullis keys hash-password`)');
      if (hasControlCharacter(password)) usage('a Basic password cannot contain control characters or line breaks (RFC 7617 §2)');
      if (options.bcrypt && Buffer.byteLength(password) > 72) usage('bcrypt only uses the first 72 bytes of a password; use argon2id (the default)');
      process.stdout.write(`${await hashPassword(password, options.bcrypt ? 'bcrypt' : 'argon2id')}\n`);
      return 0;
    }
    default:
      usage(sub === undefined ? 'keys needs a subcommand: generate or hash-password' : `unknown keys subcommand "${sub}"`);
  }
}
