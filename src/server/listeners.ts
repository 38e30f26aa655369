/**
 * Client listeners: plain HTTP/1.1, or TLS (1.2+) with HTTP/2 offered by ALPN and HTTP/1.1 as the
 * fallback. Node's parser enforces head size and timeouts; parser failures are answered here with
 * a problem+json reply instead of Node's bare 400.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS, type Refusal, refuse } from '../core/errors.js';
import type { ListenerSpec, Runtime } from '../core/runtime.js';
import { type GatewayState, handleRequest, type ListenerInfo, type Request } from './handler.js';
import { rawProblem, type Response } from './reply.js';
import { handleUpgrade } from './upgrade.js';

export interface Listener {
  readonly key: string;
  readonly spec: ListenerSpec;
  readonly server: http.Server | https.Server | http2.Http2SecureServer;
  readonly sockets: Set<Duplex>;
  address(): AddressInfo;
  /** Apply a new runtime's settings (TLS material, timeouts) without rebinding. */
  update(spec: ListenerSpec, rt: Runtime): void;
}

/** What must match for a running listener to be kept across a reload (else it is rebound). */
export function listenerShape(spec: ListenerSpec, rt: Runtime): string {
  return JSON.stringify([spec.key, spec.tls === undefined, spec.config.tls?.http2, rt.limits.maxHeaderBytes]);
}

function clientErrorRefusal(err: NodeJS.ErrnoException): Refusal {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return refuse('PTC_ERR_HEADERS_TOO_LARGE', 'request head over maxHeaderBytes');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return refuse('PTC_ERR_REQUEST_TIMEOUT', 'request not received within headersTimeout/requestTimeout');
    default:
      return refuse('PTC_ERR_BAD_REQUEST', `HTTP parse error ${err.code ?? ''}`.trim());
  }
}

function tlsOptions(spec: ListenerSpec) {
  const mode = spec.tls?.clientCert ?? 'off';
  return {
    cert: spec.tls?.cert,
    key: spec.tls?.key,
    minVersion: spec.config.tls?.minVersion ?? 'TLSv1.2',
    // Hide the server's cipher preference games: Node's defaults are modern; only forbid renegotiation.
    honorCipherOrder: true,
    // Client certificates (mutual TLS). `required` fails the handshake without a verified chain;
    // `optional` asks for one but accepts the connection either way — an unverified certificate then
    // authenticates nothing, because the handler only trusts a socket with `authorized` set.
    ...(mode === 'off' || spec.tls?.clientCa === undefined
      ? { requestCert: false, rejectUnauthorized: false }
      : { requestCert: true, rejectUnauthorized: mode === 'required', ca: spec.tls.clientCa }),
  } as const;
}

/** setSecureContext() swaps the CAs but not these per-server options, which Node reads per connection. */
function applyClientCertMode(server: Listener['server'], spec: ListenerSpec): void {
  const o = tlsOptions(spec);
  Object.assign(server, { requestCert: o.requestCert, rejectUnauthorized: o.rejectUnauthorized });
}

export async function openListener(state: GatewayState, spec: ListenerSpec): Promise<Listener> {
  const rt = state.runtime;
  const info: ListenerInfo = { scheme: spec.tls === undefined ? 'http' : 'https' };
  const onRequest = (req: Request, res: Response) => handleRequest(state, info, req, res);
  const httpOptions: http.ServerOptions = {
    maxHeaderSize: rt.limits.maxHeaderBytes,
    requireHostHeader: false, // checked by the gateway so the reply is problem+json
    connectionsCheckingInterval: 250,
  };
  let server: http.Server | https.Server | http2.Http2SecureServer;
  if (spec.tls === undefined) server = http.createServer(httpOptions, onRequest);
  else if (spec.config.tls?.http2 !== false)
    server = http2.createSecureServer(
      {
        ...tlsOptions(spec),
        allowHTTP1: true,
        maxHeaderListPairs: rt.limits.maxHeaderCount + 4,
        maxSessionMemory: 10,
        settings: { maxHeaderListSize: rt.limits.maxHeaderBytes, enablePush: false },
      },
      onRequest,
    );
  else server = https.createServer({ ...httpOptions, ...tlsOptions(spec) }, onRequest);

  server.on('checkContinue', onRequest);
  server.on('checkExpectation', onRequest);
  /** Answer on a socket the HTTP layer no longer manages, and close it. */
  const refuseSocket = (socket: Duplex, refusal: Refusal): void => {
    const id = randomUUID();
    state.metrics.refusals.labels(refusal.code).inc();
    state.logger.info({ msg: 'request', reqId: id, status: ERRORS[refusal.code].status, code: refusal.code, details: refusal.details });
    socket.end(rawProblem(refusal, id));
  };
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy();
    refuseSocket(socket, clientErrorRefusal(err));
  });
  // CONNECT (authority-form, RFC 9112 §3.2.3) asks for a tunnel; this is not a forward proxy. Without
  // a listener Node would drop the socket silently; answer with a problem like every other refusal.
  // (On the HTTP/2 server 'connect' means a new session, so only the HTTP/1 servers get this.)
  if (server instanceof http.Server || server instanceof https.Server)
    server.on('connect', (_req: http.IncomingMessage, socket: Duplex) =>
      refuseSocket(socket, refuse('PTC_ERR_BAD_REQUEST_TARGET', 'CONNECT is not supported')),
    );
  const sockets = new Set<Duplex>();
  const gauge = state.metrics.openConnections.labels(spec.key);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    gauge.inc();
    socket.once('close', () => {
      sockets.delete(socket);
      gauge.dec();
    });
  });
  const listener: Listener = {
    key: spec.key,
    spec,
    server,
    sockets,
    address: () => server.address() as AddressInfo,
    update(next, nextRt) {
      (this as { spec: ListenerSpec }).spec = next;
      applyLimits(server, nextRt, state, info);
      if (next.tls !== undefined) {
        (server as https.Server).setSecureContext(tlsOptions(next));
        applyClientCertMode(server, next);
      }
    },
  };
  applyLimits(server, rt, state, info);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: spec.config.address.host, port: spec.config.address.port, exclusive: false }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => state.logger.error({ err, listener: spec.key }, 'listener error'));
  return listener;
}

function applyLimits(server: Listener['server'], rt: Runtime, state: GatewayState, info: ListenerInfo): void {
  const s = server as http.Server;
  s.headersTimeout = rt.limits.headersTimeout;
  s.requestTimeout = rt.limits.requestTimeout;
  s.keepAliveTimeout = rt.limits.idleTimeout;
  s.maxHeadersCount = rt.limits.maxHeaderCount + 1; // one over, so the gateway sees the overflow and answers 431
  if (!(server instanceof http.Server) && !(server instanceof https.Server)) server.setTimeout(rt.limits.idleTimeout); // HTTP/2 sessions
  // Upgrade is only intercepted while some route allows WebSockets; otherwise Node serves it as a plain request.
  const wantsUpgrade = rt.router.routes.some((r) => r.websocket);
  server.removeAllListeners('upgrade');
  if (wantsUpgrade) server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => handleUpgrade(state, info, req, socket, head));
}
