// A tiny echo backend for the quick start: replies with what it received, so you can see what
// the gateway forwards (path after rewrites, X-Forwarded-*, X-Request-Id) and what it strips.
import http from 'node:http';

export function startDemoUpstream(port = 9000, host = '127.0.0.1') {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, path: req.url, headers: req.headers, bodyBytes: Buffer.concat(chunks).length }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
