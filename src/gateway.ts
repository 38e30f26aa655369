/**
 * The gateway process: loads and builds a config, opens listeners and the admin listener, and
 * owns the two lifecycle events — reload (build everything new, then swap atomically; a broken
 * file changes nothing) and drain (stop accepting, finish in-flight requests within a bound).
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { ServerHttp2Session } from 'node:http2';
import { ConfigError, formatProblem, loadConfigFile } from './config/load.js';
import { buildRuntime, type Runtime } from './core/runtime.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { type CertificateWatch, watchCertificates } from './observability/certificates.js';
import { KeyRing } from './outbound/key-ring.js';
import { type AdminServer, openAdmin } from './server/admin.js';
import type { GatewayState } from './server/handler.js';
import { type Listener, listenerShape, openListener } from './server/listeners.js';

export interface GatewayOptions {
  /** Path of the YAML config. */
  readonly file: string;
  readonly logger?: Logger;
  readonly metrics?: Metrics;
  /** Open the admin listener (default true; cluster workers leave it to the primary). */
  readonly admin?: boolean;
  /** Reload when the file changes. */
  readonly watch?: boolean;
}

export type ReloadResult = { readonly ok: true; readonly hash: string } | { readonly ok: false; readonly error: ConfigError | Error };

export class Gateway {
  readonly state: GatewayState;
  readonly #file: string;
  readonly #listeners = new Map<string, Listener>();
  readonly #sessions = new Set<ServerHttp2Session>();
  #admin: AdminServer | undefined;
  #wantAdmin: boolean;
  #reloading: Promise<ReloadResult> | undefined;
  #watcher: FSWatcher | undefined;
  #closed = false;
  /** Published gateway signing keys; outlives reloads so a rotated-out key stays published a while. */
  readonly #keys = new KeyRing();
  readonly #certificates: CertificateWatch;

  private constructor(file: string, runtime: Runtime, logger: Logger, metrics: Metrics, admin: boolean) {
    this.#file = file;
    this.#wantAdmin = admin;
    this.state = { runtime, draining: false, logger, metrics };
    this.#keys.publish(runtime.outbound?.identity);
    this.#certificates = watchCertificates(metrics, logger);
  }

  /** Load, build and start serving; throws ConfigError when the file is invalid. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const loaded = await loadConfigFile(options.file);
    const logger = options.logger ?? createLogger(loaded.config.log.level);
    const metrics = options.metrics ?? createMetrics();
    const runtime = await buildRuntime(loaded, metrics, logger);
    const gw = new Gateway(options.file, runtime, logger, metrics, options.admin !== false);
    try {
      await gw.#openListeners(runtime);
      if (gw.#wantAdmin) gw.#admin = await gw.#openAdmin(runtime);
    } catch (err) {
      await gw.close(0);
      throw err;
    }
    metrics.configInfo.labels(runtime.hash).set(1);
    gw.#certificates.update(runtime.certificates);
    if (options.watch === true) gw.#watch();
    logger.info({ config: resolve(options.file), hash: runtime.hash, listeners: gw.addresses().listeners, admin: gw.addresses().admin }, 'portcullis started');
    return gw;
  }

  get runtime(): Runtime {
    return this.state.runtime;
  }

  addresses(): { listeners: Record<string, string>; admin: string | undefined } {
    const fmt = (a: AddressInfo) => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
    const listeners: Record<string, string> = {};
    for (const [key, l] of this.#listeners) listeners[key] = fmt(l.address());
    return { listeners, admin: this.#admin === undefined ? undefined : fmt(this.#admin.address()) };
  }

  /** Bound port of a listener by its configured address (handy when the config asks for port 0). */
  port(key: string): number {
    const l = this.#listeners.get(key);
    if (l === undefined) throw new Error(`no listener ${key}`);
    return l.address().port;
  }

  adminPort(): number | undefined {
    return this.#admin?.address().port;
  }

  /** Reload the config file. Concurrent calls share one reload. Never throws. */
  reload(): Promise<ReloadResult> {
    this.#reloading ??= this.#reload().finally(() => {
      this.#reloading = undefined;
    });
    return this.#reloading;
  }

  async #reload(): Promise<ReloadResult> {
    const { logger, metrics } = this.state;
    if (this.#closed) return { ok: false, error: new Error('gateway is closed') };
    let next: Runtime;
    try {
      const loaded = await loadConfigFile(this.#file);
      next = await buildRuntime(loaded, metrics, logger);
    } catch (err) {
      metrics.reloads.labels('failure').inc();
      const problems = err instanceof ConfigError ? err.problems.map(formatProblem) : [(err as Error).message];
      logger.error({ problems }, 'config reload rejected; the previous config keeps serving');
      return { ok: false, error: err as Error };
    }
    const prev = this.state.runtime;
    try {
      await this.#openListeners(next);
      await this.#swapAdmin(prev, next);
    } catch (err) {
      metrics.reloads.labels('failure').inc();
      logger.error({ err: (err as Error).message }, 'config reload rejected: a listener could not be opened; the previous config keeps serving');
      await this.#closeListeners(
        (l) => !prev.listeners.some((s) => s.key === l.key && listenerShape(s, prev) === listenerShape(l.spec, next)) && next.listeners.includes(l.spec),
      );
      await next.close();
      return { ok: false, error: err as Error };
    }
    // The swap: every request that starts from now on sees `next`; those in flight keep `prev`.
    this.state.runtime = next;
    this.#keys.publish(next.outbound?.identity);
    for (const spec of next.listeners) this.#listeners.get(spec.key)?.update(spec, next);
    await this.#closeListeners((l) => !next.listeners.some((s) => s.key === l.key));
    logger.level = next.config.log.level;
    metrics.configInfo.reset();
    metrics.configInfo.labels(next.hash).set(1);
    metrics.reloads.labels('success').inc();
    this.#certificates.update(next.certificates);
    logger.info({ hash: next.hash, previous: prev.hash }, 'config reloaded');
    prev.close().catch((err: unknown) => logger.warn({ err }, 'closing the previous upstream pools failed'));
    return { ok: true, hash: next.hash };
  }

  async #openListeners(rt: Runtime): Promise<void> {
    for (const spec of rt.listeners) {
      const existing = this.#listeners.get(spec.key);
      if (existing !== undefined && listenerShape(existing.spec, this.state.runtime) === listenerShape(spec, rt)) continue;
      if (existing !== undefined) await this.#closeListeners((l) => l === existing); // shape changed: rebind
      const l = await openListener(this.state, spec);
      l.server.on('session', (session: ServerHttp2Session) => {
        this.#sessions.add(session);
        session.once('close', () => this.#sessions.delete(session));
        if (this.state.draining) session.close();
      });
      this.#listeners.set(spec.key, l);
    }
  }

  async #closeListeners(which: (l: Listener) => boolean): Promise<void> {
    const closing = [...this.#listeners.values()].filter(which);
    for (const l of closing) this.#listeners.delete(l.key);
    await Promise.all(closing.map((l) => drainServer(l, this.state.runtime.limits.drainTimeout)));
  }

  #openAdmin(rt: Runtime): Promise<AdminServer> {
    return openAdmin(rt.config.admin.address, {
      ready: () => !this.state.draining && !this.#closed,
      jwks: () => this.#keys.jwks(),
      metrics: async () => ({ contentType: this.state.metrics.registry.contentType, body: await this.state.metrics.registry.metrics() }),
    });
  }

  async #swapAdmin(prev: Runtime, next: Runtime): Promise<void> {
    if (!this.#wantAdmin) return;
    const a = prev.config.admin.address;
    const b = next.config.admin.address;
    if (a.host === b.host && a.port === b.port) return;
    const old = this.#admin;
    this.#admin = await this.#openAdmin(next);
    await old?.close();
  }

  #watch(): void {
    const file = resolve(this.#file);
    let timer: NodeJS.Timeout | undefined;
    // Watch the directory: editors often replace the file (rename), which a file watch would miss.
    this.#watcher = watch(dirname(file), (_event, name) => {
      if (name !== null && name !== basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => void this.reload(), 200);
    });
    this.#watcher.unref();
  }

  /**
   * Graceful shutdown: readiness goes false, listeners stop accepting, idle keep-alive connections
   * close, HTTP/2 sessions get GOAWAY, and in-flight requests get `drainTimeout` to finish.
   */
  async close(drainTimeout = this.state.runtime.limits.drainTimeout): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.state.draining = true;
    this.#watcher?.close();
    this.#certificates.close();
    for (const s of this.#sessions) s.close();
    await Promise.all([...this.#listeners.values()].map((l) => drainServer(l, drainTimeout)));
    this.#listeners.clear();
    await this.state.runtime.close();
    await this.#admin?.close();
    this.state.logger.info('portcullis stopped');
    this.state.logger.flush?.();
  }
}

/** Stop accepting, let in-flight requests finish, then cut what is left after `timeout`. */
function drainServer(l: Listener, timeout: number): Promise<void> {
  return new Promise((resolve) => {
    const server = l.server as import('node:http').Server;
    // Connections that finish their response become idle; close them as they do.
    const sweep = setInterval(() => server.closeIdleConnections?.(), 50);
    const timer = setTimeout(() => {
      for (const s of l.sockets) s.destroy();
    }, timeout);
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections?.();
  });
}
