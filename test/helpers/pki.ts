/**
 * Certificates generated at test time with the openssl CLI: a CA, and leaf certificates signed by
 * it (server or client), written to a temporary directory. Nothing generated here is committed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
  readonly certPem: string;
  readonly keyPem: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed P-256 certificate valid for two days, with the given X.509v3 extensions. */
function selfSigned(dir: string, base: string, cn: string, extensions: readonly string[]): CertFiles {
  const key = `${base}-key.pem`;
  const cert = `${base}.pem`;
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
  ];
  for (const e of extensions) args.push('-addext', e);
  openssl(args, dir);
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

export function createCA(dir: string, name = 'Portcullis Test CA'): CertFiles {
  return selfSigned(dir, join(dir, name.replace(/\W/g, '_')), name, ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']);
}

export interface LeafOptions {
  readonly cn: string;
  /** subjectAltName entries, e.g. ['DNS:localhost', 'IP:127.0.0.1'] */
  readonly san?: readonly string[];
  readonly usage?: 'server' | 'client';
  /** Validity in days; negative makes an already-expired certificate. */
  readonly days?: number;
}

export function createLeaf(dir: string, ca: CertFiles, opts: LeafOptions): CertFiles {
  const base = join(dir, opts.cn.replace(/\W/g, '_'));
  const key = `${base}-key.pem`;
  const csr = `${base}.csr`;
  const cert = `${base}.pem`;
  const ext = `${base}.ext`;
  const san = opts.san ?? ['DNS:localhost', 'IP:127.0.0.1'];
  writeFileSync(
    ext,
    [`subjectAltName=${san.join(',')}`, `extendedKeyUsage=${opts.usage === 'client' ? 'clientAuth' : 'serverAuth'}`, 'basicConstraints=CA:FALSE'].join('\n'),
  );
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${opts.cn}`], dir);
  const days = opts.days ?? 2;
  if (days > 0) {
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', String(days), '-extfile', ext], dir);
  } else {
    // Expired: valid from two days ago until yesterday. OpenSSL 3.0's `x509` cannot set explicit
    // dates (-not_before arrived in 3.4), so sign with `openssl ca` and a throwaway CA database.
    const db = mkdtempSync(join(dir, 'ca-db-'));
    writeFileSync(join(db, 'index.txt'), '');
    writeFileSync(join(db, 'serial'), `${randomBytes(8).toString('hex').toUpperCase()}\n`);
    const cnf = join(db, 'ca.cnf');
    writeFileSync(
      cnf,
      [
        '[ ca ]',
        'default_ca = throwaway',
        '[ throwaway ]',
        `database = ${join(db, 'index.txt')}`,
        `new_certs_dir = ${db}`,
        `serial = ${join(db, 'serial')}`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        'copy_extensions = none',
        '[ any ]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    // UTCTime, YYMMDDHHMMSSZ: accepted by every OpenSSL 3.x `ca -startdate/-enddate`.
    const fmt = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
    const now = Date.now();
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        cnf,
        '-in',
        csr,
        '-out',
        cert,
        '-cert',
        ca.cert,
        '-keyfile',
        ca.key,
        '-notext',
        '-startdate',
        fmt(new Date(now - 2 * 86400_000)),
        '-enddate',
        fmt(new Date(now - 86400_000)),
        '-extfile',
        ext,
      ],
      dir,
    );
  }
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

/** A self-signed server certificate (not a CA) for `san`, e.g. a backend nobody vouches for. */
export function createSelfSigned(dir: string, cn: string, san: readonly string[] = ['DNS:localhost', 'IP:127.0.0.1']): CertFiles {
  return selfSigned(dir, join(dir, `${cn.replace(/\W/g, '_')}-self`), cn, [
    `subjectAltName=${san.join(',')}`,
    'extendedKeyUsage=serverAuth',
    'basicConstraints=critical,CA:FALSE',
  ]);
}
