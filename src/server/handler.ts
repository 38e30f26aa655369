/**
 * The request pipeline. Phases run in a fixed order and each either continues or refuses:
 *
 *   admission (header scan, target normalisation, Expect, body size) → route → authenticate
 *   → [authorize → limit: reserved] → outbound (last-mile credential) → proxy → response → log
 *
 * A refusal is a value rendered by the single renderer in reply.ts; a thrown error fails closed (500).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { AuthDecision } from '../auth/pipeline.js';
import { setIdentityHeaders } from '../auth/propagate.js';
import type { AuthRequest, Identity } from '../auth/types.js';
import type { Http2ServerRequest } from 'node:http2';
import { pipeline, type Readable, Transform } from 'node:stream';
import type { HistogramSeries } from '../observability/hot-metrics.js';
import type { Dispatcher } from 'undici';
import { ERRORS, type Refusal, refuse } from '../core/errors.js';
import { copyResponseHeaders, type HeaderMap, isValidRequestId, scanRequestHeaders, type ScannedHeaders } from '../core/headers.js';
import { normaliseTarget } from '../core/path.js';
import { hostOf } from '../core/router.js';
import type { CompiledRoute, RouteMetrics, Runtime } from '../core/runtime.js';
import { type Logger, logAccess } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutboundPhase } from '../outbound/build.js';
import { PendingRequest, runOutbound } from '../outbound/request.js';
import type { OutboundResult } from '../outbound/types.js';
import { classifyUpstreamError } from '../upstream/errors.js';
import type { Target, Upstream } from '../upstream/upstream.js';
import { plainIp, resolveClientIp } from './client-ip.js';
import { type Response, sendProblem } from './reply.js';

export type Request = IncomingMessage | Http2ServerRequest;

/** What the request handler needs from the gateway; `runtime` is swapped atomically on reload. */
export interface GatewayState {
  runtime: Runtime;
  draining: boolean;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface ListenerInfo {
  readonly scheme: 'http' | 'https';
}

/**
 * Per-request state, written once by the phase that owns each field. It is also the undici
 * dispatch handler, so a proxied request costs one object.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly start = performance.now();
  readonly state: GatewayState;
  readonly rt: Runtime;
  readonly req: Request;
  readonly res: Response;
  readonly id: string;
  readonly clientIp: string;
  method: string;
  path = '';
  route: CompiledRoute | undefined;
  target: Target | undefined;
  upstreamStart = 0;
  upstreamMs = -1;
  status = 0;
  bytesOut = 0;
  refusal: Refusal | undefined;
  identity: Identity | undefined;
  done = false;
  retried = false;
  hasBody = false;
  controller: Dispatcher.DispatchController | undefined;
  /** Armed by the outbound phase when a 401 may be retried once with a fresh credential (see onResponseStart). */
  credentialRetry: (() => void) | undefined;
  /** The upstream exchange given up for that retry: its late callbacks are ignored. */
  abandoned: Dispatcher.DispatchController | undefined;
  dispatchOpts: Dispatcher.DispatchOptions | undefined;

  constructor(state: GatewayState, req: Request, res: Response, id: string, clientIp: string) {
    this.state = state;
    this.rt = state.runtime;
    this.req = req;
    this.res = res;
    this.id = id;
    this.clientIp = clientIp;
    this.method = req.method ?? 'GET';
  }

  // ---- local replies -------------------------------------------------------------------------

  refuse(refusal: Refusal, close = false): void {
    this.refusal = refusal;
    this.status = ERRORS[refusal.code].status;
    this.state.metrics.refusals.labels(refusal.code).inc();
    sendProblem(this.res, refusal, this.id, close);
    this.finish();
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    const seconds = (performance.now() - this.start) / 1000;
    const m: RouteMetrics = this.route?.metrics ?? this.rt.unmatched;
    const cls = Math.floor(this.status / 100) - 1;
    (m.byClass[cls >= 0 && cls <= 4 ? cls : 4] as RouteMetrics['byClass'][number]).inc();
    m.duration.observe(seconds);
    if (this.target !== undefined && this.upstreamMs >= 0 && this.route?.upstream !== undefined)
      upstreamTimer(this.state.metrics, this.route.upstream).observe(this.upstreamMs / 1000);
    if (!this.rt.config.log.access) return;
    logAccess(this.state.logger, {
      msg: 'request',
      reqId: this.id,
      method: this.method,
      path: this.path,
      route: this.route?.name,
      status: this.status,
      durationMs: Math.round(seconds * 1e6) / 1000,
      bytesOut: this.bytesOut,
      clientIp: this.clientIp,
      consumer: this.identity?.consumer?.id,
      auth: this.identity?.method,
      upstream: this.target?.origin,
      upstreamMs: this.upstreamMs >= 0 ? Math.round(this.upstreamMs * 1000) / 1000 : undefined,
      code: this.refusal?.code,
      details: this.refusal?.details,
    });
  }

  // ---- undici dispatch handler ---------------------------------------------------------------

  /** A callback of the exchange given up for a credential retry (a failed connect has no controller). */
  isAbandoned(controller: Dispatcher.DispatchController | undefined): boolean {
    return controller !== undefined && controller === this.abandoned;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed) controller.abort(new Error('client went away'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx informational: not relayed
    if (statusCode === 401 && this.credentialRetry !== undefined) {
      // The upstream refused our last-mile credential (a cached token revoked or expired early):
      // drop this exchange unread — nothing of the 401 reaches the client — and send the request
      // once more with a fresh credential. Armed only for replayable requests, and only once.
      const retry = this.credentialRetry;
      this.credentialRetry = undefined;
      this.abandoned = controller;
      controller.abort(new Error('upstream answered 401; retrying with a fresh credential'));
      setImmediate(retry); // outside undici's callback
      return;
    }
    this.upstreamMs = performance.now() - this.upstreamStart;
    this.status = statusCode;
    const out = copyResponseHeaders(headers);
    if (out['x-request-id'] === undefined) out['x-request-id'] = this.id;
    if (this.state.draining && 'shouldKeepAlive' in this.res) out.connection = 'close';
    (this.res as ServerResponse).writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.isAbandoned(controller)) return;
    this.bytesOut += chunk.length;
    if (!(this.res as ServerResponse).write(chunk)) {
      controller.pause();
      this.res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (this.isAbandoned(controller)) return;
    this.res.end();
    this.finish();
  }

  onResponseError(controller: Dispatcher.DispatchController, err: Error): void {
    // A connect failure (e.g. a TLS handshake refused) can arrive without a controller: compare only when one was abandoned.
    if (this.done || (this.abandoned !== undefined && controller === this.abandoned)) return;
    if (this.res.destroyed && !this.res.writableEnded) {
      // The client left first; its abort is what failed the upstream exchange.
      this.status = this.status || 499;
      this.refusal = refuse('PTC_ERR_BAD_REQUEST', 'client closed the connection');
      this.finish();
      return;
    }
    if ((err as { code?: unknown }).code === BODY_TOO_LARGE) return this.refuse(refuse('PTC_ERR_BODY_TOO_LARGE', err.message), true);
    const { code, kind } = classifyUpstreamError(err);
    const upstream = this.route?.upstream;
    if (upstream !== undefined) this.state.metrics.upstreamErrors.labels(upstream.name, kind).inc();
    if (kind === 'refused' && upstream !== undefined && this.target !== undefined) {
      upstream.eject(this.target, Date.now());
      // Nothing reached the target, so a request without a body may safely try another one.
      if (!this.retried && !this.hasBody && upstream.targets.length > 1 && this.status === 0) {
        this.retried = true;
        this.dispatchTo(upstream.pick(Date.now()));
        return;
      }
    }
    const details = `${kind}: ${(err as { code?: string }).code ?? err.name} from ${this.target?.origin ?? '?'}`;
    if (this.res.headersSent) {
      // Mid-response failure: the only honest signal left is to cut the client connection.
      this.refusal = refuse(code, details);
      this.res.destroy();
      this.finish();
      return;
    }
    this.refuse(refuse(code, details), this.hasBody);
  }

  dispatchTo(target: Target): void {
    this.target = target;
    const opts = this.dispatchOpts as Dispatcher.DispatchOptions;
    if (this.route?.upstream?.hostHeader === 'target') (opts.headers as HeaderMap).host = target.host;
    opts.path = target.basePath + this.dispatchPath;
    this.upstreamStart = performance.now();
    target.pool.dispatch(opts, this);
  }

  dispatchPath = '';
}

/**
 * The upstream-duration histogram child of each upstream, looked up once: `labels()` builds a
 * label object and a bound function on every call, which is measurable on the per-request path.
 * Keyed weakly by the Upstream, so the children of a replaced runtime's upstreams are not pinned.
 */
const upstreamTimers = new WeakMap<Upstream, HistogramSeries>();

function upstreamTimer(metrics: Metrics, upstream: Upstream): HistogramSeries {
  let timer = upstreamTimers.get(upstream);
  if (timer === undefined) {
    timer = metrics.upstreamDuration.labels({ upstream: upstream.name });
    upstreamTimers.set(upstream, timer);
  }
  return timer;
}

const onClientClose = function (this: Response, ex: Exchange): void {
  if (!ex.done && !this.writableFinished) ex.controller?.abort(new Error('client closed the connection'));
};

/** Handle one request on a client listener. */
export function handleRequest(state: GatewayState, listener: ListenerInfo, req: Request, res: Response): void {
  const rt = state.runtime;
  const peer = plainIp(req.socket?.remoteAddress ?? '');
  const scanned = scanRequestHeaders(req.rawHeaders, rt.limits.maxHeaderCount);
  const isRefusal = 'code' in scanned;
  const trustedPeer = rt.trusted.any && rt.trusted.has(peer);
  const id = !isRefusal && trustedPeer && scanned.requestId !== undefined && isValidRequestId(scanned.requestId) ? scanned.requestId : randomUUID();
  const clientIp = !isRefusal && trustedPeer ? resolveClientIp(peer, scanned.xForwardedFor, rt.trusted) : peer;
  const ex = new Exchange(state, req, res, id, clientIp);
  if (state.draining && 'shouldKeepAlive' in res) (res as ServerResponse).shouldKeepAlive = false;
  try {
    if (isRefusal) return ex.refuse(scanned, true);
    admitAndProxy(ex, listener, scanned, trustedPeer, peer);
  } catch (err) {
    state.logger.error({ err, reqId: id }, 'request handler failed');
    if (!ex.done) ex.refuse(refuse('PTC_ERR_INTERNAL', 'handler threw'), true);
  }
}

/** scheme://authority, then the rest of an absolute-form target as sent (path and query). */
const ABSOLUTE_FORM = /^https?:\/\/[^/?#\\]*(.*)$/is;

function admitAndProxy(ex: Exchange, listener: ListenerInfo, h: ScannedHeaders, trustedPeer: boolean, peer: string): void {
  const { rt, req } = ex;
  // ---- admission ----
  let authority = h.host ?? (req.headers[':authority'] as string | undefined);
  let rawTarget = req.url ?? '/';
  if (rawTarget.charCodeAt(0) !== 0x2f) {
    // absolute-form (RFC 9112 §3.2.2) is accepted only for a host this gateway serves, and only when
    // it agrees with Host, so no component before or after us can route on a different name.
    let url: URL | undefined;
    try {
      url = rawTarget === '*' ? undefined : new URL(rawTarget);
    } catch {}
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '')
      return ex.refuse(refuse('PTC_ERR_BAD_REQUEST_TARGET', 'request target is neither origin-form nor a usable absolute URL'), true);
    if (authority !== undefined && hostOf(authority) !== hostOf(url.host))
      return ex.refuse(refuse('PTC_ERR_BAD_REQUEST_TARGET', 'absolute-form target disagrees with Host'), true);
    if (!rt.router.hosts.has(hostOf(url.host))) return ex.refuse(refuse('PTC_ERR_BAD_REQUEST_TARGET', 'absolute-form target names an unknown host'), true);
    authority = url.host;
    // Normalise the path exactly as sent, like origin-form, not url.pathname: the WHATWG parser would
    // already have clamped '..' at the root, turned '\' into '/', encoded raw bytes and cut '#…'.
    const rest = ABSOLUTE_FORM.exec(rawTarget)?.[1];
    if (rest === undefined) return ex.refuse(refuse('PTC_ERR_BAD_REQUEST_TARGET', 'absolute-form target has an unusual authority'), true);
    rawTarget = rest === '' || rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
  }
  const target = normaliseTarget(rawTarget);
  if (typeof target === 'string') {
    ex.path = '';
    return ex.refuse(refuse('PTC_ERR_BAD_PATH', target), true);
  }
  ex.path = target.path;
  if (authority === undefined) {
    if (req.httpVersion !== '1.0') return ex.refuse(refuse('PTC_ERR_BAD_REQUEST', 'missing Host'), true);
    authority = '';
  }
  if (h.expect !== undefined && h.expect.toLowerCase() !== '100-continue') return ex.refuse(refuse('PTC_ERR_EXPECTATION_FAILED', 'unsupported Expect'), true);
  let contentLength = -1;
  if (h.contentLength !== undefined) {
    contentLength = Number(h.contentLength);
    if (!/^\d+$/.test(h.contentLength)) return ex.refuse(refuse('PTC_ERR_BAD_HEADER', 'invalid Content-Length'), true);
    if (contentLength > rt.limits.maxBodyBytes)
      return ex.refuse(refuse('PTC_ERR_BODY_TOO_LARGE', `Content-Length ${contentLength} over ${rt.limits.maxBodyBytes}`), true);
  }

  // ---- route ----
  const match = rt.router.match(hostOf(authority), target.path, ex.method);
  if (!match.ok) {
    if (match.allow !== undefined) return ex.refuse(refuse('PTC_ERR_METHOD_NOT_ALLOWED', `method ${ex.method}`, { allow: match.allow.join(', ') }));
    return ex.refuse(refuse('PTC_ERR_NO_ROUTE', 'no route matched'));
  }
  const route = match.route;
  ex.route = route;

  // ---- authenticate (→ authorize → limit: later phases plug in here) ----
  if (route.auth !== undefined) {
    const auth = route.auth;
    const decide = (decision: AuthDecision): void => {
      if (ex.done) return;
      if (!decision.ok) return refuseAuth(ex, decision, h.chunked || contentLength > 0);
      ex.identity = decision.identity;
      // Strip before inject: the client's credential never reaches the backend unless the route says so.
      const query = route.forwardCredentials ? target.query : auth.strip(h.out, target.query);
      auth.clearUpstreamHeaders(h.out);
      setIdentityHeaders(h.out, decision.identity);
      forward(ex, listener, h, trustedPeer, peer, authority, target.path, query, contentLength);
    };
    const failed = (err: unknown): void => {
      ex.state.logger.error({ err, reqId: ex.id }, 'authentication failed unexpectedly');
      if (!ex.done) ex.refuse(refuse('PTC_ERR_INTERNAL', 'authenticator threw'), true);
    };
    let decision: AuthDecision | Promise<AuthDecision>;
    try {
      decision = auth.run(authRequest(ex, listener, h, target.path, target.query, authority));
    } catch (err) {
      return failed(err);
    }
    // Cached tokens and API keys decide synchronously: no promise, no extra turn of the event loop.
    if (decision instanceof Promise) decision.then(decide, failed);
    else decide(decision);
    return;
  }
  forward(ex, listener, h, trustedPeer, peer, authority, target.path, target.query, contentLength);
}

/** The request is admitted: answer a static route or proxy it upstream. */
function forward(
  ex: Exchange,
  listener: ListenerInfo,
  h: ScannedHeaders,
  trustedPeer: boolean,
  peer: string,
  authority: string,
  targetPath: string,
  query: string,
  contentLength: number,
): void {
  const { rt, req, res } = ex;
  const route = ex.route as CompiledRoute;
  if (route.respond !== undefined) {
    const r = route.respond;
    ex.status = r.status;
    res.writeHead(r.status, { ...r.headers, 'x-request-id': ex.id });
    if (ex.method === 'HEAD') res.end();
    else res.end(r.body);
    ex.bytesOut = ex.method === 'HEAD' ? 0 : r.body.length;
    return ex.finish();
  }
  const upstream = route.upstream;
  if (upstream === undefined) return ex.refuse(refuse('PTC_ERR_INTERNAL', 'route without upstream'));

  // ---- proxy ----
  const out = h.out;
  const trustedPeerProto = trustedPeer && (h.xForwardedProto === 'http' || h.xForwardedProto === 'https');
  out['x-forwarded-for'] = trustedPeer && h.xForwardedFor !== undefined ? `${h.xForwardedFor}, ${peer}` : peer;
  out['x-forwarded-proto'] = trustedPeerProto ? (h.xForwardedProto as string) : listener.scheme;
  out['x-forwarded-host'] = trustedPeer && h.xForwardedHost !== undefined ? h.xForwardedHost : authority;
  out['x-request-id'] = ex.id;
  if (upstream.hostHeader === 'preserve') out.host = authority;
  else if (upstream.hostHeader !== 'target') out.host = upstream.hostHeader;

  const isH2 = 'stream' in req;
  const hasBody = h.chunked || contentLength > 0 || (isH2 && !(req as Http2ServerRequest).stream.endAfterHeaders);
  ex.hasBody = hasBody;
  if (hasBody) {
    if (contentLength >= 0) out['content-length'] = String(contentLength);
  }
  if (h.expect !== undefined && 'writeContinue' in res) res.writeContinue();

  let path = targetPath;
  if (route.stripPrefix !== undefined) path = path.length === route.stripPrefix.length ? '/' : path.slice(route.stripPrefix.length);
  ex.dispatchPath = path + query;
  const body = !hasBody ? null : contentLength >= 0 ? req : limitBody(req, rt.limits.maxBodyBytes);
  res.once('close', () => onClientClose.call(res, ex));
  // ---- outbound: last-mile credentials, after strip-before-inject (upstreams without `auth` skip it) ----
  if (route.outbound !== undefined) return outboundThenDispatch(ex, route.outbound, upstream, out, body, contentLength);
  ex.dispatchOpts = { method: ex.method, path: ex.dispatchPath, headers: out, body, upgrade: null };
  ex.dispatchTo(upstream.pick(Date.now()));
}

/** Apply the upstream's outbound credential to the request about to leave, then dispatch it. */
function outboundThenDispatch(
  ex: Exchange,
  phase: OutboundPhase,
  upstream: Upstream,
  out: HeaderMap,
  body: Readable | Request | null,
  contentLength: number,
): void {
  const pending = new PendingRequest(ex.method, ex.dispatchPath, out, ex.identity, phase.upstream, body as Readable | null, contentLength);
  applyAndDispatch(ex, phase, upstream, pending, false);
}

function applyAndDispatch(ex: Exchange, phase: OutboundPhase, upstream: Upstream, pending: PendingRequest, isRetry: boolean): void {
  const out = pending.headers;
  const proceed = (result: OutboundResult): void => {
    if (ex.done) return;
    if (ex.res.destroyed) {
      ex.status = 499;
      ex.refusal = refuse('PTC_ERR_BAD_REQUEST', 'client closed the connection');
      return ex.finish();
    }
    // A refusal while the body is half read cannot leave the connection reusable.
    if (result !== undefined) return ex.refuse(result, pending.unread);
    ex.dispatchPath = pending.path;
    const sendBody = pending.dispatchBody;
    // A 401 may be retried when the credential can be dropped and the request sent again as it
    // was: no body, or one the outbound phase buffered (a streamed body is gone once sent).
    const credential = phase.credential;
    if (!isRetry && credential.invalidate !== undefined && (sendBody === null || Buffer.isBuffer(sendBody)))
      ex.credentialRetry = () => {
        ex.state.logger.debug(
          { reqId: ex.id, upstream: phase.upstream, type: credential.type },
          'upstream answered 401; retrying once with a fresh credential',
        );
        credential.invalidate?.(pending);
        applyAndDispatch(ex, phase, upstream, pending, true);
      };
    ex.dispatchOpts = { method: ex.method, path: pending.path, headers: out, body: sendBody, upgrade: null };
    ex.dispatchTo(upstream.pick(Date.now()));
  };
  const failed = (err: unknown): void => {
    ex.state.logger.error({ err, reqId: ex.id, upstream: phase.upstream, type: phase.credential.type }, 'outbound credential failed unexpectedly');
    if (!ex.done) ex.refuse(refuse('PTC_ERR_INTERNAL', `outbound ${phase.credential.type} threw`), pending.unread);
  };
  let result: OutboundResult | Promise<OutboundResult>;
  try {
    result = runOutbound(phase, pending);
  } catch (err) {
    return failed(err);
  }
  if (result instanceof Promise) result.then(proceed, failed);
  else proceed(result);
}

/** The view of the request an authenticator gets. */
function authRequest(ex: Exchange, listener: ListenerInfo, h: ScannedHeaders, path: string, query: string, host: string): AuthRequest {
  return {
    method: ex.method,
    path,
    query,
    host,
    scheme: listener.scheme,
    headers: h.out,
    clientIp: ex.clientIp,
    peerCertificate: () => peerCertificate(ex.req),
  };
}

/** The verified client certificate of the connection (HTTP/1.1 or HTTP/2), if any. */
export function peerCertificate(req: Request): PeerCertificate | undefined {
  const socket = ('stream' in req ? req.stream.session?.socket : req.socket) as TLSSocket | undefined;
  if (socket === undefined || typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return undefined;
  const cert = socket.getPeerCertificate(false);
  return cert !== null && Object.keys(cert).length > 0 ? cert : undefined;
}

function refuseAuth(ex: Exchange, decision: Extract<AuthDecision, { ok: false }>, hasBody: boolean): void {
  if (decision.reply === undefined) return ex.refuse(decision.refusal, hasBody);
  // An external auth service's own answer (a 302 to a login page, a 401 with its challenge) is relayed.
  const { status, headers, body } = decision.reply;
  ex.refusal = decision.refusal;
  ex.status = status;
  ex.state.metrics.refusals.labels(decision.refusal.code).inc();
  (ex.res as ServerResponse).writeHead(status, {
    ...headers,
    'content-length': body.length,
    'x-request-id': ex.id,
    ...(hasBody && 'shouldKeepAlive' in ex.res ? { connection: 'close' } : {}),
  });
  ex.res.end(body);
  ex.bytesOut = body.length;
  ex.finish();
}

const BODY_TOO_LARGE = 'PTC_BODY_TOO_LARGE';

/**
 * A body of unknown length (chunked, HTTP/2) is counted as it streams through; past the limit the
 * stream fails, undici aborts the upstream request, and the client gets 413 if nothing was sent yet.
 */
function limitBody(req: Request, max: number): Readable {
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      seen += chunk.length;
      if (seen > max) callback(Object.assign(new Error(`body over ${max} bytes`), { code: BODY_TOO_LARGE }));
      else callback(null, chunk);
    },
  });
  pipeline(req, counter, () => {});
  return counter;
}
