/**
 * `portcullis` command line. Exit codes (docs/cli.md):
 *   0 success · 1 invalid config · 2 usage error · 3 runtime failure (e.g. a port cannot be bound)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigError, formatProblem, loadConfigFile } from '../config/load.js';
import { secretInstance } from '../config/fields.js';
import { configSchema } from '../config/schema.js';
import { buildRuntime } from '../core/runtime.js';
import { Gateway } from '../gateway.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { startCluster } from './cluster.js';
import { secretsCommand } from './secrets.js';
import { keysCommand } from './keys.js';

export const EXIT = { ok: 0, invalidConfig: 1, usage: 2, runtime: 3 } as const;

const HELP = `Usage: portcullis <command> [options]

Commands:
  start -c FILE [--watch] [--workers N]   run the gateway
  validate -c FILE                         check a config; prints FILE:LINE path: reason per problem
  schema                                   print the JSON Schema of the config file
  secrets set|get|list|delete|rotate-key   manage the encrypted secret store (portcullis secrets --help)
  keys generate                            print a new API key and the sha256 digest to configure
  keys hash-password [--bcrypt]            hash a password read from stdin (argon2id; bcrypt with --bcrypt)

Options:
  -c, --config FILE   config file (YAML)
  --watch             reload when the config file changes (SIGHUP always reloads)
  --workers N         worker processes sharing the listeners (default 1)
  --bcrypt            keys hash-password: make a bcrypt hash instead of argon2id
  -h, --help          show this help
  -v, --version       print the version

Exit codes: 0 ok, 1 invalid config, 2 usage error, 3 runtime failure.
Docs: docs/cli.md, docs/configuration.md, docs/errors.md`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(message: string): never {
  process.stderr.write(`portcullis: ${message}\n\n${HELP}\n`);
  process.exit(EXIT.usage);
}

function parseCli(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      watch: { type: 'boolean' },
      workers: { type: 'string' },
      bcrypt: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}

export async function main(argv: string[]): Promise<number> {
  // `secrets` has its own options (--file, --key-file …): hand it the rest of the line as is.
  if (argv[0] === 'secrets') return secretsCommand(argv.slice(1));
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.version === true) {
    process.stdout.write(`${version()}\n`);
    return EXIT.ok;
  }
  const command = positionals[0];
  if (values.help === true || command === undefined || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return command === undefined && values.help !== true ? EXIT.usage : EXIT.ok;
  }
  if (command === 'keys') {
    if (positionals.length > 2) usage(`unexpected argument "${positionals[2]}"`);
    return keysCommand(positionals[1], { bcrypt: values.bcrypt === true }, usage);
  }
  if (positionals.length > 1) usage(`unexpected argument "${positionals[1]}"`);
  switch (command) {
    case 'schema':
      process.stdout.write(`${JSON.stringify(jsonSchema(), null, 2)}\n`);
      return EXIT.ok;
    case 'validate':
      if (values.config === undefined) usage('validate needs -c FILE');
      return validate(values.config);
    case 'start': {
      if (values.config === undefined) usage('start needs -c FILE');
      const workers = values.workers === undefined ? 1 : Number(values.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 256) usage('--workers must be a whole number from 1 to 256');
      if (workers > 1) return startCluster(values.config, workers, values.watch === true);
      return start(values.config, values.watch === true);
    }
    default:
      usage(`unknown command "${command}"`);
  }
}

export function jsonSchema(): unknown {
  return {
    ...z.toJSONSchema(configSchema, {
      io: 'input',
      unrepresentable: 'any',
      target: 'draft-2020-12',
      // In the file, a Secret is the reference string that loading resolves.
      override: (ctx) => {
        if (ctx.zodSchema === secretInstance) Object.assign(ctx.jsonSchema, { type: 'string', pattern: '^\\$\\{secret:[^}]+\\}$' });
      },
    }),
    title: 'Portcullis configuration',
  };
}

async function validate(file: string): Promise<number> {
  try {
    const loaded = await loadConfigFile(file);
    const rt = await buildRuntime(loaded, createMetrics(), createLogger('warn'));
    await rt.close();
    process.stdout.write(`${file}: valid\n`);
    return EXIT.ok;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write(`${file}: ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}\n`);
    return EXIT.invalidConfig;
  }
}

/** Run one gateway process until SIGTERM/SIGINT; SIGHUP reloads. Used by workers too. */
export async function start(file: string, watchFile: boolean, options: { admin?: boolean; onReady?: (gw: Gateway) => void } = {}): Promise<number> {
  let gw: Gateway;
  try {
    gw = await Gateway.start({ file, watch: watchFile, admin: options.admin ?? true });
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`${formatProblem(p)}\n`);
      process.stderr.write('portcullis: not started: the config is invalid\n');
      return EXIT.invalidConfig;
    }
    process.stderr.write(`portcullis: not started: ${(err as Error).message}\n`);
    return EXIT.runtime;
  }
  options.onReady?.(gw);
  return new Promise<number>((resolve) => {
    let stopping = false;
    let stopped = false;
    const stop = (signal: string) => {
      if (stopped) return;
      if (stopping) {
        gw.state.logger.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(EXIT.runtime);
      }
      stopping = true;
      gw.state.logger.info({ signal, drainTimeoutMs: gw.runtime.limits.drainTimeout }, 'draining');
      gw.close().then(() => {
        stopped = true;
        resolve(EXIT.ok);
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => void gw.reload());
    process.on('message', (m: unknown) => {
      if (m === 'portcullis:reload') void gw.reload();
      if (m === 'portcullis:stop') stop('cluster');
    });
  });
}
