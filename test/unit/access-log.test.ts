import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, logAccess } from '../../src/observability/logger.js';

function capture(level: 'info' | 'warn' = 'info') {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { lines, logger: createLogger(level, sink) };
}

const withoutTime = (line: string | undefined) => (line ?? '').replace(/"time":"[^"]+"/, '"time":T');

describe('logAccess writes the line pino would write', () => {
  const cases: [string, Record<string, string | number | undefined>][] = [
    [
      'a proxied request',
      { msg: 'request', reqId: 'r-1', method: 'GET', path: '/a', route: 'r', status: 200, durationMs: 1.25, upstream: 'http://127.0.0.1:1', code: undefined },
    ],
    ['strings that need escaping', { msg: 'request', details: 'q " b \\ c \u0001 t \t é ✓', long: `${'x'.repeat(60)}"\n` }],
    ['numbers pino writes as null or in exponent form', { msg: 'request', a: Number.NaN, b: Number.POSITIVE_INFINITY, c: 1e21, d: -0 }],
  ];
  for (const [name, fields] of cases)
    it(name, () => {
      const { lines, logger } = capture();
      logger.info(fields);
      logAccess(logger, fields);
      assert.equal(lines.length, 2);
      assert.equal(withoutTime(lines[1]), withoutTime(lines[0]));
    });

  it('writes nothing when info is not enabled', () => {
    const { lines, logger } = capture('warn');
    logAccess(logger, { msg: 'request' });
    assert.deepEqual(lines, []);
  });

  it('goes through pino for a logger it did not create (a child keeps its bindings)', () => {
    const { lines, logger } = capture();
    logAccess(logger.child({ worker: 2 }), { msg: 'request' });
    assert.equal(JSON.parse(lines[0] ?? '{}').worker, 2);
  });
});
