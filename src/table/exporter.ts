/**
 * Exporter: the producer side of a table (BIRD's rt_exporter). Each table has
 * two: `best` (changes of a net's best route) and `all` (every route change).
 *
 * The table calls record() on every relevant write, synchronously; record()
 * appends a journal item only while some export request reads the journal
 * (with none, a new request's feed covers everything anyway), pokes each
 * request, and drops a request that fell more than `maxBehind` items behind
 * to a refeed, so a stuck reader cannot hold memory without limit.
 *
 * Trimming: after each batch a request takes, items below the slowest
 * request's position are dropped.
 */
import { prefixFromKey } from '../lib/addr';
import { InvariantError } from '../lib/errors';
import type { NetKey, Route } from '../route/route';
import { ExportRequest, type ExportRequestOptions } from './export-request';
import { Feeder, type FeederOptions } from './feeder';
import { Journal } from './journal';
import { Feed, type FeedItem } from './items';
import { type NetStore, type NetWalk, type Slot, slotBest, slotRoutes } from './net-store';
import { compilePrefilter } from './prefilter';
import type { ExporterCore, ExporterKind, Reader } from './reader-core';

export type { ExporterCore, ExporterKind } from './reader-core';

export interface ExporterOptions {
  /**
   * Journal items a request may be behind before it is dropped to a refeed.
   * Default: 100000, or the number of nets in the table when that is larger
   * (a refeed walks every net, so dropping a reader that lags by less than
   * that makes it do more work, not less: a stream changing a million routes
   * used to drop the kernel protocol into a refeed ten times over).
   */
  maxBehind?: number;
}

export class Exporter implements ExporterCore {
  readonly journal = new Journal();
  /**
   * Attached requests. An array replaced on attach and detach, never changed in place: record()
   * walks it twice per write of the table, which an array's index loop does with no iterator, and
   * a walk that a reader's callback detaches from goes on over the array it started with.
   */
  private requests: readonly ExportRequest[] = [];
  private readonly feeders = new Set<Feeder>();
  private stopped: string | undefined;
  maxBehind = 0;
  /** The bound grows with the table (no explicit maxBehind given). */
  private scaleBound = true;
  /** Fills in progress (Table.beginFill): first feeds wait for them before `ready`. */
  private fills = 0;
  /** A net's best route from its slot: the head, or (next-hop tracking) the head when it is eligible. */
  bestOf: (slot: Slot | undefined) => Route | undefined = slotBest;

  constructor(
    readonly kind: ExporterKind,
    readonly store: NetStore,
    options: ExporterOptions = {},
  ) {
    this.setMaxBehind(options.maxBehind);
  }

  /** A new bound (config reload); undefined: the default, growing with the table. Applies from the next write. */
  setMaxBehind(maxBehind: number | undefined): void {
    this.maxBehind = Math.max(1, maxBehind ?? 100_000);
    this.scaleBound = maxBehind === undefined;
  }

  /** The current bound on a request's lag: maxBehind, or the table's size when larger (see ExporterOptions). */
  private bound(): number {
    return this.scaleBound ? Math.max(this.maxBehind, this.store.size) : this.maxBehind;
  }

  /** A full reader: feed of every net, then journal updates. Starts on the first next(). */
  subscribe(options: ExportRequestOptions): ExportRequest {
    return new ExportRequest(this, compilePrefilter(options.prefilter), options);
  }

  /** A feed-only reader: walks the matching nets in order and ends. Starts on the first next(). */
  feed(options: FeederOptions = {}): Feeder {
    return new Feeder(this, compilePrefilter(options.prefilter), options);
  }

  get stopReason(): string | undefined {
    return this.stopped;
  }

  /** A source is filling the table (Table.beginFill): a request in its first feed follows it and is not `ready` before its end. */
  get filling(): boolean {
    return this.fills > 0;
  }

  beginFill(): void {
    this.fills++;
  }

  /** A fill is over: requests that followed it may now be `ready` (each is woken to see it: no lost wakeup). */
  endFill(): void {
    if (this.fills === 0) throw new InvariantError('exporter: a fill ended that never began');
    if (--this.fills > 0) return;
    for (const r of this.requests) r.notify();
  }

  /** Readers that are attached (for `show exports` and tests). */
  get readers(): readonly (ExportRequest | Feeder)[] {
    return [...this.requests, ...this.feeders];
  }

  /**
   * Stops the exporter for good: every reader gets a stop item, later readers
   * get one at once, the journal is dropped. Idempotent.
   */
  stop(reason: string): void {
    if (this.stopped !== undefined) return;
    this.stopped = reason;
    for (const r of [...this.requests, ...this.feeders]) r.stop(reason);
    this.requests = [];
    this.feeders.clear();
    this.journal.trimTo(this.journal.end);
  }

  routesOf(key: NetKey): readonly Route[] {
    return this.shown(this.store.getByKey(key));
  }

  feedOf(key: NetKey, seq: number): FeedItem {
    return new Feed(prefixFromKey(key), this.routesOf(key), seq);
  }

  /** A feed item of the walk's current net, from the snapshot's chain (no lookup: the feed hot path). */
  feedFromWalk(walk: NetWalk, seq: number): FeedItem {
    return new Feed(walk.net(), this.shown(walk.slot), seq);
  }

  /** The walk's current net's routes as this exporter shows them (a feed run's entry). */
  routesAt(walk: NetWalk): readonly Route[] {
    return this.shown(walk.slot);
  }

  private shown(slot: Slot | undefined): readonly Route[] {
    if (this.kind === 'all') return slotRoutes(slot);
    const best = this.bestOf(slot);
    return best === undefined ? slotRoutes(undefined) : best.alone;
  }

  attach(reader: Reader): void {
    if (this.stopped !== undefined) return;
    if (reader instanceof ExportRequest) {
      if (!this.requests.includes(reader)) this.requests = [...this.requests, reader];
    } else if (reader instanceof Feeder) this.feeders.add(reader);
  }

  detach(reader: Reader): void {
    if (reader instanceof ExportRequest) {
      if (!this.requests.includes(reader)) return;
      this.requests = this.requests.filter((r) => r !== reader);
      this.trim();
    } else if (reader instanceof Feeder) {
      this.feeders.delete(reader);
    }
  }

  trim(): void {
    let min = this.journal.end;
    for (const r of this.requests) if (r.readsJournal && r.pos < min) min = r.pos;
    if (min > this.journal.start) this.journal.trimTo(min);
  }

  /**
   * A write changed what this exporter shows for a net (`id`: its id in the store). Synchronous;
   * never waits for readers. A change every request's feed will still hand out (a net that came
   * after its snapshot, which its walk has not reached: a filling table) is not journaled: the
   * feed covers it, so the readers are only woken.
   */
  record(netWord: number | string, netLen: number, id: number, old: Route | undefined, neu: Route | undefined): void {
    const requests = this.requests;
    const n = requests.length;
    if (n === 0) return;
    if (old === neu) throw new InvariantError('exporter: a change with the same old and new route');
    const v6 = typeof netWord !== 'number';
    // Every request hears of the write (no early exit): covers() also remembers a net its tail has passed.
    let needed = false;
    for (let i = 0; i < n; i++) if (!requests[i]!.covers(v6, id, netWord, netLen)) needed = true;
    if (needed) {
      this.journal.push(netWord, netLen, id, old, neu);
      if (this.journal.length > this.maxBehind) this.dropLaggards(this.bound());
    }
    for (let i = 0; i < n; i++) requests[i]!.notify();
  }

  private dropLaggards(bound: number): void {
    const end = this.journal.end;
    for (const r of this.requests) {
      if (r.readsJournal && end - r.pos > bound) r.dropToRefeed(`fell behind by more than ${bound} changes`);
    }
    this.trim();
  }
}
