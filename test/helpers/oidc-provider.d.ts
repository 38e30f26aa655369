/** The slice of `oidc-provider` (no bundled types) that the test helpers use. */
declare module 'oidc-provider' {
  import type { RequestListener } from 'node:http';

  export interface ResourceServerInfo {
    readonly scope: string;
    readonly audience?: string;
    readonly accessTokenTTL?: number;
    readonly accessTokenFormat?: 'jwt' | 'opaque';
    readonly jwt?: { readonly sign?: { readonly alg?: string } };
  }

  export interface Configuration {
    readonly clients?: readonly Record<string, unknown>[];
    readonly jwks?: { readonly keys: readonly Record<string, unknown>[] };
    readonly scopes?: readonly string[];
    readonly cookies?: { readonly keys?: readonly string[] };
    readonly features?: {
      readonly devInteractions?: { readonly enabled: boolean };
      readonly clientCredentials?: { readonly enabled: boolean };
      readonly introspection?: {
        readonly enabled: boolean;
        readonly allowedPolicy?: (ctx: unknown, client: unknown, token: unknown) => boolean | Promise<boolean>;
      };
      readonly resourceIndicators?: {
        readonly enabled: boolean;
        readonly defaultResource?: (ctx: unknown, client: unknown, oneOf?: string[]) => string | undefined | Promise<string | undefined>;
        readonly useGrantedResource?: (ctx: unknown, model: unknown) => boolean | Promise<boolean>;
        readonly getResourceServerInfo: (ctx: unknown, resourceIndicator: string, client: unknown) => ResourceServerInfo | Promise<ResourceServerInfo>;
      };
    };
    readonly ttl?: {
      readonly ClientCredentials?: (ctx: unknown, token: { readonly resourceServer?: { readonly accessTokenTTL?: number } }, client: unknown) => number;
    };
    readonly extraTokenClaims?: (ctx: unknown, token: unknown) => Record<string, unknown> | undefined | Promise<Record<string, unknown> | undefined>;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    callback(): RequestListener;
    static readonly errors: { readonly InvalidTarget: new (description?: string) => Error };
  }
}
