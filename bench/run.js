// `npm run bench`: Portcullis against its yardsticks, on loopback, with wrk.
//
// Targets, measured one after another in rounds whose order alternates:
//   backend     the bench backend itself (the ceiling of the whole setup)
//   nginx       nginx as a keep-alive reverse proxy (Debian package), one worker
//   reference   bench/reference-proxy.js: node:http + one undici Pool, the practical ceiling of
//               one Node process, and therefore the yardstick
//   portcullis  one gateway process serving every scenario (see SCENARIOS) on its own route, access
//               log on as shipped: portcullis (plain proxy), portcullis-jwt (ES256 bearer token,
//               verified-token cache warm), portcullis-apikey (x-api-key header)
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
//   --only=a,b       BENCH_ONLY         run only these targets: backend, nginx, reference, and the
//                                       scenarios by name or alias (portcullis-jwt or jwt, plain …);
//                                       `portcullis` alone means every scenario. The plain scenario
//                                       always runs with an authenticated one (their ratio is the point)
//   --access-log=F   BENCH_ACCESS_LOG   send the gateway's stdout (its access log) to file F
//                                       instead of /dev/null
//   --strict         BENCH_STRICT=1     exit 1 when a target below is missed
//   --gateway=FILE   BENCH_GATEWAY      the gateway CLI to run (default dist/src/cli/bin.js), e.g.
//                                       another build, to compare two versions
//
// Target (the contract): plain proxying, Portcullis >= 0.9x the reference req/s and its p99
// <= 1.5x the reference p99, same run. Edge authentication, against plain Portcullis in the same
// run: JWT (ES256, verified-token cache warm) >= 0.85x its req/s, API key >= 0.9x.
//
// Every response measured must be a 2xx: before measuring, each scenario is asked once with its
// credential (must be 200 from the backend) and with a wrong one and none (must be 401), and any
// wrk run that sees a status >= 400 stops the bench (exit 3). After the run the gateway's own
// auth counters (admin /metrics) must show an allowed decision for every request wrk counted.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const INSTALL_HINT = 'sudo apt-get install -y nginx wrk';
const TARGET = { minRps: 0.9, maxP99: 1.5 };

/**
 * Portcullis scenarios: each adds one route to the gateway config and drives it with its own
 * request path and headers. `config`, `headers` and `badHeaders` are functions of the credentials
 * the bench generates at start (see makeCredentials); `config` is merged into the top level of the
 * generated config (objects merged, arrays concatenated). `badHeaders` are wrong credentials that
 * must get a 401 before anything is measured. `minRps` is the target against the first scenario,
 * `portcullis` (plain proxying), which is itself checked against the reference.
 */
const SCENARIOS = [
  {
    name: 'portcullis',
    alias: 'plain',
    description: 'plain proxy route, access log on',
    route: { name: 'plain', match: { path: '/**' }, upstream: 'backend' },
    path: '/bench/plain',
    headers: () => ({}),
  },
  {
    name: 'portcullis-jwt',
    alias: 'jwt',
    description: 'ES256 JWT route (key file), one token: verified-token cache warm',
    route: { name: 'jwt', match: { path: '/jwt/**' }, upstream: 'backend', authenticate: ['idp'] },
    config: (c) => ({
      authenticators: { idp: { type: 'jwt', issuer: c.issuer, audience: c.audience, keyFile: c.jwksFile, algorithms: ['ES256'] } },
    }),
    path: '/jwt/bench',
    headers: (c) => ({ authorization: `Bearer ${c.token}` }),
    badHeaders: (c) => ({ authorization: `Bearer ${c.foreignToken}` }),
    authenticator: 'idp',
    minRps: 0.85,
  },
  {
    name: 'portcullis-apikey',
    alias: 'apikey',
    description: 'API-key route (x-api-key header)',
    route: { name: 'apikey', match: { path: '/key/**' }, upstream: 'backend', authenticate: ['key'] },
    config: (c) => ({
      authenticators: { key: { type: 'apiKey', header: 'x-api-key' } },
      consumers: [{ id: c.subject, apiKeys: [`sha256:${createHash('sha256').update(c.apiKey).digest('hex')}`] }],
    }),
    path: '/key/bench',
    headers: (c) => ({ 'x-api-key': c.apiKey }),
    badHeaders: (c) => ({ 'x-api-key': c.wrongApiKey }),
    authenticator: 'key',
    minRps: 0.9,
  },
];

/**
 * Credentials for the authenticated scenarios, made fresh for every run: an ES256 key pair whose
 * public half goes into a JWKS file in the temp dir, ONE token signed with it (every wrk request
 * sends the same token, so after the first request the verified-token cache answers), a token of
 * the same shape signed by a foreign key, and an API key (the config holds only its digest).
 * The token outlives the whole run (an expired token would turn every request into a 401).
 */
async function makeCredentials(dir, lifetimeSeconds) {
  const issuer = 'https://idp.bench.invalid';
  const audience = 'portcullis-bench';
  const subject = 'bench-client'; // also the API-key consumer: both routes send the same identity upstream
  const kid = 'bench-es256';
  const sign = (privateKey) =>
    new SignJWT({ scope: 'bench' })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSeconds)
      .sign(privateKey);
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwksFile = join(dir, 'bench-jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...pair.publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] }));
  return {
    issuer,
    audience,
    subject,
    jwksFile,
    token: await sign(pair.privateKey),
    foreignToken: await sign(foreign.privateKey),
    apiKey: `ptc_${randomBytes(32).toString('base64url')}`,
    wrongApiKey: `ptc_${randomBytes(32).toString('base64url')}`,
  };
}

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

function gatewayConfig(port, adminPort, backendPort, credentials) {
  // JSON is YAML, so the generated file needs no YAML writer. Access log left at its default (on).
  // Every scenario's route is in the config whatever --only selects, so the gateway is the same.
  const config = {
    listeners: [{ address: `127.0.0.1:${port}` }],
    admin: { address: `127.0.0.1:${adminPort}` },
    limits: { drainTimeout: '1s' },
    upstreams: { backend: { targets: [`http://127.0.0.1:${backendPort}`] } },
    routes: [],
  };
  for (const s of SCENARIOS) {
    config.routes.push(s.route);
    // Merged, not assigned: two scenarios both add `authenticators`.
    for (const [key, value] of Object.entries(s.config?.(credentials) ?? {})) {
      const had = config[key];
      config[key] = Array.isArray(had) ? [...had, ...value] : had !== undefined ? { ...had, ...value } : value;
    }
  }
  return config;
}

/**
 * Before measuring, prove the scenario's route does what it says: its credential gets a 200 from
 * the backend, and (authenticated routes) a wrong credential and no credential get a 401. A
 * gateway that let everything through, or refused the good credential, would otherwise be
 * measured on the wrong code path.
 */
async function checkScenario(s, port, credentials) {
  const ask = async (headers) => {
    const res = await fetch(`http://127.0.0.1:${port}${s.path}`, { headers, signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  };
  const good = await ask(s.headers(credentials));
  if (good.status !== 200 || !good.body.includes('bench-backend'))
    fail(`${s.name}: the request with the scenario's credential got ${good.status}, not 200 from the backend:\n${good.body.slice(0, 500)}`, 3);
  if (s.badHeaders === undefined) return;
  for (const [what, headers] of [
    ['a wrong credential', s.badHeaders(credentials)],
    ['no credential', {}],
  ]) {
    const bad = await ask(headers);
    if (bad.status !== 401) fail(`${s.name}: a request with ${what} got ${bad.status}, not 401: the route does not authenticate\n${bad.body.slice(0, 500)}`, 3);
  }
}

/** The gateway's auth counters from admin /metrics: { 'idp allowed': n, 'idp cache hit': n, … }. */
async function authCounters(adminPort) {
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await res.text();
  const counters = {};
  for (const line of text.split('\n')) {
    const m = /^portcullis_auth_(decisions|token_cache)_total\{([^}]*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries([...m[2].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    const key = m[1] === 'decisions' ? `${labels.authenticator} ${labels.outcome}` : `${labels.authenticator} cache ${labels.result}`;
    counters[key] = (counters[key] ?? 0) + Number(m[3]);
  }
  return counters;
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
      // wrk counts every response with a status >= 400 as a status error. Such a run measured an
      // error path (a 401 is far cheaper than proxying), not the scenario: stop here, loudly.
      if (r.errors.status > 0)
        return reject(
          new Error(`${target.name}: ${r.errors.status} of ${r.requests} responses had a status >= 400; the measurement is not of the scenario, stopping`),
        );
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
    errorsByKind: Object.fromEntries(Object.keys(runs[0].errors).map((k) => [k, runs.reduce((n, r) => n + r.errors[k], 0)])),
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

  const known = ['backend', 'nginx', 'reference', ...SCENARIOS.flatMap((s) => [s.name, s.alias])];
  const unknown = opts.only.filter((n) => !known.includes(n));
  if (unknown.length > 0) fail(`--only: unknown target(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  const scenarios = SCENARIOS.filter((s, i) => {
    if (want(s.name) || opts.only.includes(s.alias)) return true;
    // The authenticated scenarios are reported as ratios of the plain one: never run them without it.
    return i === 0 && SCENARIOS.slice(1).some((a) => opts.only.includes(a.name) || opts.only.includes(a.alias));
  });
  let admin;
  if (scenarios.length > 0) {
    const [port, adminPort] = [await freePort(), await freePort()];
    // Long enough for the whole run: an expired token would make every request a 401.
    const planned = opts.rounds * (opts.warmup + opts.duration + 2) * (targets.length + scenarios.length);
    const credentials = await makeCredentials(tmp, 3600 + Math.ceil(planned));
    const conf = join(tmp, 'portcullis.yaml');
    writeFileSync(conf, JSON.stringify(gatewayConfig(port, adminPort, backendPort, credentials), null, 2));
    // The access log goes to stdout; /dev/null keeps disk speed out of the measurement.
    const logFd = openSync(opts.accessLog ?? '/dev/null', 'a');
    const gw = startServer('portcullis', 1, node, [opts.gateway, 'start', '-c', conf], logFd);
    await waitReady('portcullis', port, SCENARIOS[0].path);
    for (const s of SCENARIOS) await checkScenario(s, port, credentials);
    admin = { port: adminPort, before: await authCounters(adminPort) };
    for (const s of scenarios) targets.push({ name: s.name, pid: gw.pid, port, path: s.path, headers: s.headers(credentials), scenario: s });
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
  const width = Math.max(...targets.map((t) => t.name.length));
  for (let round = 0; round < opts.rounds; round++) {
    // Alternate the order so drift (thermal, page cache, neighbours) does not favour one target.
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      // Responses wrk counted, warm-ups included: checked against the gateway's auth counters.
      if (opts.warmup > 0) t.requests = (t.requests ?? 0) + (await runWrk(t, opts.warmup, opts)).requests;
      const r = await runWrk(t, opts.duration, opts);
      t.requests = (t.requests ?? 0) + r.requests;
      runs[t.name].push(r);
      process.stdout.write(
        `  round ${round + 1} ${t.name.padEnd(width)} ${pad(Math.round(r.rps), 7)} req/s  p50 ${ms(r.latency_us.p50)} ms  p99 ${ms(r.latency_us.p99)} ms` +
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
  // Authenticated scenarios against plain Portcullis, same gateway process, adjacent in every round.
  const scenarioRatios = {};
  const plain = summary[SCENARIOS[0].name];
  const authScenarios = targets.filter((t) => t.scenario?.minRps !== undefined);
  if (plain !== undefined && authScenarios.length > 0) {
    process.stdout.write(`\nscenario ratios vs plain ${SCENARIOS[0].name} (same run):\n`);
    for (const t of authScenarios) {
      const s = summary[t.name];
      const perRound = runs[t.name].map((r, i) => r.rps / runs[SCENARIOS[0].name][i].rps);
      // CPU per request of the gateway is the steadier evidence on a shared machine: plain/scenario
      // is the throughput ratio a CPU-bound gateway would reach.
      const cpu = s.cpu === undefined || plain.cpu === undefined ? undefined : plain.cpu / s.cpu;
      const met = s.rps / plain.rps >= t.scenario.minRps ? 'PASS' : 'FAIL';
      scenarioRatios[t.name] = {
        rps: s.rps / plain.rps,
        p50: s.p50 / plain.p50,
        p99: s.p99 / plain.p99,
        cpu,
        rpsPerRound: perRound,
        target: t.scenario.minRps,
        verdict: met,
      };
      process.stdout.write(
        `  ${t.name.padEnd(18)} req/s ${scenarioRatios[t.name].rps.toFixed(3)}x (target >= ${t.scenario.minRps}x: ${met})` +
          `   p50 ${scenarioRatios[t.name].p50.toFixed(2)}x   p99 ${scenarioRatios[t.name].p99.toFixed(2)}x` +
          `   CPU-implied ${cpu === undefined ? '-' : `${cpu.toFixed(3)}x`}   (req/s per round: ${perRound.map((x) => x.toFixed(2)).join(' ')})\n`,
      );
    }
  }

  // The gateway's own count: every request wrk counted on an authenticated route must have been
  // allowed by that route's authenticator (a bypassed authenticator would count nothing), and for
  // the JWT one the verified-token cache must have answered (a cold cache means ES256 per request).
  let auth;
  if (admin !== undefined && authScenarios.length > 0) {
    const after = await authCounters(admin.port);
    const delta = (k) => (after[k] ?? 0) - (admin.before[k] ?? 0);
    auth = {};
    process.stdout.write('\ngateway auth counters during the runs (admin /metrics):\n');
    for (const t of authScenarios) {
      const a = t.scenario.authenticator;
      const sent = t.requests;
      auth[t.name] = {
        wrkRequests: sent,
        allowed: delta(`${a} allowed`),
        rejected: delta(`${a} rejected`),
        cacheHit: delta(`${a} cache hit`),
        cacheMiss: delta(`${a} cache miss`),
      };
      const c = auth[t.name];
      process.stdout.write(
        `  ${t.name.padEnd(18)} wrk counted ${sent}, ${a} allowed ${c.allowed}, rejected ${c.rejected}` +
          (c.cacheHit + c.cacheMiss > 0 ? `, verified-token cache hit ${c.cacheHit} miss ${c.cacheMiss}\n` : '\n'),
      );
      if (c.allowed < sent || c.rejected > 0)
        fail(`${t.name}: the gateway allowed ${c.allowed} and rejected ${c.rejected} for ${sent} requests wrk counted`, 3);
    }
  }

  const errors = Object.entries(summary).filter(([, s]) => s.errors > 0);
  for (const [name, s] of errors)
    process.stdout.write(
      `warning: ${name} had ${s.errors} wrk socket errors (${Object.entries(s.errorsByKind)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')})\n`,
    );

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
        scenarioRatios,
        auth,
        runs,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`\nresults: ${file}\n`);
  cleanup();
  const missed = verdict === 'FAIL' || Object.values(scenarioRatios).some((r) => r.verdict === 'FAIL');
  return opts.strict && missed ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  // After SIGINT the killed wrk rejects too; that is the interruption, not a failure to report.
  (err) => stopping || fail(err.stack ?? String(err), 3),
);
