/**
 * The kernel sync's metrics sink (proto/kernel/sync-metrics.ts) as plain
 * counts: one KernelSyncCounters per (kernel protocol, family), kept from the
 * daemon's start whether or not a metrics listener is configured, so a reload
 * that turns metrics on shows everything since the start.
 *
 * Free of prom-client: a daemon without `metrics:` never loads it (about 90
 * modules; docs/benchmarks.md, Round 16b). The registry (daemon-metrics.ts)
 * reads these counts at scrape time, like every other series; a sink that is
 * forgotten (its protocol removed or restarted) is simply no longer read.
 *
 * The sync calls it per batch, not per route; latencies come in bulk, in runs
 * of equal values (bulk-series.ts). Series that must be present from the
 * start at 0 (so rate() and increase() see the first event) are made in the
 * constructor: both repair kinds, the scan histogram, and the counters
 * without a label of their own.
 */
import type { KernelOpCmd, KernelSyncMetrics, ScanReasonLabel } from '../proto/kernel/sync-metrics';
import { BulkSeries } from './bulk-series';

export type KernelLabel = 'protocol' | 'kernel_table' | 'family';
export type KernelLabels = Record<KernelLabel, string>;

/** Table change to the kernel's answer: a few ms when idle, seconds while a million routes change. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** A scan of a few routes takes milliseconds; of a million, seconds. */
export const SCAN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class KernelSyncCounters implements KernelSyncMetrics {
  /** Operations answered, by `${op} ${result}`. */
  readonly operations = new Map<string, { op: KernelOpCmd; result: string; n: number }>();
  readonly latencies = new Map<KernelOpCmd, BulkSeries>();
  readonly repairs = { deleted: 0, changed: 0 };
  readonly resyncs = new Map<ScanReasonLabel, number>();
  readonly scans: BulkSeries;
  foreignChanges = 0;
  overflows = 0;
  dumpRetries = 0;
  scanFailures = 0;
  /** Absent until the first sync ends. */
  firstSyncSeconds: number | undefined;

  constructor(readonly labels: KernelLabels) {
    this.scans = new BulkSeries(SCAN_BUCKETS, labels);
  }

  answered(op: KernelOpCmd, result: string, n: number): void {
    const key = `${op} ${result}`;
    const c = this.operations.get(key);
    if (c === undefined) this.operations.set(key, { op, result, n });
    else c.n += n;
  }

  latency(op: KernelOpCmd, seconds: number, n: number): void {
    let s = this.latencies.get(op);
    if (s === undefined) {
      s = new BulkSeries(LATENCY_BUCKETS, { ...this.labels, op });
      this.latencies.set(op, s);
    }
    s.observe(seconds, n);
  }

  repaired(what: 'deleted' | 'changed'): void {
    this.repairs[what]++;
  }

  foreignChange(): void {
    this.foreignChanges++;
  }

  overflow(): void {
    this.overflows++;
  }

  resync(reason: ScanReasonLabel): void {
    this.resyncs.set(reason, (this.resyncs.get(reason) ?? 0) + 1);
  }

  dumpRetried(n: number): void {
    this.dumpRetries += n;
  }

  scanned(seconds: number): void {
    this.scans.observe(seconds);
  }

  scanFailed(): void {
    this.scanFailures++;
  }

  firstSync(seconds: number): void {
    this.firstSyncSeconds = seconds;
  }
}
