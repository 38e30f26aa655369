/**
 * Certificate expiry: days left for every certificate the config uses, as the gauge
 * `portcullis_certificate_expiry_days{kind,name}` (bounded: kind is listener | upstream-client |
 * upstream-ca, name a listener address or upstream name), and a warning line from 14 days ahead.
 * Updated at every load and hourly, so a gateway that runs for weeks still warns in time.
 */
import { X509Certificate } from 'node:crypto';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export type CertificateKind = 'listener' | 'upstream-client' | 'upstream-ca';

export interface CertificateInfo {
  readonly kind: CertificateKind;
  readonly name: string;
  readonly subject: string;
  readonly validTo: Date;
}

export const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

/** Every certificate in a PEM bundle (a chain, or a CA file with several roots). */
export function certificatesIn(pem: Buffer | string, kind: CertificateKind, name: string): CertificateInfo[] {
  const text = typeof pem === 'string' ? pem : pem.toString('utf8');
  const out: CertificateInfo[] = [];
  for (const m of text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)) {
    try {
      const x = new X509Certificate(m[0]);
      out.push({ kind, name, subject: x.subject.replace(/\n/g, ', '), validTo: new Date(x.validTo) });
    } catch {
      // Not a certificate the crypto module can read; whoever loads the file reports it.
    }
  }
  return out;
}

export interface CertificateWatch {
  update(certificates: readonly CertificateInfo[]): void;
  close(): void;
}

export function watchCertificates(metrics: Metrics, logger: Logger, now: () => number = Date.now): CertificateWatch {
  let current: readonly CertificateInfo[] = [];
  let lastWarned = 0;
  const publish = (warn: boolean) => {
    const t = now();
    metrics.certificateExpiry.reset();
    const soonest = new Map<string, { kind: CertificateKind; name: string; days: number }>();
    for (const c of current) {
      const days = (c.validTo.getTime() - t) / DAY_MS;
      const key = `${c.kind}\u0000${c.name}`;
      const prev = soonest.get(key);
      if (prev === undefined || days < prev.days) soonest.set(key, { kind: c.kind, name: c.name, days });
      if (warn && days < EXPIRY_WARNING_DAYS) {
        const line = { kind: c.kind, name: c.name, subject: c.subject, validTo: c.validTo.toISOString(), daysLeft: Math.floor(days) };
        if (days <= 0) logger.error(line, 'certificate has expired');
        else logger.warn(line, `certificate expires in less than ${EXPIRY_WARNING_DAYS} days`);
      }
    }
    for (const s of soonest.values()) metrics.certificateExpiry.labels(s.kind, s.name).set(Math.round(s.days * 100) / 100);
    if (warn) lastWarned = t;
  };
  const timer = setInterval(() => publish(now() - lastWarned >= DAY_MS), 3_600_000);
  timer.unref();
  return {
    update(certificates) {
      current = certificates;
      publish(true);
    },
    close() {
      clearInterval(timer);
    },
  };
}
