import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/gateway.js';
import { runCli } from '../helpers/cli-process.js';

function configFile(text: string, name = 'portcullis.yaml'): string {
  const file = join(tempDir('ptc-cli-'), name);
  writeFileSync(file, text);
  return file;
}

const VALID = `listeners:
  - address: "127.0.0.1:0"
upstreams:
  a: { targets: ["http://127.0.0.1:9"] }
routes:
  - name: api
    match: { path: /api/** }
    upstream: a
  - name: status
    match: { path: /status }
    respond: { status: 200, json: { ok: true } }
`;

/** A `${scheme:arg}` config reference. */
const ref = (what: string) => `$${'{'}${what}}`;

/** stderr lines that look like `FILE:LINE path: reason`. */
function problemLines(stderr: string, file: string): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith(`${file}:`) && /^\S+:\d+ /.test(l))
    .map((l) => l.slice(file.length + 1));
}

describe('portcullis validate', () => {
  it('exits 0 for a valid config', async () => {
    const file = configFile(VALID);
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${file}: valid\n`);
  });

  it('exits 1 and prints every problem as FILE:LINE path: reason', async () => {
    const file = configFile(`listeners:
  - address: "127.0.0.1:0"
    colour: blue
upstreams:
  a: { targets: ["http://127.0.0.1:9"], timeouts: { connect: soon } }
limits:
  maxHeaderCount: many
routes:
  - name: one
    match: { path: /one }
    upstream: nope
  - name: one
    match: { path: /two }
    respond: { status: 200 }
`);
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.deepEqual(problemLines(r.stderr, file), [
      '3 listeners[0].colour: unknown key "colour"',
      '5 upstreams.a.timeouts.connect: "soon" is not a duration (use e.g. 500ms, 10s, 2m)',
      '7 limits.maxHeaderCount: Invalid input: expected number, received string',
      '11 routes[0].upstream: unknown upstream "nope"',
      '12 routes[1].name: route name "one" is already used by routes[0]',
    ]);
    assert.match(r.stderr, /: 5 problems\n$/);
  });

  it('reports a route precedence tie at the second route', async () => {
    const file = configFile(`listeners:
  - address: "127.0.0.1:0"
routes:
  - name: first
    match: { path: /same, methods: [GET] }
    respond: { status: 200 }
  - name: second
    match: { path: /same, methods: [get, post] }
    respond: { status: 201 }
`);
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 1);
    assert.deepEqual(problemLines(r.stderr, file), ['8 routes[1].match: matches the same requests as routes[0] with equal precedence; make one more specific']);
  });

  it('reports a YAML syntax error with its line', async () => {
    const file = configFile(`listeners:
  - address: "127.0.0.1:0"
routes:
  - name: x
    match: { path: /x
    respond: { status: 200 }
`);
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 1);
    const lines = problemLines(r.stderr, file);
    assert.equal(lines.length >= 1, true, r.stderr);
    assert.match(lines[0] ?? '', /^[56] \(root\): YAML: /);
  });

  it('exits 1 with a clear message for a missing file', async () => {
    const file = join(tempDir('ptc-cli-'), 'absent.yaml');
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /absent\.yaml.*file not found/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it('reports a missing env reference as a problem on its line', async () => {
    const file = configFile(VALID.replace('json: { ok: true }', `body: "${ref('env:PTC_TEST_SURELY_UNSET')}"`));
    const env = { ...process.env };
    delete env.PTC_TEST_SURELY_UNSET;
    const r = await runCli(['validate', '-c', file], { env });
    assert.equal(r.code, 1);
    assert.deepEqual(problemLines(r.stderr, file), ['11 routes[1].respond.body: environment variable PTC_TEST_SURELY_UNSET is not set']);
    const ok = await runCli(['validate', '-c', file], { env: { ...env, PTC_TEST_SURELY_UNSET: 'hello' } });
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('resolves a file reference relative to the config file, and reports an unreadable one', async () => {
    const file = configFile(VALID.replace('"http://127.0.0.1:9"', `"${ref('file:target.txt')}"`));
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 1);
    assert.deepEqual(problemLines(r.stderr, file), ['4 upstreams.a.targets[0]: cannot read target.txt (ENOENT)']);
    writeFileSync(join(file, '..', 'target.txt'), 'http://127.0.0.1:9\n');
    const ok = await runCli(['validate', '-c', file]);
    assert.equal(ok.code, 0, ok.stderr);
    // And a value that is wrong once resolved is still checked.
    writeFileSync(join(file, '..', 'target.txt'), 'ftp://127.0.0.1:9\n');
    const bad = await runCli(['validate', '-c', file]);
    assert.equal(bad.code, 1);
    assert.deepEqual(problemLines(bad.stderr, file), ['4 upstreams.a.targets[0]: "ftp://127.0.0.1:9" must be http:// or https://']);
  });

  it('refuses validate without -c as a usage error', async () => {
    const r = await runCli(['validate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /validate needs -c FILE/);
  });
});

describe('portcullis start with an invalid config', () => {
  it('does not start and exits 1, printing the problems', async () => {
    const file = configFile(VALID.replace('upstream: a', 'upstream: b'));
    const r = await runCli(['start', '-c', file]);
    assert.equal(r.code, 1);
    assert.deepEqual(problemLines(r.stderr, file), ['8 routes[0].upstream: unknown upstream "b"']);
    assert.match(r.stderr, /not started: the config is invalid/);
  });
});

describe('portcullis schema, --version, --help', () => {
  it('schema prints a JSON Schema of the config', async () => {
    const r = await runCli(['schema']);
    assert.equal(r.code, 0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown>; title: string };
    assert.equal(typeof schema.properties.listeners, 'object');
    assert.equal(typeof schema.properties.routes, 'object');
    assert.equal(schema.title, 'Portcullis configuration');
  });

  it('--version prints the package.json version', async () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const r = await runCli([flag]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `${pkg.version}\n`);
    }
  });

  it('--help prints usage and exits 0', async () => {
    for (const args of [['--help'], ['-h'], ['help'], ['start', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /^Usage: portcullis <command>/);
      assert.match(r.stdout, /validate -c FILE/);
    }
  });

  it('no command prints usage and exits 2', async () => {
    const r = await runCli([]);
    assert.equal(r.code, 2);
    assert.match(r.stdout + r.stderr, /Usage: portcullis/);
  });

  it('an unknown command or option exits 2', async () => {
    const cmd = await runCli(['launch']);
    assert.equal(cmd.code, 2);
    assert.match(cmd.stderr, /unknown command "launch"/);
    const opt = await runCli(['validate', '--frobnicate']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /frobnicate/);
    const workers = await runCli(['start', '-c', 'x.yaml', '--workers', 'two']);
    assert.equal(workers.code, 2);
    assert.match(workers.stderr, /--workers must be a whole number/);
  });
});
