// `npm run bench`: Portcullis against its yardsticks, on loopback, with wrk.
//
// Targets, measured one after another in rounds whose order alternates:
//   backend     the bench backend itself (the ceiling of the whole setup)
//   nginx       nginx as a keep-alive reverse proxy (Debian package), one worker
//   reference   bench/reference-proxy.js: node:http + one undici Pool, the practical ceiling of
//               one Node process, and therefore the yardstick
//   portcullis  one gateway process per scenario (see SCENARIOS), access log on as shipped
//
// With 2+ CPUs the backend and wrk share CPU 0 and each proxy gets CPU 1 to itself (taskset).
// The median of the rounds is reported per target; results also go to bench/results/*.json.
//
// Options (flag or environment variable):
//   --duration=10s   BENCH_DURATION     measured time per run
//   --warmup=3s      BENCH_WARMUP       unmeasured wrk run before each measured one (JIT, pools)
//   --rounds=3       BENCH_ROUNDS
//   --connections=50 BENCH_CONNECTIONS
//   --threads=1      BENCH_THREADS      wrk threads (1-2)
//   --only=a,b       BENCH_ONLY         run only these targets (backend,nginx,reference,portcullis…)
//   --access-log=F   BENCH_ACCESS_LOG   send the gateway's stdout (its access log) to file F
//                                       instead of /dev/null
//   --strict         BENCH_STRICT=1     exit 1 when the target below is missed
//   --gateway=FILE   BENCH_GATEWAY      the gateway CLI to run (default dist/src/cli/bin.js), e.g.
//                                       another build, to compare two versions
//
// Target (the contract): plain proxying, Portcullis >= 0.9x the reference req/s and its p99
// <= 1.5x the reference p99, same run.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const INSTALL_HINT = 'sudo apt-get install -y nginx wrk';
const TARGET = { minRps: 0.9, maxP99: 1.5 };

/**
 * Portcullis scenarios: each adds one route to the gateway config and drives it with its own
 * request path and headers. Later capabilities (JWT, API key …) add an entry here; `config`
 * is merged into the top level of the generated config (e.g. `authenticators`).
 * The first scenario, `portcullis`, is the one the target is checked against.
 */
const SCENARIOS = [
  {
    name: 'portcullis',
    description: 'plain proxy route, access log on',
    route: { name: 'plain', match: { path: '/**' }, upstream: 'backend' },
    path: '/bench/plain',
    headers: {},
  },
  // {
  //   name: 'portcullis-jwt',
  //   description: 'JWT-authenticated route',
  //   route: { name: 'jwt', match: { path: '/jwt/**' }, upstream: 'backend', authenticate: ['jwt'] },
  //   config: { authenticators: { jwt: { … } } },
  //   path: '/jwt/x',
  //   headers: { authorization: 'Bearer …' },
  // },
];

// ---- options ---------------------------------------------------------------------------------

function options() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      connections: { type: 'string' },
      threads: { type: 'string' },
      only: { type: 'string' },
      'access-log': { type: 'string' },
      strict: { type: 'boolean' },
      gateway: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0]}\n`);
    process.exit(0);
  }
  const env = process.env;
  const seconds = (v, what) => {
    const m = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(String(v));
    if (m === null) fail(`${what}: "${v}" is not a duration like 10s or 1m`);
    return Number(m[1]) * (m[2] === 'm' ? 60 : 1);
  };
  const int = (v, what, min, max) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) fail(`${what}: "${v}" is not a whole number from ${min} to ${max}`);
    return n;
  };
  return {
    duration: seconds(values.duration ?? env.BENCH_DURATION ?? '10s', 'duration'),
    warmup: seconds(values.warmup ?? env.BENCH_WARMUP ?? '3s', 'warmup'),
    rounds: int(values.rounds ?? env.BENCH_ROUNDS ?? 3, 'rounds', 1, 50),
    connections: int(values.connections ?? env.BENCH_CONNECTIONS ?? 50, 'connections', 1, 10_000),
    threads: int(values.threads ?? env.BENCH_THREADS ?? 1, 'threads', 1, 2),
    only: (values.only ?? env.BENCH_ONLY ?? '').split(',').filter(Boolean),
    accessLog: values['access-log'] ?? env.BENCH_ACCESS_LOG,
    strict: values.strict === true || env.BENCH_STRICT === '1',
    gateway: resolve(values.gateway ?? env.BENCH_GATEWAY ?? join(ROOT, 'dist/src/cli/bin.js')),
  };
}

function fail(message, code = 2) {
  process.stderr.write(`bench: ${message}\n`);
  cleanup();
  process.exit(code);
}

// ---- child processes -------------------------------------------------------------------------

const children = new Set();
let tmp;
/** Set once we are tearing down, so children exiting is expected rather than a failure. */
let stopping = false;

function cleanup() {
  stopping = true;
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      // A gateway drains on SIGTERM; nothing should be in flight, but never wait on it.
      setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), 2_000).unref();
    }
  }
  if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping\n`);
    cleanup();
    setTimeout(() => process.exit(130), 2_100);
  });
}
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function has(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `taskset -c CPU cmd …` when pinning is on, else `cmd …`. */
function pinned(cpu, command, args) {
  return PIN ? ['taskset', ['-c', String(cpu), command, ...args]] : [command, args];
}

/** Spawn a long-running server; its stdout goes to `stdout` ('pipe' to read a port from it). */
function startServer(name, cpu, command, args, stdout = 'ignore') {
  const [cmd, argv] = pinned(cpu, command, args);
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', stdout, 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr.on('data', (c) => {
    stderr = (stderr + c).slice(-4_000);
  });
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (!stopping) fail(`${name} exited early (code ${code}, signal ${signal})\n${stderr}`, 3);
  });
  return child;
}

/** Read the port a child prints as its first stdout line. */
function portFrom(child, name) {
  return new Promise((resolve_, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not report its port within 10s`)), 10_000);
    child.stdout.on('data', (c) => {
      buf += c;
      const nl = buf.indexOf('\n');
      if (nl !== -1) {
        clearTimeout(timer);
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve_(Number(buf.slice(0, nl)));
      }
    });
  });
}

/** A port that was free a moment ago (for servers that need it in a config file). */
function freePort() {
  return new Promise((resolve_, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve_(port));
    });
  });
}

/** Wait until `GET path` on the port answers 200 (bounded). */
async function waitReady(name, port, path = '/') {
  const deadline = Date.now() + 15_000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  fail(`${name} on port ${port} not ready within 15s (${last})`, 3);
}

// ---- the targets -----------------------------------------------------------------------------

function nginxConfig(dir, port, backendPort) {
  // One worker, upstream keep-alive, HTTP/1.1 upstream with Connection cleared — nginx at its
  // recommended proxy settings. Every path nginx would write to is inside the temp dir.
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

function gatewayConfig(port, backendPort) {
  // JSON is YAML, so the generated file needs no YAML writer. Access log left at its default (on).
  const config = {
    listeners: [{ address: `127.0.0.1:${port}` }],
    admin: { address: '127.0.0.1:0' },
    limits: { drainTimeout: '1s' },
    upstreams: { backend: { targets: [`http://127.0.0.1:${backendPort}`] } },
    routes: [],
  };
  for (const s of SCENARIOS) {
    config.routes.push(s.route);
    Object.assign(config, s.config ?? {});
  }
  return config;
}

/** A wrk script: the scenario's headers, plus a `done` hook that prints the results as JSON. */
function wrkScript(headers) {
  const lines = Object.entries(headers).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  return `${lines.join('\n')}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`;
}

/**
 * CPU time (user + system, in microseconds) used so far by a process and its direct children
 * (nginx's worker). Divided by the requests served it gives CPU per request, which stays
 * meaningful when other work shares the machine and throughput numbers get noisy. Linux only.
 */
function cpuMicros(pid) {
  if (pid === undefined) return undefined;
  try {
    const tick = 1e6 / 100; // USER_HZ is 100 on Linux
    const read = (p) => {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) * tick; // utime, stime
    };
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return read(pid) + kids.reduce((n, k) => n + read(k), 0);
  } catch {
    return undefined;
  }
}

/** One wrk run against a target; resolves to its parsed JSON summary. Bounded in time. */
function runWrk(target, seconds, opts) {
  const url = `http://127.0.0.1:${target.port}${target.path}`;
  const args = ['-t', String(opts.threads), '-c', String(opts.connections), '-d', `${seconds}s`, '--timeout', '5s', '-s', target.script, url];
  const [cmd, argv] = pinned(0, 'wrk', args);
  return new Promise((resolve_, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const cpuBefore = cpuMicros(target.pid);
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.once('exit', (code) => {
      clearTimeout(killer);
      children.delete(child);
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (code !== 0 || line === undefined) return reject(new Error(`wrk against ${target.name} failed (code ${code}):\n${out}`));
      const r = JSON.parse(line.slice('BENCH_JSON '.length));
      const cpuAfter = cpuMicros(target.pid);
      const cpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / r.requests;
      resolve_({ ...r, rps: r.requests / (r.duration_us / 1e6), cpu_us_per_request: cpu });
    });
  });
}

// ---- reporting -------------------------------------------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms = (us) => (us / 1000).toFixed(2);
const pad = (s, n) => String(s).padStart(n);

function summarise(runs) {
  return {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.latency_us.p50)),
    p99: median(runs.map((r) => r.latency_us.p99)),
    cpu: runs.some((r) => r.cpu_us_per_request === undefined) ? undefined : median(runs.map((r) => r.cpu_us_per_request)),
    errors: runs.reduce((n, r) => n + Object.values(r.errors).reduce((a, b) => a + b, 0), 0),
    rounds: runs.map((r) => ({ rps: Math.round(r.rps), p50_us: r.latency_us.p50, p99_us: r.latency_us.p99 })),
  };
}

function printTable(summary) {
  const rows = [['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors', 'req/s per round']];
  for (const [name, s] of Object.entries(summary))
    rows.push([name, Math.round(s.rps), ms(s.p50), ms(s.p99), s.cpu === undefined ? '-' : s.cpu.toFixed(1), s.errors, s.rounds.map((r) => r.rps).join(' ')]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const last = rows[0].length - 1;
  for (const r of rows)
    process.stdout.write(`${`${r.map((c, i) => (i === 0 || i === last ? String(c).padEnd(widths[i]) : pad(c, widths[i]))).join('  ')}\n`.trimEnd()}\n`);
}

// ---- main ------------------------------------------------------------------------------------

const PIN = os.availableParallelism() >= 2 && has('taskset');

async function main() {
  const opts = options();
  if (!has('wrk')) fail(`wrk is required but not installed. Install it (and nginx) with:\n  ${INSTALL_HINT}`, 1);
  const withNginx = has('nginx');
  if (!withNginx) process.stderr.write(`bench: nginx not found, skipping it. Install with:\n  ${INSTALL_HINT}\n`);
  if (os.availableParallelism() >= 2 && !PIN) process.stderr.write('bench: taskset not found; processes are not pinned\n');
  const want = (name) => opts.only.length === 0 || opts.only.includes(name);

  tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-bench-'));
  const node = process.execPath;
  const targets = [];

  // Backend first: every proxy points at it.
  const backend = startServer('backend', 0, node, [join(ROOT, 'bench/backend.js')], 'pipe');
  const backendPort = await portFrom(backend, 'backend');
  await waitReady('backend', backendPort);
  if (want('backend')) targets.push({ name: 'backend', pid: backend.pid, port: backendPort, path: '/bench/plain', headers: {} });

  if (withNginx && want('nginx')) {
    const port = await freePort();
    const conf = join(tmp, 'nginx.conf');
    writeFileSync(conf, nginxConfig(tmp, port, backendPort));
    const child = startServer('nginx', 1, 'nginx', ['-c', conf, '-p', tmp, '-e', join(tmp, 'nginx-error.log'), '-g', 'daemon off;']);
    await waitReady('nginx', port);
    targets.push({ name: 'nginx', pid: child.pid, port, path: '/bench/plain', headers: {} });
  }

  if (want('reference')) {
    const ref = startServer('reference', 1, node, [join(ROOT, 'bench/reference-proxy.js'), `http://127.0.0.1:${backendPort}`], 'pipe');
    const port = await portFrom(ref, 'reference');
    await waitReady('reference', port);
    targets.push({ name: 'reference', pid: ref.pid, port, path: '/bench/plain', headers: {} });
  }

  const scenarios = SCENARIOS.filter((s) => want(s.name) || (opts.only.includes('portcullis') && s.name.startsWith('portcullis')));
  if (scenarios.length > 0) {
    const port = await freePort();
    const conf = join(tmp, 'portcullis.yaml');
    writeFileSync(conf, JSON.stringify(gatewayConfig(port, backendPort), null, 2));
    // The access log goes to stdout; /dev/null keeps disk speed out of the measurement.
    const logFd = openSync(opts.accessLog ?? '/dev/null', 'a');
    const gw = startServer('portcullis', 1, node, [opts.gateway, 'start', '-c', conf], logFd);
    await waitReady('portcullis', port, SCENARIOS[0].path);
    for (const s of scenarios) targets.push({ name: s.name, pid: gw.pid, port, path: s.path, headers: s.headers });
  }
  for (const t of targets) {
    t.script = join(tmp, `${t.name}.lua`);
    writeFileSync(t.script, wrkScript(t.headers));
  }

  const runs = Object.fromEntries(targets.map((t) => [t.name, []]));
  process.stdout.write(
    `bench: ${targets.map((t) => t.name).join(', ')}; ${opts.rounds} rounds × ${opts.duration}s (+${opts.warmup}s warm-up), ` +
      `${opts.connections} connections, ${opts.threads} wrk thread(s), ${PIN ? 'wrk+backend on CPU 0, proxy on CPU 1' : 'not pinned'}\n`,
  );
  for (let round = 0; round < opts.rounds; round++) {
    // Alternate the order so drift (thermal, page cache, neighbours) does not favour one target.
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      if (opts.warmup > 0) await runWrk(t, opts.warmup, opts);
      const r = await runWrk(t, opts.duration, opts);
      runs[t.name].push(r);
      process.stdout.write(
        `  round ${round + 1} ${t.name.padEnd(12)} ${pad(Math.round(r.rps), 7)} req/s  p50 ${ms(r.latency_us.p50)} ms  p99 ${ms(r.latency_us.p99)} ms` +
          (r.cpu_us_per_request === undefined ? '\n' : `  CPU ${r.cpu_us_per_request.toFixed(1)} µs/req\n`),
      );
    }
  }

  const summary = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarise(v)]));
  process.stdout.write(`\nmedian of ${opts.rounds} round(s):\n`);
  printTable(summary);

  const ratios = {};
  const gw = summary.portcullis;
  if (gw !== undefined) {
    process.stdout.write('\nportcullis ratios:\n');
    for (const other of ['reference', 'nginx', 'backend']) {
      const o = summary[other];
      if (o === undefined) continue;
      // Rounds run back to back, so round i of both targets saw the same machine: the per-round
      // ratios show how steady the comparison is when the medians move with outside load.
      const perRound = runs.portcullis.map((r, i) => r.rps / runs[other][i].rps);
      ratios[other] = { rps: gw.rps / o.rps, p99: gw.p99 / o.p99, p50: gw.p50 / o.p50, rpsPerRound: perRound };
      process.stdout.write(
        `  vs ${other.padEnd(9)}  req/s ${ratios[other].rps.toFixed(3)}x   p50 ${ratios[other].p50.toFixed(2)}x   p99 ${ratios[other].p99.toFixed(2)}x` +
          `   (req/s per round: ${perRound.map((x) => x.toFixed(2)).join(' ')})\n`,
      );
    }
  }
  let verdict;
  if (ratios.reference !== undefined) {
    const ok = ratios.reference.rps >= TARGET.minRps && ratios.reference.p99 <= TARGET.maxP99;
    verdict = ok ? 'PASS' : 'FAIL';
    process.stdout.write(
      `\ntarget (req/s >= ${TARGET.minRps}x reference, p99 <= ${TARGET.maxP99}x reference): ${verdict} ` +
        `(${ratios.reference.rps.toFixed(3)}x, ${ratios.reference.p99.toFixed(2)}x)\n`,
    );
  }
  const errors = Object.entries(summary).filter(([, s]) => s.errors > 0);
  for (const [name, s] of errors) process.stdout.write(`warning: ${name} had ${s.errors} wrk errors (non-2xx, timeouts or socket errors)\n`);

  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const wrkVersion = (() => {
    try {
      return execFileSync('wrk', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0];
    } catch (err) {
      return String(err.stdout ?? '').split('\n')[0]; // wrk -v exits non-zero
    }
  })();
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        options: opts,
        environment: { node: process.version, cpus: os.availableParallelism(), cpu: os.cpus()[0]?.model, pinned: PIN, wrk: wrkVersion },
        target: TARGET,
        verdict,
        summary,
        ratios,
        runs,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`\nresults: ${file}\n`);
  cleanup();
  return opts.strict && verdict === 'FAIL' ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  // After SIGINT the killed wrk rejects too; that is the interruption, not a failure to report.
  (err) => stopping || fail(err.stack ?? String(err), 3),
);
