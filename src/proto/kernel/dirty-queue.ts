/**
 * The routes the kernel sync has to plan, first in first out, each at most
 * once: route ids in a typed array, membership as the route's QUEUED bit
 * (route-store.ts). Adding and removing are O(1); a route removed and added
 * again is planned once (its older slot is skipped, or taken first and the
 * newer one skipped: planning is the same either way). A Set of a million
 * entries cost a first sync seconds of hashing, inserts and deletes.
 *
 * A route may be added with the time its change happened (a table change,
 * for the latency metric; 0: none); shift() leaves the time of the route it
 * returned in `shiftedAt`. A route already queued keeps its first time.
 * Times are kept as runs (the position where a new time starts), not per
 * route: a million routes queued within a few milliseconds are a few runs.
 *
 * Work known in full up front (a prune, the routes a link took) goes in
 * through inKernelOrder(): the order the kernel's trie takes fastest.
 */
import { SpreadIds, forEachInSpreadOrder } from '../../netlink/order';
import { QUEUED, type RouteStore } from './route-store';

/** Routes collected (take), then queued at once (queue), in the kernel's order. */
export interface KernelOrder {
  take(id: number): void;
  queue(): void;
}

export class DirtyQueue {
  private ids = new Int32Array(1024);
  private head = 0;
  private tail = 0;
  private count = 0;
  /** Position (counted over the queue's life) of ids[0]. */
  private base = 0;
  /** Runs of equal times: runStart[i] is the position where runAt[i] begins. */
  private runStart: number[] = [];
  private runAt: number[] = [];
  private run = 0;
  /** The change time of the route shift() returned last (0: none). */
  shiftedAt = 0;

  constructor(private readonly store: RouteStore) {}

  get size(): number {
    return this.count;
  }

  add(id: number, at = 0): void {
    if (this.store.flag(id, QUEUED)) return;
    this.store.setFlag(id, QUEUED, true);
    if (this.tail === this.ids.length) this.makeRoom();
    const n = this.runAt.length;
    if (at !== (n > 0 ? this.runAt[n - 1] : 0)) {
      this.runStart.push(this.base + this.tail);
      this.runAt.push(at);
    }
    this.ids[this.tail++] = id;
    this.count++;
  }

  delete(id: number): void {
    if (!this.store.flag(id, QUEUED)) return;
    this.store.setFlag(id, QUEUED, false);
    this.count--;
  }

  /** The oldest queued route, or -1 when none is left. */
  shift(): number {
    while (this.head < this.tail) {
      const pos = this.base + this.head;
      const id = this.ids[this.head++]!;
      if (!this.store.flag(id, QUEUED)) continue; // removed while queued
      this.store.setFlag(id, QUEUED, false);
      this.count--;
      this.shiftedAt = this.timeAt(pos);
      return id;
    }
    this.base += this.tail;
    this.head = this.tail = 0;
    this.runStart = [];
    this.runAt = [];
    this.run = 0;
    this.shiftedAt = 0;
    return -1;
  }

  /**
   * Collects routes (take), then queues them (queue) in the order the kernel's trie takes fastest: it
   * adds them faster, and deletes them faster at shutdown (its trie keeps the layout of the order
   * routes went in; docs/benchmarks.md). IPv4 goes in trie-spread order, or address order with
   * `spreadOrder` false (read straight from the routes' words: SpreadIds keeps 8 bytes a route,
   * nothing else; ids past SpreadIds' reach go in trie-spread order either way), IPv6 as it is.
   */
  inKernelOrder(capacity: number, spreadOrder = true): KernelOrder {
    const nets = this.store.nets;
    const spread = nets.stride === 1 && SpreadIds.fits(nets.end) ? new SpreadIds(capacity, spreadOrder) : undefined;
    const work = spread === undefined ? new Int32Array(capacity) : undefined;
    let n = 0;
    return {
      take(id: number): void {
        if (spread !== undefined) spread.push(nets.words[id]!, id);
        else work![n++] = id;
      },
      queue: (): void => {
        if (spread !== undefined) {
          spread.sort();
          for (let k = 0; k < spread.n; k++) this.add(spread.at(k));
        } else if (nets.stride !== 1) for (let i = 0; i < n; i++) this.add(work![i]!);
        else forEachInSpreadOrder(nets.words, nets.lens, n, work, (i) => this.add(work![i]!));
      },
    };
  }

  /** Empties the queue (its routes were taken some other way). */
  clear(): void {
    for (let id = this.shift(); id >= 0; id = this.shift());
  }

  /** The time of the run holding position `pos` (positions only grow, so runs before it are passed for good). */
  private timeAt(pos: number): number {
    const starts = this.runStart;
    if (starts.length === 0 || pos < starts[this.run]!) return 0;
    while (this.run + 1 < starts.length && starts[this.run + 1]! <= pos) this.run++;
    return this.runAt[this.run]!;
  }

  private makeRoom(): void {
    if (this.head * 2 >= this.ids.length) {
      this.ids.copyWithin(0, this.head, this.tail);
      // Positions stay what they were: the base moves with the ids.
      this.base += this.head;
      this.runStart = this.runStart.slice(this.run);
      this.runAt = this.runAt.slice(this.run);
      this.run = 0;
    } else {
      const ids = new Int32Array(this.ids.length * 2);
      ids.set(this.ids.subarray(this.head, this.tail));
      this.ids = ids;
      this.base += this.head;
    }
    this.tail -= this.head;
    this.head = 0;
  }
}
