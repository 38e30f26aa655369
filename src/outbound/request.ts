/**
 * The OutboundRequest the handler hands to a credential: one object per request that uses the
 * phase (routes whose upstream has no `auth` never create one). The body stays a stream unless a
 * credential reads it; then it is buffered under a cap and dispatched as a Buffer.
 */
import type { Readable } from 'node:stream';
import type { Identity } from '../auth/types.js';
import { type Refusal, refuse } from '../core/errors.js';
import type { HeaderMap } from '../core/headers.js';
import type { OutboundPhase } from './build.js';
import type { OutboundBody, OutboundCredential, OutboundRequest, OutboundResult } from './types.js';

const EMPTY = Buffer.alloc(0);
/** Code of the error the handler's streaming body limiter raises (src/server/handler.ts). */
const BODY_TOO_LARGE = 'PTC_BODY_TOO_LARGE';

export class PendingRequest implements OutboundRequest, OutboundBody {
  readonly method: string;
  path: string;
  readonly headers: HeaderMap;
  readonly identity: Identity | undefined;
  readonly upstream: string;
  readonly present: boolean;
  readonly #source: Readable | null;
  readonly #declaredLength: number;
  #buffer: Buffer | undefined;
  #reading: Promise<Buffer | Refusal> | undefined;
  /** The body was started but not read to its end: the connection cannot be reused after a refusal. */
  unread: boolean;

  constructor(
    method: string,
    path: string,
    headers: HeaderMap,
    identity: Identity | undefined,
    upstream: string,
    source: Readable | null,
    declaredLength: number,
  ) {
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.identity = identity;
    this.upstream = upstream;
    this.#source = source;
    this.present = source !== null;
    this.#declaredLength = declaredLength;
    this.unread = source !== null;
  }

  get body(): OutboundBody {
    return this;
  }

  /** What to dispatch: the untouched stream, or the (possibly edited) buffer. */
  get dispatchBody(): Readable | Buffer | null {
    return this.#buffer ?? this.#source;
  }

  read(max: number): Promise<Buffer | Refusal> {
    if (this.#buffer !== undefined) return Promise.resolve(this.#buffer);
    if (this.#reading !== undefined) return this.#reading;
    const source = this.#source;
    if (source === null) {
      this.#buffer = EMPTY;
      return Promise.resolve(EMPTY);
    }
    if (this.#declaredLength > max) return Promise.resolve(refuse('PTC_ERR_BODY_TOO_LARGE', `outbound: body of ${this.#declaredLength} bytes over ${max}`));
    this.#reading = new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let seen = 0;
      const done = (result: Buffer | Refusal) => {
        source.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
        resolve(result);
      };
      const onData = (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > max) {
          source.pause();
          done(refuse('PTC_ERR_BODY_TOO_LARGE', `outbound: body over ${max} bytes`));
        } else chunks.push(chunk);
      };
      const onEnd = () => {
        const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, seen);
        this.unread = false;
        this.#setBuffer(body);
        done(body);
      };
      const onError = (err: Error) =>
        done(
          (err as { code?: unknown }).code === BODY_TOO_LARGE
            ? refuse('PTC_ERR_BODY_TOO_LARGE', err.message)
            : refuse('PTC_ERR_BAD_REQUEST', 'outbound: request body aborted'),
        );
      const onClose = () => done(refuse('PTC_ERR_BAD_REQUEST', 'outbound: request body aborted'));
      source.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
      source.resume();
    });
    return this.#reading;
  }

  replace(body: Buffer): void {
    this.#setBuffer(body);
  }

  #setBuffer(body: Buffer): void {
    this.#buffer = body;
    // The body now has a known length: frame it with Content-Length (RFC 9112 §6.2), never chunked.
    this.headers['content-length'] = String(body.length);
    delete this.headers['transfer-encoding'];
  }
}

/** Apply one upstream's credential, counting the result. A thrown error is counted and re-thrown (fail closed). */
export function runOutbound(phase: OutboundPhase, req: OutboundRequest): OutboundResult | Promise<OutboundResult> {
  let result: ReturnType<OutboundCredential['apply']>;
  try {
    result = phase.credential.apply(req);
  } catch (err) {
    phase.failed.inc();
    throw err;
  }
  if (result instanceof Promise)
    return result.then(
      (r) => count(phase, r ?? undefined),
      (err: unknown) => {
        phase.failed.inc();
        throw err;
      },
    );
  return count(phase, result ?? undefined);
}

function count(phase: OutboundPhase, result: OutboundResult): OutboundResult {
  if (result === undefined) phase.applied.inc();
  else phase.refused.inc();
  return result;
}
