/**
 * `${secret:NAME}` references: resolved at config load from the store that the config's own
 * `secrets:` section names. The store is opened (and the master key derived) at most once per
 * load, on the first reference; its failure is reported at every reference that needed it.
 */
import { resolve } from 'node:path';
import { loadMasterKey, MASTER_KEY_ENV } from './master-key.js';
import type { Secret } from './secret.js';
import { SecretStore, SecretStoreError } from './store.js';

/** A Secret, or the reason it cannot be had (safe to show: never contains a value). */
export type SecretLookup = (name: string) => Secret | { readonly error: string };

/** `section` is the already-interpolated `secrets:` value of the raw config (or undefined). */
export function secretLookup(section: unknown, dir: string, env: NodeJS.ProcessEnv = process.env): SecretLookup {
  let store: SecretStore | { error: string } | undefined;
  const openStore = (): SecretStore | { error: string } => {
    if (section === undefined || section === null) return { error: 'no secret store is configured (add secrets.file)' };
    const s = section as { file?: unknown; keyFile?: unknown };
    if (typeof s.file !== 'string' || s.file === '') return { error: 'the secret store is not usable: secrets.file is missing or not a string' };
    if (s.keyFile !== undefined && typeof s.keyFile !== 'string') return { error: 'the secret store is not usable: secrets.keyFile is not a string' };
    try {
      const key = loadMasterKey({
        envName: MASTER_KEY_ENV,
        env,
        keyFile: s.keyFile === undefined ? undefined : resolve(dir, s.keyFile),
        keyFileOption: 'secrets.keyFile',
      });
      return SecretStore.open(resolve(dir, s.file), key);
    } catch (err) {
      if (err instanceof SecretStoreError) return { error: `secret store ${s.file}: ${err.message}` };
      throw err;
    }
  };
  return (name) => {
    store ??= openStore();
    if (!(store instanceof SecretStore)) return store;
    try {
      return store.get(name) ?? { error: `secret "${name}" is not in the store ${store.file}` };
    } catch (err) {
      if (err instanceof SecretStoreError) return { error: `secret "${name}": ${err.message}` };
      throw err;
    }
  };
}
