/**
 * The samples of one histogram series, as plain per-bucket counts: what the
 * kernel sync's latency and scan timings are counted into from the start,
 * whether or not a metrics listener is configured. Free of prom-client, so a
 * daemon without `metrics:` never loads it; bulk-histogram.ts hands these
 * counts to prom-client's registry at scrape time.
 * Buckets are upper bounds, ascending.
 */
/** The samples of one label set. */
export class BulkSeries {
  /** Per bucket (and one past the last bound: +Inf only), samples not above its bound and above the one before. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Readonly<Record<string, string | number>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Adds `n` samples of `value` (seconds, bytes: the histogram's unit). */
  observe(value: number, n = 1): void {
    if (!(n > 0) || !Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]! += n;
    this.sum += value * n;
    this.count += n;
  }
}
