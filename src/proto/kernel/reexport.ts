/**
 * ReExport: the nets a next-hop verdict change leaves the kernel protocol to
 * export again, taken in slices so that the kernel sync's sender runs between
 * them.
 *
 * A carrier loss with next-hop tracking reorders every net on the dead link
 * inside the tracker's notification, and the kernel protocol must then read
 * each net's chain again (the `all` exporter does not carry the reordered
 * best routes; docs/failover.md, "Carrier loss"). At a million nets that is
 * about a second of JS, while the routes the kernel flushed with the link
 * wait to go back in: exported in one synchronous pass, the sender's adds
 * (planned already, from the sync's books: link-flush.ts) could start only
 * after it, and the kernel would sit idle for that second. In slices, the
 * kernel adds while the JS thread exports: the two overlap.
 *
 * Invariants:
 *  - when nothing waits, the first `slice` nets of a change are exported
 *    before changed() returns (a change of a few nets is as synchronous as
 *    before the slices);
 *  - each net is exported from the table as it is when its turn comes (its
 *    chain then), so a net that the export feed brought meanwhile, or that
 *    a later change queues again, ends with the same want either way:
 *    exporting a net twice is idempotent, never stale;
 *  - only with failover, and only a change of sets that all lost their last
 *    usable hop, is sliced.
 *    A net not exported yet keeps its want: its route on the forwarding
 *    object now held on its backup (sync-failover.ts), which any conversion
 *    meanwhile (a link change reconverts every want) still puts on that same
 *    object, so the kernel route is the one the new want has. After a
 *    return it would not be: a want whose better route was held, converted
 *    once the object forwards to that route again, goes by its own pair (a
 *    route replace, and another when its turn comes: a flap). So any other
 *    change (a return, a multipath set losing a member) exports its nets,
 *    and every net still waiting, before changed() returns, as before the
 *    slices (the return is one object replace and no route message);
 *  - while nets wait, `pending` counts them, and the kernel protocol counts
 *    them as pending routes (its status is not idle before they are done);
 *  - clear() (shutdown) drops what waits: nothing runs after it.
 */
import { prefixFromKey, type Prefix } from '../../lib/addr';
import type { NetKey } from '../../route';
import type { NextHopChange } from '../../table';
import type { ExportTable } from '../table-port';

/** Nets exported per turn of the event loop: about 15 ms of JS, less than a pipeline handoff's kernel time. */
export const REEXPORT_SLICE = 16384;

interface Pending {
  /** IPv4 keys (numbers) in a typed array; IPv6 keys (strings), few, in an array. */
  readonly v4: Float64Array;
  readonly n4: number;
  readonly v6: readonly string[];
  next: number;
}

export class ReExport {
  private readonly queue: Pending[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private waiting = 0;
  private v4 = new Float64Array(1024);
  private n4 = 0;
  private v6: string[] = [];
  /** A change gave hops back: once its nets are exported, onRecovered. */
  private recovered = false;

  constructor(
    private readonly table: Pick<ExportTable, 'forEachNetUsing'>,
    /** Exports one net from the table as it is now. */
    private readonly exportNet: (net: Prefix) => void,
    /** A change gave hops back and every queued net was exported: the kernel protocol retries what the kernel refused. */
    private readonly onRecovered: () => void,
    private readonly slice = REEXPORT_SLICE,
  ) {}

  /** Nets queued and not exported yet. */
  get pending(): number {
    return this.waiting;
  }

  /**
   * Next hops changed (the table has reordered their nets already): the nets using each changed set
   * that `all` exports (every change with failover or merge_paths; else a set that stayed eligible
   * with other hops) and that `wanted` (the family is synced) are queued behind what waits; with
   * `sliced` (failover, whose held objects make it safe: see the header) and only losses, the first
   * slice of the queue is exported now and the rest on later turns of the event loop; else all now.
   */
  changed(changes: readonly NextHopChange[], all: boolean, wanted: (net: Prefix) => boolean, sliced: boolean): void {
    for (const c of changes) {
      if (c.gained) this.recovered = true;
      if (!all && !(c.eligible && c.wasEligible)) continue;
      this.table.forEachNetUsing(c.set, (net) => {
        if (wanted(net)) this.push(net);
      });
    }
    if (this.n4 + this.v6.length > 0) {
      this.queue.push({ v4: this.v4.subarray(0, this.n4), n4: this.n4, v6: this.v6, next: 0 });
      this.waiting += this.n4 + this.v6.length;
      this.v4 = new Float64Array(1024);
      this.n4 = 0;
      this.v6 = [];
    }
    // Only losses are sliced: see the header. Anything else drains the queue now, what waited included.
    if (!sliced || !changes.every((c) => !c.eligible)) this.run(Infinity);
    else if (this.scheduled === undefined) this.run(this.slice);
  }

  /** Drops every queued net (shutdown). */
  clear(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.queue.length = 0;
    this.waiting = 0;
    this.recovered = false;
  }

  private push(net: Prefix): void {
    const k: NetKey = net.key();
    if (typeof k === 'string') {
      this.v6.push(k);
      return;
    }
    if (this.n4 === this.v4.length) {
      const grown = new Float64Array(this.v4.length * 2);
      grown.set(this.v4);
      this.v4 = grown;
    }
    this.v4[this.n4++] = k;
  }

  private run(budget: number): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (budget > 0 && this.queue.length > 0) {
      const p = this.queue[0]!;
      const total = p.n4 + p.v6.length;
      const stop = Math.min(total, p.next + budget);
      budget -= stop - p.next;
      this.waiting -= stop - p.next;
      for (let i = p.next; i < stop; i++) this.exportNet(prefixFromKey(i < p.n4 ? p.v4[i]! : p.v6[i - p.n4]!));
      p.next = stop;
      if (stop === total) this.queue.shift();
    }
    if (this.queue.length > 0) this.scheduled = setImmediate(() => this.run(this.slice));
    else if (this.recovered) {
      this.recovered = false;
      this.onRecovered();
    }
  }
}
