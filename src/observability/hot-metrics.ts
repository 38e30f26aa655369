/**
 * Metrics updated on every request. prom-client's labelled `inc()`/`observe()` validate and hash
 * the label set on each call, even through a pre-bound child; here each series is a plain object
 * bound once at config build, and prom-client only sees the numbers at scrape time: these classes
 * expose the shape its Registry (and AggregatorRegistry, for --workers) reads from a metric —
 * `name`, `help`, `type`, `aggregator` and `get()` — so the exposition format stays prom-client's.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

interface ScrapeValue {
  readonly value: number;
  readonly labels: Record<string, string | number>;
  readonly metricName?: string;
}

interface MetricData {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: ScrapeValue[];
}

export class CounterSeries {
  value = 0;
  readonly labels: Labels;
  constructor(labels: Labels) {
    this.labels = labels;
  }
  inc(): void {
    this.value++;
  }
}

export class HistogramSeries {
  /** Per-bucket (not cumulative) counts; the last slot is for values above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly labels: Labels;
  readonly #bounds: readonly number[];
  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(value: number): void {
    let i = 0;
    const bounds = this.#bounds;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts as { [i: number]: number })[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

abstract class HotMetric<S extends { labels: Labels }> {
  readonly aggregator = 'sum' as const;
  protected readonly series = new Map<string, S>();
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  /** The series for these label values, created once; call at build time, not per request. */
  protected seriesFor(labels: Labels, create: () => S): S {
    const key = JSON.stringify(labels);
    let s = this.series.get(key);
    if (s === undefined) {
      s = create();
      this.series.set(key, s);
    }
    return s;
  }

  register(registry: Registry): this {
    // The Registry only calls get() and reads name/help/type/aggregator; see the file comment.
    registry.registerMetric(this as unknown as Metric);
    return this;
  }

  reset(): void {
    this.series.clear();
  }

  abstract get(): Promise<MetricData>;
}

export class HotCounter extends HotMetric<CounterSeries> {
  readonly type = 'counter' as const;

  labels(labels: Labels): CounterSeries {
    return this.seriesFor(labels, () => new CounterSeries(labels));
  }

  async get(): Promise<MetricData> {
    const values: ScrapeValue[] = [];
    for (const s of this.series.values()) if (s.value > 0) values.push({ value: s.value, labels: { ...s.labels } });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HotHistogram extends HotMetric<HistogramSeries> {
  readonly type = 'histogram' as const;

  readonly bounds: readonly number[];
  constructor(name: string, help: string, bounds: readonly number[]) {
    super(name, help);
    this.bounds = bounds;
  }

  labels(labels: Labels): HistogramSeries {
    return this.seriesFor(labels, () => new HistogramSeries(labels, this.bounds));
  }

  async get(): Promise<MetricData> {
    const values: ScrapeValue[] = [];
    for (const s of this.series.values()) {
      if (s.count === 0) continue;
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += s.counts[i] as number;
        values.push({ value: acc, labels: { le, ...s.labels }, metricName: `${this.name}_bucket` });
      });
      values.push({ value: s.count, labels: { le: '+Inf', ...s.labels }, metricName: `${this.name}_bucket` });
      values.push({ value: s.sum, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
