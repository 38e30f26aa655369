import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_DURATION_MS, parseDuration, parseSize } from '../../src/core/units.js';

describe('parseDuration', () => {
  /** [input, milliseconds or undefined] */
  const table: readonly (readonly [string | number, number | undefined])[] = [
    ['500ms', 500],
    ['0ms', 0],
    ['10s', 10_000],
    ['1.5s', 1_500],
    ['0.5ms', 1], // rounded to whole milliseconds
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['596h', 596 * 3_600_000],
    [' 10s ', 10_000],
    ['10 s', 10_000],
    [250, 250],
    [0, 0],
    [1.5, 1.5],
    // Refused
    ['10', undefined], // a string needs a unit; only a YAML number is bare milliseconds
    ['', undefined],
    ['s', undefined],
    ['10S', undefined], // units are lower-case
    ['10sec', undefined],
    ['1d', undefined],
    ['-1s', undefined],
    ['.5s', undefined],
    ['1e3ms', undefined],
    ['10s5ms', undefined],
    [-1, undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
    // Past what a Node timer can wait (2^31-1 ms ≈ 24.8 days): Node would fire after 1 ms instead.
    ['597h', undefined],
    ['2147483648ms', undefined],
    [2 ** 31, undefined],
    [`1${'0'.repeat(400)}s`, undefined],
  ];
  for (const [input, want] of table) it(`${JSON.stringify(input)} → ${want}`, () => assert.equal(parseDuration(input), want));

  it('accepts exactly the timer limit', () => {
    assert.equal(parseDuration(MAX_DURATION_MS), MAX_DURATION_MS);
    assert.equal(parseDuration(`${MAX_DURATION_MS}ms`), MAX_DURATION_MS);
  });
});

describe('parseSize', () => {
  /** [input, bytes or undefined] */
  const table: readonly (readonly [string | number, number | undefined])[] = [
    ['512b', 512],
    ['1kb', 1024], // binary multiples
    ['64kb', 65_536],
    ['1.5kb', 1_536],
    ['10mb', 10 * 1024 ** 2],
    ['1gb', 1024 ** 3],
    ['1KiB', 1024],
    ['2MiB', 2 * 1024 ** 2],
    ['1GIB', 1024 ** 3],
    ['10MB', 10 * 1024 ** 2], // case-insensitive
    ['100', 100], // no unit: bytes
    [' 8 kb ', 8_192],
    ['0.5b', 0], // whole bytes, rounded down
    [0, 0],
    [4096, 4096],
    // Refused
    ['', undefined],
    ['kb', undefined],
    ['10 megabytes', undefined],
    ['1tb', undefined],
    ['-1kb', undefined],
    ['1e3', undefined],
    ['10k', undefined],
    [1.5, undefined],
    [-1, undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
    [2 ** 53, undefined], // not a safe integer
    [`1${'0'.repeat(400)}gb`, undefined], // would be Infinity
  ];
  for (const [input, want] of table) it(`${JSON.stringify(input)} → ${want}`, () => assert.equal(parseSize(input), want));
});
