/** Real HTTP backends on loopback that record what they received. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
}

export interface TestBackend {
  readonly url: string;
  readonly port: number;
  readonly server: http.Server;
  readonly received: ReceivedRequest[];
  close(): Promise<void>;
}

export type BackendHandler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

/** Default handler: 200 with a JSON echo of method, url and headers. */
export const echo: BackendHandler = (req, res, body) => {
  const out = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: body.length, name: 'echo' });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
  res.end(out);
};

/**
 * Start a backend. With `stream: true` the handler is called before the body is read
 * (for streaming tests); otherwise after the whole body arrived.
 */
export async function startBackend(handler: BackendHandler = echo, options: { stream?: boolean; port?: number } = {}): Promise<TestBackend> {
  const received: ReceivedRequest[] = [];
  const server = http.createServer((req, res) => {
    if (options.stream === true) {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0) });
      handler(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    received,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
