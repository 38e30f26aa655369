/**
 * A real nginx as an HTTPS (optionally mutual-TLS) backend on loopback, configured in a temp
 * directory. It answers every request with 200 and the client certificate subject it verified, and
 * logs each request to an access log the tests read to prove what reached the backend.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, freePort } from './cli-process.js';

/** The nginx binary, or undefined when it is not installed (Debian puts it in /usr/sbin). */
export function findNginx(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']) {
    if (dir !== '' && existsSync(join(dir, 'nginx'))) return join(dir, 'nginx');
  }
  return undefined;
}

/** Skip reason for a suite needing nginx; under CI=true a missing nginx fails instead (.ci/run installs it). */
export function nginxSkip(): string | false {
  if (findNginx() !== undefined) return false;
  if (process.env.CI === 'true') throw new Error('nginx is not installed, and CI=true forbids skipping: .ci/run should have installed it');
  return 'nginx is not installed';
}

export interface NginxOptions {
  readonly cert: string;
  readonly key: string;
  /** CA file that signs client certificates; with it, `ssl_verify_client on`. */
  readonly clientCa?: string;
}

export interface TestNginx {
  readonly port: number;
  readonly dir: string;
  /** Lines of the access log: `STATUS "REQUEST" "CLIENT-SUBJECT-DN"`. */
  accessLog(): string[];
  errorLog(): string;
  close(): Promise<void>;
}

export async function startNginx(dir: string, opts: NginxOptions): Promise<TestNginx> {
  const bin = findNginx();
  if (bin === undefined) throw new Error('nginx is not installed');
  const root = join(dir, `nginx-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(join(root, 'tmp'), { recursive: true });
  const port = await freePort();
  const access = join(root, 'access.log');
  const error = join(root, 'error.log');
  writeFileSync(access, '');
  const tmp = join(root, 'tmp');
  writeFileSync(
    join(root, 'nginx.conf'),
    `
pid ${join(root, 'nginx.pid')};
error_log ${error} info;
master_process off;
worker_processes 1;
events { worker_connections 64; }
http {
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  log_format t '$status "$request" "$ssl_client_s_dn"';
  access_log ${access} t;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${opts.cert};
    ssl_certificate_key ${opts.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ${opts.clientCa === undefined ? '' : `ssl_client_certificate ${opts.clientCa};\n    ssl_verify_client on;`}
    location / {
      default_type text/plain;
      return 200 "client=$ssl_client_s_dn\\n";
    }
  }
}
`,
  );
  const child: ChildProcess = spawn(bin, ['-p', root, '-e', error, '-c', join(root, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const net = await import('node:net');
  await eventually(
    () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
    },
    5_000,
    'nginx listening',
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; stderr: ${stderr}; error log: ${existsSync(error) ? readFileSync(error, 'utf8') : ''}`);
  });
  return {
    port,
    dir: root,
    accessLog: () =>
      readFileSync(access, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
    errorLog: () => (existsSync(error) ? readFileSync(error, 'utf8') : ''),
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGQUIT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
