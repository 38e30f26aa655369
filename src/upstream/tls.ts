/**
 * TLS to an upstream, built once per config: the secure context (CAs, client certificate and key,
 * lowest version), SNI, and the identity check that runs in the handshake. Verification of the
 * chain and the host name is always on; `insecureSkipVerify` (spelled out in full) is the only way
 * off. A pin mismatch fails the handshake like any other verification error, so nothing is sent.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import type { ConfigPath } from '../config/load.js';
import type { UpstreamConfig } from '../config/schema.js';
import { type CertificateInfo, certificatesIn } from '../observability/certificates.js';
import { reveal } from '../secrets/secret.js';

/** What undici's `connect` option gets for an https:// target. */
export interface UpstreamConnectTLS {
  readonly secureContext: SecureContext;
  readonly servername?: string;
  readonly rejectUnauthorized: boolean;
  readonly checkServerIdentity: (hostname: string, cert: PeerCertificate) => Error | undefined;
}

export interface UpstreamTLS {
  /** Connect options for one target (SNI defaults to the target's host name). */
  connect(targetHost: string): UpstreamConnectTLS;
  readonly certificates: readonly CertificateInfo[];
  readonly insecure: boolean;
}

/** The error code a pin mismatch fails the handshake with (classified as PTC_ERR_UPSTREAM_TLS). */
export const PIN_MISMATCH = 'PTC_TLS_PIN_MISMATCH';

/** `sha256/<base64>` of the DER SubjectPublicKeyInfo — the form `pin:` entries take (RFC 7469 §2.4). */
export function spkiPin(spkiDer: Buffer): string {
  return `sha256/${createHash('sha256').update(spkiDer).digest('base64')}`;
}

export type ReportBuildProblem = (path: ConfigPath, reason: string) => void;

async function readMaterial(dir: string, file: string, path: ConfigPath, what: string, report: ReportBuildProblem): Promise<Buffer | undefined> {
  try {
    const pem = await readFile(resolve(dir, file));
    if (!pem.includes('-----BEGIN ')) {
      report(path, `${file} is not a PEM file (${what})`);
      return undefined;
    }
    return pem;
  } catch (err) {
    report(path, `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    return undefined;
  }
}

/**
 * Read and check everything an upstream's TLS needs. Problems are reported at their config path
 * (a missing or unreadable file is never a silent fallback); returns undefined if any was found.
 */
export async function buildUpstreamTLS(name: string, cfg: UpstreamConfig, dir: string, report: ReportBuildProblem): Promise<UpstreamTLS | undefined> {
  const t = cfg.tls;
  const base = ['upstreams', name, 'tls'];
  let problems = 0;
  const note: ReportBuildProblem = (p, r) => {
    problems++;
    report(p, r);
  };
  if (t !== undefined) {
    cfg.targets.forEach((target, i) => {
      if (target.startsWith('http:')) note(['upstreams', name, 'targets', i], 'tls applies to https:// targets only');
    });
  }
  const certificates: CertificateInfo[] = [];
  const ca = t?.ca === undefined ? undefined : await readMaterial(dir, t.ca, [...base, 'ca'], 'CA certificates', note);
  if (ca !== undefined && t?.ca !== undefined) {
    const found = certificatesIn(ca, 'upstream-ca', name);
    if (found.length === 0) note([...base, 'ca'], `${t.ca} holds no usable CA certificate`);
    certificates.push(...found);
  }
  const cert = t?.cert === undefined ? undefined : await readMaterial(dir, t.cert, [...base, 'cert'], 'client certificate', note);
  if (cert !== undefined) {
    const found = certificatesIn(cert, 'upstream-client', name);
    if (found.length === 0) note([...base, 'cert'], `${t?.cert} holds no usable certificate`);
    certificates.push(...found);
  }
  let key: Buffer | undefined;
  if (t?.key !== undefined) {
    if (typeof t.key === 'string') key = await readMaterial(dir, t.key, [...base, 'key'], 'private key', note);
    else {
      // A key from the secret store is PEM text; never echo it, only say what is wrong.
      key = Buffer.from(t.key.reveal(), 'utf8');
      if (!key.includes('-----BEGIN ')) note([...base, 'key'], `secret "${t.key.name}" is not a PEM private key`);
    }
  }
  const passphrase = t?.passphrase === undefined ? undefined : reveal(t.passphrase);
  if (problems > 0) return undefined;

  let secureContext: SecureContext;
  try {
    secureContext = createSecureContext({
      minVersion: t?.minVersion ?? 'TLSv1.2',
      ...(ca !== undefined ? { ca } : {}),
      ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
      ...(passphrase !== undefined ? { passphrase } : {}),
    });
  } catch (err) {
    const msg = (err as Error).message;
    const where = cert !== undefined ? [...base, 'key'] : [...base, 'ca'];
    report(where, cert !== undefined ? `client certificate and key do not form a usable pair (${msg})` : `unusable CA certificates (${msg})`);
    return undefined;
  }

  const insecure = t?.insecureSkipVerify !== undefined;
  const pins = t?.pin === undefined ? undefined : new Set(t.pin);
  const identity = (hostname: string, peer: PeerCertificate): Error | undefined => {
    const err = checkServerIdentity(hostname, peer);
    if (err !== undefined || pins === undefined) return err;
    // `peer.pubkey` is SPKI only for RSA (for EC it is the bare point), so read the key from the DER certificate.
    const seen = spkiPin(new X509Certificate(peer.raw).publicKey.export({ type: 'spki', format: 'der' }));
    if (pins.has(seen)) return undefined;
    return Object.assign(new Error(`the upstream certificate key (${seen}) matches none of the configured pins`), { code: PIN_MISMATCH });
  };
  const servername = t?.servername;
  return {
    certificates,
    insecure,
    connect(targetHost) {
      const host = targetHost.startsWith('[') ? targetHost.slice(1, -1) : targetHost;
      // RFC 6066 §3: SNI carries host names only, so an IP target sends none unless servername says so.
      const sni = servername ?? (isIP(host) === 0 ? host : undefined);
      return {
        secureContext,
        ...(sni !== undefined ? { servername: sni } : {}),
        rejectUnauthorized: !insecure,
        checkServerIdentity: identity,
      };
    },
  };
}

/** Parse-check helper for tests and tools: the pin of a PEM certificate. */
export function pinOfCertificate(pem: string | Buffer): string {
  return spkiPin(new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }));
}
