/**
 * ExportRequest: a full reader of one exporter (BIRD's rt_export_request).
 *
 * State: down → feeding → ready, and stopped or closed at the end. The
 * request starts on the consumer's first next(): it takes a sorted snapshot
 * of the nets (a NetWalk) and starts reading the journal at its end.
 *
 * Each batch, synchronously:
 *  1. journal items from `pos`, oldest first. An item of a net the walk has
 *     not fed yet brings that net's feed forward (its current routes, which
 *     cover every journal item of the net up to the journal's end); the net is
 *     remembered in `fedEarly` so the walk skips it. Otherwise the item and
 *     every later item of its net already in the journal are squashed into
 *     one update. Either way `skipUntil[net]` = journal end, so the covered
 *     items are not delivered again when `pos` reaches them.
 *  2. only once `pos` is at the journal's end: the next nets of the walk.
 *     Because the journal is fully read at that moment, such a feed covers
 *     no item the reader has yet to read.
 * So every change reaches the reader exactly once, in order per net, and a
 * net is never fed twice in one feed phase.
 *
 * After the snapshot the walk follows the table (NetWalk.follow): nets that
 * got an id after the snapshot are fed in id order as they come, read as
 * they are when the walk gets there. A journal item of such a net the walk
 * has not reached is skipped (the exporter does not even write it when no
 * request needs it), one of a net it has passed is an update. While a source
 * fills the table (Table.beginFill) the request stays in its feed after
 * catching up, and is `ready` only once the fill is over: a table filled
 * from empty reaches the reader as the walk's batches, not as a million
 * journal items.
 *
 * A reader further than `maxBehind` items behind is dropped to a refeed: its
 * position jumps to the journal's end, and it gets a refeed item and then a
 * feed of every current net plus an empty feed for each net it skipped over
 * that has no routes now (the `owed` nets), so it ends exactly in sync
 * without remembering anything itself. A reader dropped again before such a
 * refeed ends carries the nets that refeed had not reached into the new one.
 */
import type { NetKey, Route } from '../route/route';
import type { RouteSource } from '../route/source';
import { BatchPump, type BatchSource } from './batch-pump';
import type { ExportItem, RefeedItem, StopItem, UpdateItem } from './items';
import { FeedRun, READY } from './items';
import type { Journal } from './journal';
import { type NetWalk, netKeyOf } from './net-store';
import type { NetFilter, Prefilter } from './prefilter';
import type { ExporterCore, ReaderOptions } from './reader-core';

export type { ReaderOptions };

export type ExportRequestState = 'down' | 'feeding' | 'ready' | 'stopped' | 'closed';


export interface ExportRequestOptions extends ReaderOptions {
  /** For logs and `show exports`. */
  name: string;
  prefilter?: Prefilter;
  /** Wait this long after a write wakes an idle reader before taking a batch, to coalesce (default 0). */
  settleMs?: number;
  /**
   * The walk's feeds as runs of words (FeedRun, items.ts) instead of an item and a Prefix per net:
   * for a reader that takes nets as words (the kernel protocol's first feed of a million nets).
   */
  feedRuns?: boolean;
}

export class ExportRequest implements AsyncIterableIterator<readonly ExportItem[]>, BatchSource<ExportItem> {
  readonly name: string;
  private _state: ExportRequestState = 'down';
  /** Next journal seq to read. */
  pos = 0;
  /** Times this request was dropped to a refeed. */
  refeeds = 0;
  private walk: NetWalk | undefined;
  private readonly fedEarly = new Set<NetKey>();
  private readonly skipUntil = new Map<NetKey, number>();
  private emitEmptyFeeds = false;
  private control: RefeedItem | undefined;
  private stopItem: StopItem | undefined;
  private ended = false;
  private readonly batchSize: number;
  private readonly settleMs: number;
  private readonly feedRuns: boolean;
  private readonly pump = new BatchPump<ExportItem>(this);

  constructor(
    private readonly exporter: ExporterCore,
    private readonly filter: NetFilter | undefined,
    options: ExportRequestOptions,
  ) {
    this.name = options.name;
    this.batchSize = Math.max(1, options.batchSize ?? 1024);
    this.settleMs = Math.max(0, options.settleMs ?? 0);
    this.feedRuns = options.feedRuns === true;
  }

  get state(): ExportRequestState {
    return this._state;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<readonly ExportItem[], undefined>> {
    if (this._state === 'down') this.start();
    return this.pump.next();
  }

  /** Unsubscribe (also what `break` out of a for-await does). Idempotent. */
  return(): Promise<IteratorResult<readonly ExportItem[], undefined>> {
    this.close();
    return Promise.resolve({ done: true, value: undefined });
  }

  close(): void {
    if (this._state === 'closed') return;
    if (this._state !== 'stopped') this._state = 'closed';
    this.exporter.detach(this);
    this.pump.finish();
  }

  /** Ask for a full refeed (as if fallen behind). */
  refeed(reason = 'requested'): void {
    if (this._state === 'feeding' || this._state === 'ready') this.dropToRefeed(reason);
  }

  // ---------------------------------------------------------------- called by the exporter

  /** A write landed in the journal. */
  notify(): void {
    this.pump.wake(this.settleMs);
  }

  /**
   * Its feed will hand out this net as it is then, so a change of it needs no journal item: a net
   * that got its id after the snapshot (the id tells), which the walk's tail has not reached, and
   * which neither the snapshot holds nor a journal item brought forward (those are the snapshot's
   * and the journal's, wherever their id is now: the tail skips them, so none is fed twice).
   * The net comes as its word and length (NetStore's): the key is made only where it is kept or
   * looked up, not for each write of a filling table (an IPv4 key is a boxed number).
   */
  covers(v6: boolean, id: number, netWord: number | string, netLen: number): boolean {
    const walk = this.walk;
    if (walk === undefined) return false;
    if (!walk.tailAhead(v6, id)) {
      // The tail is past this id: the net there was handed out (or is the snapshot's or the
      // journal's). Should it go and come back under an id the tail has yet to reach, the tail
      // must skip it and its changes be journaled, or it would be fed twice: remember it.
      if (walk.tailPassed(v6, id)) this.fedEarly.add(netKeyOf(netWord, netLen));
      return false;
    }
    return (this.fedEarly.size === 0 || !this.fedEarly.has(netKeyOf(netWord, netLen))) && !walk.inSnapshotAt(netWord, netLen);
  }

  /** True when this request may delay trimming (it reads the journal). */
  get readsJournal(): boolean {
    return this._state === 'feeding' || this._state === 'ready';
  }

  stop(reason: string): void {
    if (this._state === 'closed' || this._state === 'stopped') return;
    this._state = 'stopped';
    this.walk = undefined;
    this.control = undefined;
    this.stopItem = { kind: 'stop', reason };
    this.pump.wake(0);
  }

  dropToRefeed(reason: string): void {
    const journal = this.exporter.journal;
    const owed = new Set<NetKey>();
    for (let s = this.pos; s < journal.end; s++) {
      const key = journal.key(s);
      if (this.filter === undefined || this.filter.matches(key)) owed.add(key);
    }
    // Dropped again in the middle of a refeed: the nets that walk still owed are owed still.
    if (this.walk !== undefined && this.emitEmptyFeeds) for (const key of this.walk.rest()) owed.add(key);
    for (const key of owed) if (this.exporter.routesOf(key).length > 0) owed.delete(key);
    this.beginFeed(owed);
    this.emitEmptyFeeds = true;
    this.refeeds++;
    this.control = { kind: 'refeed', reason };
    this.pump.wake(0);
  }

  // ---------------------------------------------------------------- BatchSource

  hasWork(): boolean {
    if (this.ended || this.stopItem !== undefined) return true;
    if (this.control !== undefined || this.pos < this.exporter.journal.end) return true;
    // A walk that has caught up with a filling table waits for its next write, or the fill's end.
    return this.walk !== undefined && !(this.walk.done && this.exporter.filling);
  }

  take(): readonly ExportItem[] | null {
    if (this.ended) return null;
    if (this.stopItem !== undefined) {
      this.ended = true;
      return [this.stopItem];
    }
    if (this._state !== 'feeding' && this._state !== 'ready') return [];
    const out: ExportItem[] = [];
    if (this.control !== undefined) {
      out.push(this.control);
      this.control = undefined;
    }
    const end = this.exporter.journal.end;
    this.readJournal(out, end);
    if (this.walk !== undefined && this.pos === end) this.readWalk(out, end);
    this.exporter.trim();
    return out;
  }

  // ---------------------------------------------------------------- internals

  private start(): void {
    this.exporter.attach(this);
    if (this.exporter.stopReason !== undefined) return this.stop(this.exporter.stopReason);
    this.beginFeed(undefined);
  }

  private beginFeed(owed: Iterable<NetKey> | undefined): void {
    this.pos = this.exporter.journal.end;
    this.skipUntil.clear();
    this.fedEarly.clear();
    this.walk = this.exporter.store.walk(this.filter, owed, false, true);
    this._state = 'feeding';
  }

  private readJournal(out: ExportItem[], end: number): void {
    const journal = this.exporter.journal;
    // Behind by more than a batch: take up to JOURNAL_CATCH_UP batches in this run. A writer may
    // write tens of thousands of changes per event-loop turn (a stream source reads up to 32 socket
    // chunks per turn) where a reader takes one batch per turn: the journal, not the reader's own
    // queue, would hold the backlog, and a journal item costs more than a queued route id (its
    // columns, and it pins the routes it names; docs/table.md).
    const limit = this.batchSize * (end - this.pos > this.batchSize ? JOURNAL_CATCH_UP : 1);
    while (this.pos < end && out.length < limit) {
      const seq = this.pos++;
      const key = journal.key(seq);
      if (this.filter !== undefined && !this.filter.matches(key)) continue;
      const covered = this.skipUntil.get(key);
      if (covered !== undefined && seq < covered) continue;
      const walk = this.walk;
      if (walk !== undefined) {
        const v6 = typeof key !== 'number';
        // A net that came after the snapshot: the walk's tail feeds it when it gets there, as it is then.
        if (this.covers(v6, journal.id(seq), v6 ? key : journal.word(seq), journal.len(seq))) continue;
        if (!this.fedEarly.has(key) && !walk.passed(key)) {
          this.fedEarly.add(key);
          this.skipUntil.set(key, end);
          this.pushFeed(out, key, end);
          continue;
        }
      }
      const next = journal.nextSameNet(seq);
      if (next !== undefined && next < end) {
        this.skipUntil.set(key, end);
        this.pushSquashed(out, seq, end);
      } else {
        out.push(journal.item(seq));
      }
    }
    if (this.pos === end) this.skipUntil.clear();
  }

  private readWalk(out: ExportItem[], end: number): void {
    const walk = this.walk!;
    let run: FeedRun | undefined;
    let taken = out.length; // items, and nets in runs
    while (taken < this.batchSize && walk.advance()) {
      if (walk.fromTail) {
        // Not the tail's: a snapshot net that got a new id, or one a journal item brought forward.
        if ((this.fedEarly.size !== 0 && this.fedEarly.has(walk.key)) || (walk.size !== 0 && walk.inSnapshot(walk.key))) continue;
      } else if (this.fedEarly.size !== 0 && this.fedEarly.delete(walk.key)) continue; // brought forward already
      // The snapshot's chain is current: had the net changed since, it would be in fedEarly.
      if (this.feedRuns) {
        const routes = this.exporter.routesAt(walk);
        if (routes.length === 0 && !this.emitEmptyFeeds) continue;
        const family = walk.v6 ? 6 : 4;
        if (run?.family !== family) out.push((run = new FeedRun(family, this.batchSize - taken, end)));
        addToRun(run, walk, routes);
        taken++;
        continue;
      }
      const item = this.exporter.feedFromWalk(walk, end);
      if (item.routes.length > 0 || this.emitEmptyFeeds) {
        out.push(item);
        taken++;
      }
    }
    // Caught up with a table some source is still filling: the fill's writes and its end wake us.
    if (walk.done && !this.exporter.filling) {
      this.walk = undefined;
      this.fedEarly.clear();
      this.emitEmptyFeeds = false;
      this._state = 'ready';
      out.push(READY);
    }
  }

  /** A feed of the net's current routes (brought forward by a journal item). */
  private pushFeed(out: ExportItem[], key: NetKey, end: number): void {
    const item = this.exporter.feedOf(key, end);
    if (item.routes.length > 0 || this.emitEmptyFeeds) out.push(item);
  }

  /** The items of `first`'s net below `end`, as one update (`best`) or one per source (`all`). */
  private pushSquashed(out: ExportItem[], first: number, end: number): void {
    const journal = this.exporter.journal;
    if (this.exporter.kind === 'best') {
      let last = first;
      for (let n = journal.nextSameNet(last); n !== undefined && n < end; n = journal.nextSameNet(last)) last = n;
      if (journal.old(first) !== journal.new(last)) out.push(squashed(journal, first, last));
      return;
    }
    const bySource = new Map<RouteSource, [number, number]>();
    for (let it: number | undefined = first; it !== undefined && it < end; it = journal.nextSameNet(it)) {
      const src = (journal.old(it) ?? journal.new(it))!.src;
      const run = bySource.get(src);
      if (run === undefined) bySource.set(src, [it, it]);
      else run[1] = it;
    }
    // Sources are independent; ordering by last seq keeps a net's seqs increasing for the reader.
    const runs = [...bySource.values()].sort((x, y) => x[1] - y[1]);
    for (const [a, b] of runs) if (journal.old(a) !== journal.new(b)) out.push(squashed(journal, a, b));
  }
}

/** Appends the walk's current net to a run. */
function addToRun(run: FeedRun, walk: NetWalk, routes: readonly Route[]): void {
  const i = run.n++;
  run.lens[i] = walk.len;
  run.routes[i] = routes;
  if (run.stride === 1) {
    run.words[i] = walk.word;
    return;
  }
  const k = i * 4;
  run.words[k] = walk.word;
  run.words[k + 1] = walk.w1;
  run.words[k + 2] = walk.w2;
  run.words[k + 3] = walk.w3;
}

/** Batches a reader behind in the journal may take in one run (see readJournal). */
const JOURNAL_CATCH_UP = 16;

/** Items first..last of one net (seqs) as one update: old of the first, new of the last. */
function squashed(journal: Journal, first: number, last: number): UpdateItem {
  return { kind: 'update', seq: last, net: journal.net(first), old: journal.old(first), new: journal.new(last) };
}
