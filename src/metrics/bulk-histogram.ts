/**
 * A prom-client Histogram fed in bulk: `series(labels).observe(value, n)`
 * adds n samples of one value at once.
 *
 * prom-client's own observe() adds one sample per call and costs about
 * 0.7 µs (it validates and hashes the labels each time): a million route
 * changes timed one by one would cost 0.7 s of the event loop. The kernel
 * sync reports latencies per batch, in runs of equal values (sync-metrics.ts),
 * so this histogram keeps plain per-bucket counts per label set and hands
 * them to prom-client's registry at scrape time through get(), in the shape
 * prom-client's Histogram.get() has; the registry writes the text format.
 * Buckets are upper bounds, ascending, as for Histogram.
 *
 * The series are its own (series(), forget()), or, with `source`, counted
 * elsewhere before prom-client was ever loaded (kernel-metrics.ts: a daemon
 * counts from its start, and builds the registry only for a listener); a
 * source's series must use this histogram's buckets.
 */
import { Histogram, type HistogramConfiguration, type MetricType, type LabelValues, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';
import { BulkSeries } from './bulk-series';

export class BulkHistogram<T extends string> extends Histogram<T> {
  private readonly metricName: string;
  private readonly metricHelp: string;
  private readonly bounds: readonly number[];
  private readonly names: readonly T[];
  private readonly bulk = new Map<string, BulkSeries>();
  private readonly source: (() => Iterable<BulkSeries>) | undefined;

  constructor(config: HistogramConfiguration<T> & { buckets: number[]; source?: () => Iterable<BulkSeries> }) {
    const { source, ...histogram } = config;
    super(histogram);
    this.source = source;
    this.metricName = config.name;
    this.metricHelp = config.help;
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.names = config.labelNames ?? [];
    // The registry reads getForPromString() when a metric has one (Histogram does); this one's values come from get().
    Object.defineProperty(this, 'getForPromString', { value: undefined });
    // Histogram's constructor sets observe on the instance; samples must come through series().
    Object.defineProperty(this, 'observe', {
      value: () => {
        throw new Error(`${this.metricName}: a bulk histogram is fed through series(labels).observe(value, n)`);
      },
    });
  }

  /** The series of one label set (made on first use; keep it: looking it up costs a string key). */
  series(labels: LabelValues<T>): BulkSeries {
    const key = this.names.map((n) => String(labels[n] ?? '')).join('\u0000');
    let s = this.bulk.get(key);
    if (s === undefined) {
      for (const n of Object.keys(labels)) if (!this.names.includes(n as T)) throw new Error(`${this.metricName}: unknown label ${n}`);
      s = new BulkSeries(this.bounds, { ...labels } as Record<string, string | number>);
      this.bulk.set(key, s);
    }
    return s;
  }

  /** Forgets the series whose labels include all of `labels` (a protocol that went away). */
  forget(labels: LabelValues<T>): void {
    for (const [key, s] of this.bulk) if (Object.entries(labels).every(([k, v]) => String(s.labels[k]) === String(v))) this.bulk.delete(key);
  }

  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if (this.bulk !== undefined) this.bulk.clear();
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<T>>> {
    const values: MetricValueWithName<T>[] = [];
    const bucketName = `${this.metricName}_bucket`;
    for (const s of this.source?.() ?? this.bulk.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]!, ...s.labels } as LabelValues<T>, value: acc, metricName: bucketName });
      }
      values.push({ labels: { le: '+Inf', ...s.labels } as LabelValues<T>, value: s.count, metricName: bucketName });
      values.push({ labels: s.labels as LabelValues<T>, value: s.sum, metricName: `${this.metricName}_sum` });
      values.push({ labels: s.labels as LabelValues<T>, value: s.count, metricName: `${this.metricName}_count` });
    }
    // The registry writes `type` as is: prom-client's metrics carry the string (its typings say an enum).
    const type = 'histogram' as unknown as MetricType;
    return { name: this.metricName, help: this.metricHelp, type, aggregator: 'sum', collect: undefined as never, values };
  }
}
