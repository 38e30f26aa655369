/**
 * From verified token claims (a JWT payload or an introspection response) to an Identity: the
 * consumer named by `consumerClaim`, scopes from `scopesClaim` (or `scp`), groups from `groupsClaim`
 * plus the consumer's groups. Claims are copied onto a null-prototype object and frozen, so a
 * `__proto__` member is an ordinary, inert claim.
 */
import type { ConsumerDirectory } from './consumers.js';
import type { Identity } from './types.js';

export interface ClaimMapping {
  readonly consumerClaim: string;
  readonly scopesClaim: string;
  readonly groupsClaim: string;
}

/** A space-separated string or an array of strings; anything else yields nothing. */
export function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string' && s !== '');
  return [];
}

/** A frozen, null-prototype shallow copy (nested objects frozen too), safe to hand to later phases. */
export function freezeClaims(claims: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const k of Object.keys(claims)) out[k] = deepFreeze(claims[k]);
  return Object.freeze(out);
}

function deepFreeze(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

export function identityFromClaims(
  method: 'jwt' | 'introspection',
  authenticator: string,
  subject: string,
  claims: Readonly<Record<string, unknown>>,
  mapping: ClaimMapping,
  consumers: ConsumerDirectory,
): Identity {
  const frozen = freezeClaims(claims);
  const own = (k: string): unknown => (Object.hasOwn(frozen, k) ? frozen[k] : undefined);
  const consumerValue = mapping.consumerClaim === 'sub' ? subject : own(mapping.consumerClaim);
  const consumer = typeof consumerValue === 'string' ? consumers.byId(consumerValue) : undefined;
  const scopesValue = own(mapping.scopesClaim) ?? (mapping.scopesClaim === 'scope' ? own('scp') : undefined);
  const scopes = [...new Set(stringList(scopesValue))];
  const groups = [...new Set([...stringList(own(mapping.groupsClaim)), ...(consumer?.groups ?? [])])];
  return Object.freeze({
    method,
    authenticator,
    subject,
    consumer,
    groups: Object.freeze(groups),
    scopes: Object.freeze(scopes),
    claims: frozen,
  });
}
