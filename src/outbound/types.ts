/**
 * The outbound phase: last-mile credentials. Runs after the client's own credential was stripped
 * and the identity headers were set, right before dispatch. Each upstream with `auth` gets one
 * OutboundCredential, built once from config; per request it only mutates the OutboundRequest it
 * is given (oauth4webapi's ClientAuth strategy shape) and returns a refusal as a value.
 *
 * Adding a type (oauth2ClientCredentials, samlAssertion, httpSignature…) is one file exporting a
 * schema and a factory, listed in schema.ts and build.ts.
 */
import type { Identity } from '../auth/types.js';
import type { ConfigPath } from '../config/load.js';
import type { ErrorCode, Refusal } from '../core/errors.js';
import type { HeaderMap } from '../core/headers.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SharedStore } from '../state/store.js';
import type { GatewayIdentity } from './gateway-identity.js';

/** The request body, as an outbound credential may need it (body-carried API keys, signatures). */
export interface OutboundBody {
  /** The client sent a body (Content-Length > 0, chunked, or an HTTP/2 stream with data). */
  readonly present: boolean;
  /**
   * Buffer the whole body, at most `max` bytes: more is a 413 refusal. Once read, what goes
   * upstream is this buffer (or what `replace` set). Reading twice returns the same buffer.
   */
  read(max: number): Promise<Buffer | Refusal>;
  /** Send `body` upstream instead, framed with Content-Length (any Transfer-Encoding dropped). */
  replace(body: Buffer): void;
}

/** The request about to be dispatched upstream, after strip-before-inject. */
export interface OutboundRequest {
  readonly method: string;
  /** Path and query sent upstream (after stripPrefix, without the target base path); may be rewritten. */
  path: string;
  /** Upstream request headers (lower-case names), mutable. */
  readonly headers: HeaderMap;
  /** The verified identity from the authenticate phase; undefined on an anonymous route. */
  readonly identity: Identity | undefined;
  /** Name of the upstream in the config. */
  readonly upstream: string;
  readonly body: OutboundBody;
}

/** undefined: the credential was applied; a Refusal: the request is answered locally. */
export type OutboundResult = Refusal | undefined;

export interface OutboundCredential {
  /** Config type: apiKey, basic, jwt… (a metric label). */
  readonly type: string;
  /** Mutate `req` to carry the credential; return (or resolve to) a Refusal to answer locally instead. */
  // biome-ignore lint/suspicious/noConfusingVoidType: an injector that only sets a header returns nothing
  apply(req: OutboundRequest): void | Refusal | Promise<void | Refusal>;
  /**
   * Forget any cached credential (for a later retry after the upstream answered 401). `rejected`
   * is the request the upstream refused, so a credential can drop only the token it carried.
   */
  invalidate?(rejected: OutboundRequest): void;
  close?(): Promise<void> | void;
}

/** What a factory gets besides its own config. */
export interface OutboundBuildContext {
  readonly upstream: string;
  /** Config path of this `auth` block, for BuildProblem. */
  readonly path: ConfigPath;
  /** Directory of the config file. */
  readonly dir: string;
  /** limits.maxBodyBytes: the default cap on a buffered body. */
  readonly maxBodyBytes: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** The gateway's own signing key; present when an upstream mints gateway JWTs. */
  readonly identity: GatewayIdentity | undefined;
  /** Shared state (Redis shared by every instance, or memory): oauth2ClientCredentials keeps its token there. Absent: local only. */
  readonly store?: SharedStore;
}

/** A refusal of the outbound phase (a value; `details` is for logs only and never holds a secret). */
export function outboundRefusal(code: ErrorCode, details: string): Refusal {
  return { code, details: `outbound: ${details}` };
}
