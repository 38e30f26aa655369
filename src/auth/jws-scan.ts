/**
 * Pre-verification look at a JWS compact token: decode the protected header and the payload as
 * strict UTF-8 and refuse duplicate JSON member names. RFC 7515 §5.2 / RFC 7519 §4 let a parser
 * either reject duplicates or keep the last one; `JSON.parse` (and so jose) keeps the last, which
 * lets two parsers disagree about the same token (`sub` read by one, a second `sub` by another).
 * We reject them, with a small scanner over the decoded text rather than a second JSON parser.
 */

export type ScanResult =
  | { readonly ok: true; readonly header: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly reason: 'malformed' | 'duplicate_member' };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function decodeSegment(segment: string): string | undefined {
  try {
    return utf8.decode(Buffer.from(segment, 'base64url'));
  } catch {
    return undefined;
  }
}

/** True when some JSON object in `text` names the same member twice (names compared after unescaping). */
export function hasDuplicateMembers(text: string): boolean {
  // One frame per open object/array: the member names seen so far, and whether a name comes next.
  const stack: { keys: Set<string> | undefined; expectKey: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) stack.push({ keys: new Set(), expectKey: true });
    else if (c === 0x5b /* [ */) stack.push({ keys: undefined, expectKey: false });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top?.keys !== undefined) top.expectKey = true;
    } else if (c === 0x3a /* : */) {
      const top = stack.at(-1);
      if (top !== undefined) top.expectKey = false;
    } else if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
      const top = stack.at(-1);
      if (top?.keys !== undefined && top.expectKey) {
        let name: string;
        try {
          name = JSON.parse(text.slice(start, i + 1)) as string;
        } catch {
          return false; // malformed JSON: JSON.parse refuses it later
        }
        if (top.keys.has(name)) return true;
        top.keys.add(name);
        top.expectKey = false;
      }
    }
  }
  return false;
}

/** Decode and scan the header and payload of a token already known to have the compact shape. */
export function scanCompactJWS(token: string): ScanResult {
  const [h = '', p = ''] = token.split('.', 2);
  const headerText = decodeSegment(h);
  const payloadText = decodeSegment(p);
  if (headerText === undefined || payloadText === undefined) return { ok: false, reason: 'malformed' };
  if (hasDuplicateMembers(headerText) || hasDuplicateMembers(payloadText)) return { ok: false, reason: 'duplicate_member' };
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return { ok: false, reason: 'malformed' };
  return { ok: true, header: header as Record<string, unknown> };
}
