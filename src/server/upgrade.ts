/**
 * HTTP/1.1 Upgrade. Only WebSocket, only on routes with `websocket: true`; any other upgrade
 * request (h2c included) is served as a plain request with the Upgrade header dropped (RFC 9110
 * §7.8 lets a server ignore Upgrade), and the connection is closed after the reply.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { ERRORS, type Refusal, refuse } from '../core/errors.js';
import { isValidRequestId, scanRequestHeaders } from '../core/headers.js';
import { normaliseTarget } from '../core/path.js';
import { hostOf } from '../core/router.js';
import { plainIp, resolveClientIp } from './client-ip.js';
import { setIdentityHeaders } from '../auth/propagate.js';
import type { AuthRequest } from '../auth/types.js';
import { type GatewayState, handleRequest, type ListenerInfo, peerCertificate } from './handler.js';
import { rawProblem } from './reply.js';
import { classifyUpstreamError } from '../upstream/errors.js';

const WS_HEADERS = /^sec-websocket-/;

export function handleUpgrade(state: GatewayState, listener: ListenerInfo, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const rt = state.runtime;
  const isWebSocket = (req.headers.upgrade ?? '').toLowerCase() === 'websocket' && req.method === 'GET';
  const target = normaliseTarget(req.url ?? '/');
  const match = isWebSocket && typeof target !== 'string' ? rt.router.match(hostOf(req.headers.host ?? ''), target.path, 'GET') : undefined;
  const route = match?.ok ? match.route : undefined;
  if (route === undefined || !route.websocket || route.upstream === undefined || typeof target === 'string') {
    // Node's parser let go of the socket at the end of the head, so a request body cannot be read as
    // this request's body any more: refuse rather than forward an empty or truncated one.
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    if (te !== undefined || (cl !== undefined && cl !== '0')) {
      const refusal = refuse('PTC_ERR_BAD_REQUEST', 'Upgrade request with a body on a route without WebSockets');
      const id = randomUUID();
      state.metrics.refusals.labels(refusal.code).inc();
      state.logger.info({ msg: 'request', reqId: id, method: req.method, status: 400, code: refusal.code, details: refusal.details });
      socket.end(rawProblem(refusal, id));
      return;
    }
    // Serve it as an ordinary request on this socket, then close it: the parser has let go of it.
    if (head.length > 0) socket.unshift(head);
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    res.on('finish', () => {
      res.detachSocket(socket as never);
      socket.end();
    });
    handleRequest(state, listener, req, res);
    return;
  }
  const started = performance.now();
  const peer = plainIp(req.socket.remoteAddress ?? '');
  const scanned = scanRequestHeaders(req.rawHeaders, rt.limits.maxHeaderCount);
  const trusted = !('code' in scanned) && rt.trusted.has(peer);
  const id = trusted && scanned.requestId !== undefined && isValidRequestId(scanned.requestId) ? scanned.requestId : randomUUID();
  const clientIp = trusted ? resolveClientIp(peer, scanned.xForwardedFor, rt.trusted) : peer;
  let consumer: string | undefined;
  let upstreamOrigin: string | undefined;

  /** The upgrade's access-log line, in the fields of handler.ts's. */
  const log = (status: number, refusal?: Refusal) =>
    state.logger.info({
      msg: 'request',
      reqId: id,
      method: 'GET',
      path: target.path,
      route: route.name,
      upgrade: 'websocket',
      status,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      clientIp,
      consumer,
      upstream: upstreamOrigin,
      code: refusal?.code,
      details: refusal?.details,
    });
  /** Answer on the raw socket (the HTTP parser has let go of it) and close it. */
  const reject = (refusal: Refusal) => {
    state.metrics.refusals.labels(refusal.code).inc();
    log(ERRORS[refusal.code].status, refusal);
    socket.end(rawProblem(refusal, id));
  };

  if ('code' in scanned) return reject(scanned);
  const headers = scanned.out;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = (req.rawHeaders[i] as string).toLowerCase();
    if (WS_HEADERS.test(name)) headers[name] = req.rawHeaders[i + 1] as string;
  }
  headers['x-forwarded-for'] = trusted && scanned.xForwardedFor !== undefined ? `${scanned.xForwardedFor}, ${peer}` : peer;
  headers['x-forwarded-proto'] =
    trusted && (scanned.xForwardedProto === 'http' || scanned.xForwardedProto === 'https') ? scanned.xForwardedProto : listener.scheme;
  headers['x-forwarded-host'] = trusted && scanned.xForwardedHost !== undefined ? scanned.xForwardedHost : (scanned.host ?? '');
  headers['x-request-id'] = id;

  const connect = (query: string): void => {
    const upstream = route.upstream as NonNullable<typeof route.upstream>;
    const t = upstream.pick(Date.now());
    upstreamOrigin = t.origin;
    headers.host = upstream.hostHeader === 'target' ? t.host : upstream.hostHeader === 'preserve' ? (scanned.host ?? t.host) : upstream.hostHeader;
    let path = target.path;
    if (route.stripPrefix !== undefined) path = path.length === route.stripPrefix.length ? '/' : path.slice(route.stripPrefix.length);
    t.pool
      .upgrade({ path: t.basePath + path + query, method: 'GET', headers, protocol: 'websocket' })
      .then(({ headers: upHeaders, socket: upSocket }) => {
        let response = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n';
        for (const [k, v] of Object.entries(upHeaders)) {
          if (v === undefined || !WS_HEADERS.test(k)) continue;
          for (const one of Array.isArray(v) ? v : [v]) response += `${k}: ${one}\r\n`;
        }
        socket.write(`${response}\r\n`);
        if (head.length > 0) upSocket.write(head);
        upSocket.pipe(socket).pipe(upSocket);
        const close = () => {
          upSocket.destroy();
          socket.destroy();
        };
        upSocket.on('error', close).on('close', close);
        socket.on('error', close).on('close', close);
        log(101);
      })
      .catch((err: unknown) => {
        const { code, kind } = classifyUpstreamError(err);
        state.metrics.upstreamErrors.labels(upstream.name, kind).inc();
        reject(refuse(code, `websocket upgrade failed: ${kind} from ${t.origin}`));
      });
  };

  // Authenticate exactly as for any request on this route: an upgrade is no way around the edge.
  if (route.auth === undefined) return connect(target.query);
  const auth = route.auth;
  const authReq: AuthRequest = {
    method: 'GET',
    path: target.path,
    query: target.query,
    host: scanned.host ?? '',
    scheme: listener.scheme,
    headers,
    clientIp,
    peerCertificate: () => peerCertificate(req),
  };
  Promise.resolve(auth.run(authReq)).then(
    (decision) => {
      if (!decision.ok) return reject(decision.refusal);
      consumer = decision.identity.consumer?.id;
      const query = route.forwardCredentials ? target.query : auth.strip(headers, target.query);
      auth.clearUpstreamHeaders(headers);
      setIdentityHeaders(headers, decision.identity);
      connect(query);
    },
    () => reject(refuse('PTC_ERR_INTERNAL', 'authenticator threw')),
  );
}
