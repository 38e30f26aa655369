/**
 * Build the authentication section once per config: every named authenticator (keys imported,
 * hashes indexed, remote key sets prepared) and, per route, its any-of / all-of pipeline.
 */
import { BuildProblem, type ConfigPath } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createApiKeyAuthenticator } from './api-key.js';
import { createBasicAuthenticator } from './basic.js';
import { createExternalAuthenticator } from './external.js';
import { createMtlsAuthenticator } from './mtls.js';
import { buildConsumers, type ConsumerDirectory } from './consumers.js';
import { createIntrospectionAuthenticator } from './introspection.js';
import { createJwtAuthenticator } from './jwt.js';
import { compileRouteAuth, type RouteAuth } from './pipeline.js';
import type { AuthenticatorConfig, ConsumerConfig, RouteAuthenticateConfig } from './schema.js';
import type { Authenticator } from './types.js';

export interface AuthBuildContext {
  readonly consumers: ConsumerDirectory;
  /** Directory of the config file, for relative key files. */
  readonly dir: string;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Config path of the authenticator being built, for BuildProblem. */
  readonly path: ConfigPath;
}

type Factory<T extends AuthenticatorConfig['type']> = (
  name: string,
  cfg: Extract<AuthenticatorConfig, { type: T }>,
  ctx: AuthBuildContext,
) => Authenticator | Promise<Authenticator>;

/** One factory per authenticator type. */
export const FACTORIES: { [T in AuthenticatorConfig['type']]?: Factory<T> } = {
  apiKey: createApiKeyAuthenticator,
  jwt: createJwtAuthenticator,
  introspection: createIntrospectionAuthenticator,
  basic: createBasicAuthenticator,
  mtls: createMtlsAuthenticator,
  external: createExternalAuthenticator,
};

export interface AuthSection {
  readonly consumers: ConsumerDirectory;
  readonly authenticators: ReadonlyMap<string, Authenticator>;
  routeAuth(index: number, cfg: RouteAuthenticateConfig): RouteAuth;
  close(): Promise<void>;
}

export async function buildAuth(
  authenticators: Readonly<Record<string, AuthenticatorConfig>>,
  consumers: readonly ConsumerConfig[],
  base: Omit<AuthBuildContext, 'consumers' | 'path'>,
): Promise<AuthSection> {
  const directory = buildConsumers(consumers);
  const built = new Map<string, Authenticator>();
  try {
    for (const [name, cfg] of Object.entries(authenticators)) {
      const factory = FACTORIES[cfg.type] as Factory<typeof cfg.type> | undefined;
      if (factory === undefined) throw new BuildProblem(['authenticators', name, 'type'], `authenticator type "${cfg.type}" is not available in this build`);
      built.set(name, await factory(name, cfg, { ...base, consumers: directory, path: ['authenticators', name] }));
    }
  } catch (err) {
    await Promise.all([...built.values()].map((a) => a.close?.()));
    throw err;
  }
  return {
    consumers: directory,
    authenticators: built,
    routeAuth(index, cfg) {
      const [mode, names] = Array.isArray(cfg) ? (['anyOf', cfg] as const) : 'allOf' in cfg ? (['allOf', cfg.allOf] as const) : (['anyOf', cfg.anyOf] as const);
      const list = names.map((n, i) => {
        const a = built.get(n);
        if (a === undefined)
          throw new BuildProblem(['routes', index, 'authenticate', ...(Array.isArray(cfg) ? [] : [mode]), i], `unknown authenticator "${n}"`);
        return a;
      });
      if (new Set(names).size !== names.length) throw new BuildProblem(['routes', index, 'authenticate'], 'an authenticator is listed twice');
      return compileRouteAuth(mode, list, base.metrics.authDecisions);
    },
    async close() {
      await Promise.all([...built.values()].map((a) => a.close?.()));
    },
  };
}
