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

/** Identity headers rendered once per Identity object (cached identities are reused across requests). */
const rendered = new WeakMap<Identity, readonly (readonly [string, string])[]>();

function render(identity: Identity): readonly (readonly [string, string])[] {
  const h: [string, string][] = [];
  if (identity.consumer !== undefined) h.push([IDENTITY_HEADERS.consumer, identity.consumer.id]);
  h.push([IDENTITY_HEADERS.subject, headerSafe(identity.subject)]);
  if (identity.groups.length > 0) h.push([IDENTITY_HEADERS.groups, identity.groups.map(headerSafe).join(',')]);
  if (identity.scopes.length > 0) h.push([IDENTITY_HEADERS.scopes, identity.scopes.map(headerSafe).join(' ')]);
  h.push([IDENTITY_HEADERS.method, identity.method]);
  if (identity.upstreamHeaders !== undefined) for (const [k, v] of Object.entries(identity.upstreamHeaders)) h.push([k, v]);
  return h;
}

export function setIdentityHeaders(out: HeaderMap, identity: Identity): void {
  let h = rendered.get(identity);
  if (h === undefined) {
    h = render(identity);
    rendered.set(identity, h);
  }
  for (const [k, v] of h) out[k] = v;
}
