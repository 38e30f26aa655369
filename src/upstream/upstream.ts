/**
 * An upstream: named targets, one keep-alive undici Pool each, picked round-robin. A target that
 * refuses connections is ejected for a cool-down; when every target is ejected the gateway still
 * tries them in turn (a panic mode, as Envoy does) rather than fail requests it might serve.
 */
import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import type { UpstreamTLS } from './tls.js';

export interface Target {
  /** `http://127.0.0.1:9000` — for logs only, never for a client. */
  readonly origin: string;
  /** Base path of the target URL without a trailing slash ('' for none). */
  readonly basePath: string;
  /** Host header value when the upstream rewrites Host to the target. */
  readonly host: string;
  readonly pool: Pool;
  ejectedUntil: number;
}

export interface Upstream {
  readonly name: string;
  readonly targets: readonly Target[];
  /** 'target' | 'preserve' | a literal host. */
  readonly hostHeader: string;
  readonly ejectFor: number;
  pick(now: number): Target;
  eject(target: Target, now: number): void;
  close(): Promise<void>;
}

/** `tls` (from buildUpstreamTLS) applies to https:// targets; without it Node's defaults verify against the system CAs. */
export function createUpstream(name: string, cfg: UpstreamConfig, tls?: UpstreamTLS): Upstream {
  const targets: Target[] = cfg.targets.map((t) => {
    const url = new URL(t);
    const pool = new Pool(url.origin, {
      connect: { timeout: cfg.timeouts.connect, ...(url.protocol === 'https:' && tls !== undefined ? tls.connect(url.hostname) : {}) },
      headersTimeout: cfg.timeouts.response,
      bodyTimeout: cfg.timeouts.response,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 600_000,
      ...(cfg.maxConnections !== undefined ? { connections: cfg.maxConnections } : {}),
    });
    return { origin: url.origin, basePath: url.pathname === '/' ? '' : url.pathname.replace(/\/$/, ''), host: url.host, pool, ejectedUntil: 0 };
  });
  let next = 0;
  return {
    name,
    targets,
    hostHeader: cfg.hostHeader,
    ejectFor: cfg.ejectFor,
    pick(now) {
      const n = targets.length;
      for (let i = 0; i < n; i++) {
        const t = targets[(next + i) % n] as Target;
        if (t.ejectedUntil <= now) {
          next = (next + i + 1) % n;
          return t;
        }
      }
      const t = targets[next % n] as Target; // all ejected: panic mode, keep rotating
      next = (next + 1) % n;
      return t;
    },
    eject(target, now) {
      target.ejectedUntil = now + cfg.ejectFor;
    },
    async close() {
      await Promise.all(targets.map((t) => t.pool.close()));
    },
  };
}
