/**
 * JSON logs (pino). Application lines and the access log share one stream. No header values are
 * logged except the ones the access log names explicitly, so credentials cannot leak by accident;
 * the redact list is a second belt for objects that reach a log line some other way.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const REDACT = [
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["proxy-authorization"]',
  'headers["x-api-key"]',
  'headers["set-cookie"]',
  'req.headers.authorization',
  'req.headers.cookie',
];

/**
 * pino's isoTime formats a new Date for every line; under load many lines share a millisecond,
 * so the formatted stamp is reused until the clock moves. The output is byte-for-byte the same.
 */
let stampMs = -1;
let stamp = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

export function createLogger(level: LogLevel = 'info', destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    // Synchronous writes, pino's default: measured here, sonic-boom's async mode spent more of the
    // event loop per access-log line (a libuv request and callback per flush) than a plain write(2).
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
