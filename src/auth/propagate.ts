/**
 * Identity to the backend. The gateway owns every header under X-Consumer-*, X-Auth-* and
 * X-Portcullis-* (also spelled with `_`, which some servers fold into `-`): client-sent copies are
 * dropped at the header scan, and only the gateway sets them, after authentication.
 */
import type { HeaderMap } from '../core/headers.js';

export { isOwnedHeader } from '../core/headers.js';
import type { Identity } from './types.js';

export const IDENTITY_HEADERS = {
  consumer: 'x-consumer-id',
  subject: 'x-auth-subject',
  groups: 'x-auth-groups',
  scopes: 'x-auth-scopes',
  method: 'x-auth-method',
} as const;

/** Header-safe text: visible ASCII stays, anything else (and `%` `,`) is percent-encoded. */
export function headerSafe(value: string): string {
  let safe = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x25 || c === 0x2c) {
      safe = false;
      break;
    }
  }
  if (safe) return value;
  return Array.from(Buffer.from(value, 'utf8'), (b) =>
    b < 0x21 || b > 0x7e || b === 0x25 || b === 0x2c ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b),
  ).join('');
}

export function setIdentityHeaders(out: HeaderMap, identity: Identity): void {
  if (identity.consumer !== undefined) out[IDENTITY_HEADERS.consumer] = identity.consumer.id;
  out[IDENTITY_HEADERS.subject] = headerSafe(identity.subject);
  if (identity.groups.length > 0) out[IDENTITY_HEADERS.groups] = identity.groups.map(headerSafe).join(',');
  if (identity.scopes.length > 0) out[IDENTITY_HEADERS.scopes] = identity.scopes.map(headerSafe).join(' ');
  out[IDENTITY_HEADERS.method] = identity.method;
  if (identity.upstreamHeaders !== undefined) for (const [k, v] of Object.entries(identity.upstreamHeaders)) out[k] = v;
}
