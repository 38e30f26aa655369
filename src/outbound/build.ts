/**
 * Build the outbound phase once per config: one credential per upstream with `auth`, the gateway
 * key when an upstream mints JWTs, and pre-bound metric children so the per-request cost is the
 * credential itself.
 */
import type { Counter } from 'prom-client';
import { BuildProblem } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createApiKeyCredential } from './api-key.js';
import { createBasicCredential } from './basic.js';
import { createClientCredentialsCredential } from './client-credentials.js';
import { type GatewayIdentity, loadGatewayIdentity } from './gateway-identity.js';
import { createHttpSignatureCredential, type UpstreamAddressing } from './http-signature.js';
import { createJwtCredential } from './jwt.js';
import { createSamlAssertionCredential } from './saml.js';
import type { BuiltOutboundType, OutboundAuthConfig } from './schema.js';
import type { OutboundBuildContext, OutboundCredential } from './types.js';
import type { SharedStore } from '../state/store.js';

type Factory<T extends BuiltOutboundType> = (cfg: Extract<OutboundAuthConfig, { type: T }>, ctx: OutboundBuildContext) => OutboundCredential;

/** One factory per credential type; a new type is one file plus one line here and in schema.ts. */
const FACTORIES: { [T in BuiltOutboundType]: Factory<T> } = {
  apiKey: createApiKeyCredential,
  basic: createBasicCredential,
  jwt: createJwtCredential,
  oauth2ClientCredentials: createClientCredentialsCredential,
  samlAssertion: createSamlAssertionCredential,
  httpSignature: createHttpSignatureCredential,
};

/** The outbound phase of one upstream. */
export interface OutboundPhase {
  readonly upstream: string;
  readonly credential: OutboundCredential;
  readonly applied: Counter.Internal;
  readonly refused: Counter.Internal;
  readonly failed: Counter.Internal;
}

export interface OutboundSection {
  /** Phase per upstream name; upstreams without `auth` are absent (and pay nothing). */
  readonly phases: ReadonlyMap<string, OutboundPhase>;
  /** The gateway signing key, when some upstream mints JWTs. */
  readonly identity: GatewayIdentity | undefined;
  close(): Promise<void>;
}

export async function buildOutbound(config: Config, base: { dir: string; metrics: Metrics; logger: Logger; store: SharedStore }): Promise<OutboundSection> {
  const entries = Object.entries(config.upstreams).filter((e): e is [string, (typeof e)[1] & { auth: OutboundAuthConfig }] => e[1].auth !== undefined);
  const identity = entries.some(([, u]) => u.auth.type === 'jwt') ? await loadGatewayIdentity(config.gatewayIdentity, base.dir) : undefined;
  const phases = new Map<string, OutboundPhase>();
  try {
    for (const [name, u] of entries) {
      const cfg = u.auth;
      const factory = Object.hasOwn(FACTORIES, cfg.type) ? (FACTORIES[cfg.type as BuiltOutboundType] as Factory<BuiltOutboundType>) : undefined;
      if (factory === undefined)
        throw new BuildProblem(['upstreams', name, 'auth', 'type'], `outbound credential type "${cfg.type}" is not available in this build`);
      // targets/hostHeader: what httpSignature signs as @authority and @path (UpstreamAddressing).
      const ctx: OutboundBuildContext & UpstreamAddressing = {
        upstream: name,
        path: ['upstreams', name, 'auth'],
        dir: base.dir,
        maxBodyBytes: config.limits.maxBodyBytes,
        metrics: base.metrics,
        logger: base.logger,
        identity,
        store: base.store,
        targets: u.targets,
        hostHeader: u.hostHeader,
      };
      const credential = factory(cfg as Extract<OutboundAuthConfig, { type: BuiltOutboundType }>, ctx);
      const counter = base.metrics.outboundCredentials;
      phases.set(name, {
        upstream: name,
        credential,
        applied: counter.labels(name, credential.type, 'applied'),
        refused: counter.labels(name, credential.type, 'refused'),
        failed: counter.labels(name, credential.type, 'failed'),
      });
    }
  } catch (err) {
    await Promise.all([...phases.values()].map((p) => p.credential.close?.()));
    throw err;
  }
  return {
    phases,
    identity,
    async close() {
      await Promise.all([...phases.values()].map((p) => p.credential.close?.()));
    },
  };
}
