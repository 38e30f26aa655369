/**
 * The authenticate phase of one route: any-of or all-of a list of named authenticators.
 *
 * Any-of rules (docs/authentication.md):
 *   - a credential present twice, or credentials in two different slots → 400 (never guess);
 *   - authenticators are tried in the listed order, only those whose credential is present;
 *   - the first `authenticated` wins; a present but invalid credential is `rejected` → 401 and
 *     never falls through to the next method; `unavailable` → 503 (fail closed);
 *   - nothing present → 401 with a WWW-Authenticate challenge for every accepted scheme.
 * All-of: every listed authenticator must authenticate; identities are merged (first one leads).
 */
import { type Refusal, refuse } from '../core/errors.js';
import type { HeaderMap } from '../core/headers.js';
import type { HotCounter } from '../observability/hot-metrics.js';
import type { AuthOutcome, AuthRequest, Authenticator, Identity } from './types.js';

export interface AuthReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly body: Buffer;
}

export type AuthDecision =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly refusal: Refusal; readonly reply?: undefined }
  | { readonly ok: false; readonly reply: AuthReply; readonly refusal: Refusal };

export interface RouteAuth {
  readonly mode: 'anyOf' | 'allOf';
  readonly authenticators: readonly Authenticator[];
  /** Synchronous when every authenticator consulted answered synchronously (cache hits, API keys). */
  run(req: AuthRequest): AuthDecision | Promise<AuthDecision>;
  /** Remove every accepted credential from the upstream request; returns the new query string. */
  strip(headers: HeaderMap, query: string): string;
  /** Remove client-sent copies of the headers the authenticators set upstream (always, even with forwardCredentials). */
  clearUpstreamHeaders(headers: HeaderMap): void;
}

function challenges(list: readonly Authenticator[], badToken: boolean): Record<string, string | string[]> {
  const values: string[] = [];
  for (const a of list) {
    const c = a.challenge(badToken && (a.type === 'jwt' || a.type === 'introspection') ? 'invalid_token' : undefined);
    if (c !== undefined && !values.includes(c)) values.push(c);
  }
  return values.length === 0 ? {} : { 'www-authenticate': values.length === 1 ? (values[0] as string) : values };
}

export function compileRouteAuth(mode: 'anyOf' | 'allOf', list: readonly Authenticator[], decisions: HotCounter): RouteAuth {
  const absentChallenges = challenges(list, false);
  const count = (a: Authenticator, outcome: string, reason = '') => decisions.labels({ authenticator: a.name, outcome, reason }).inc();
  // The per-request outcomes are bound once; rejection reasons vary and are looked up when they happen.
  const allowed = new Map(list.map((a) => [a, decisions.labels({ authenticator: a.name, outcome: 'allowed', reason: '' })]));
  const absent = new Map(list.map((a) => [a, decisions.labels({ authenticator: a.name, outcome: 'absent', reason: '' })]));

  const unauthenticated = (details: string): AuthDecision => ({
    ok: false,
    refusal: refuse('PTC_ERR_UNAUTHENTICATED', details, absentChallenges as Record<string, string>),
  });

  const fromOutcome = (a: Authenticator, o: Exclude<AuthOutcome, { kind: 'authenticated' } | { kind: 'absent' }>): AuthDecision => {
    switch (o.kind) {
      case 'rejected':
        count(a, 'rejected', o.reason);
        return {
          ok: false,
          refusal: refuse(o.code ?? 'PTC_ERR_INVALID_CREDENTIALS', `${a.name}: ${o.reason}`, {
            ...(challenges([a], true) as Record<string, string>),
            ...(o.headers ?? {}),
          }),
        };
      case 'unavailable':
        count(a, 'unavailable', o.reason);
        return { ok: false, refusal: refuse('PTC_ERR_AUTH_UNAVAILABLE', `${a.name}: ${o.reason}`) };
      case 'reply':
        count(a, 'rejected', o.reason);
        return {
          ok: false,
          reply: { status: o.status, headers: o.headers, body: o.body },
          refusal: refuse('PTC_ERR_UNAUTHENTICATED', `${a.name}: ${o.reason}`),
        };
    }
  };

  /**
   * Presence and ambiguity checks shared by both modes. Credentials in two different slots are
   * ambiguous only for any-of; all-of asks for several credentials by definition.
   */
  const survey = (req: AuthRequest): { present: boolean[] } | AuthDecision => {
    const present: boolean[] = [];
    let slot: string | undefined;
    for (const a of list) {
      const p = a.present(req);
      if (p === 'twice') return { ok: false, refusal: refuse('PTC_ERR_AMBIGUOUS_CREDENTIALS', `${a.name}: credential presented more than once`) };
      present.push(p);
      if (p && a.slot !== undefined && mode === 'anyOf') {
        if (slot !== undefined && slot !== a.slot)
          return { ok: false, refusal: refuse('PTC_ERR_AMBIGUOUS_CREDENTIALS', `credentials in ${slot} and ${a.slot}`) };
        slot = a.slot;
      }
    }
    return { present };
  };

  /** One authenticator's answer in any-of mode; undefined means absent: try the next one. */
  const settleAny = (a: Authenticator, o: AuthOutcome): AuthDecision | undefined => {
    if (o.kind === 'authenticated') {
      allowed.get(a)?.inc();
      return { ok: true, identity: o.identity };
    }
    if (o.kind === 'absent') {
      absent.get(a)?.inc();
      return undefined;
    }
    return fromOutcome(a, o);
  };

  /** Any-of from position `start`; stays synchronous until an authenticator answers with a promise. */
  function anyFrom(req: AuthRequest, present: readonly boolean[], start: number): AuthDecision | Promise<AuthDecision> {
    for (let i = start; i < list.length; i++) {
      if (!present[i]) continue;
      const a = list[i] as Authenticator;
      const o = a.authenticate(req);
      if (o instanceof Promise) return o.then((x) => settleAny(a, x) ?? anyFrom(req, present, i + 1));
      const d = settleAny(a, o);
      if (d !== undefined) return d;
    }
    return unauthenticated('no credential presented');
  }

  function anyOf(req: AuthRequest): AuthDecision | Promise<AuthDecision> {
    const s = survey(req);
    return 'ok' in s ? s : anyFrom(req, s.present, 0);
  }

  async function allOf(req: AuthRequest): Promise<AuthDecision> {
    const s = survey(req);
    if ('ok' in s) return s;
    const identities: Identity[] = [];
    for (let i = 0; i < list.length; i++) {
      const a = list[i] as Authenticator;
      if (!s.present[i]) return unauthenticated(`${a.name}: credential missing`);
      const o = await a.authenticate(req);
      if (o.kind === 'absent') return unauthenticated(`${a.name}: credential missing`);
      if (o.kind !== 'authenticated') return fromOutcome(a, o);
      allowed.get(a)?.inc();
      identities.push(o.identity);
    }
    const [lead, ...rest] = identities as [Identity, ...Identity[]];
    for (const other of rest) {
      if (lead.consumer !== undefined && other.consumer !== undefined && lead.consumer.id !== other.consumer.id)
        return {
          ok: false,
          refusal: refuse('PTC_ERR_INVALID_CREDENTIALS', `allOf: credentials name different consumers (${lead.authenticator}, ${other.authenticator})`),
        };
    }
    const union = (pick: (i: Identity) => readonly string[]) => [...new Set(identities.flatMap(pick))];
    const upstreamHeaders = Object.assign({}, ...identities.map((i) => i.upstreamHeaders ?? {})) as Record<string, string>;
    return {
      ok: true,
      identity: {
        ...lead,
        method: identities.map((i) => i.method).join('+'),
        authenticator: identities.map((i) => i.authenticator).join('+'),
        consumer: lead.consumer ?? rest.find((i) => i.consumer !== undefined)?.consumer,
        groups: union((i) => i.groups),
        scopes: union((i) => i.scopes),
        upstreamHeaders,
      },
    };
  }

  return {
    mode,
    authenticators: list,
    run: mode === 'anyOf' ? anyOf : allOf,
    strip(headers, query) {
      for (const a of list) query = a.strip(headers, query);
      return query;
    },
    clearUpstreamHeaders(headers) {
      for (const a of list) for (const h of a.upstreamHeaderNames ?? []) delete headers[h];
    },
  };
}
