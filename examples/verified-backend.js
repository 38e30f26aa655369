// A backend that only serves requests that came through Portcullis: every request must carry a
// gateway-minted JWT (upstreams.<name>.auth: { type: jwt }) for this backend's audience, verified
// against the gateway's JWKS on its admin listener. A caller that reaches this port around the
// gateway gets 401. See docs/end-run-attacks.md.
//
//   npm run build && node examples/verified-backend.js
//
// Environment (defaults in brackets):
//   PORT [9000]  HOST [127.0.0.1 — bind a private interface, never 0.0.0.0 on a shared network]
//   GATEWAY_JWKS [http://127.0.0.1:9901/.well-known/jwks.json]
//   AUDIENCE [ledger — the upstream's `audience`, default the upstream name]  ISSUER [portcullis]
//
// Gateway side (portcullis.yaml):
//   upstreams:
//     ledger:
//       targets: [http://127.0.0.1:9000]
//       auth: { type: jwt, audience: ledger, ttl: 60s }
import http from 'node:http';
import { requireGateway } from 'portcullis/verify';

const port = Number(process.env.PORT ?? 9000);
const host = process.env.HOST ?? '127.0.0.1';

const gate = requireGateway({
  jwksUri: process.env.GATEWAY_JWKS ?? 'http://127.0.0.1:9901/.well-known/jwks.json',
  issuer: process.env.ISSUER ?? 'portcullis',
  audience: process.env.AUDIENCE ?? 'ledger',
  clockTolerance: 5,
  // Log why a request was refused — the code only, never the token.
  onReject: (error) => console.warn(JSON.stringify({ msg: 'refused', code: error.code })),
});

const server = http.createServer(async (req, res) => {
  // Plain node:http: the gate answers 401 itself and resolves false. With Express: app.use(gate).
  // With Fastify: app.addHook('onRequest', gate.fastify).
  if (!(await gate(req, res))) return;
  const { sub, consumer, groups, scope } = req.gateway;
  const body = JSON.stringify({ hello: sub ?? 'anonymous', consumer, groups, scope, path: req.url });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});

server.listen(port, host, () => console.log(`verified backend on http://${host}:${port} (audience ${process.env.AUDIENCE ?? 'ledger'})`));
