// The benchmark backend: a node:http server answering every request with the same small body,
// so every proxy in the comparison forwards identical bytes. Usage: node bench/backend.js [port]
// Prints the bound port on stdout once listening.
import http from 'node:http';

const BODY = Buffer.from('{"ok":true,"service":"bench-backend"}\n');
const HEADERS = { 'content-type': 'application/json', 'content-length': BODY.length };

const server = http.createServer((req, res) => {
  // Drain any request body before answering (the default GET has none).
  if (req.readableEnded) {
    res.writeHead(200, HEADERS);
    res.end(BODY);
    return;
  }
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
