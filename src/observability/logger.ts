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

/** Where logAccess writes for a logger made by createLogger: its stream and its bindings. */
interface AccessSink {
  readonly stream: { write(line: string): unknown };
  /** pino's serialised `base` bindings, as they follow the time in every line. */
  readonly bindings: string;
}

const accessSinks = new WeakMap<Logger, AccessSink>();

export function createLogger(level: LogLevel = 'info', destination?: NodeJS.WritableStream): Logger {
  const stream = destination ?? stdoutDestination();
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
      // Only access-log lines (written by logAccess, not through pino's methods) wait in the batch:
      // an application line — started, reloaded, rejected, an error — is flushed at once.
      hooks: {
        logMethod(args, method) {
          method.apply(this, args);
          (stream as { flush?: () => void }).flush?.();
        },
      },
    },
    stream,
  );
  // A stream that wants pino's per-line metadata (pino.multistream) only gets lines through pino.
  if ((stream as { [pino.symbols.needsMetadataGsym]?: boolean })[pino.symbols.needsMetadataGsym] !== true)
    accessSinks.set(logger, { stream, bindings: `,"pid":${process.pid}` });
  return logger;
}

/**
 * Standard output, written synchronously (pino's default; measured here, sonic-boom's async mode
 * cost more event-loop time per line than write(2)) in batches of up to 4 KiB, so a busy gateway
 * makes one write per dozen access-log lines. Application lines flush the batch at once (see the
 * logMethod hook), a timer flushes within 200 ms when traffic is light, and process exit flushes
 * the rest; a crash can lose at most the last batch of access-log lines.
 */
function stdoutDestination(): ReturnType<typeof pino.destination> {
  const dest = pino.destination({ dest: 1, sync: true, minLength: 4096 });
  setInterval(() => dest.flush(), 200).unref();
  process.once('exit', () => dest.flushSync());
  return dest;
}

/** Values an access-log line carries; undefined fields are left out, as pino leaves them out. */
export type AccessFields = Readonly<Record<string, string | number | undefined>>;

/**
 * Write one access-log line at level info: the same JSON line `logger.info(fields)` writes —
 * `{"level":"info","time":…,"pid":…` then the fields in their order — serialised here because it
 * is the one line written for every request, and pino's general path (serializers, redaction,
 * string escaping in JavaScript) was most of the access log's cost: profiled under wrk, pino's
 * asJson/_asString took ~7% of the gateway's CPU, this function ~3%. pino stays the logger: its
 * level gate, its destination, its line format (test/unit/access-log.test.ts compares the bytes).
 * Field names must be plain identifiers (they are literals at the call site) and none of them a redacted name; a logger not
 * made by createLogger (a child, say) simply goes through pino.
 */
/** Printable ASCII without `"` or `\\` needs no escaping (request ids, paths, names, addresses). */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function jsonString(value: string): string {
  return PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);
}

export function logAccess(logger: Logger, fields: AccessFields): void {
  const sink = accessSinks.get(logger);
  if (sink === undefined) {
    logger.info(fields);
    return;
  }
  if (!logger.isLevelEnabled('info')) return;
  let line = `{"level":"info"${isoTime()}${sink.bindings}`;
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    // JSON.stringify escapes as pino does; pino also writes non-finite numbers as null.
    line += `,"${key}":${typeof value === 'string' ? jsonString(value) : Number.isFinite(value) ? value : 'null'}`;
  }
  sink.stream.write(`${line}}\n`);
}
