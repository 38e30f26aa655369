/**
 * `portcullis secrets set|get|list|delete|rotate-key` — manage the encrypted secret store
 * (docs/secrets.md). Values are read from stdin, never from argv (argv is visible in `ps` and shell
 * history). The store is found through a config file's `secrets:` section (-c) or given directly (--file).
 *
 * Exit codes: 0 ok · 1 the store or config failed (wrong master key, unknown name, unreadable file) · 2 usage.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { interpolate } from '../config/interpolate.js';
import { formatPath } from '../config/load.js';
import { loadMasterKey, MASTER_KEY_ENV, NEW_MASTER_KEY_ENV } from '../secrets/master-key.js';
import { assertSecretName, type MasterKey, parseMasterKey, SecretStore, SecretStoreError } from '../secrets/store.js';

export const SECRETS_HELP = `Usage: portcullis secrets <command> (-c CONFIG | --file FILE) [options]

Commands:
  set NAME        store the value read from stdin (one trailing newline is dropped); creates the store
  get NAME        print the value
  list            print the names, one a line
  delete NAME     remove an entry
  rotate-key      re-encrypt every entry under a new master key, read from ${NEW_MASTER_KEY_ENV}
                  or --new-key-file; then give the gateway the new key

Options:
  -c, --config FILE     config whose secrets.file / secrets.keyFile locate the store and key
  --file FILE           the store file itself
  --key-file FILE       master key file (default: ${MASTER_KEY_ENV}, else the config's secrets.keyFile)
  --new-key-file FILE   rotate-key: the new master key

The master key is a passphrase (12+ characters, stretched with scrypt) or 32 random bytes in base64
(e.g. \`openssl rand -base64 32\`). Exit codes: 0 ok, 1 failed, 2 usage. Docs: docs/secrets.md`;

class UsageError extends Error {}

interface Located {
  readonly file: string;
  /** Key file from the config (absolute), if any. */
  readonly keyFile: string | undefined;
}

/** Find the store through the config's `secrets:` section, without validating the rest (it may need secrets that do not exist yet). */
function locateFromConfig(configFile: string): Located {
  let text: string;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch (err) {
    throw new SecretStoreError('PTC_SECRETS_IO', `cannot read ${configFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new SecretStoreError('PTC_SECRETS_IO', `${configFile}: YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const dir = dirname(resolve(configFile));
  const problems: string[] = [];
  const section = interpolate((raw as { secrets?: unknown } | null)?.secrets, dir, (p, r) => problems.push(`${formatPath(p)}: ${r}`), ['secrets']) as
    | { file?: unknown; keyFile?: unknown }
    | undefined;
  if (problems.length > 0) throw new SecretStoreError('PTC_SECRETS_IO', `${configFile}: ${problems.join('; ')}`);
  if (section === undefined || section === null || typeof section.file !== 'string' || section.file === '')
    throw new SecretStoreError('PTC_SECRETS_NO_FILE', `${configFile} has no secrets.file`);
  return {
    file: resolve(dir, section.file),
    keyFile: typeof section.keyFile === 'string' && section.keyFile !== '' ? resolve(dir, section.keyFile) : undefined,
  };
}

function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Enter the value, then Ctrl-D:\n');
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (c: Buffer) => chunks.push(c));
    process.stdin.on('end', () => resolvePromise(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function masterKey(explicitKeyFile: string | undefined, located: Located): MasterKey {
  if (explicitKeyFile !== undefined) return loadMasterKey({ envName: MASTER_KEY_ENV, env: {}, keyFile: resolve(explicitKeyFile), keyFileOption: '--key-file' });
  return loadMasterKey({ envName: MASTER_KEY_ENV, env: process.env, keyFile: located.keyFile, keyFileOption: 'secrets.keyFile or --key-file' });
}

function newMasterKey(newKeyFile: string | undefined): MasterKey {
  if (newKeyFile !== undefined) return loadMasterKey({ envName: NEW_MASTER_KEY_ENV, env: {}, keyFile: resolve(newKeyFile), keyFileOption: '--new-key-file' });
  const fromEnv = process.env[NEW_MASTER_KEY_ENV];
  if (fromEnv === undefined || fromEnv === '') throw new UsageError(`rotate-key needs the new master key in ${NEW_MASTER_KEY_ENV} or --new-key-file`);
  return parseMasterKey(fromEnv);
}

export async function secretsCommand(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`portcullis secrets: ${err.message}\n\n${SECRETS_HELP}\n`);
      return 2;
    }
    if (err instanceof SecretStoreError) {
      process.stderr.write(`portcullis secrets: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, name, extra] = positionals;
  if (values.help === true || command === undefined) {
    process.stdout.write(`${SECRETS_HELP}\n`);
    return values.help === true ? 0 : 2;
  }
  if (extra !== undefined) throw new UsageError(`unexpected argument "${extra}"`);
  const needsName = command === 'set' || command === 'get' || command === 'delete';
  if (!['set', 'get', 'list', 'delete', 'rotate-key'].includes(command)) throw new UsageError(`unknown command "${command}"`);
  if (needsName && name === undefined) throw new UsageError(`${command} needs a secret NAME`);
  if (!needsName && name !== undefined) throw new UsageError(`unexpected argument "${name}"`);
  if ((values.config === undefined) === (values.file === undefined)) throw new UsageError('give the store with either -c CONFIG or --file FILE');
  if (values['new-key-file'] !== undefined && command !== 'rotate-key') throw new UsageError('--new-key-file is for rotate-key');

  const located: Located = values.file !== undefined ? { file: resolve(values.file), keyFile: undefined } : locateFromConfig(values.config as string);
  const key = masterKey(values['key-file'], located);

  switch (command) {
    case 'set': {
      assertSecretName(name as string);
      // Open the store (which checks the master key) before waiting on stdin, so a wrong key fails fast.
      const store = SecretStore.openOrCreate(located.file, key);
      const value = (await readStdin()).replace(/\r?\n$/, '');
      if (value === '') throw new SecretStoreError('PTC_SECRETS_BAD_VALUE', 'refusing to store an empty value (nothing on stdin)');
      const existed = store.has(name as string);
      store.set(name as string, value);
      store.save();
      process.stderr.write(`${existed ? 'replaced' : 'stored'} ${name} in ${located.file}\n`);
      return 0;
    }
    case 'get': {
      const secret = SecretStore.open(located.file, key).get(name as string);
      if (secret === undefined) throw new SecretStoreError('PTC_SECRETS_NOT_FOUND', `secret "${name}" is not in the store ${located.file}`);
      process.stdout.write(process.stdout.isTTY ? `${secret.reveal()}\n` : secret.reveal());
      return 0;
    }
    case 'list': {
      const names = SecretStore.open(located.file, key).names();
      process.stdout.write(names.map((n) => `${n}\n`).join(''));
      return 0;
    }
    case 'delete': {
      const store = SecretStore.open(located.file, key);
      if (!store.delete(name as string)) throw new SecretStoreError('PTC_SECRETS_NOT_FOUND', `secret "${name}" is not in the store ${located.file}`);
      store.save();
      process.stderr.write(`deleted ${name} from ${located.file}\n`);
      return 0;
    }
    default: {
      const next = newMasterKey(values['new-key-file']);
      const store = SecretStore.open(located.file, key);
      store.rotate(next);
      store.save();
      process.stderr.write(
        `re-encrypted ${store.names().length} secret(s) in ${located.file} under the new master key; ` +
          `give the gateway the new key (${MASTER_KEY_ENV} or secrets.keyFile) before its next reload\n`,
      );
      return 0;
    }
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      file: { type: 'string' },
      'key-file': { type: 'string' },
      'new-key-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
