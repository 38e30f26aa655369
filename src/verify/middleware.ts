/**
 * requireGateway: let through only requests that carry a valid gateway JWT. One function that is
 * Express/Connect middleware `(req, res, next)` and, without `next`, a plain node:http guard
 * (`if (!(await gate(req, res))) return;`), plus `.fastify`, an `onRequest` hook. A refused request
 * gets 401 (503 when the gateway's JWKS cannot be fetched) with an RFC 6750 challenge; verified
 * claims are put on `req.gateway`.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { GatewayTokenError } from './errors.js';
import { createVerifier, type GatewayClaims, type Verifier, type VerifierOptions } from './verifier.js';

export interface RequireGatewayOptions extends VerifierOptions {
  /** Header carrying the token: `authorization` (Bearer, default) or the upstream's `header` (bare token). */
  readonly header?: string;
  /** Called for each refused request, e.g. to log `error.code` (never the token). */
  readonly onReject?: (error: GatewayTokenError, req: { readonly headers: IncomingHttpHeaders }) => void;
}

/** A request after requireGateway passed it. */
export type GatewayRequest<R = IncomingMessage> = R & { gateway: GatewayClaims };

/** The parts of a Fastify request and reply the hook uses (no dependency on fastify). */
export interface FastifyLikeRequest {
  readonly headers: IncomingHttpHeaders;
  gateway?: GatewayClaims;
}
export interface FastifyLikeReply {
  code(status: number): FastifyLikeReply;
  header(name: string, value: string): FastifyLikeReply;
  send(payload?: unknown): FastifyLikeReply;
}

export interface GatewayMiddleware {
  /**
   * Express/Connect: calls `next()` when the token is valid, else answers. node:http: omit `next`
   * and use the resolved boolean. Never rejects.
   */
  (req: IncomingMessage & { gateway?: GatewayClaims }, res: ServerResponse, next?: (err?: unknown) => void): Promise<boolean>;
  /** Fastify `onRequest` hook: `app.addHook('onRequest', gate.fastify)`. */
  readonly fastify: (request: FastifyLikeRequest, reply: FastifyLikeReply) => Promise<FastifyLikeReply | undefined>;
  readonly verifier: Verifier;
}

const REALM = 'portcullis-gateway';

function challenge(error: GatewayTokenError): string {
  // RFC 6750 §3.1: no error code when the request had no token at all.
  return error.code === 'missing' ? `Bearer realm="${REALM}"` : `Bearer realm="${REALM}", error="invalid_token"`;
}

function problem(error: GatewayTokenError): string {
  const title = error.status === 503 ? 'Gateway keys unavailable' : 'A valid gateway token is required';
  return JSON.stringify({ type: 'about:blank', title, status: error.status });
}

export function requireGateway(options: RequireGatewayOptions): GatewayMiddleware {
  const verifier = createVerifier(options);
  const header = (options.header ?? 'authorization').toLowerCase();
  const bearer = header === 'authorization';

  const tokenOf = (headers: IncomingHttpHeaders): string => {
    const raw = headers[header];
    if (raw === undefined) throw new GatewayTokenError('missing', 'no token');
    if (typeof raw !== 'string') throw new GatewayTokenError('malformed', 'token header repeated');
    if (!bearer) return raw.trim();
    const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(raw);
    if (m === null) throw new GatewayTokenError(raw.trim() === '' ? 'missing' : 'malformed', 'not a Bearer token');
    return m[1] as string;
  };

  const check = async (headers: IncomingHttpHeaders): Promise<GatewayClaims | GatewayTokenError> => {
    try {
      return await verifier.verify(tokenOf(headers));
    } catch (err) {
      const e = err instanceof GatewayTokenError ? err : new GatewayTokenError('malformed', 'invalid token');
      options.onReject?.(e, { headers });
      return e;
    }
  };

  const middleware = async (req: IncomingMessage & { gateway?: GatewayClaims }, res: ServerResponse, next?: (err?: unknown) => void): Promise<boolean> => {
    const result = await check(req.headers);
    if (!(result instanceof GatewayTokenError)) {
      req.gateway = result;
      next?.();
      return true;
    }
    if (!res.headersSent) {
      const body = problem(result);
      res.writeHead(result.status, {
        'content-type': 'application/problem+json',
        'content-length': Buffer.byteLength(body),
        'www-authenticate': challenge(result),
        'cache-control': 'no-store',
      });
      res.end(body);
    }
    return false;
  };

  const fastify = async (request: FastifyLikeRequest, reply: FastifyLikeReply): Promise<FastifyLikeReply | undefined> => {
    const result = await check(request.headers);
    if (!(result instanceof GatewayTokenError)) {
      request.gateway = result;
      return undefined;
    }
    // Returning the reply after send() ends Fastify's lifecycle for this request.
    return reply
      .code(result.status)
      .header('content-type', 'application/problem+json')
      .header('www-authenticate', challenge(result))
      .header('cache-control', 'no-store')
      .send(problem(result));
  };

  return Object.assign(middleware, { fastify, verifier });
}
