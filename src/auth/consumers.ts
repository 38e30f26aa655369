/**
 * The consumer directory, indexed once at build: by id, API-key digest, Basic username and
 * certificate identity. Keys are only ever held as SHA-256 digests.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { BuildProblem } from '../config/load.js';
import { checkPasswordHash } from './password-hash.js';
import type { ConsumerConfig } from './schema.js';
import type { Consumer } from './types.js';

export interface BasicEntry {
  readonly consumer: Consumer;
  readonly passwordHash: string;
}

export interface ConsumerDirectory {
  byId(id: string): Consumer | undefined;
  /** Constant-time check of a presented API key against the stored digests. */
  byApiKey(key: string): Consumer | undefined;
  byUsername(username: string): BasicEntry | undefined;
  /** Every Basic credential, in config order (the Basic authenticator sizes its dummy hash on them). */
  basicEntries(): readonly BasicEntry[];
  byCertificate(kind: 'subject' | 'uri' | 'dns', value: string): Consumer | undefined;
}

export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}

export function buildConsumers(configs: readonly ConsumerConfig[]): ConsumerDirectory {
  const ids = new Map<string, Consumer>();
  const keys = new Map<string, { consumer: Consumer; digest: Buffer }>();
  const users = new Map<string, BasicEntry>();
  const certs = new Map<string, Consumer>();
  configs.forEach((c, i) => {
    const consumer: Consumer = Object.freeze({ id: c.id, groups: Object.freeze([...c.groups]), metadata: Object.freeze({ ...c.metadata }) });
    if (ids.has(c.id)) throw new BuildProblem(['consumers', i, 'id'], `consumer id "${c.id}" is used twice`);
    ids.set(c.id, consumer);
    c.apiKeys.forEach((d, k) => {
      if (keys.has(d)) throw new BuildProblem(['consumers', i, 'apiKeys', k], 'this key digest is already assigned to another consumer');
      keys.set(d, { consumer, digest: Buffer.from(d, 'hex') });
    });
    if (c.basic !== undefined) {
      if (users.has(c.basic.username)) throw new BuildProblem(['consumers', i, 'basic', 'username'], `username "${c.basic.username}" is used twice`);
      const bad = checkPasswordHash(c.basic.passwordHash);
      if (bad !== undefined) throw new BuildProblem(['consumers', i, 'basic', 'passwordHash'], bad);
      users.set(c.basic.username, { consumer, passwordHash: c.basic.passwordHash });
    }
    if (c.certificate !== undefined) {
      const [kind, value] = Object.entries(c.certificate).find(([, v]) => v !== undefined) as [string, string];
      const k = `${kind}:${kind === 'subject' ? normaliseDn(value) : value.toLowerCase()}`;
      if (certs.has(k)) throw new BuildProblem(['consumers', i, 'certificate'], 'this certificate identity is already assigned to another consumer');
      certs.set(k, consumer);
    }
  });
  return {
    byId: (id) => ids.get(id),
    byApiKey(key) {
      const hex = hash('sha256', key, 'hex');
      const hit = keys.get(hex);
      // The map lookup is on a digest the client cannot steer; the final comparison is constant-time anyway.
      return hit !== undefined && timingSafeEqual(hit.digest, Buffer.from(hex, 'hex')) ? hit.consumer : undefined;
    },
    byUsername: (u) => users.get(u),
    basicEntries: () => [...users.values()],
    byCertificate: (kind, value) => certs.get(`${kind}:${kind === 'subject' ? normaliseDn(value) : value.toLowerCase()}`),
  };
}

/**
 * A distinguished name as a comparable key: attribute types upper-cased, values unescaped and
 * re-escaped (RFC 4514 §2.4), attributes sorted, joined with ','. Order-insensitive on purpose:
 * RFC 4514 strings list the most specific RDN first (`CN=acme,O=Acme`), OpenSSL's one-line form
 * and Node's `PeerCertificate.subject` list them in certificate order (`/O=Acme/CN=acme`); both
 * name the same subject. Accepts `,` `;` `+` or newline separators (Node's X509Certificate.subject),
 * or OpenSSL's `/A=b/C=d` form when the string starts with `/`.
 */
export function normaliseDn(dn: string): string {
  return dnPairs(dn)
    .map(([type, value]) => `${type.toUpperCase()}=${escapeDnValue(value)}`)
    .sort()
    .join(',');
}

/** Split a DN string into [type, value] pairs, honouring backslash escapes and quoted values. */
export function dnPairs(dn: string): [string, string][] {
  const slashForm = dn.trimStart().startsWith('/');
  const separators = slashForm ? '/' : ',;+\n';
  const pairs: [string, string][] = [];
  let type = '';
  let value = '';
  let inValue = false;
  let quoted = false;
  const flush = () => {
    if (type.trim() !== '' || value.trim() !== '') pairs.push([type.trim(), inValue ? value.trim() : '']);
    type = '';
    value = '';
    inValue = false;
  };
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i] as string;
    if (c === '\\' && i + 1 < dn.length) {
      const hex = /^[0-9A-Fa-f]{2}/.exec(dn.slice(i + 1, i + 3));
      // RFC 4514 §3: `\,` escapes one character; `\2C` is a hex-encoded byte (UTF-8 sequences are rare; take the byte).
      const ch = hex !== null && !slashForm ? String.fromCharCode(Number.parseInt(hex[0], 16)) : (dn[i + 1] as string);
      i += hex !== null && !slashForm ? 2 : 1;
      if (inValue) value += ch;
      else type += ch;
      continue;
    }
    if (c === '"' && inValue) {
      quoted = !quoted;
      continue;
    }
    if (!quoted && separators.includes(c)) {
      flush();
      continue;
    }
    if (c === '=' && !inValue) {
      inValue = true;
      continue;
    }
    if (inValue) value += c;
    else type += c;
  }
  flush();
  return pairs;
}

/** RFC 4514 §2.4 escaping of an attribute value. */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith('#') || out.startsWith(' ')) out = `\\${out}`;
  if (out.endsWith(' ') && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}
