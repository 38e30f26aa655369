/** Field types shared by every config section: durations and sizes in human units. */
import { z } from 'zod';
import { parseDuration, parseSize } from '../core/units.js';

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
