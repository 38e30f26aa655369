/** The hot-path metrics expose exactly what prom-client's own Counter and Histogram would. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../src/observability/hot-metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const SAMPLES = [0.0005, 0.001, 0.002, 0.05, 0.5, 3, 0.01, 0];

describe('hot metrics', () => {
  it('a histogram renders the same exposition text as prom-client', async () => {
    const a = new Registry();
    const b = new Registry();
    const ref = new Histogram({ name: 'h', help: 'help', labelNames: ['route'], buckets: BUCKETS, registers: [a] });
    const hot = new HotHistogram('h', 'help', BUCKETS).register(b);
    for (const route of ['x', 'y']) {
      const series = hot.labels({ route });
      for (const v of SAMPLES) {
        ref.labels(route).observe(v);
        series.observe(v);
      }
    }
    assert.equal(await b.metrics(), await a.metrics());
  });

  it('a counter renders the same exposition text as prom-client and skips untouched series', async () => {
    const a = new Registry();
    const b = new Registry();
    const ref = new Counter({ name: 'c_total', help: 'help', labelNames: ['route', 'status_class'], registers: [a] });
    const hot = new HotCounter('c_total', 'help').register(b);
    hot.labels({ route: 'never', status_class: '5xx' }); // bound at build, never hit
    for (let i = 0; i < 3; i++) {
      ref.labels('r', '2xx').inc();
      hot.labels({ route: 'r', status_class: '2xx' }).inc();
    }
    ref.labels('r', '4xx').inc();
    hot.labels({ route: 'r', status_class: '4xx' }).inc();
    assert.equal(await b.metrics(), await a.metrics());
  });

  it('series bound twice (a reload) share their counts', () => {
    const hot = new HotCounter('c_total', 'help');
    hot.labels({ route: 'r' }).inc();
    hot.labels({ route: 'r' }).inc();
    assert.equal(hot.labels({ route: 'r' }).value, 2);
  });

  it('aggregates across workers like prom-client metrics (--workers)', async () => {
    const w1 = new HotHistogram('h', 'help', BUCKETS);
    const w2 = new HotHistogram('h', 'help', BUCKETS);
    w1.labels({ route: 'x' }).observe(0.05);
    w2.labels({ route: 'x' }).observe(0.5);
    const merged = AggregatorRegistry.aggregate([[await w1.get()], [await w2.get()]] as never);
    const text = await merged.metrics();
    assert.match(text, /h_count\{route="x"\} 2/);
    assert.match(text, /h_bucket\{le="0\.1",route="x"\} 1/);
  });
});
