/** Field types shared by every config section: durations and sizes in human units. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration, parseSize } from '../core/units.js';
import { Secret } from '../secrets/secret.js';

export const duration = (def: string, what: string) =>
  z
    .union([z.string(), z.number()])
    .default(def)
    .describe(`${what} (duration: 500ms, 10s, 2m, 1h; a bare number is milliseconds). Default ${def}.`)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 500ms, 10s, 2m)` });
        return z.NEVER;
      }
      return ms;
    });

/** An optional duration (no default: the caller decides what its absence means). */
export const optionalDuration = (what: string) =>
  z
    .union([z.string(), z.number()])
    .optional()
    .describe(`${what} (duration: 500ms, 10s, 2m)`)
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a duration (use e.g. 500ms, 10s, 2m)` });
        return z.NEVER;
      }
      return ms;
    });

/** An HTTP field name (RFC 9110 §5.1 token), lower-cased. */
export const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not a header name')
  .transform((h) => h.toLowerCase());

export const size = (def: string, what: string) =>
  z
    .union([z.string(), z.number()])
    .default(def)
    .describe(`${what} (size: 512kb, 10mb; a bare number is bytes). Default ${def}.`)
    .transform((v, ctx) => {
      const bytes = parseSize(v);
      if (bytes === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use e.g. 64kb, 10mb)` });
        return z.NEVER;
      }
      return bytes;
    });

/**
 * A value already resolved from a `${secret:NAME}` reference. JSON Schema cannot describe a class
 * instance; `portcullis schema` shows it as the reference string the file contains (see jsonSchema()).
 */
export const secretInstance = z.instanceof(Secret);

/**
 * A credential value: a Secret from a `${secret:NAME}` reference (revealed only where it is used)
 * or plain text, e.g. from `${env:NAME}` or `${file:PATH}`.
 */
export const secretValue = (what: string) =>
  z
    .union([secretInstance, z.string().min(1, 'must not be empty')])
    .describe(`${what}: a \${secret:NAME} reference, or text (e.g. \${env:NAME})`)
    // Plain text is wrapped too, so a credential cannot reach a log line or the config hash by accident.
    .transform((v): Secret => (typeof v === 'string' ? new Secret(v, 'inline') : v));

/** localhost, 127.0.0.0/8 or ::1 (also as a URL hostname, `[::1]`). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * A URL the gateway sends credentials to or takes keys from (token endpoints, JWKS, introspection,
 * external auth): https://, or http:// to a loopback address only — never credentials in clear
 * across a network, never signing keys an on-path attacker could swap.
 */
export const secureUrl = (what: string) =>
  z
    .string()
    .describe(`${what}: https://, or http:// to a loopback address only`)
    .superRefine((v, ctx) => {
      const u = parseUrlField(v, ctx);
      if (u === undefined) return;
      if (u.username !== '' || u.password !== '') ctx.addIssue({ code: 'custom', message: 'credentials in the URL are not allowed' });
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u.hostname)))
        ctx.addIssue({ code: 'custom', message: `${what} must be https:// (http:// only to a loopback address)` });
    });

/** Parse a URL config value, reporting a clear problem (and returning undefined) when it is not one. */
export function parseUrlField(value: string, ctx: z.RefinementCtx): URL | undefined {
  try {
    return new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a URL` });
    return undefined;
  }
}
