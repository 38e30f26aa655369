/**
 * Certificates generated at test time with the openssl CLI: a CA, and leaf certificates signed by
 * it (server or client), written to a temporary directory. Nothing generated here is committed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
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

export function createCA(dir: string, name = 'Portcullis Test CA'): CertFiles {
  const key = join(dir, `${name.replace(/\W/g, '_')}-key.pem`);
  const cert = join(dir, `${name.replace(/\W/g, '_')}.pem`);
  openssl(
    [
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
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
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
    // Expired: valid from two days ago until yesterday.
    const fmt = (d: Date) => `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
    const now = Date.now();
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.cert,
        '-CAkey',
        ca.key,
        '-CAcreateserial',
        '-out',
        cert,
        '-not_before',
        fmt(new Date(now - 2 * 86400_000)),
        '-not_after',
        fmt(new Date(now - 86400_000)),
        '-extfile',
        ext,
      ],
      dir,
    );
  }
  return { cert, key, certPem: readFileSync(cert, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}
