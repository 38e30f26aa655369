/**
 * Request-target normalisation, done once per request; the result is both matched and forwarded,
 * so the gateway and the backend can never disagree about which resource was asked for.
 *
 * - percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2), other escapes upper-cased;
 * - dot segments are resolved (RFC 3986 §5.2.4) and runs of slashes merged;
 * - ambiguous forms are refused: an encoded `/` (%2F), `\` (%5C) or control character (%00-%1F, %7F),
 *   invalid percent-encoding, a raw backslash, control or non-ASCII byte, a fragment, and a `..` that
 *   would climb above the root.
 */

export interface NormalisedTarget {
  /** Normalised path, always starting with `/`. */
  readonly path: string;
  /** The query including its leading `?`, or '' — forwarded as received. */
  readonly query: string;
}

/** Why a target was refused (for logs); the client only sees PTC_ERR_BAD_PATH. */
export type TargetProblem = string;

// Characters allowed raw in a path by RFC 3986 (pchar / "/"), minus "%" which takes the slow path.
const SAFE = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/") SAFE[c.charCodeAt(0)] = 1;
const SLASH = 0x2f;
const DOT = 0x2e;

export function normaliseTarget(target: string): NormalisedTarget | TargetProblem {
  if (target.charCodeAt(0) !== SLASH) return 'request target is not in origin-form';
  let end = target.indexOf('?');
  const query = end === -1 ? '' : target.slice(end);
  if (end === -1) end = target.length;
  if (query.includes('#')) return 'fragment in request target';
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return 'control or non-ASCII character in query';
  }

  // Fast path: only safe characters, no "//" and no "/." — already normal.
  let clean = true;
  for (let i = 0, prev = 0; i < end; i++) {
    const c = target.charCodeAt(i);
    if (c >= 128 || SAFE[c] === 0 || (prev === SLASH && (c === SLASH || c === DOT))) {
      clean = false;
      break;
    }
    prev = c;
  }
  if (clean) return { path: end === target.length ? target : target.slice(0, end), query };
  return slowPath(target.slice(0, end), query);
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

function slowPath(raw: string, query: string): NormalisedTarget | TargetProblem {
  // 1. Percent-encoding and raw characters.
  let decoded = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return 'invalid percent-encoding';
      const v = hi * 16 + lo;
      if (v === 0x2f) return 'encoded slash (%2F)';
      if (v === 0x5c) return 'encoded backslash (%5C)';
      if (v < 0x20 || v === 0x7f) return 'encoded control character';
      decoded += isUnreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`;
      i += 2;
    } else if (c === 0x5c) {
      return 'backslash in path';
    } else if (c >= 128 || SAFE[c] === 0) {
      return c === 0x23 ? 'fragment in request target' : 'control, space or non-ASCII character in path';
    } else {
      decoded += raw[i];
    }
  }
  // 2. Dot segments and duplicate slashes.
  const out: string[] = [];
  const segments = decoded.split('/');
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segments[i] as string;
    if (s === '' && i !== last) continue; // "//" merged
    if (s === '.') {
      if (i === last) out.push('');
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return 'path climbs above the root';
      out.pop();
      if (i === last) out.push('');
      continue;
    }
    out.push(s);
  }
  return { path: `/${out.join('/')}`, query };
}
