/**
 * `${env:NAME}`, `${file:PATH}` and `${secret:NAME}` references in string values, resolved once at load.
 * A missing variable, unreadable file or unknown secret is a config error, never an empty string.
 * A secret reference must be the whole value and becomes a `Secret`, which never prints its value.
 * `$${` writes a literal `${`. Objects are rebuilt key by key (never through `__proto__`).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { SecretLookup } from '../secrets/references.js';
import { Secret } from '../secrets/secret.js';
import type { ConfigPath } from './load.js';

const REFERENCE = /\$(\$)?\{([a-z]+):([^}]*)\}/g;
const WHOLE_SECRET = /^\$\{secret:([^}]*)\}$/;

export type ReportProblem = (path: ConfigPath, reason: string) => void;

/** `secrets` resolves `${secret:NAME}`; without it (the `secrets:` section itself) a secret reference is a problem. */
export function interpolate(value: unknown, dir: string, report: ReportProblem, path: ConfigPath = [], secrets?: SecretLookup): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    const whole = WHOLE_SECRET.exec(value);
    if (whole !== null) return resolveSecret(whole[1] as string, report, path, secrets);
    return resolveString(value, dir, report, path);
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, dir, report, [...path, i], secrets));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: interpolate(v, dir, report, [...path, k], secrets), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}

function resolveSecret(name: string, report: ReportProblem, path: ConfigPath, secrets: SecretLookup | undefined): Secret | string {
  if (secrets === undefined) {
    report(path, 'the secret store settings cannot themselves use a secret reference');
    return '';
  }
  const got = secrets(name);
  if (got instanceof Secret) return got;
  report(path, got.error);
  return '';
}

function resolveString(value: string, dir: string, report: ReportProblem, path: ConfigPath): string {
  return value.replace(REFERENCE, (whole, escaped: string | undefined, scheme: string, arg: string) => {
    if (escaped !== undefined) return whole.slice(1);
    switch (scheme) {
      case 'env': {
        const v = process.env[arg];
        if (v === undefined || v === '') report(path, `environment variable ${arg} is not set`);
        return v ?? '';
      }
      case 'file': {
        try {
          return readFileSync(resolve(dir, arg), 'utf8').replace(/\r?\n$/, '');
        } catch (err) {
          report(path, `cannot read ${arg} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
          return '';
        }
      }
      case 'secret':
        // A Secret cannot be spliced into a string without revealing it: it must stay a Secret.
        report(path, `a secret must be the whole value ("\${secret:NAME}" with nothing around it)`);
        return '';
      default:
        report(path, `unknown reference \${${scheme}:…}; use \${env:NAME}, \${file:PATH} or \${secret:NAME}`);
        return '';
    }
  });
}
