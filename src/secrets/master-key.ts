/**
 * Where the master key comes from: the PORTCULLIS_SECRETS_KEY environment variable when it is set,
 * else the key file (secrets.keyFile, or --key-file on the command line). No key is an error,
 * never an unencrypted fallback.
 */
import { readFileSync } from 'node:fs';
import { type MasterKey, parseMasterKey, SecretStoreError } from './store.js';

export const MASTER_KEY_ENV = 'PORTCULLIS_SECRETS_KEY';
export const NEW_MASTER_KEY_ENV = 'PORTCULLIS_SECRETS_NEW_KEY';

export interface MasterKeySource {
  /** Environment variable to read first. */
  readonly envName: string;
  readonly env: NodeJS.ProcessEnv;
  /** Absolute path of a key file, used when the variable is unset or empty. */
  readonly keyFile?: string | undefined;
  /** How to name the key file option in an error message ("secrets.keyFile", "--key-file"). */
  readonly keyFileOption: string;
}

export function loadMasterKey(source: MasterKeySource): MasterKey {
  const fromEnv = source.env[source.envName];
  if (fromEnv !== undefined && fromEnv !== '') return parseMasterKey(fromEnv);
  if (source.keyFile === undefined) throw new SecretStoreError('PTC_SECRETS_BAD_KEY', `no master key: set ${source.envName} or ${source.keyFileOption}`);
  let text: string;
  try {
    text = readFileSync(source.keyFile, 'utf8');
  } catch (err) {
    throw new SecretStoreError('PTC_SECRETS_BAD_KEY', `cannot read the master key file ${source.keyFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return parseMasterKey(text);
}
