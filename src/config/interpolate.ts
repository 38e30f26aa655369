/**
 * `${env:NAME}` and `${file:PATH}` references in string values, resolved once at load.
 * A missing variable or unreadable file is a config error, never an empty string.
 * `$${` writes a literal `${`. Objects are rebuilt key by key (never through `__proto__`).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConfigPath } from './load.js';

const REFERENCE = /\$(\$)?\{([a-z]+):([^}]*)\}/g;

export type ReportProblem = (path: ConfigPath, reason: string) => void;

export function interpolate(value: unknown, dir: string, report: ReportProblem, path: ConfigPath = []): unknown {
  if (typeof value === 'string') return value.includes('${') ? resolveString(value, dir, report, path) : value;
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, dir, report, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      Object.defineProperty(out, k, { value: interpolate(v, dir, report, [...path, k]), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
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
        report(path, 'secret references need the secret store, which is not available in this version');
        return '';
      default:
        report(path, `unknown reference \${${scheme}:…}; use \${env:NAME} or \${file:PATH}`);
        return '';
    }
  });
}
