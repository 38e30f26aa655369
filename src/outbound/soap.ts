/**
 * SOAP request bodies for outbound credentials that travel in the envelope (WS-Security). The body
 * is checked, parsed with a hardened parser, edited as a DOM and written back with our own
 * serializer, so the client's content reaches the backend with the same meaning.
 *
 * Hardening: no DTD is ever processed — a body that contains a DOCTYPE or ENTITY declaration is
 * refused before parsing (XXE, entity expansion); only UTF-8 is accepted; any parser warning or
 * error refuses the body. Every failure is a Refusal value, never an exception.
 */
import { randomUUID } from 'node:crypto';
import { type Document, DOMParser, type Element, type Node } from '@xmldom/xmldom';
import type { Refusal } from '../core/errors.js';
import type { HeaderMap } from '../core/headers.js';
import { charsetOf, mediaType } from './edit.js';
import { outboundRefusal } from './types.js';

export const SOAP11_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope';
export const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** A DOCTYPE or ENTITY declaration anywhere in the text (also inside comments or CDATA: fail closed). */
const DTD = /<!\s*(?:DOCTYPE|ENTITY)/i;
/** The encoding pseudo-attribute of an XML declaration (XML 1.0 §4.3.3). */
const XML_DECL_ENCODING = /^<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/;
const UTF8 = new Set(['utf-8', 'utf8', 'us-ascii']);
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** RFC 7303 §3 and RFC 3902 (application/soap+xml): XML media types, incl. any `+xml` suffix. */
export function isXmlMediaType(type: string): boolean {
  return type === 'text/xml' || type === 'application/xml' || (type.startsWith('application/') && type.endsWith('+xml'));
}

const unsupported = (why: string): Refusal => outboundRefusal('PTC_ERR_UNSUPPORTED_MEDIA_TYPE', why);

/** XML 1.0 §2.11 end-of-line handling only (xmldom's default also folds XML 1.1's NEL and U+2028). */
const normalizeLineEndings = (s: string): string => s.replace(/\r\n?/g, '\n');

/** The SOAP 1.1 or 1.2 envelope of a request body, or why it is refused. */
export function parseSoapEnvelope(headers: HeaderMap, body: Buffer, what: string): Document | Refusal {
  const type = mediaType(headers['content-type']);
  if (body.length === 0) return unsupported(`${what} needs a SOAP envelope, the request has no body`);
  if (!isXmlMediaType(type)) return unsupported(`${what} needs an XML (SOAP) body, got ${type === '' ? 'no Content-Type' : type}`);
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') return unsupported(`${what}: body has a Content-Encoding`);
  const charset = charsetOf(headers['content-type']);
  if (charset !== undefined && !UTF8.has(charset)) return unsupported(`${what}: body charset ${charset}`);
  let text: string;
  try {
    text = decoder.decode(body); // strips a UTF-8 BOM; a UTF-16 body is not valid UTF-8 (or has NULs, refused by the parser)
  } catch {
    return unsupported(`${what}: body is not UTF-8`);
  }
  if (DTD.test(text)) return outboundRefusal('PTC_ERR_XML_DTD_FORBIDDEN', `${what}: body contains a DOCTYPE or ENTITY declaration`);
  const declared = XML_DECL_ENCODING.exec(text)?.[1]?.toLowerCase();
  if (declared !== undefined && !UTF8.has(declared)) return unsupported(`${what}: XML declares encoding ${declared}`);
  let doc: Document;
  try {
    doc = new DOMParser({
      locator: false,
      normalizeLineEndings,
      // Fail closed: a warning (e.g. an undeclared entity) is as fatal as an error here.
      onError: (level, msg) => {
        throw new Error(`${level}: ${msg}`);
      },
    }).parseFromString(text, 'text/xml');
  } catch {
    return unsupported(`${what}: body is not well-formed XML`);
  }
  const root = doc.documentElement;
  if (root === null || root.localName !== 'Envelope' || (root.namespaceURI !== SOAP11_NS && root.namespaceURI !== SOAP12_NS))
    return unsupported(`${what}: body is not a SOAP 1.1 or 1.2 envelope`);
  return doc;
}

function elementChildren(node: Node): Element[] {
  const out: Element[] = [];
  for (let c: Node | null = node.firstChild; c !== null; c = c.nextSibling) if (c.nodeType === 1) out.push(c as Element);
  return out;
}

/**
 * Put `token` (a standalone XML element, e.g. a signed SAML assertion) as the only content of a new
 * wsse:Security header block. The SOAP Header is created when absent (as the Envelope's first
 * child); any Security block the client sent is removed first (strip before inject), whatever its
 * WS-Security namespace version, so the backend never sees a client-supplied token next to ours.
 */
export function setSecurityHeader(doc: Document, token: string, mustUnderstand: boolean): string {
  const envelope = doc.documentElement as Element;
  const ns = envelope.namespaceURI as string;
  const prefix = envelope.prefix;
  const qname = (local: string) => (prefix === null || prefix === '' ? local : `${prefix}:${local}`);
  let header = elementChildren(envelope).find((e) => e.localName === 'Header' && e.namespaceURI === ns);
  if (header === undefined) {
    header = doc.createElementNS(ns, qname('Header'));
    envelope.insertBefore(header, envelope.firstChild);
  }
  for (const block of elementChildren(header)) if (block.localName === 'Security') header.removeChild(block);

  const security = doc.createElementNS(WSSE_NS, 'wsse:Security');
  // Declarations are written as attributes: the serializer below never invents one.
  security.setAttributeNS(XMLNS_NS, 'xmlns:wsse', WSSE_NS);
  if (mustUnderstand) {
    // SOAP 1.1 §4.2.3 / SOAP 1.2 part 1 §5.2.3: the envelope-namespace attribute; "1" is valid in both.
    if (prefix === null || prefix === '') {
      security.setAttributeNS(XMLNS_NS, 'xmlns:soapenv', ns);
      security.setAttributeNS(ns, 'soapenv:mustUnderstand', '1');
    } else security.setAttributeNS(ns, `${prefix}:mustUnderstand`, '1');
  }
  // The token is spliced in as text: it is our own serialisation (the signed bytes), not re-written.
  // The placeholder is random, so no comment the client wrote can stand in for it.
  const mark = `ptc-${randomUUID()}`;
  security.appendChild(doc.createComment(mark));
  header.insertBefore(security, header.firstChild);
  const [before, after] = serializeXml(doc).split(`<!--${mark}-->`) as [string, string];
  return before + token + after;
}

// XML 1.0 §2.4 / §3.3.3: escape what would change meaning when re-read (CR, and in attributes the
// whitespace that attribute-value normalisation would turn into spaces).
// NEL and LINE SEPARATOR are written as references too: XML 1.1 readers (and xmldom by default, as
// used inside xml-crypto) fold them into LF, XML 1.0 readers keep them; a reference is read alike.
const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#xD;', '\u0085': '&#x85;', '\u2028': '&#x2028;' };
const ATTR_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '"': '&quot;',
  '\r': '&#xD;',
  '\n': '&#xA;',
  '\t': '&#x9;',
  '\u0085': '&#x85;',
  '\u2028': '&#x2028;',
};

/** Character data as XML text content (also makes `]]>` harmless). */
export function escapeXmlText(s: string): string {
  return s.replace(/[&<>\r\u0085\u2028]/g, (c) => TEXT_ESCAPES[c] as string);
}

/** A value for a double-quoted XML attribute. */
export function escapeXmlAttribute(s: string): string {
  return s.replace(/[&<"\r\n\t\u0085\u2028]/g, (c) => ATTR_ESCAPES[c] as string);
}

/**
 * Serialise a parsed document as it was: attributes (namespace declarations included) as they are
 * on each element, text escaped per escapeXmlText. xmldom's own serializer writes a CR in text raw,
 * which a reader turns into LF — it would change the client's content and break signatures.
 */
export function serializeXml(node: Node): string {
  const out: string[] = [];
  write(node, out);
  return out.join('');
}

function write(node: Node, out: string[]): void {
  switch (node.nodeType) {
    case 9: // document
      for (let c: Node | null = node.firstChild; c !== null; c = c.nextSibling) {
        write(c, out);
        if (c.nodeType === 7) out.push('\n');
      }
      return;
    case 1: {
      const el = node as Element;
      out.push('<', el.tagName);
      for (let i = 0; i < el.attributes.length; i++) {
        const a = el.attributes.item(i);
        if (a !== null) out.push(' ', a.name, '="', escapeXmlAttribute(a.value), '"');
      }
      if (el.firstChild === null) {
        out.push('/>');
        return;
      }
      out.push('>');
      for (let c: Node | null = el.firstChild; c !== null; c = c.nextSibling) write(c, out);
      out.push('</', el.tagName, '>');
      return;
    }
    case 3:
      out.push(escapeXmlText((node as unknown as { data: string }).data));
      return;
    case 4:
      out.push('<![CDATA[', (node as unknown as { data: string }).data, ']]>');
      return;
    case 7: {
      const pi = node as unknown as { target: string; data: string };
      out.push('<?', pi.target, pi.data === '' ? '' : ` ${pi.data}`, '?>');
      return;
    }
    case 8:
      out.push('<!--', (node as unknown as { data: string }).data, '-->');
      return;
    default:
      // Entity references and doctypes cannot occur: DTDs are refused before parsing.
      throw new Error(`unexpected XML node type ${node.nodeType}`);
  }
}
