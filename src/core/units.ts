/** Parsing of the human units used in config: durations (`500ms`, `10s`, `2m`, `1h`) and sizes (`10mb`). */

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
/** Node timers fire after 1 ms when asked for more than 2^31-1 ms, so a longer duration is refused. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Milliseconds from a duration string, or undefined when it is not one. Bare numbers are milliseconds. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 && value <= MAX_DURATION_MS ? value : undefined;
  const m = DURATION.exec(value.trim());
  if (m === null) return undefined;
  const ms = Math.round(Number(m[1]) * DURATION_MS[m[2] as keyof typeof DURATION_MS]);
  return ms <= MAX_DURATION_MS ? ms : undefined;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i;
const SIZE_BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 } as const;

/** Bytes from a size string (`512kb`, `10mb`; binary multiples), or undefined when it is not one. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const m = SIZE.exec(value.trim());
  if (m === null) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase() as keyof typeof SIZE_BYTES;
  const bytes = Math.floor(Number(m[1]) * SIZE_BYTES[unit]);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}
