/**
 * One raw HTTP/1.1 exchange that, unlike rawRequest, returns as soon as a complete final response
 * has arrived (Content-Length or chunked framing), so keep-alive replies do not wait for a timeout.
 * Interim (1xx) responses are recorded in order.
 */
import net from 'node:net';
import { parseRaw, type RawResponse } from './raw.js';

export interface Exchange extends RawResponse {
  /** Status codes of 1xx responses received before the final one. */
  readonly interim: readonly number[];
  /** The server closed the connection (or it was reset) before we did. */
  readonly closed: boolean;
  /** The final response arrived complete (false: cut mid-body, or nothing at all). */
  readonly complete: boolean;
}

/** Length of a complete chunked body at the start of `s`, or -1 while incomplete. */
function chunkedLength(s: string): number {
  let pos = 0;
  for (;;) {
    const eol = s.indexOf('\r\n', pos);
    if (eol === -1) return -1;
    const size = Number.parseInt(s.slice(pos, eol), 16);
    if (Number.isNaN(size)) return -1;
    if (size === 0) {
      const end = s.indexOf('\r\n\r\n', eol);
      return end === -1 ? -1 : end + 4;
    }
    pos = eol + 2 + size + 2;
    if (pos > s.length) return -1;
  }
}

/**
 * Send `request` (or several writes, with `gapMs` between them) and resolve with the final
 * response. `onInterim` may write more (e.g. the body after 100 Continue).
 */
export function exchange(
  port: number,
  request: string | Buffer | readonly (string | Buffer)[],
  options: { timeoutMs?: number; gapMs?: number; onInterim?: (status: number, socket: net.Socket) => void } = {},
): Promise<Exchange> {
  const { timeoutMs = 3_000, gapMs = 0 } = options;
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const interim: number[] = [];
    let settled = false;
    const finish = (closed: boolean, complete: boolean, raw: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseRaw(raw), interim, closed, complete });
    };
    const timer = setTimeout(() => finish(false, false, data), timeoutMs);
    const parts = typeof request === 'string' || Buffer.isBuffer(request) ? [request] : request;
    socket.on('connect', async () => {
      for (let i = 0; i < parts.length; i++) {
        if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        if (socket.destroyed) return;
        socket.write(parts[i] as string | Buffer);
      }
    });
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      for (;;) {
        const end = data.indexOf('\r\n\r\n');
        if (end === -1) return;
        const status = Number(data.slice(0, end).split(' ')[1]);
        if (status >= 100 && status < 200) {
          interim.push(status);
          data = data.slice(end + 4);
          options.onInterim?.(status, socket);
          continue;
        }
        const res = parseRaw(data);
        const cl = res.headers['content-length'];
        if (cl !== undefined) {
          if (data.length - end - 4 >= Number(cl)) finish(false, true, data.slice(0, end + 4 + Number(cl)));
        } else if ((res.headers['transfer-encoding'] ?? '').includes('chunked')) {
          const n = chunkedLength(data.slice(end + 4));
          if (n !== -1) finish(false, true, data.slice(0, end + 4 + n));
        } else if (status === 204 || status === 304) finish(false, true, data);
        return;
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      const end = data.indexOf('\r\n\r\n');
      const res = parseRaw(data);
      const framed = res.headers['content-length'] !== undefined || res.headers['transfer-encoding'] !== undefined;
      // Without framing, a close is how the body ends.
      finish(true, end !== -1 && !framed, data);
    });
  });
}
