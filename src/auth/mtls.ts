/**
 * Mutual TLS: the identity is the verified client certificate of the connection (a listener with
 * `tls.clientCa`). Only a chain the listener verified counts — `AuthRequest.peerCertificate()` is
 * undefined for an unverified one, even on an `optional` listener. The certificate maps to a
 * consumer by subject DN, URI SAN (SPIFFE IDs) or DNS SAN.
 *
 * The certificate is connection-level, so this authenticator has no credential slot: a client
 * certificate alongside an API key or a token is not "ambiguous", and on an any-of route the
 * other credential may still be the one that authenticates.
 */
import type { PeerCertificate } from 'node:tls';
import type { AuthBuildContext } from './build.js';
import { escapeDnValue } from './consumers.js';
import type { AuthenticatorConfig } from './schema.js';
import { type Authenticator, type Consumer, outcome } from './types.js';

type MtlsConfig = Extract<AuthenticatorConfig, { type: 'mtls' }>;

/** The subject as an RFC 4514 string, most specific RDN first: `CN=acme,O=Acme`. */
export function subjectDn(cert: PeerCertificate): string {
  const parts: string[] = [];
  for (const [type, v] of Object.entries(cert.subject ?? {}) as [string, string | string[] | undefined][]) {
    if (v === undefined) continue;
    for (const value of Array.isArray(v) ? v : [v]) parts.push(`${type}=${escapeDnValue(value)}`);
  }
  return parts.reverse().join(',');
}

// Node prints a SAN value that contains separators or quotes as a JSON string (CVE-2021-44532).
// biome-ignore lint/suspicious/noControlCharactersInRegex: a JSON string excludes raw control characters (RFC 8259 §7).
const JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/;

/** `URI:spiffe://x/a, DNS:acme.local, IP Address:1.2.3.4` → [['URI', 'spiffe://x/a'], ['DNS', 'acme.local'], …] */
export function subjectAltNames(cert: PeerCertificate): [string, string][] {
  const text = cert.subjectaltname;
  if (text === undefined || text === '') return [];
  const entries: string[] = [];
  let current = '';
  let offset = 0;
  while (offset < text.length) {
    const sep = text.indexOf(',', offset);
    const quote = text.indexOf('"', offset);
    if (quote !== -1 && (sep === -1 || quote < sep)) {
      current += text.slice(offset, quote);
      const m = JSON_STRING.exec(text.slice(quote));
      if (m === null) return []; // unparseable: match nothing rather than something wrong
      current += JSON.parse(m[0]) as string;
      offset = quote + m[0].length;
    } else if (sep !== -1) {
      entries.push(current + text.slice(offset, sep));
      current = '';
      offset = sep + 2;
    } else {
      current += text.slice(offset);
      offset = text.length;
    }
  }
  entries.push(current);
  return entries.flatMap((e) => {
    const colon = e.indexOf(':');
    return colon === -1 ? [] : [[e.slice(0, colon), e.slice(colon + 1)] as [string, string]];
  });
}

export function createMtlsAuthenticator(name: string, cfg: MtlsConfig, ctx: AuthBuildContext): Authenticator {
  const consumers = ctx.consumers;
  return {
    name,
    type: 'mtls',
    slot: undefined,
    present: (req) => req.peerCertificate() !== undefined,
    authenticate(req) {
      const cert = req.peerCertificate();
      if (cert === undefined) return outcome.absent;
      const subject = subjectDn(cert);
      const matches = new Set<Consumer>();
      const bySubject = subject === '' ? undefined : consumers.byCertificate('subject', subject);
      if (bySubject !== undefined) matches.add(bySubject);
      for (const [kind, value] of subjectAltNames(cert)) {
        const c = kind === 'URI' ? consumers.byCertificate('uri', value) : kind === 'DNS' ? consumers.byCertificate('dns', value) : undefined;
        if (c !== undefined) matches.add(c);
      }
      // One certificate naming two consumers is a configuration mistake: refuse rather than pick one.
      if (matches.size > 1) return outcome.rejected('ambiguous_certificate');
      const [consumer] = matches;
      if (consumer === undefined && cfg.requireConsumer) return outcome.rejected('unknown_certificate');
      return outcome.authenticated({
        method: 'mtls',
        authenticator: name,
        subject,
        consumer,
        groups: consumer?.groups ?? [],
        scopes: [],
        claims: {},
      });
    },
    // TLS client authentication has no HTTP challenge (RFC 9110 §11.6.1 schemes are HTTP-level).
    challenge: () => undefined,
    strip: (_headers, query) => query,
  };
}
