/**
 * The single renderer of local replies: RFC 9457 problem details with a stable code, a title and
 * the request id. Nothing else reaches the client — no details, no stack, no upstream address.
 */
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { ERRORS, type Refusal } from '../core/errors.js';

export type Response = ServerResponse | Http2ServerResponse;

export function problemBody(refusal: Refusal, requestId: string): string {
  const { status, title } = ERRORS[refusal.code];
  return JSON.stringify({ type: `urn:portcullis:error:${refusal.code}`, title, status, code: refusal.code, requestId });
}

/**
 * Write `refusal` as the whole response. `close` asks an HTTP/1.1 client to drop the connection,
 * for refusals after which the rest of the bytes on it cannot be trusted (framing errors, unread bodies).
 */
export function sendProblem(res: Response, refusal: Refusal, requestId: string, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(refusal, requestId);
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  };
  if (refusal.headers !== undefined) Object.assign(headers, refusal.headers);
  if (close && 'shouldKeepAlive' in res) headers.connection = 'close';
  (res as ServerResponse).writeHead(ERRORS[refusal.code].status, headers);
  res.end(body);
}

/** A raw HTTP/1.1 problem reply on a socket the HTTP parser gave up on (clientError). */
export function rawProblem(refusal: Refusal, requestId: string): string {
  const body = problemBody(refusal, requestId);
  const { status, title } = ERRORS[refusal.code];
  let extra = '';
  for (const [k, v] of Object.entries(refusal.headers ?? {})) for (const one of Array.isArray(v) ? v : [v]) extra += `${k}: ${one}\r\n`;
  return (
    `HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Cache-Control: no-store\r\nX-Request-Id: ${requestId}\r\n${extra}Connection: close\r\n\r\n${body}`
  );
}
