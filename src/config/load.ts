/**
 * YAML file → validated, deep-frozen config. Every problem is reported at once, each as
 * `FILE:LINE path: reason`, with the line found by walking the YAML document along the path.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { type Config, configSchema } from './schema.js';
import { interpolate } from './interpolate.js';
import { secretLookup } from '../secrets/references.js';
import { isSecret } from '../secrets/secret.js';

export type ConfigPath = readonly (string | number)[];

export interface ConfigProblem {
  readonly file: string;
  readonly line: number;
  readonly path: string;
  readonly reason: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A problem found while building (reading a certificate, compiling routes), before lines are known. */
export class BuildProblem extends Error {
  readonly path: ConfigPath;
  constructor(path: ConfigPath, reason: string) {
    super(reason);
    this.name = 'BuildProblem';
    this.path = path;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line} ${p.path === '' ? '(root)' : p.path}: ${p.reason}`;
}

export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

export interface LoadedConfig {
  readonly file: string;
  readonly dir: string;
  readonly config: Config;
  /** Turn build-time problems into located config problems. */
  problem(path: ConfigPath, reason: string): ConfigProblem;
}

export async function loadConfigFile(file: string): Promise<LoadedConfig> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    throw new ConfigError([{ file, line: 0, path: '', reason }]);
  }
  return parseConfig(text, file, dirname(abs));
}

export function parseConfig(text: string, file: string, dir: string): LoadedConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, merge: false });
  const lineOf = (path: ConfigPath) => locate(doc, lineCounter, path);
  const problem = (path: ConfigPath, reason: string): ConfigProblem => ({ file, line: lineOf(path), path: formatPath(path), reason });

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ file, line: e.linePos?.[0].line ?? lineCounter.linePos(e.pos[0]).line, path: '', reason: `YAML: ${e.message.split('\n')[0]}` })),
    );
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError([problem([], 'the config must be a YAML mapping')]);

  const problems: ConfigProblem[] = [];
  // A reference that could not be resolved became '': the schema's complaint about that '' would
  // only hide the real cause, so a value with a reference problem is not reported twice.
  const unresolved = new Set<string>();
  const report = (path: ConfigPath, reason: string) => {
    unresolved.add(formatPath(path));
    problems.push(problem(path, reason));
  };
  // The `secrets:` section first: it names the store every `${secret:…}` elsewhere resolves from.
  const rawObject = raw as Record<string, unknown>;
  const secretsSection = interpolate(rawObject.secrets, dir, report, ['secrets']);
  const others = Object.fromEntries(Object.entries(rawObject).filter(([k]) => k !== 'secrets'));
  const rest = interpolate(others, dir, report, [], secretLookup(secretsSection, dir)) as Record<string, unknown>;
  const value = secretsSection === undefined ? rest : { ...rest, secrets: secretsSection };
  const parsed = configSchema.safeParse(value, { reportInput: true }); // input tells "required" from "wrong type"
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (unresolved.has(formatPath(path))) continue;
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) problems.push(problem([...path, key], `unknown key "${key}"`));
      } else if (issue.code === 'invalid_key') {
        // A record key that failed its pattern: zod's own message is a generic "Invalid key in record".
        for (const inner of issue.issues) problems.push(problem(path, inner.message));
      } else {
        problems.push(problem(path, issueMessage(issue.code, issue.message, issue.input)));
      }
    }
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(sortProblems(problems));
  return { file, dir, config: deepFreeze(parsed.data), problem };
}

function issueMessage(code: string, message: string, input: unknown): string {
  if (code === 'invalid_type' && input === undefined) return 'required';
  if (isSecret(input)) return 'a secret reference is not accepted here';
  return message;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.path.localeCompare(b.path));
}

/** Line of the deepest YAML node that exists along `path` (1-based; 0 when unknown). */
function locate(doc: Document, lc: LineCounter, path: ConfigPath): number {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (node !== null && node !== undefined && (isScalar(node) || isMap(node) || isSeq(node)) && node.range) {
      // For a key that exists but whose value is a collection, point at the key line where possible.
      if (n > 0 && !isScalar(node) && n === path.length) {
        const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
        if (isMap(parent)) {
          const pair = parent.items.find((p) => isScalar(p.key) && p.key.value === path[n - 1]);
          if (pair && isScalar(pair.key) && pair.key.range) return lc.linePos(pair.key.range[0]).line;
        }
      }
      return lc.linePos(node.range[0]).line;
    }
  }
  return 0;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
