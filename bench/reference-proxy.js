// The yardstick: about the smallest honest reverse proxy one Node process can be — node:http in
// front of one keep-alive undici Pool, request body streamed up, response piped back, hop-by-hop
// headers dropped both ways (RFC 9110 §7.6.1). No logging, metrics or checks: that is the point.
// Usage: node bench/reference-proxy.js UPSTREAM_ORIGIN [port]   (prints the bound port)
import http from 'node:http';
import { Pool } from 'undici';

const HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade'];
const pool = new Pool(process.argv[2], { keepAliveTimeout: 4_000 });

const server = http.createServer((req, res) => {
  const headers = { ...req.headers };
  for (const h of HOP) delete headers[h];
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.request({ method: req.method, path: req.url, headers, body: hasBody ? req : null }).then(
    ({ statusCode, headers: up, body }) => {
      for (const h of HOP) delete up[h];
      res.writeHead(statusCode, up);
      // .pipe, not stream.pipeline: on Node 20 pipeline() builds an AbortController per call and
      // aborts it at the end, which costs a DOMException with a stack trace per request.
      body.on('error', () => res.destroy());
      res.on('close', () => body.destroy());
      body.pipe(res);
    },
    () => {
      if (!res.headersSent) res.writeHead(502, { 'content-length': 0 });
      res.end();
    },
  );
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[3] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
