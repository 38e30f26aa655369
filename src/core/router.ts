/**
 * Route matching with deterministic precedence: the most specific route wins, and two routes that
 * could match the same request with equal specificity are a config error (never "first one wins").
 *
 * Specificity, compared in this order:
 *   1. host: exact host > wildcard (`*.example.com`, longer suffix first) > no host;
 *   2. path: exact > parameterised (`/users/:id`; left to right, a literal segment beats a parameter)
 *      > prefix (`/orders/**`; more segments first);
 *   3. methods: a route that lists methods beats one that accepts all.
 * `GET` also accepts `HEAD`.
 */
import { BuildProblem } from '../config/load.js';
import type { RouteConfig } from '../config/schema.js';

type PathKind = 0 | 1 | 2; // prefix, param, exact

export interface CompiledMatch<R> {
  readonly index: number;
  readonly route: R;
  readonly hostExact: string | undefined;
  readonly hostSuffix: string | undefined; // ".example.com" for "*.example.com"
  readonly kind: PathKind;
  readonly pattern: string;
  /** For exact: the path. For prefix: the literal prefix without trailing slash ('' for /**). */
  readonly literal: string;
  readonly segments: readonly string[]; // param kind: literal segments, or ':' for a parameter ('' is a trailing slash)
  readonly methods: ReadonlySet<string> | undefined;
}

export type RouteResult<R> = { readonly ok: true; readonly route: R } | { readonly ok: false; readonly allow: readonly string[] | undefined };

export interface Router<R> {
  match(host: string, path: string, method: string): RouteResult<R>;
  /** Every host named by a route (for absolute-form request targets). */
  readonly hosts: ReadonlySet<string>;
  readonly routes: readonly R[];
}

function compileOne<R>(route: R, rc: RouteConfig, index: number): CompiledMatch<R> {
  const host = rc.match.host;
  const pattern = rc.match.path;
  let kind: PathKind;
  let literal = '';
  let segments: string[] = [];
  if (pattern.endsWith('/**')) {
    kind = 0;
    literal = pattern.slice(0, -3);
  } else if (pattern.includes('/:')) {
    kind = 1;
    segments = pattern
      .slice(1)
      .split('/')
      .map((s) => (s.startsWith(':') ? ':' : s));
  } else {
    kind = 2;
    literal = pattern;
  }
  let methods: Set<string> | undefined;
  if (rc.match.methods !== undefined) {
    methods = new Set(rc.match.methods);
    if (methods.has('GET')) methods.add('HEAD');
  }
  return {
    index,
    route,
    hostExact: host !== undefined && !host.startsWith('*.') ? host : undefined,
    hostSuffix: host?.startsWith('*.') ? host.slice(1) : undefined,
    kind,
    pattern,
    literal,
    segments,
    methods,
  };
}

/** Negative when `a` is more specific than `b`; 0 when they tie. */
function compare<R>(a: CompiledMatch<R>, b: CompiledMatch<R>): number {
  const ha = a.hostExact !== undefined ? 2 : a.hostSuffix !== undefined ? 1 : 0;
  const hb = b.hostExact !== undefined ? 2 : b.hostSuffix !== undefined ? 1 : 0;
  if (ha !== hb) return hb - ha;
  if (ha === 1 && a.hostSuffix !== b.hostSuffix) return (b.hostSuffix?.length ?? 0) - (a.hostSuffix?.length ?? 0) || (a.hostSuffix! < b.hostSuffix! ? -1 : 1);
  if (ha === 2 && a.hostExact !== b.hostExact) return a.hostExact! < b.hostExact! ? -1 : 1; // disjoint: any stable order
  if (a.kind !== b.kind) return b.kind - a.kind;
  if (a.kind === 0) {
    const sa = a.literal.split('/').length;
    const sb = b.literal.split('/').length;
    if (sa !== sb) return sb - sa;
  }
  if (a.kind === 1) {
    if (a.segments.length !== b.segments.length) return a.segments.length - b.segments.length; // disjoint
    for (let i = 0; i < a.segments.length; i++) {
      const la = a.segments[i] !== ':';
      const lb = b.segments[i] !== ':';
      if (la !== lb) return la ? -1 : 1;
    }
  }
  const shape = (m: CompiledMatch<R>) => (m.kind === 1 ? m.segments.join('/') : m.literal);
  if (shape(a) !== shape(b)) return shape(a) < shape(b) ? -1 : 1; // disjoint paths
  const ma = a.methods !== undefined ? 1 : 0;
  const mb = b.methods !== undefined ? 1 : 0;
  if (ma !== mb) return mb - ma;
  if (a.methods !== undefined && b.methods !== undefined && ![...a.methods].some((m) => b.methods!.has(m))) return a.index - b.index; // disjoint methods
  return 0;
}

function pathMatches<R>(m: CompiledMatch<R>, path: string): boolean {
  switch (m.kind) {
    case 2:
      return path === m.literal;
    case 0:
      return m.literal === '' || path === m.literal || (path.startsWith(m.literal) && path.charCodeAt(m.literal.length) === 0x2f);
    case 1: {
      let pos = 1;
      for (let i = 0; i < m.segments.length; i++) {
        const next = path.indexOf('/', pos);
        const last = i === m.segments.length - 1;
        if (last !== (next === -1)) return false;
        const seg = last ? path.slice(pos) : path.slice(pos, next);
        const lit = m.segments[i] as string;
        if (lit === ':' ? seg === '' : seg !== lit) return false;
        pos = next + 1;
      }
      return true;
    }
  }
}

function hostMatches<R>(m: CompiledMatch<R>, host: string): boolean {
  if (m.hostExact !== undefined) return host === m.hostExact;
  if (m.hostSuffix !== undefined) return host.length > m.hostSuffix.length && host.endsWith(m.hostSuffix);
  return true;
}

/** Host header value → lower-case host without port. */
export function hostOf(authority: string): string {
  if (authority.charCodeAt(0) === 0x5b) {
    const close = authority.indexOf(']');
    return (close === -1 ? authority : authority.slice(0, close + 1)).toLowerCase();
  }
  const colon = authority.indexOf(':');
  return (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
}

export function compileRouter<R>(routes: readonly { route: R; config: RouteConfig }[]): Router<R> {
  const compiled = routes.map((r, i) => compileOne(r.route, r.config, i));
  // Ties are searched among every pair with the same host and path shape, not only sort neighbours:
  // with method lists "equal" is not transitive ([GET] ties [GET, PUT], yet both are ordered
  // against [POST]), so a tie can sit two places apart after sorting.
  const groups = new Map<string, CompiledMatch<R>[]>();
  for (const c of compiled) {
    const host = c.hostExact !== undefined ? `=${c.hostExact}` : c.hostSuffix !== undefined ? `*${c.hostSuffix}` : '';
    const k = `${host} ${c.kind} ${c.kind === 1 ? c.segments.join('/') : c.literal}`;
    const group = groups.get(k);
    if (group === undefined) {
      groups.set(k, [c]);
      continue;
    }
    const first = group.find((g) => compare(g, c) === 0);
    if (first !== undefined)
      throw new BuildProblem(['routes', c.index, 'match'], `matches the same requests as routes[${first.index}] with equal precedence; make one more specific`);
    group.push(c);
  }
  const sorted = [...compiled].sort(compare);
  const hosts = new Set<string>();
  for (const c of compiled) if (c.hostExact !== undefined) hosts.add(c.hostExact);
  const suffixes = compiled.flatMap((c) => (c.hostSuffix === undefined ? [] : [c.hostSuffix]));

  return {
    routes: routes.map((r) => r.route),
    // Only hosts a route names: a catch-all route serves any Host header, but an absolute-form target
    // (a forward-proxy request) for a host nobody named is refused, not served as if it were ours.
    hosts: suffixes.length > 0 ? new HostSet(hosts, suffixes) : hosts,
    match(host, path, method) {
      let allow: Set<string> | undefined;
      for (let i = 0; i < sorted.length; i++) {
        const m = sorted[i] as CompiledMatch<R>;
        if (!hostMatches(m, host) || !pathMatches(m, path)) continue;
        if (m.methods === undefined || m.methods.has(method)) return { ok: true, route: m.route };
        allow ??= new Set();
        for (const x of m.methods) allow.add(x);
      }
      return { ok: false, allow: allow === undefined ? undefined : [...allow].sort() };
    },
  };
}

/** The hosts routes name: exact names and wildcard suffixes. */
class HostSet extends Set<string> {
  readonly #suffixes: readonly string[];
  constructor(exact: Set<string>, suffixes: readonly string[]) {
    super(exact);
    this.#suffixes = suffixes;
  }
  override has(host: string): boolean {
    return super.has(host) || this.#suffixes.some((s) => host.length > s.length && host.endsWith(s));
  }
}
