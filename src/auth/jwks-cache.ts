/**
 * A remote JWKS held in memory. jose's createRemoteJWKSet does not fit the gateway's failure model:
 * once its cacheMaxAge passes, a failed refetch fails the request even though the previous keys are
 * still in hand, and its cooldown runs from the last *successful* fetch, so while the IdP is down
 * every unknown `kid` starts a new fetch. This cache wraps jose's createLocalJWKSet instead:
 *
 *   - the first fetch starts at build (warm-up); until keys arrive, a request waits for the fetch in flight;
 *   - stale keys keep serving: after `maxAge` a request starts one background refresh and is
 *     answered with the keys in hand (the IdP being down never fails a request that has keys);
 *   - an unknown `kid` refetches at most once per `cooldown`, counted from the last *attempt*
 *     (success or failure), so a flood of random kids costs at most one fetch per cooldown;
 *   - fetches are single-flight, bounded by `timeout` and by a body size cap, `redirect: 'manual'`;
 *   - with no keys at all, a failed fetch is retried at most once a second (or once per cooldown if shorter).
 *
 * `fetch` and the clock are injected for tests.
 */
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { readCapped } from './read-capped.js';

type LocalSet = ReturnType<typeof createLocalJWKSet>;
type VerifyKey = Awaited<ReturnType<LocalSet>>;

export class JwksUnavailableError extends Error {
  readonly code = 'PTC_JWKS_UNAVAILABLE';
}

export interface JwksCacheOptions {
  readonly url: string;
  readonly timeout: number;
  readonly maxAge: number;
  readonly cooldown: number;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** Called after every fetch attempt. */
  readonly onFetch?: (result: 'ok' | 'error', err?: unknown) => void;
  /** Called when a fetch brings a key set different from the one held (keys added or removed). */
  readonly onChange?: () => void;
}

/** Largest JWKS document accepted. */
const MAX_JWKS_BYTES = 512 * 1024;
const NO_KEYS_RETRY_MS = 1_000;

export class JwksCache {
  readonly #opts: JwksCacheOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  #local: LocalSet | undefined;
  #text = '';
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #attemptAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(opts: JwksCacheOptions) {
    this.#opts = opts;
    this.#fetch = opts.fetch ?? fetch;
    this.#now = opts.now ?? Date.now;
  }

  get hasKeys(): boolean {
    return this.#local !== undefined;
  }

  /** Start a fetch now (build-time warm-up); failures are reported through onFetch only. */
  warm(): void {
    void this.#refresh();
  }

  /** The key for a token header. Throws jose's JWKSNoMatchingKey / JWKSMultipleMatchingKeys, or JwksUnavailableError. */
  async getKey(header: JWSHeaderParameters): Promise<VerifyKey> {
    const now = this.#now();
    if (this.#local === undefined) {
      if (this.#pending !== undefined || now - this.#attemptAt >= Math.min(NO_KEYS_RETRY_MS, this.#opts.cooldown)) await this.#refresh();
      if (this.#local === undefined) throw new JwksUnavailableError('no JWKS keys available');
    } else if (now - this.#fetchedAt >= this.#opts.maxAge && this.#pending === undefined && now - this.#attemptAt >= this.#opts.cooldown) {
      void this.#refresh(); // background: this request is answered with the keys in hand
    }
    try {
      return await (this.#local as LocalSet)(header);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      if (this.#pending !== undefined) await this.#pending;
      else if (this.#now() - this.#attemptAt >= this.#opts.cooldown) await this.#refresh();
      else throw err;
      return await (this.#local as LocalSet)(header);
    }
  }

  close(): void {
    this.#abort.abort();
  }

  /** Single-flight fetch; never rejects (the outcome is in #local / onFetch). */
  #refresh(): Promise<void> {
    if (this.#pending !== undefined) return this.#pending;
    if (this.#abort.signal.aborted) return Promise.resolve();
    this.#attemptAt = this.#now();
    const p = this.#load().then(
      () => this.#opts.onFetch?.('ok'),
      (err: unknown) => this.#opts.onFetch?.('error', err),
    );
    this.#pending = p.finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #load(): Promise<void> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.#opts.timeout), this.#abort.signal]);
    const res = await this.#fetch(this.#opts.url, {
      method: 'GET',
      redirect: 'manual',
      signal,
      headers: { accept: 'application/jwk-set+json, application/json' },
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`JWKS endpoint answered ${res.status}`);
    }
    const text = await readDocument(res, MAX_JWKS_BYTES);
    const next = createLocalJWKSet(JSON.parse(text) as JSONWebKeySet); // throws JWKSInvalid on a malformed set
    const changed = this.#local !== undefined && text !== this.#text;
    this.#local = next;
    this.#text = text;
    this.#fetchedAt = this.#now();
    if (changed) this.#opts.onChange?.();
  }
}

async function readDocument(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) {
    await res.body?.cancel();
    throw new Error('JWKS document too large');
  }
  if (res.body === null) return '';
  const bytes = await readCapped(res.body, max);
  if (bytes === undefined) throw new Error('JWKS document too large');
  return bytes.toString('utf8');
}
