/**
 * The config schema: the public contract of the YAML file. Each field has a description and a
 * default, so `portcullis schema` gives editors completion and docs/configuration.md stays honest.
 * Keys that later capabilities own are reserved: they are known, so a typo elsewhere is still an
 * "unrecognized key", but using them before they exist is a clear error rather than a silent no-op.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { authenticatorSchema, consumerSchema, routeAuthenticateSchema } from '../auth/schema.js';
import { duration, isLoopback, parseUrlField, secretInstance, secretValue, size } from './fields.js';
import { gatewayIdentitySchema, outboundAuthSchema } from '../outbound/schema.js';
import { storeSchema } from '../state/schema.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, IPv6 as `[::1]:8080`. Port 0 asks the OS for a free port (tests). */
export function parseAddress(value: string): Address | string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(value);
  if (m === null) return `"${value}" is not host:port (IPv6 as [::1]:8080)`;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range`;
  if (m[1] !== undefined && isIP(host) !== 6) return `"${host}" is not an IPv6 address`;
  return { host, port };
}

const address = z
  .string()
  .describe('host:port to bind; IPv6 as [::1]:8080')
  .transform((v, ctx) => {
    const a = parseAddress(v);
    if (typeof a === 'string') {
      ctx.addIssue({ code: 'custom', message: a });
      return z.NEVER;
    }
    return a;
  });

/** A key a later capability owns: recognised, but refused until that capability exists. */
const reserved = (what: string) =>
  z
    .unknown()
    .optional()
    .describe(`Reserved for ${what}; not available in this version.`)
    .superRefine((v, ctx) => {
      if (v !== undefined) ctx.addIssue({ code: 'custom', message: `${what} is not available in this version of Portcullis` });
    });

const tlsListener = z
  .strictObject({
    cert: z.string().min(1).describe('PEM file with the certificate chain (relative to the config file)'),
    key: z.string().min(1).describe('PEM file with the private key'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted. Default TLSv1.2.'),
    http2: z.boolean().default(true).describe('Offer HTTP/2 via ALPN (HTTP/1.1 stays available). Default true.'),
    clientCa: z.string().min(1).optional().describe('PEM file of the CAs that sign client certificates (mutual TLS)'),
    clientCert: z
      .enum(['off', 'optional', 'required'])
      .optional()
      .describe('Ask clients for a certificate: off, optional, or required (handshake fails without one). Default optional when clientCa is set, else off.'),
  })
  .superRefine((t, ctx) => {
    if (t.clientCert !== undefined && t.clientCert !== 'off' && t.clientCa === undefined)
      ctx.addIssue({ code: 'custom', message: 'clientCert needs clientCa (the CAs to verify client certificates against)', path: ['clientCert'] });
  })
  .describe('Terminate TLS on this listener');

const listener = z.strictObject({
  address,
  tls: tlsListener.optional(),
});

const cidr = z
  .string()
  .describe('An IP address or CIDR range, e.g. 10.0.0.0/8 or ::1')
  .refine((v) => {
    const [ip, bits, extra] = v.split('/');
    if (extra !== undefined || ip === undefined) return false;
    const family = isIP(ip);
    if (family === 0) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
  }, 'not an IP address or CIDR range');

const targetUrl = z
  .string()
  .describe('http:// or https:// origin, optionally with a base path')
  .superRefine((v, ctx) => {
    const u = parseUrlField(v, ctx);
    if (u === undefined) return;
    if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `"${v}" must be http:// or https://` });
    if (u.username !== '' || u.password !== '') ctx.addIssue({ code: 'custom', message: 'credentials in a target URL are not allowed; use upstream auth' });
    if (u.search !== '' || u.hash !== '') ctx.addIssue({ code: 'custom', message: 'a target URL must not have a query or fragment' });
  });

export const INSECURE_SKIP_VERIFY = 'I understand this disables upstream authentication';

/** PEM file paths are relative to the config file. docs/upstream-tls.md documents every field. */
const upstreamTLS = z
  .strictObject({
    ca: z.string().min(1).optional().describe('PEM file of the CAs that sign the upstream certificate (default: the system CAs). Verification is always on.'),
    servername: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'not a host name')
      .optional()
      .describe('SNI sent and the name the certificate must carry (default: the target host; Node sends no SNI for an IP address)'),
    cert: z.string().min(1).optional().describe('PEM file with the client certificate chain for mutual TLS'),
    key: z
      .union([secretInstance, z.string().min(1)])
      .optional()
      .describe(`Client private key: a PEM file path, or a "\${secret:NAME}" reference whose value is the PEM text`),
    passphrase: secretValue('Passphrase of an encrypted client key').optional(),
    pin: z
      .array(z.string().regex(/^sha256\/[A-Za-z0-9+/]{43}=$/, 'a pin is sha256/<base64 of the SHA-256 of the DER SubjectPublicKeyInfo>'))
      .min(1)
      .optional()
      .describe('SPKI pins; the leaf certificate key must match one (checked after chain and name verification)'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version offered. Default TLSv1.2.'),
    insecureSkipVerify: z
      .string()
      .optional()
      .describe(`Turns certificate verification off. Only accepted as the exact sentence "${INSECURE_SKIP_VERIFY}"; logged at every load.`),
  })
  .superRefine((t, ctx) => {
    if ((t.cert === undefined) !== (t.key === undefined))
      ctx.addIssue({ code: 'custom', message: 'cert and key go together (mutual TLS needs both)', path: [t.cert === undefined ? 'key' : 'cert'] });
    if (t.passphrase !== undefined && t.key === undefined) ctx.addIssue({ code: 'custom', message: 'passphrase needs key', path: ['passphrase'] });
    if (t.insecureSkipVerify !== undefined) {
      if (t.insecureSkipVerify !== INSECURE_SKIP_VERIFY)
        ctx.addIssue({
          code: 'custom',
          message: `to turn verification off, insecureSkipVerify must be exactly "${INSECURE_SKIP_VERIFY}"`,
          path: ['insecureSkipVerify'],
        });
      for (const k of ['ca', 'pin'] as const)
        if (t[k] !== undefined) ctx.addIssue({ code: 'custom', message: `${k} has no effect with insecureSkipVerify; remove one of them`, path: [k] });
    }
  })
  .describe('TLS to https:// targets: verification (always on), SNI, mutual TLS, pinning');

const upstream = z.strictObject({
  targets: z.array(targetUrl).min(1).describe('Targets, used round-robin; one that refuses connections is ejected for `ejectFor`'),
  timeouts: z
    .strictObject({
      connect: duration('2s', 'Time to establish a connection to a target'),
      response: duration('30s', 'Time for the target to send response headers'),
    })
    .prefault({})
    .describe('Upstream timeouts'),
  hostHeader: z
    .string()
    .min(1)
    .default('target')
    .describe('Host header sent upstream: `target` (the target URL host, default), `preserve` (the client Host), or a literal host'),
  ejectFor: duration('10s', 'Cool-down of a target that refused a connection'),
  maxConnections: z.number().int().positive().optional().describe('Cap on open connections per target (default: unbounded)'),
  tls: upstreamTLS.optional(),
  auth: outboundAuthSchema.optional(),
});

const pathPattern = z
  .string()
  .describe('Exact path (/status), whole-segment prefix (/orders/**), or with parameters (/users/:id)')
  .refine((v) => v.startsWith('/'), 'a path pattern starts with /')
  .refine((v) => !/[?#%\\]/.test(v), 'a path pattern must not contain ?, #, % or \\')
  .refine((v) => !v.slice(0, -3).includes('**') && (!v.includes('**') || v.endsWith('/**')), '** is only allowed as the last segment (/prefix/**)')
  .refine((v) => !v.split('/').some((s) => s === '.' || s === '..'), 'a path pattern must not contain . or .. segments')
  .refine((v) => !v.endsWith('/**') || !v.includes('/:'), 'parameters (/:name) cannot be combined with a /** prefix')
  .refine((v) => !/\/\//.test(v), 'a path pattern must not contain //');

const method = z
  .string()
  .regex(/^[A-Za-z]+$/, 'not an HTTP method')
  .transform((m) => m.toUpperCase());

const hostPattern = z
  .string()
  .describe('Host to match (case-insensitive, port ignored); `*.example.com` matches one or more leading labels')
  .refine((v) => /^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(v) || /^\[[0-9a-fA-F:]+\]$/.test(v), 'not a host name')
  .transform((v) => v.toLowerCase());

const respond = z
  .strictObject({
    status: z.number().int().min(200).max(599).describe('Status code'),
    json: z.unknown().optional().describe('JSON body'),
    body: z.string().optional().describe('Text body (text/plain)'),
    headers: z.record(z.string(), z.string()).optional().describe('Extra response headers'),
  })
  .refine((r) => r.json === undefined || r.body === undefined, 'use either json or body, not both')
  .describe('A static response; the route has no upstream');

const route = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a route name is 1-64 of A-Z a-z 0-9 . _ - (it is a metric label)')
      .describe('Unique name: used in logs and metrics'),
    match: z.strictObject({
      host: hostPattern.optional(),
      path: pathPattern,
      methods: z.array(method).min(1).optional().describe('Methods accepted (default: all)'),
    }),
    upstream: z.string().optional().describe('Name of the upstream to proxy to'),
    respond: respond.optional(),
    stripPrefix: z.string().optional().describe('Literal path prefix removed before forwarding (whole segments)'),
    websocket: z.boolean().default(false).describe('Allow WebSocket upgrades on this route. Default false.'),
    authenticate: routeAuthenticateSchema.optional(),
    authorize: reserved('authorization (routes[].authorize)'),
    rateLimit: reserved('rate limiting (routes[].rateLimit)'),
    routeBy: reserved('dynamic routing (routes[].routeBy)'),
    forwardCredentials: z.boolean().default(false).describe('Forward the client credential to the upstream (default false: it is removed)'),
  })
  .superRefine(
    (r, ctx) => {
      if ((r.upstream === undefined) === (r.respond === undefined))
        ctx.addIssue({ code: 'custom', message: 'a route needs exactly one of upstream or respond', path: ['upstream'] });
      if (typeof r.stripPrefix === 'string' && typeof r.match?.path === 'string') {
        const literal = r.match.path.endsWith('/**') ? r.match.path.slice(0, -3) : r.match.path;
        const ok =
          r.stripPrefix.startsWith('/') &&
          !r.stripPrefix.endsWith('/') &&
          !r.stripPrefix.includes(':') &&
          (literal === r.stripPrefix || literal.startsWith(`${r.stripPrefix}/`));
        if (!ok) ctx.addIssue({ code: 'custom', message: `stripPrefix must be whole leading segments of match.path "${r.match.path}"`, path: ['stripPrefix'] });
      }
    },
    // Also when another field of the route failed, so every problem is reported at once.
    { when: (p) => isObject(p.value) },
  );

export const configSchema = z
  .strictObject({
    listeners: z.array(listener).min(1).describe('Where clients connect'),
    admin: z
      .strictObject({
        address: address.prefault('127.0.0.1:9901'),
        allowRemote: z.boolean().default(false).describe('Allow a non-loopback admin address. Default false.'),
      })
      .prefault({})
      .describe('Admin listener: /healthz, /readyz, /metrics. Loopback only unless allowRemote.'),
    trustedProxies: z
      .array(cidr)
      .default([])
      .describe('Peers whose X-Forwarded-For, -Proto, -Host and X-Request-Id are honoured (Forwarded is always dropped)'),
    limits: z
      .strictObject({
        maxBodyBytes: size('10mb', 'Largest request body'),
        maxHeaderCount: z.number().int().min(1).max(1000).default(100).describe('Most request headers. Default 100.'),
        maxHeaderBytes: size('16kb', 'Largest request head (request line and headers)'),
        headersTimeout: duration('10s', 'Time a client has to send the request head'),
        requestTimeout: duration('60s', 'Time a client has to send the whole request'),
        idleTimeout: duration('30s', 'Keep-alive idle time of a client connection'),
        drainTimeout: duration('30s', 'How long SIGTERM waits for in-flight requests'),
      })
      .prefault({})
      .describe('Request limits'),
    log: z
      .strictObject({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        access: z.boolean().default(true).describe('One JSON line per request. Default true.'),
      })
      .prefault({})
      .describe('Logging'),
    upstreams: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an upstream name is 1-64 of A-Z a-z 0-9 . _ -'), upstream).default({}),
    routes: z.array(route).min(1).describe('Routes; the most specific match wins'),
    authenticators: z
      .record(
        z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'an authenticator name is 1-64 of A-Z a-z 0-9 . _ - (it is a metric label)'),
        authenticatorSchema,
      )
      .default({})
      .describe('Named authenticators; routes list the ones they accept'),
    consumers: z.array(consumerSchema).default([]).describe('Known API consumers and their credentials'),
    gatewayIdentity: gatewayIdentitySchema.prefault({}),
    secrets: z
      .strictObject({
        file: z.string().min(1).describe('The encrypted secret store (relative to the config file); managed with `portcullis secrets`'),
        keyFile: z.string().min(1).optional().describe('File holding the master key; PORTCULLIS_SECRETS_KEY takes precedence when set'),
      })
      .optional()
      .describe(`The secret store that \${secret:NAME} references resolve from (docs/secrets.md)`),
    store: storeSchema,
  })
  .superRefine(
    (c, ctx) => {
      // Runs even when other fields failed (see `when`), so each part is checked only if it parsed.
      const routes: unknown[] = Array.isArray(c.routes) ? c.routes : [];
      const upstreams = isObject(c.upstreams) ? c.upstreams : undefined;
      const names = new Map<string, number>();
      routes.forEach((r, i) => {
        if (!isObject(r)) return;
        if (typeof r.name === 'string') {
          const first = names.get(r.name);
          if (first !== undefined)
            ctx.addIssue({ code: 'custom', message: `route name "${r.name}" is already used by routes[${first}]`, path: ['routes', i, 'name'] });
          else names.set(r.name, i);
        }
        if (typeof r.upstream === 'string' && upstreams !== undefined && !Object.hasOwn(upstreams, r.upstream))
          ctx.addIssue({ code: 'custom', message: `unknown upstream "${r.upstream}"`, path: ['routes', i, 'upstream'] });
      });
      const seen = new Map<string, string>();
      const key = (a: Address) => `${a.host.toLowerCase()}:${a.port}`;
      const listeners: unknown[] = Array.isArray(c.listeners) ? c.listeners : [];
      listeners.forEach((l, i) => {
        if (!isObject(l) || !isAddress(l.address)) return;
        const k = key(l.address);
        if (l.address.port !== 0 && seen.has(k))
          ctx.addIssue({ code: 'custom', message: `address is already used by ${seen.get(k)}`, path: ['listeners', i, 'address'] });
        seen.set(k, `listeners[${i}]`);
      });
      const admin: unknown = c.admin;
      if (!isObject(admin) || !isAddress(admin.address)) return;
      if (admin.address.port !== 0 && seen.has(key(admin.address)))
        ctx.addIssue({ code: 'custom', message: `admin address is already used by ${seen.get(key(admin.address))}`, path: ['admin', 'address'] });
      if (admin.allowRemote !== true && !isLoopback(admin.address.host))
        ctx.addIssue({
          code: 'custom',
          message: 'the admin listener must bind a loopback address unless admin.allowRemote is true',
          path: ['admin', 'address'],
        });
    },
    // Cross-field checks run even when another field failed, so every problem is reported at once.
    { when: (p) => isObject(p.value) },
  );

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isAddress(v: unknown): v is Address {
  return isObject(v) && typeof v.host === 'string' && typeof v.port === 'number';
}

export type Config = z.output<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];
export type UpstreamConfig = Config['upstreams'][string];
export type RouteConfig = Config['routes'][number];
export type LimitsConfig = Config['limits'];
