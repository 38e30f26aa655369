/**
 * `httpSignature`: the gateway signs each upstream request with RFC 9421 HTTP Message Signatures.
 * Covered by default: `@method`, `@authority`, `@path`, `@query` (only when the request has a
 * query), and `content-digest` (RFC 9530 sha-256, computed here over the body exactly as it goes
 * upstream; only when the request has a body), with `created` and `keyid`, plus optional
 * `expires`, `alg`, `nonce` and `tag`. The client's own Signature / Signature-Input are replaced.
 *
 * What is signed is what the backend receives: `@path` includes the target's base path, and
 * `@authority` is the Host header the backend gets (the target's host with `hostHeader: target`).
 */
import { createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import { BuildProblem } from '../config/load.js';
import { reveal } from '../secrets/secret.js';
import { parsePrivateKey } from './gateway-identity.js';
import type { HttpSignatureConfig } from './http-signature-schema.js';
import {
  baseBytes,
  type ComponentId,
  contentDigest,
  type MessageView,
  parseComponentId,
  SignatureBaseError,
  type SignatureAlgorithm,
  type SignatureParam,
  signatureBase,
  signatureMember,
  signer,
} from './message-signature.js';
import type { OutboundBuildContext, OutboundCredential, OutboundRequest, OutboundResult } from './types.js';
import { outboundRefusal } from './types.js';

/**
 * Where requests of this upstream go, as build.ts passes it next to the OutboundBuildContext
 * (`upstreams.*.targets` and `hostHeader`): @authority and @path must be what the backend sees.
 */
export interface UpstreamAddressing {
  readonly targets: readonly string[];
  readonly hostHeader: string;
}

const MIN_HMAC_BYTES = 32;

function importKey(cfg: HttpSignatureConfig, ctx: OutboundBuildContext): KeyObject {
  const at = [...ctx.path, 'key'];
  const text = reveal(cfg.key).trim();
  const isJwk = text.startsWith('{');
  let key: KeyObject;
  try {
    if (cfg.algorithm === 'hmac-sha256') {
      let bytes: Buffer;
      if (isJwk) {
        const jwk = JSON.parse(text) as { kty?: unknown; k?: unknown };
        if (jwk.kty !== 'oct' || typeof jwk.k !== 'string') throw new BuildProblem(at, 'an hmac-sha256 JWK has kty "oct" and k');
        bytes = Buffer.from(jwk.k, 'base64url');
      } else bytes = Buffer.from(text, cfg.keyEncoding ?? 'utf8');
      if (bytes.length < MIN_HMAC_BYTES) throw new BuildProblem(at, `an hmac-sha256 secret has at least ${MIN_HMAC_BYTES} bytes`);
      return createSecretKey(bytes);
    }
    key = parsePrivateKey(text, at, 'not a PEM private key or a private JWK');
  } catch (err) {
    if (err instanceof BuildProblem) throw err;
    // Never the parser's message: it could quote part of the key.
    throw new BuildProblem(at, 'not a PEM private key or a private JWK');
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails;
  const fits: Record<Exclude<SignatureAlgorithm, 'hmac-sha256'>, boolean> = {
    ed25519: type === 'ed25519',
    'ecdsa-p256-sha256': type === 'ec' && details?.namedCurve === 'prime256v1',
    'rsa-pss-sha512': (type === 'rsa' || type === 'rsa-pss') && (details?.modulusLength ?? 0) >= 2048,
    'rsa-v1_5-sha256': type === 'rsa' && (details?.modulusLength ?? 0) >= 2048,
  };
  if (!fits[cfg.algorithm]) throw new BuildProblem(at, `a ${type ?? 'secret'} key does not fit ${cfg.algorithm} (RSA keys need ≥ 2048 bits)`);
  return key;
}

/** The authority and base path the backend sees, when every target agrees on them. */
function addressing(
  cfg: HttpSignatureConfig,
  ctx: OutboundBuildContext,
): { authority: string | undefined; scheme: string; basePath: string; fromHost: boolean } {
  const up = ctx as OutboundBuildContext & Partial<UpstreamAddressing>;
  const urls = (up.targets ?? []).map((t) => new URL(t));
  const one = <T>(values: T[], what: string): T | undefined => {
    if (values.length === 0) return undefined;
    if (values.some((v) => v !== values[0]))
      throw new BuildProblem(ctx.path, `the targets of upstream ${ctx.upstream} differ in ${what}; one signature cannot cover them all`);
    return values[0];
  };
  const basePath = one(
    urls.map((u) => (u.pathname === '/' ? '' : u.pathname.replace(/\/$/, ''))),
    'base path',
  );
  const scheme = one(
    urls.map((u) => u.protocol.slice(0, -1)),
    'scheme',
  );
  const hostHeader = up.hostHeader ?? 'target';
  // hostHeader preserve / literal: the handler has set Host before the outbound phase runs.
  const fromHost = cfg.authority === undefined && hostHeader !== 'target';
  let authority = cfg.authority?.toLowerCase();
  if (authority === undefined && hostHeader === 'target' && urls.length > 0) {
    if (urls.some((u) => u.host !== urls[0]?.host))
      throw new BuildProblem([...ctx.path, 'authority'], `the targets of upstream ${ctx.upstream} differ in host: set authority, or a literal hostHeader`);
    authority = urls[0]?.host; // URL.host is lower-case and drops the default port (RFC 9421 §2.2.3)
  }
  return { authority, scheme: scheme ?? 'http', basePath: basePath ?? '', fromHost };
}

export function createHttpSignatureCredential(cfg: HttpSignatureConfig, ctx: OutboundBuildContext, now: () => number = Date.now): OutboundCredential {
  const key = importKey(cfg, ctx);
  const sign = signer(cfg.algorithm, key);
  const where = addressing(cfg, ctx);
  const fixed: readonly ComponentId[] | undefined = cfg.components?.map(parseComponentId);
  const coversDigest = fixed?.some((c) => c.name === 'content-digest') ?? false;
  const max = cfg.maxBodyBytes ?? ctx.maxBodyBytes;
  const label = cfg.label;

  const params = (created: number): SignatureParam[] => {
    const out: SignatureParam[] = [['created', created]];
    if (cfg.expires !== undefined) out.push(['expires', created + Math.floor(cfg.expires / 1000)]);
    out.push(['keyid', cfg.keyId]);
    if (cfg.includeAlg) out.push(['alg', cfg.algorithm]);
    if (cfg.nonce) out.push(['nonce', randomBytes(16).toString('base64url')]);
    if (cfg.tag !== undefined) out.push(['tag', cfg.tag]);
    return out;
  };

  const view = (req: OutboundRequest): MessageView | undefined => {
    const host = req.headers.host;
    const authority = where.fromHost && typeof host === 'string' ? host.toLowerCase() : where.authority;
    if (authority === undefined) return undefined;
    const q = req.path.indexOf('?');
    return {
      method: req.method,
      authority,
      scheme: where.scheme,
      path: where.basePath + (q === -1 ? req.path : req.path.slice(0, q)),
      query: q === -1 ? '' : req.path.slice(q),
      headers: req.headers,
    };
  };

  return {
    type: 'httpSignature',
    async apply(req): Promise<OutboundResult> {
      const q = req.path.indexOf('?');
      const components: ComponentId[] = fixed === undefined ? [{ name: '@method' }, { name: '@authority' }, { name: '@path' }] : [...fixed];
      if (fixed === undefined && q !== -1 && q < req.path.length - 1) components.push({ name: '@query' });
      if ((fixed === undefined && req.body.present) || coversDigest) {
        const body = await req.body.read(max);
        if (!Buffer.isBuffer(body)) return body;
        // RFC 9530: over the content as it goes upstream (after any other edit, with its Content-Encoding).
        req.headers['content-digest'] = contentDigest(body);
        if (fixed === undefined) components.push({ name: 'content-digest' });
      }
      delete req.headers.signature;
      delete req.headers['signature-input'];
      const msg = view(req);
      if (msg === undefined) return outboundRefusal('PTC_ERR_UPSTREAM_CREDENTIAL', 'httpSignature: no @authority to sign (set authority)');
      let base: string;
      let input: string;
      try {
        ({ base, input } = signatureBase(components, params(Math.floor(now() / 1000)), msg));
      } catch (err) {
        if (!(err instanceof SignatureBaseError)) throw err;
        return outboundRefusal('PTC_ERR_BAD_REQUEST', `httpSignature: ${err.message}`);
      }
      let signature: Buffer;
      try {
        signature = sign(baseBytes(base));
      } catch (err) {
        ctx.logger.error({ err: { name: (err as Error).name, message: (err as Error).message }, upstream: ctx.upstream }, 'HTTP message signing failed');
        return outboundRefusal('PTC_ERR_UPSTREAM_CREDENTIAL', 'httpSignature: signing failed');
      }
      req.headers['signature-input'] = `${label}=${input}`;
      req.headers.signature = signatureMember(label, signature);
      return undefined;
    },
  };
}
