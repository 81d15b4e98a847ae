/**
 * What the kernel sync tells a metrics layer, and nothing more: a sink the
 * sync calls as things happen, with plain numbers and names (no metrics
 * library type reaches src/proto; src/metrics implements it).
 *
 * Every hook in the sync that feeds it is a call on `this.metrics` in
 * kernel-sync.ts and withdraw.ts; the per-state route counts are not events
 * but a tally kept where states change (SyncTally, route-status.ts), read by
 * KernelSync.counts() and failedByErrno() at scrape time. So a scrape never
 * walks the table, and the sync pays per batch of operations, not per route:
 * `answered` and `latency` take a count.
 *
 * Invariants of the calls:
 *  - answered(): once per (kind, result) per batch the kernel answered, for
 *    the sync's own changes and for the shutdown's deletes; result is 'ok' or
 *    the errno name (a delete answered ESRCH found nothing to delete: 'ok');
 *  - latency(): for operations caused by a table change after the first sync,
 *    the time from the change reaching the sync (the export walk handed it
 *    over) to the kernel's answer; changes of the first sync, retries, scans'
 *    and repairs' operations have no table change to measure from;
 *  - resync(): a scan not on the periodic timer, with a reason from
 *    SCAN_REASONS ('other' for any other text).
 */
/** A change the sync sends: add (NLM_F_EXCL), replace in place, delete. */
export type KernelOpCmd = 'add' | 'replace' | 'delete';

export interface KernelSyncMetrics {
  /** `n` operations of `op` answered with `result` ('ok' or an errno name). */
  answered(op: KernelOpCmd, result: string, n: number): void;
  /** `n` operations of `op` answered `seconds` after their table change reached the sync. */
  latency(op: KernelOpCmd, seconds: number, n: number): void;
  /** A route of ours that someone else deleted or changed is being put back. */
  repaired(what: 'deleted' | 'changed'): void;
  /** A route of another protocol in our kernel table appeared, changed or went. */
  foreignChange(): void;
  /** The notification socket overflowed (ENOBUFS): changes were lost, a resync follows. */
  overflow(): void;
  /** A scan that the timer did not ask for began. */
  resync(reason: ScanReasonLabel): void;
  /** A dump was interrupted (NLM_F_DUMP_INTR) `n` times and started over. */
  dumpRetried(n: number): void;
  /** A scan (dump, compare, send the differences) ended after `seconds`. */
  scanned(seconds: number): void;
  /** A scan's dump failed; it is retried. */
  scanFailed(): void;
  /** The first sync (open, first dump, first feed, reconcile) ended after `seconds`. */
  firstSync(seconds: number): void;
}

/** A sink that drops everything (no metrics configured, and tests). */
export const NO_SYNC_METRICS: KernelSyncMetrics = Object.freeze({
  answered: () => undefined,
  latency: () => undefined,
  repaired: () => undefined,
  foreignChange: () => undefined,
  overflow: () => undefined,
  resync: () => undefined,
  dumpRetried: () => undefined,
  scanned: () => undefined,
  scanFailed: () => undefined,
  firstSync: () => undefined,
});

/** Why a scan runs: the text the sync logs, by the short label metrics use. */
export const SCAN_REASONS = {
  periodic: 'periodic',
  overflow: 'notification overflow',
  link: 'link or address change',
  conflict: 'route in the way (EEXIST)',
  crossed: 'a change by someone else crossed ours',
  first_feed: 'a change by someone else during the first feed',
  retry: 'retry after failed scan',
  nexthop: 'a nexthop object of ours changed by someone else',
} as const;

export type ScanReasonLabel = keyof typeof SCAN_REASONS | 'other';

const LABEL_OF = new Map<string, ScanReasonLabel>(Object.entries(SCAN_REASONS).map(([label, text]) => [text, label as ScanReasonLabel]));

/** The label of a scan's reason text (a bounded set: metrics labels must not take free text). */
export function scanReasonLabel(reason: string): ScanReasonLabel {
  return LABEL_OF.get(reason) ?? 'other';
}

/**
 * One batch's answers, summed for the metrics sink: per (kind, result) a
 * count, and latencies in runs of changes with the same kind and change time
 * (nets changed in the same millisecond go out together), so the sink is
 * called a few times per batch, not once per route.
 */
export class BatchAnswers {
  private readonly ok = { add: 0, replace: 0, delete: 0 };
  private failed: Map<string, number> | undefined;
  private runCmd: KernelOpCmd = 'add';
  private runAt = 0;
  private runN = 0;

  constructor(
    private readonly metrics: KernelSyncMetrics,
    private readonly now: number,
  ) {}

  /** An answer: `errnoName` undefined for success; `changedAt` 0 when no table change is behind it. */
  add(cmd: KernelOpCmd, errnoName: string | undefined, changedAt: number): void {
    if (errnoName === undefined) this.ok[cmd]++;
    else {
      const key = `${cmd} ${errnoName}`;
      (this.failed ??= new Map()).set(key, (this.failed.get(key) ?? 0) + 1);
    }
    if (changedAt === 0) return;
    if (changedAt === this.runAt && cmd === this.runCmd) {
      this.runN++;
      return;
    }
    this.flushRun();
    this.runCmd = cmd;
    this.runAt = changedAt;
    this.runN = 1;
  }

  report(): void {
    this.flushRun();
    for (const cmd of ['add', 'replace', 'delete'] as const) if (this.ok[cmd] > 0) this.metrics.answered(cmd, 'ok', this.ok[cmd]);
    if (this.failed) {
      for (const [key, n] of this.failed) {
        const [cmd, errno] = key.split(' ') as [KernelOpCmd, string];
        this.metrics.answered(cmd, errno, n);
      }
    }
  }

  private flushRun(): void {
    if (this.runN > 0) this.metrics.latency(this.runCmd, Math.max(0, this.now - this.runAt) / 1000, this.runN);
    this.runN = 0;
  }
}
