/**
 * The consumer directory, indexed once at build: by id, API-key digest, Basic username and
 * certificate identity. Keys are only ever held as SHA-256 digests.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BuildProblem } from '../config/load.js';
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
  byCertificate(kind: 'subject' | 'uri' | 'dns', value: string): Consumer | undefined;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
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
      const digest = createHash('sha256').update(key, 'utf8').digest();
      const hit = keys.get(digest.toString('hex'));
      // The map lookup is on a digest the client cannot steer; the final comparison is constant-time anyway.
      return hit !== undefined && timingSafeEqual(hit.digest, digest) ? hit.consumer : undefined;
    },
    byUsername: (u) => users.get(u),
    byCertificate: (kind, value) => certs.get(`${kind}:${kind === 'subject' ? normaliseDn(value) : value.toLowerCase()}`),
  };
}

/** `CN=acme, O=Acme` → `CN=acme,O=Acme` (attribute types upper-cased, spaces around separators dropped). */
export function normaliseDn(dn: string): string {
  return dn
    .split(/\s*[,/\n]\s*/)
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      return eq === -1 ? p : `${p.slice(0, eq).trim().toUpperCase()}=${p.slice(eq + 1).trim()}`;
    })
    .join(',');
}
