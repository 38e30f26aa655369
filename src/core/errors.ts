/**
 * The error catalogue. Every reply the gateway writes itself carries one of these codes.
 * `title` is the only human text a client sees; the per-request `details` string goes to
 * logs and metrics, never into a body. Documented one row per code in docs/errors.md.
 */
export const ERRORS = {
  PTC_ERR_BAD_REQUEST: { status: 400, title: 'Malformed HTTP request' },
  PTC_ERR_BAD_PATH: { status: 400, title: 'Ambiguous or invalid request path' },
  PTC_ERR_BAD_REQUEST_TARGET: { status: 400, title: 'Request target not accepted' },
  PTC_ERR_DUPLICATE_HEADER: { status: 400, title: 'Header must not be repeated' },
  PTC_ERR_BAD_HEADER: { status: 400, title: 'Invalid request header' },
  PTC_ERR_XML_DTD_FORBIDDEN: { status: 400, title: 'XML document type declarations are not accepted' },
  PTC_ERR_AMBIGUOUS_CREDENTIALS: { status: 400, title: 'More than one credential presented' },
  PTC_ERR_UNAUTHENTICATED: { status: 401, title: 'Authentication required' },
  PTC_ERR_INVALID_CREDENTIALS: { status: 401, title: 'Invalid credentials' },
  PTC_ERR_FORBIDDEN: { status: 403, title: 'Forbidden' },
  PTC_ERR_NO_ROUTE: { status: 404, title: 'No route matches this request' },
  PTC_ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed on this route' },
  PTC_ERR_REQUEST_TIMEOUT: { status: 408, title: 'Request not received in time' },
  PTC_ERR_BODY_TOO_LARGE: { status: 413, title: 'Request body too large' },
  PTC_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported request media type' },
  PTC_ERR_EXPECTATION_FAILED: { status: 417, title: 'Expectation not supported' },
  PTC_ERR_TOO_MANY_HEADERS: { status: 431, title: 'Too many request headers' },
  PTC_ERR_HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large' },
  PTC_ERR_TOO_MANY_FAILURES: { status: 429, title: 'Too many failed authentication attempts' },
  PTC_ERR_INTERNAL: { status: 500, title: 'Internal error' },
  PTC_ERR_UPSTREAM_UNAVAILABLE: { status: 502, title: 'Upstream unavailable' },
  PTC_ERR_UPSTREAM_RESET: { status: 502, title: 'Upstream failed' },
  PTC_ERR_UPSTREAM_TLS: { status: 502, title: 'Upstream TLS handshake failed' },
  PTC_ERR_UPSTREAM_CREDENTIAL: { status: 502, title: 'Upstream credentials unavailable' },
  PTC_ERR_AUTH_UNAVAILABLE: { status: 503, title: 'Authentication service unavailable' },
  PTC_ERR_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timed out' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** A refusal decided by a phase: a value, not a crash. `details` is for logs only. */
export interface Refusal {
  readonly code: ErrorCode;
  readonly details: string;
  /** Extra response headers, e.g. `Allow` or `WWW-Authenticate`. */
  readonly headers?: Readonly<Record<string, string>>;
}

export function refuse(code: ErrorCode, details: string, headers?: Record<string, string>): Refusal {
  return headers === undefined ? { code, details } : { code, details, headers };
}
