/**
 * The kernel sync's metrics sink (proto/kernel/sync-metrics.ts) on
 * prom-client: one KernelSyncCounters per (kernel protocol, family), whose
 * calls become increments of prom-client counter children bound to its
 * labels once (a bound child costs no label hashing per call), and bulk
 * latency samples (bulk-histogram.ts).
 *
 * The sync calls it per batch, not per route; so an increment here is rare
 * enough to go straight to prom-client, and a scrape only reads.
 * close() removes every series this sink made, so a kernel protocol that a
 * reload removed stops being reported.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { KernelOpCmd } from '../proto/kernel/sync-metrics';
import type { KernelSyncMetrics, ScanReasonLabel } from '../proto/kernel/sync-metrics';
import type { BulkHistogram, BulkSeries } from './bulk-histogram';

export type KernelLabel = 'protocol' | 'kernel_table' | 'family';
export type KernelLabels = Record<KernelLabel, string>;

/** The prom-client metrics every kernel sync's sink feeds (made once, in DaemonMetrics). */
export interface KernelMetricSet {
  operations: Counter<KernelLabel | 'op' | 'result'>;
  latency: BulkHistogram<KernelLabel | 'op'>;
  repairs: Counter<KernelLabel | 'kind'>;
  foreignChanges: Counter<KernelLabel>;
  overflows: Counter<KernelLabel>;
  resyncs: Counter<KernelLabel | 'reason'>;
  dumpRetries: Counter<KernelLabel>;
  scanFailures: Counter<KernelLabel>;
  scanDuration: Histogram<KernelLabel>;
  firstSync: Gauge<KernelLabel>;
}

type Inc = { inc(n?: number): void };

export class KernelSyncCounters implements KernelSyncMetrics {
  private readonly children = new Map<string, Inc>();
  private readonly latencies = new Map<KernelOpCmd, BulkSeries>();
  /** Every label set this sink made a series for, by metric, to remove them on close(). */
  private readonly made: Array<{ remove(labels: Record<string, string>): void; labels: Record<string, string> }> = [];
  private readonly foreign: Inc;
  private readonly overflowCount: Inc;
  private readonly retries: Inc;
  private readonly failures: Inc;
  private readonly scanTimer: { observe(v: number): void };

  constructor(
    private readonly set: KernelMetricSet,
    readonly labels: KernelLabels,
  ) {
    this.foreign = this.bind(set.foreignChanges, {});
    this.overflowCount = this.bind(set.overflows, {});
    this.retries = this.bind(set.dumpRetries, {});
    this.failures = this.bind(set.scanFailures, {});
    this.scanTimer = set.scanDuration.labels(labels);
    this.made.push({ remove: (l) => set.scanDuration.remove(l), labels });
    // Present from the start at 0, so rate() and increase() see the first event.
    set.scanDuration.zero(labels);
    for (const kind of ['deleted', 'changed']) this.child(set.repairs, `r ${kind}`, { kind });
  }

  answered(op: KernelOpCmd, result: string, n: number): void {
    this.child(this.set.operations, `o ${op} ${result}`, { op, result }).inc(n);
  }

  latency(op: KernelOpCmd, seconds: number, n: number): void {
    let s = this.latencies.get(op);
    if (s === undefined) {
      s = this.set.latency.series({ ...this.labels, op });
      this.latencies.set(op, s);
    }
    s.observe(seconds, n);
  }

  repaired(what: 'deleted' | 'changed'): void {
    this.child(this.set.repairs, `r ${what}`, { kind: what }).inc();
  }

  foreignChange(): void {
    this.foreign.inc();
  }

  overflow(): void {
    this.overflowCount.inc();
  }

  resync(reason: ScanReasonLabel): void {
    this.child(this.set.resyncs, `s ${reason}`, { reason }).inc();
  }

  dumpRetried(n: number): void {
    this.retries.inc(n);
  }

  scanned(seconds: number): void {
    this.scanTimer.observe(seconds);
  }

  scanFailed(): void {
    this.failures.inc();
  }

  firstSync(seconds: number): void {
    this.set.firstSync.set(this.labels, seconds);
    this.made.push({ remove: (l) => this.set.firstSync.remove(l), labels: this.labels });
  }

  /** Removes every series of this sink (its protocol is gone). */
  close(): void {
    for (const m of this.made) m.remove(m.labels);
    this.made.length = 0;
    this.children.clear();
    this.set.latency.forget(this.labels);
    this.latencies.clear();
  }

  private child<L extends string>(metric: Counter<L>, key: string, extra: Record<string, string>): Inc {
    let c = this.children.get(key);
    if (c === undefined) {
      c = this.bind(metric, extra);
      this.children.set(key, c);
    }
    return c;
  }

  /** A counter child for this sink's labels plus `extra`, at 0 from now on. */
  private bind<L extends string>(metric: Counter<L>, extra: Record<string, string>): Inc {
    const labels = { ...this.labels, ...extra } as Record<L, string>;
    const child = metric.labels(labels);
    child.inc(0);
    this.made.push({ remove: (l) => metric.remove(l as Record<L, string>), labels });
    return child;
  }
}
