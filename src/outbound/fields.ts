/** Config field types shared by the outbound credential types. */
import { z } from 'zod';
import { headerName } from '../config/fields.js';
import { isOwnedHeader } from '../core/headers.js';
import { parseSize } from '../core/units.js';

/**
 * Headers an outbound credential must never set: framing and hop-by-hop headers, forwarding
 * headers the gateway writes itself, and the identity headers it owns (X-Consumer-*, X-Auth-*…).
 */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'http2-settings',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-real-ip',
  'x-request-id',
]);

export const outboundHeaderName = headerName
  .refine((h) => !RESERVED_HEADERS.has(h) && !h.startsWith('proxy-'), 'this header is managed by the gateway and cannot carry a credential')
  .refine((h) => !isOwnedHeader(h), 'X-Consumer-*, X-Auth-* and X-Portcullis-* are identity headers the gateway owns');

/** An optional size (no default: the caller falls back to limits.maxBodyBytes). */
export const optionalSize = (what: string) =>
  z
    .union([z.string(), z.number()])
    .optional()
    .describe(`${what} (size: 512kb, 10mb; a bare number is bytes). Default limits.maxBodyBytes.`)
    .transform((v, ctx) => {
      if (v === undefined) return undefined;
      const bytes = parseSize(v);
      if (bytes === undefined || bytes <= 0) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not a size (use e.g. 64kb, 10mb)` });
        return z.NEVER;
      }
      return bytes;
    });
