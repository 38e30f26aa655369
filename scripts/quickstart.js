// `npm start`: the demo upstream and the gateway on examples/quickstart.yaml, in one command.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startDemoUpstream } from '../examples/demo-upstream.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const upstream = await startDemoUpstream(9000).catch((err) => {
  console.error(`demo upstream: cannot listen on 127.0.0.1:9000 (${err.code}); is something else using it?`);
  process.exit(3);
});
const gw = spawn(process.execPath, ['dist/src/cli/bin.js', 'start', '-c', 'examples/quickstart.yaml', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
setTimeout(() => {
  if (gw.exitCode === null)
    console.error(
      '\nPortcullis is running on http://127.0.0.1:8080 (demo upstream on 127.0.0.1:9000).\n' +
        '  curl -i http://127.0.0.1:8080/api/hello\n  curl -i http://127.0.0.1:8080/status\n  curl -s http://127.0.0.1:9901/metrics | head\n' +
        'Ctrl-C to stop.\n',
    );
}, 500).unref();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => gw.kill(sig));
gw.on('exit', (code) => {
  upstream.close();
  process.exit(code ?? 0);
});
