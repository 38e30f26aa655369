/**
 * The admin listener: /healthz (the process is alive), /readyz (serving, not draining), /metrics
 * (Prometheus). Bound to loopback by default and never served on a client listener.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { refuse } from '../core/errors.js';
import type { Address } from '../config/schema.js';
import { problemBody } from './reply.js';

export interface AdminSources {
  ready(): boolean;
  metrics(): Promise<{ contentType: string; body: string }>;
  /** The gateway's public signing keys as a JWKS document (absent: not served). */
  jwks?(): string;
}

export interface AdminServer {
  readonly server: http.Server;
  address(): AddressInfo;
  close(): Promise<void>;
}

function json(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function notFound(res: http.ServerResponse): void {
  const body = problemBody(refuse('PTC_ERR_NO_ROUTE', 'admin'), '-');
  res.writeHead(404, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function openAdmin(address: Address, sources: AdminSources): Promise<AdminServer> {
  const server = http.createServer({ requireHostHeader: false }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { status: 405, title: 'Method not allowed' });
    switch (path) {
      case '/healthz':
        return json(res, 200, { status: 'ok' });
      case '/readyz':
        return sources.ready() ? json(res, 200, { status: 'ready' }) : json(res, 503, { status: 'not ready' });
      case '/.well-known/jwks.json': {
        if (sources.jwks === undefined) return notFound(res);
        // RFC 7517 §8.5. Short max-age: backends pick up a rotated key quickly (they also refetch on an unknown kid).
        const body = sources.jwks();
        res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=60' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      case '/metrics':
        sources.metrics().then(
          (m) => {
            res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' });
            res.end(m.body);
          },
          () => json(res, 500, { status: 500, title: 'Internal error' }),
        );
        return;
      default:
        return notFound(res);
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    address: () => server.address() as AddressInfo,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
