/**
 * `apiKey`: a static key the backend expects, in a header, a query parameter, a JSON body field or
 * a form field. The client's own copy under that name is replaced, never duplicated. Body variants
 * buffer the body (capped), edit it, and re-frame it with Content-Length.
 */
import { reveal } from '../secrets/secret.js';
import { charsetOf, isJsonMediaType, mediaType, setFormField, setJsonField, setQueryParam } from './edit.js';
import type { ApiKeyCredentialConfig } from './schema.js';
import { type OutboundBuildContext, type OutboundCredential, type OutboundRequest, type OutboundResult, outboundRefusal } from './types.js';

const FORM = 'application/x-www-form-urlencoded';

export function createApiKeyCredential(cfg: ApiKeyCredentialConfig, ctx: OutboundBuildContext): OutboundCredential {
  const value = cfg.value;
  const max = cfg.maxBodyBytes ?? ctx.maxBodyBytes;
  switch (cfg.in) {
    case 'header': {
      const name = (cfg.name as string).toLowerCase();
      return {
        type: 'apiKey',
        apply(req) {
          req.headers[name] = reveal(value);
        },
      };
    }
    case 'query': {
      const name = cfg.name as string;
      return {
        type: 'apiKey',
        apply(req) {
          req.path = setQueryParam(req.path, name, reveal(value));
        },
      };
    }
    case 'jsonBody': {
      const path = (cfg.field as string).split('.');
      return { type: 'apiKey', apply: (req) => injectJson(req, path, value, max) };
    }
    case 'form': {
      const name = cfg.name as string;
      return { type: 'apiKey', apply: (req) => injectForm(req, name, value, max) };
    }
  }
}

/** A body we can edit: not compressed (Content-Encoding), not in a charset other than UTF-8. */
function editable(req: OutboundRequest): string | undefined {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') return 'body has a Content-Encoding';
  const charset = charsetOf(req.headers['content-type']);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') return `body charset ${charset}`;
  return undefined;
}

async function injectJson(req: OutboundRequest, path: readonly string[], value: Parameters<typeof reveal>[0], max: number): Promise<OutboundResult> {
  const body = await req.body.read(max);
  if (!Buffer.isBuffer(body)) return body;
  let doc: unknown = {};
  if (body.length > 0) {
    // RFC 8259 §8.1: JSON between systems is UTF-8; anything else cannot be edited safely.
    if (!isJsonMediaType(mediaType(req.headers['content-type'])))
      return outboundRefusal('PTC_ERR_UNSUPPORTED_MEDIA_TYPE', 'apiKey in jsonBody needs a JSON body');
    const problem = editable(req);
    if (problem !== undefined) return outboundRefusal('PTC_ERR_UNSUPPORTED_MEDIA_TYPE', `apiKey in jsonBody: ${problem}`);
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      return outboundRefusal('PTC_ERR_UNSUPPORTED_MEDIA_TYPE', 'apiKey in jsonBody: body is not valid JSON');
    }
  } else {
    // No body: the key travels in a new JSON document of its own.
    req.headers['content-type'] = 'application/json';
    delete req.headers['content-encoding'];
  }
  if (!setJsonField(doc, path, reveal(value))) return outboundRefusal('PTC_ERR_UNSUPPORTED_MEDIA_TYPE', 'apiKey in jsonBody: JSON body is not an object');
  req.body.replace(Buffer.from(JSON.stringify(doc), 'utf8'));
  return undefined;
}

async function injectForm(req: OutboundRequest, name: string, value: Parameters<typeof reveal>[0], max: number): Promise<OutboundResult> {
  const body = await req.body.read(max);
  if (!Buffer.isBuffer(body)) return body;
  if (body.length > 0) {
    if (mediaType(req.headers['content-type']) !== FORM) return outboundRefusal('PTC_ERR_UNSUPPORTED_MEDIA_TYPE', `apiKey in form needs an ${FORM} body`);
    const problem = editable(req);
    if (problem !== undefined) return outboundRefusal('PTC_ERR_UNSUPPORTED_MEDIA_TYPE', `apiKey in form: ${problem}`);
  } else {
    req.headers['content-type'] = FORM;
    delete req.headers['content-encoding'];
  }
  // Form bodies are ASCII after percent-encoding; latin1 round-trips any stray byte unchanged.
  req.body.replace(Buffer.from(setFormField(body.toString('latin1'), name, reveal(value)), 'latin1'));
  return undefined;
}
