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
 * The ids are kept in fixed-size blocks, a new one taken when the last is
 * full and the first dropped once it is read through (one kept spare): a
 * first sync queues up to a million routes, and an array that grew by
 * doubling made 8 MB of ArrayBuffers for a 4 MB queue, half of it garbage
 * that lived long enough to cost V8 a full collection (it counts external
 * memory made since its last full collection against the old generation's
 * limit), and kept the 4 MB for the process's life once the queue drained.
 */
import { QUEUED, type RouteStore } from './route-store';

/** Ids a block holds (64 KiB). */
const BLOCK = 16384;

export class DirtyQueue {
  /** The queue's blocks, oldest first: ids from blocks[0][head] to the last block's [tail). */
  private blocks: Int32Array[];
  private head = 0;
  private tail = 0;
  /** A block read through, kept for the next one needed. */
  private spare: Int32Array | undefined;
  private count = 0;
  /** Position (counted over the queue's life) of blocks[0][0]. */
  private base = 0;
  /** Runs of equal times: runStart[i] is the position where runAt[i] begins. */
  private runStart: number[] = [];
  private runAt: number[] = [];
  private run = 0;
  /** The change time of the route shift() returned last (0: none). */
  shiftedAt = 0;

  constructor(
    private readonly store: RouteStore,
    /** Ids a block holds (tests use small ones to cross blocks). */
    private readonly blockSize = BLOCK,
  ) {
    this.blocks = [new Int32Array(blockSize)];
  }

  get size(): number {
    return this.count;
  }

  add(id: number, at = 0): void {
    if (this.store.flag(id, QUEUED)) return;
    this.store.setFlag(id, QUEUED, true);
    if (this.tail === this.blockSize) {
      this.blocks.push(this.spare ?? new Int32Array(this.blockSize));
      this.spare = undefined;
      this.tail = 0;
    }
    const n = this.runAt.length;
    if (at !== (n > 0 ? this.runAt[n - 1] : 0)) {
      this.runStart.push(this.base + (this.blocks.length - 1) * this.blockSize + this.tail);
      this.runAt.push(at);
    }
    this.blocks[this.blocks.length - 1]![this.tail++] = id;
    this.count++;
  }

  delete(id: number): void {
    if (!this.store.flag(id, QUEUED)) return;
    this.store.setFlag(id, QUEUED, false);
    this.count--;
  }

  /** The oldest queued route, or -1 when none is left. */
  shift(): number {
    for (;;) {
      const last = this.blocks.length === 1;
      const end = last ? this.tail : this.blockSize;
      while (this.head < end) {
        const pos = this.base + this.head;
        const id = this.blocks[0]![this.head++]!;
        if (!this.store.flag(id, QUEUED)) continue; // removed while queued
        this.store.setFlag(id, QUEUED, false);
        this.count--;
        this.shiftedAt = this.timeAt(pos);
        return id;
      }
      if (last) break;
      // The first block is read through: the next one is first. Positions stay what they were.
      this.spare = this.blocks.shift();
      this.base += this.blockSize;
      this.head = 0;
      this.runStart = this.runStart.slice(this.run);
      this.runAt = this.runAt.slice(this.run);
      this.run = 0;
    }
    this.base += this.tail;
    this.head = this.tail = 0;
    this.runStart = [];
    this.runAt = [];
    this.run = 0;
    this.shiftedAt = 0;
    return -1;
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
}
