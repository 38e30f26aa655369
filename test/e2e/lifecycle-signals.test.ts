import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { tempDir } from '../helpers/gateway.js';
import { eventually, freePort, killAll, type RunningCli, spawnCli } from '../helpers/cli-process.js';

const config = (port: number, adminPort: number, version: string) => `listeners: [{ address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${adminPort}" }
routes:
  - name: version
    match: { path: /version }
    respond: { status: 200, json: { version: ${version} } }
`;

async function version(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/version`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { version: string }).version;
}

async function start(watch: boolean): Promise<{ cli: RunningCli; port: number; write: (text: string) => void; cfg: (v: string) => string }> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const file = join(tempDir('ptc-sig-'), 'portcullis.yaml');
  const cfg = (v: string) => config(port, adminPort, v);
  writeFileSync(file, cfg('A'));
  const cli = spawnCli(['start', '-c', file, ...(watch ? ['--watch'] : [])]);
  await cli.waitForLog((l) => l.msg === 'portcullis started', 15_000);
  return { cli, port, write: (text) => writeFileSync(file, text), cfg };
}

const reloaded = (l: Record<string, unknown>) => l.msg === 'config reloaded';
const rejected = (l: Record<string, unknown>) => String(l.msg).includes('config reload rejected');

describe('reload in the real process', () => {
  afterEach(killAll);

  it('SIGHUP reloads the file; an invalid file is rejected and the old config keeps serving', async () => {
    const { cli, port, write, cfg } = await start(false);
    assert.equal(await version(port), 'A');

    write(cfg('B'));
    await new Promise((r) => setTimeout(r, 600)); // longer than the --watch debounce
    assert.equal(await version(port), 'A', 'without --watch, a changed file alone does nothing');

    cli.child.kill('SIGHUP');
    await cli.waitForLog(reloaded);
    assert.equal(await version(port), 'B');

    write(`${cfg('C')}\n  - name: [oops\n`);
    cli.child.kill('SIGHUP');
    const line = await cli.waitForLog(rejected);
    assert.equal(line.level, 'error');
    assert.match(JSON.stringify(line.problems), /portcullis\.yaml:\d+ \(root\): YAML: /);
    assert.equal(await version(port), 'B', 'the old config keeps serving');
    assert.equal(cli.child.exitCode, null, 'the process is still running');
  });

  it('--watch reloads when the file changes, and rejects an invalid change', async () => {
    const { cli, port, write, cfg } = await start(true);
    assert.equal(await version(port), 'A');

    write(cfg('B'));
    await eventually(async () => (await version(port)) === 'B', 5_000, 'the new config is served');
    assert.ok(cli.logs.some(reloaded));

    write(cfg('C').replace('status: 200', 'status: 200, colour: red'));
    const line = await cli.waitForLog(rejected);
    assert.match(JSON.stringify(line.problems), /portcullis\.yaml:6 routes\[0\]\.respond\.colour: unknown key/);
    assert.equal(await version(port), 'B');

    write(cfg('D'));
    await eventually(async () => (await version(port)) === 'D', 5_000, 'a fixed file is picked up again');
  });
});
