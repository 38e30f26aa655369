/**
 * Edits of the upstream request that put a credential in place of whatever the client sent under
 * the same name: a query parameter, a JSON body field, a form field. Each replaces, never appends
 * a second copy — two copies would let gateway and backend disagree on which one counts.
 */
import { withoutQueryParam } from '../auth/query.js';

/** `path?query` with every `name=…` pair replaced by one carrying `value` (other pairs keep their encoding). */
export function setQueryParam(path: string, name: string, value: string): string {
  const q = path.indexOf('?');
  const base = q === -1 ? path : path.slice(0, q);
  const rest = q === -1 || q === path.length - 1 ? '' : withoutQueryParam(path.slice(q), name);
  const pair = `${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
  return rest === '' ? `${base}?${pair}` : `${base}${rest}&${pair}`;
}

/** The media type of a Content-Type value, lower-case, without parameters ('' when absent). */
export function mediaType(contentType: string | string[] | undefined): string {
  const v = Array.isArray(contentType) ? (contentType.length === 1 ? contentType[0] : undefined) : contentType;
  if (v === undefined) return '';
  const semi = v.indexOf(';');
  return (semi === -1 ? v : v.slice(0, semi)).trim().toLowerCase();
}

/** RFC 8259 §11 and RFC 6839 §3.1: application/json and any `+json` structured syntax suffix. */
export function isJsonMediaType(type: string): boolean {
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/** The charset parameter, lower-case, or undefined. */
export function charsetOf(contentType: string | string[] | undefined): string | undefined {
  const v = Array.isArray(contentType) ? contentType[0] : contentType;
  const m = v === undefined ? null : /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(v);
  return m?.[1]?.toLowerCase();
}

type JsonObject = { [key: string]: unknown };

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Set `path` (segments of a dotted field path) in a parsed JSON document. The document must be an
 * object; a missing or non-object intermediate becomes an object. Returns false when it cannot.
 * JSON.parse makes own properties only, so a segment named like a prototype key is just a key;
 * the schema refuses `__proto__`, `constructor` and `prototype` anyway.
 */
export function setJsonField(doc: unknown, path: readonly string[], value: string): boolean {
  if (!isObject(doc)) return false;
  let node: JsonObject = doc;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as string;
    const next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (isObject(next)) node = next;
    else {
      const created: JsonObject = {};
      Object.defineProperty(node, key, { value: created, enumerable: true, writable: true, configurable: true });
      node = created;
    }
  }
  Object.defineProperty(node, path[path.length - 1] as string, { value, enumerable: true, writable: true, configurable: true });
  return true;
}

/** An application/x-www-form-urlencoded body with every `name` field replaced by one carrying `value`. */
export function setFormField(body: string, name: string, value: string): string {
  const pair = `${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
  const rest = body === '' ? '' : withoutQueryParam(`?${body}`, name);
  return rest === '' ? pair : `${rest.slice(1)}&${pair}`;
}
