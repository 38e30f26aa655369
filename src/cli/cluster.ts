/**
 * `--workers N`: a primary process that forks N gateway workers sharing the client listeners
 * (node:cluster), serves the admin listener itself with metrics aggregated from every worker,
 * forwards SIGHUP as a reload, drains workers on SIGTERM, and replaces a worker that dies.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError, formatProblem, type LoadedConfig, loadConfigFile } from '../config/load.js';
import { buildRuntime } from '../core/runtime.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { KeyRing } from '../outbound/key-ring.js';
import { openAdmin } from '../server/admin.js';
import { EXIT, start } from './main.js';

export async function startCluster(file: string, workers: number, watchFile: boolean): Promise<number> {
  if (!cluster.isPrimary) {
    // Worker: run the gateway without an admin listener; report metrics to the primary.
    return start(file, watchFile, {
      admin: false,
      onReady: (gw) => {
        // prom-client installs the worker's reply to the primary's metrics request only when an
        // AggregatorRegistry is constructed; without one the primary's /metrics times out (500).
        new AggregatorRegistry();
        AggregatorRegistry.setRegistries([gw.state.metrics.registry]);
        process.send?.('portcullis:ready');
      },
    });
  }
  let loaded: LoadedConfig;
  const keys = new KeyRing();
  try {
    loaded = await loadConfigFile(file);
    const rt = await buildRuntime(loaded, createMetrics(), createLogger('silent'));
    // The primary serves the admin listener, so it publishes the gateway key the workers sign with
    // (they load the same key: a generated one is created once, atomically). Reloads keep this key.
    keys.publish(rt.outbound?.identity);
    await rt.close();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write('portcullis: not started: the config is invalid\n');
    return EXIT.invalidConfig;
  }
  const logger = createLogger(loaded.config.log.level);
  const aggregator = new AggregatorRegistry();
  const ready = new Set<number>();
  let stopping = false;

  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (m: unknown) => {
      if (m === 'portcullis:ready') ready.add(w.id);
    });
    return w;
  };
  cluster.on('exit', (w, code, signal) => {
    ready.delete(w.id);
    if (stopping) return;
    logger.error({ worker: w.id, code, signal }, 'worker exited; starting a replacement');
    setTimeout(fork, 500);
  });
  for (let i = 0; i < workers; i++) fork();

  const admin = await openAdmin(loaded.config.admin.address, {
    ready: () => !stopping && ready.size === workers,
    jwks: () => keys.jwks(),
    metrics: async () => ({ contentType: aggregator.contentType, body: await (await aggregator.clusterMetrics()).toString() }),
  });
  logger.info({ workers, admin: `${admin.address().address}:${admin.address().port}` }, 'portcullis cluster started');

  return new Promise<number>((resolve) => {
    const each = (msg: string) => {
      for (const w of Object.values(cluster.workers ?? {})) w?.send(msg);
    };
    process.on('SIGHUP', () => each('portcullis:reload'));
    const stop = () => {
      if (stopping) process.exit(EXIT.runtime);
      stopping = true;
      each('portcullis:stop');
      const timer = setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL');
      }, loaded.config.limits.drainTimeout + 2_000);
      const check = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(check);
          clearTimeout(timer);
          admin.close().then(() => resolve(EXIT.ok));
        }
      }, 50);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
