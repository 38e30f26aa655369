/** Start a real gateway in-process on loopback, from YAML text, with its log lines captured. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';

export interface TestGateway {
  readonly gw: Gateway;
  /** Directory holding the config file (write certificates next to it). */
  readonly dir: string;
  readonly file: string;
  /** Base URL of the first listener, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly port: number;
  readonly adminUrl: string;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Lines with msg "request" (the access log). */
  accessLog(): Record<string, unknown>[];
  /** Replace the config file's text (does not reload by itself). */
  write(yaml: string): void;
  close(drainMs?: number): Promise<void>;
}

export function tempDir(prefix = 'ptc-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function captureLogger(lines: Record<string, unknown>[], raw?: string[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        raw?.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return createLogger('debug', sink);
}

/**
 * `yaml` may contain `{{dir}}`, replaced by the temp directory. Listener and admin addresses
 * should use port 0; the helper reads the bound ports back.
 */
export async function startGateway(yaml: string, options: { dir?: string; raw?: string[] } = {}): Promise<TestGateway> {
  const dir = options.dir ?? tempDir();
  const file = join(dir, 'portcullis.yaml');
  const write = (text: string) => writeFileSync(file, text.replaceAll('{{dir}}', dir));
  write(yaml);
  const logs: Record<string, unknown>[] = [];
  const gw = await Gateway.start({ file, logger: captureLogger(logs, options.raw) });
  const addresses = gw.addresses();
  const [firstKey] = Object.keys(addresses.listeners);
  const port = gw.port(firstKey as string);
  const scheme = gw.runtime.listeners[0]?.tls === undefined ? 'http' : 'https';
  return {
    gw,
    dir,
    file,
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    adminUrl: `http://127.0.0.1:${gw.adminPort() ?? 0}`,
    logs,
    accessLog: () => logs.filter((l) => l.msg === 'request'),
    write,
    close: (drainMs = 2_000) => gw.close(drainMs),
  };
}
