/**
 * RFC 9421 HTTP Message Signatures: component identifiers, the signature base (§2.5), the
 * `@signature-params` value and the Signature-Input / Signature members (RFC 8941 structured
 * fields), and the five registered algorithms (§3.3) on node:crypto. Pure functions of their
 * inputs, so the RFC's own test vectors (Appendix B) check them exactly.
 */
import { createHash, createHmac, type KeyObject, constants, sign } from 'node:crypto';

export const SIGNATURE_ALGORITHMS = ['ed25519', 'ecdsa-p256-sha256', 'rsa-pss-sha512', 'rsa-v1_5-sha256', 'hmac-sha256'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/** Derived components of a request (RFC 9421 §2.2); `@status` is for responses. */
export const DERIVED_COMPONENTS = ['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query', '@query-param', '@status'] as const;

/** A covered component: a lower-case field name or a derived name (`@…`), with `name` for @query-param. */
export interface ComponentId {
  readonly name: string;
  readonly param?: string;
}

/** The message as the verifier will see it. */
export interface MessageView {
  readonly method: string;
  /** `host[:port]`, lower-case, without the default port (RFC 9421 §2.2.3). */
  readonly authority: string;
  readonly scheme: string;
  /** Absolute path as sent, never empty. */
  readonly path: string;
  /** `?query` as sent, or '' when the target has none. */
  readonly query: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly status?: number;
}

/** Signature parameters (§2.3), serialised in the order given. */
export type SignatureParam = readonly ['created' | 'expires', number] | readonly ['keyid' | 'alg' | 'nonce' | 'tag', string];

/** RFC 8941 §3.3.3: printable ASCII only. */
const SF_STRING = /^[\x20-\x7e]*$/;
/** RFC 8941 §3.1.2 key, the form of a signature label. */
export const SF_KEY = /^[a-z*][a-z0-9_.*-]*$/;
/** RFC 9110 §5.1 field-name token, lower-case. */
const FIELD_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

export class SignatureBaseError extends Error {
  override readonly name = 'SignatureBaseError';
}

/** RFC 8941 §4.1.6: a quoted sf-string. */
export function sfString(s: string): string {
  if (!SF_STRING.test(s)) throw new SignatureBaseError('a structured-field string holds printable ASCII only');
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Parse `@method`, `content-type` or `@query-param;name="Pet"` (also `;name=Pet`) into a ComponentId. */
export function parseComponentId(text: string): ComponentId {
  const m = /^("?)([^";]+)\1(?:;name=(?:"([^"]*)"|([^";]+)))?$/.exec(text.trim());
  if (m === null) throw new SignatureBaseError(`"${text}" is not a component identifier`);
  const name = (m[2] as string).toLowerCase();
  const param = m[3] ?? m[4];
  if (name.startsWith('@')) {
    if (!(DERIVED_COMPONENTS as readonly string[]).includes(name)) throw new SignatureBaseError(`unknown derived component ${name}`);
    if ((name === '@query-param') !== (param !== undefined)) throw new SignatureBaseError('`;name=` is required for @query-param and only there');
  } else {
    if (!FIELD_NAME.test(name)) throw new SignatureBaseError(`"${name}" is not a field name`);
    if (param !== undefined) throw new SignatureBaseError('field components take no parameters here');
  }
  return param === undefined ? { name } : { name, param };
}

/** The component identifier as it appears in the base and in Signature-Input (§2.1: an sf-string with parameters). */
export function serializeComponentId(c: ComponentId): string {
  return c.param === undefined ? sfString(c.name) : `${sfString(c.name)};name=${sfString(c.param)}`;
}

/** §2.3: the inner list of covered components followed by the parameters. */
export function serializeSignatureParams(components: readonly ComponentId[], params: readonly SignatureParam[]): string {
  const list = `(${components.map(serializeComponentId).join(' ')})`;
  return (
    list +
    params
      .map(([k, v]) => {
        if (typeof v === 'number') {
          if (!Number.isSafeInteger(v) || v < 0) throw new SignatureBaseError(`${k} must be a non-negative integer`);
          return `;${k}=${v}`;
        }
        return `;${k}=${sfString(v)}`;
      })
      .join('')
  );
}

/** §2.1: a field's value: multiple lines joined with ", ", each trimmed of outer whitespace. */
function fieldValue(headers: MessageView['headers'], name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  const lines = typeof v === 'string' ? [v] : v;
  return lines.map((l) => l.trim()).join(', ');
}

/** §2.2.8: the value of one named query parameter, percent-encoded again after decoding. */
function queryParam(query: string, name: string): string {
  const values = new URLSearchParams(query).getAll(name);
  if (values.length !== 1) throw new SignatureBaseError(values.length === 0 ? 'query parameter absent' : 'query parameter repeated');
  return encodeURIComponent(values[0] as string);
}

/** The value of one covered component in this message; an absent field is an error (§2.5 step 2). */
export function componentValue(c: ComponentId, msg: MessageView): string {
  switch (c.name) {
    case '@method':
      return msg.method; // §2.2.1: as sent, case-sensitive
    case '@target-uri':
      return `${msg.scheme}://${msg.authority}${msg.path}${msg.query}`;
    case '@authority':
      return msg.authority;
    case '@scheme':
      return msg.scheme.toLowerCase();
    case '@request-target':
      return `${msg.path}${msg.query}`;
    case '@path':
      return msg.path === '' ? '/' : msg.path;
    case '@query':
      return msg.query === '' ? '?' : msg.query; // §2.2.7: an absent query is "?"
    case '@query-param':
      return queryParam(msg.query, c.param as string);
    case '@status':
      if (msg.status === undefined) throw new SignatureBaseError('@status is for responses');
      return String(msg.status);
    default: {
      const v = fieldValue(msg.headers, c.name);
      if (v === undefined) throw new SignatureBaseError(`covered field ${c.name} is absent`);
      return v;
    }
  }
}

/**
 * §2.5: one line per covered component, `"name": value`, then the `"@signature-params"` line, joined
 * with LF and no trailing newline. Returns the base and the signature-params value (which is also
 * the Signature-Input member). Throws SignatureBaseError when a component cannot be had.
 */
export function signatureBase(components: readonly ComponentId[], params: readonly SignatureParam[], msg: MessageView): { base: string; input: string } {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const c of components) {
    const id = serializeComponentId(c);
    if (seen.has(id)) throw new SignatureBaseError(`component ${id} is listed twice`);
    seen.add(id);
    const value = componentValue(c, msg);
    if (/[\r\n]/.test(value)) throw new SignatureBaseError(`component ${id} has a line break`);
    lines.push(`${id}: ${value}`);
  }
  const input = serializeSignatureParams(components, params);
  lines.push(`"@signature-params": ${input}`);
  return { base: lines.join('\n'), input };
}

/** A signing function for one algorithm and key (checked by the caller's factory). */
export function signer(alg: SignatureAlgorithm, key: KeyObject): (data: Buffer) => Buffer {
  switch (alg) {
    case 'ed25519':
      return (data) => sign(null, data, key); // §3.3.6: Ed25519 over the base
    case 'ecdsa-p256-sha256':
      return (data) => sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }); // §3.3.4: r || s, 64 bytes
    case 'rsa-pss-sha512':
      return (data) => sign('sha512', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 }); // §3.3.1: MGF1-SHA-512, 64-byte salt
    case 'rsa-v1_5-sha256':
      return (data) => sign('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }); // §3.3.2
    case 'hmac-sha256':
      return (data) => createHmac('sha256', key).update(data).digest(); // §3.3.3
  }
}

/** The Signature member: `label=:base64:` (RFC 8941 §3.3.5 byte sequence). */
export function signatureMember(label: string, signature: Buffer): string {
  return `${label}=:${signature.toString('base64')}:`;
}

/** RFC 9530 §2: `sha-256=:base64:` over the content as sent. */
export function contentDigest(body: Buffer): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/** The signature base as bytes: header values are latin1 strings of their wire bytes (Node's model). */
export function baseBytes(base: string): Buffer {
  return Buffer.from(base, 'latin1');
}
