/**
 * API keys in a header or a query parameter. Keys are stored as SHA-256 digests on consumers and
 * compared in constant time; an unknown key is rejected (and never falls through to another method).
 */
import type { AuthBuildContext } from './build.js';
import type { ConsumerDirectory } from './consumers.js';
import { queryValues, withoutQueryParam } from './query.js';
import type { AuthenticatorConfig } from './schema.js';
import { type AuthOutcome, type Authenticator, type Consumer, outcome } from './types.js';

type ApiKeyConfig = Extract<AuthenticatorConfig, { type: 'apiKey' }>;

export function createApiKeyAuthenticator(name: string, cfg: ApiKeyConfig, ctx: AuthBuildContext): Authenticator {
  const consumers: ConsumerDirectory = ctx.consumers;
  const header = cfg.header;
  const param = cfg.query;
  const read = (headers: Record<string, string | string[]>, query: string): string[] => {
    if (header !== undefined) {
      const v = headers[header];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    }
    return query.length > 1 && query.includes(`${param}=`) ? queryValues(query, param as string) : [];
  };
  // One frozen outcome per consumer: the hot path allocates nothing, and identity headers are
  // rendered once per identity (propagate.ts).
  const byConsumer = new WeakMap<Consumer, AuthOutcome>();
  const identities = (consumer: Consumer): AuthOutcome => {
    let o = byConsumer.get(consumer);
    if (o === undefined) {
      o = outcome.authenticated(
        Object.freeze({
          method: 'apiKey',
          authenticator: name,
          subject: consumer.id,
          consumer,
          groups: consumer.groups,
          scopes: [],
          claims: Object.freeze({}),
        }),
      );
      byConsumer.set(consumer, o);
    }
    return o;
  };
  const challenge = header !== undefined ? `APIKey realm="portcullis", header="${header}"` : `APIKey realm="portcullis", query="${param}"`;
  return {
    name,
    type: 'apiKey',
    slot: header !== undefined ? `header:${header}` : `query:${param}`,
    present(req) {
      const values = read(req.headers, req.query);
      return values.length > 1 ? 'twice' : values.length === 1;
    },
    authenticate(req) {
      const key = read(req.headers, req.query)[0] ?? '';
      if (key.length === 0 || key.length > 512) return outcome.rejected('malformed');
      const consumer = consumers.byApiKey(key);
      if (consumer === undefined) return outcome.rejected('unknown_key');
      return identities(consumer);
    },
    challenge: () => challenge,
    strip(headers, query) {
      if (header !== undefined) {
        delete headers[header];
        return query;
      }
      return withoutQueryParam(query, param as string);
    },
  };
}
