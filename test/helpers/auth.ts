/** Small helpers for the authentication tests: credentials, requests, and what a client sees. */
import argon2 from 'argon2';
import { request } from 'undici';
import type { TestBackend } from './backend.js';
import type { TestGateway } from './gateway.js';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The problem code of a gateway reply (application/problem+json), if any. */
  readonly code: string | undefined;
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}

/** A cheap argon2id hash for tests (production hashes use the CLI defaults). */
export function cheapArgon2(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id, memoryCost: 1024, timeCost: 1, parallelism: 1 });
}

export async function send(url: string, headers: Record<string, string | string[]> = {}, method = 'GET'): Promise<Reply> {
  const res = await request(url, { method, headers });
  const text = await res.body.text();
  let code: string | undefined;
  if (String(res.headers['content-type'] ?? '').includes('problem+json')) code = (JSON.parse(text) as { code?: string }).code;
  return { status: res.statusCode, headers: res.headers, text, code };
}

/** Headers of the last request the backend received (or undefined when nothing arrived since `before`). */
export function lastReceived(backend: TestBackend, before: number): Record<string, string | string[] | undefined> | undefined {
  return backend.received.length > before ? backend.received[backend.received.length - 1]?.headers : undefined;
}

/** Lower-case names the backend received, from the raw header list (so `X_Consumer_Id` is seen as sent). */
export function rawNames(backend: TestBackend): string[] {
  const raw = backend.received[backend.received.length - 1]?.rawHeaders ?? [];
  return raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

/** Every log line and the /metrics text, for "the secret never appears" assertions. */
export async function observable(gw: TestGateway): Promise<string> {
  const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  return `${JSON.stringify(gw.logs)}\n${metrics}`;
}

export function assertNoSecret(text: string, secrets: readonly string[]): void {
  for (const s of secrets) if (text.includes(s)) throw new Error(`secret leaked into logs or metrics: ${s.slice(0, 6)}…`);
}
