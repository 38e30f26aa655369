/** Field types shared by every config section: durations and sizes in human units. */
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
