/**
 * Edge authentication contracts. An authenticator is built once from config and answers, per
 * request, one of: authenticated (with an Identity), absent (its credential is not there),
 * rejected (present but invalid — never falls through to another method), unavailable (its remote
 * dependency failed), or reply (an external auth service's own answer, relayed as is).
 */
import type { PeerCertificate } from 'node:tls';
import type { ErrorCode } from '../core/errors.js';
import type { HeaderMap } from '../core/headers.js';

export interface Consumer {
  readonly id: string;
  readonly groups: readonly string[];
  readonly metadata: Readonly<Record<string, string | number | boolean>>;
}

/** Who the request is from, held in per-request state for authorization, limits, routing, outbound. */
export interface Identity {
  /** Authenticator type that produced it: apiKey, basic, jwt, introspection, mtls, external. */
  readonly method: string;
  /** Authenticator name from the config. */
  readonly authenticator: string;
  /** The principal: token `sub`, Basic username, certificate subject, consumer id… */
  readonly subject: string;
  readonly consumer: Consumer | undefined;
  readonly groups: readonly string[];
  readonly scopes: readonly string[];
  /** Verified token claims (JWT / introspection), frozen; empty for other methods. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Headers an external auth service asked to set on the upstream request. */
  readonly upstreamHeaders?: Readonly<Record<string, string>>;
}

/**
 * A credential "slot": where a credential lives in a request. Two present slots of different
 * schemes in one request are refused (400) — the gateway will not guess which one the client meant.
 */
export type CredentialSlot = string;

export interface AuthRequest {
  readonly method: string;
  /** Normalised path (what is matched and forwarded). */
  readonly path: string;
  /** Query string including '?', or ''. */
  readonly query: string;
  /** Authority the client asked for. */
  readonly host: string;
  readonly scheme: 'http' | 'https';
  /** The client's headers after hygiene (lower-case names, hop-by-hop removed). */
  readonly headers: HeaderMap;
  readonly clientIp: string;
  /** The verified client certificate of this connection, if any. */
  peerCertificate(): PeerCertificate | undefined;
}

/** A short, bounded reason for metrics and logs (never a credential). */
export type RejectReason = string;

export type AuthOutcome =
  | { readonly kind: 'authenticated'; readonly identity: Identity }
  | { readonly kind: 'absent' }
  | { readonly kind: 'rejected'; readonly reason: RejectReason; readonly code?: ErrorCode; readonly headers?: Readonly<Record<string, string>> }
  | { readonly kind: 'unavailable'; readonly reason: RejectReason }
  | {
      readonly kind: 'reply';
      readonly status: number;
      readonly headers: Readonly<Record<string, string | string[]>>;
      readonly body: Buffer;
      readonly reason: RejectReason;
    };

export interface Authenticator {
  readonly name: string;
  readonly type: string;
  /** Slot of the credential this authenticator reads, or undefined for connection-level/remote (mtls, external). */
  readonly slot: CredentialSlot | undefined;
  /**
   * Is this authenticator's credential in the request? 'twice' when it is there more than once
   * (two keys, key in header and query) — refused as ambiguous.
   */
  present(req: AuthRequest): boolean | 'twice';
  authenticate(req: AuthRequest): AuthOutcome | Promise<AuthOutcome>;
  /** `WWW-Authenticate` challenge for a 401, or undefined. `error` is set when a token was bad. */
  challenge(error?: 'invalid_token'): string | undefined;
  /** Remove this authenticator's credential from the upstream request (headers and query). */
  strip(headers: HeaderMap, query: string): string;
  /**
   * Names of headers this authenticator sets on the upstream request (Identity.upstreamHeaders).
   * Client-sent copies are always removed, also when the route forwards credentials, so a header
   * the auth service did not set this time cannot be supplied by the client instead.
   */
  readonly upstreamHeaderNames?: readonly string[];
  close?(): Promise<void> | void;
}

export const outcome = {
  absent: { kind: 'absent' } as const satisfies AuthOutcome,
  rejected: (reason: RejectReason, code?: ErrorCode): AuthOutcome => (code === undefined ? { kind: 'rejected', reason } : { kind: 'rejected', reason, code }),
  unavailable: (reason: RejectReason): AuthOutcome => ({ kind: 'unavailable', reason }),
  authenticated: (identity: Identity): AuthOutcome => ({ kind: 'authenticated', identity }),
};
