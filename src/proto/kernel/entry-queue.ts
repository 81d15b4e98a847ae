/**
 * The kernel sync's work lists, as arrays instead of Sets of entries.
 *
 * A first sync puts a million entries through "dirty" and "waiting for the
 * echo": as Sets of objects that was about 1 s of hashing, inserting and
 * deleting (each entry's identity hash made on first insert, and every
 * delete and insert in trie-spread order a cache miss into a 1M-slot table).
 * An array plus a flag on the entry does the same in a fraction of it.
 */
import type { NetEntry } from './net-entry';

/** Arrays this long are compacted once more than half of them has been taken. */
const COMPACT_AT = 4096;

/**
 * Entries to plan, first in first out, each at most once: membership is the
 * entry's own `queued` flag, so add and delete are O(1) and an entry deleted
 * and added again is not listed twice (its stale slot is skipped).
 *
 * An entry may be added with the time its change happened (a table change,
 * for the latency metric; 0: none); shift() leaves the time of the entry it
 * returned in `shiftedAt`. An entry already queued keeps its first time.
 * Times are kept as runs (the position where a new time starts), not per
 * entry: a million entries queued within a few milliseconds are a few runs.
 */
export class DirtyQueue {
  private items: NetEntry[] = [];
  private head = 0;
  private count = 0;
  /** Position (counted over the queue's life) of items[0]. */
  private base = 0;
  /** Runs of equal times: runStart[i] is the position where runAt[i] begins. */
  private runStart: number[] = [];
  private runAt: number[] = [];
  private run = 0;
  /** The change time of the entry shift() returned last (0: none). */
  shiftedAt = 0;

  get size(): number {
    return this.count;
  }

  add(e: NetEntry, at = 0): void {
    if (e.queued) return;
    e.queued = true;
    const n = this.runAt.length;
    if (at !== (n > 0 ? this.runAt[n - 1] : 0)) {
      this.runStart.push(this.base + this.items.length);
      this.runAt.push(at);
    }
    this.items.push(e);
    this.count++;
  }

  delete(e: NetEntry): void {
    if (!e.queued) return;
    e.queued = false;
    this.count--;
  }

  /** Takes every queued entry out, in queue order (for a caller that queues them again in another order). */
  takeAll(): NetEntry[] {
    const out: NetEntry[] = [];
    for (let e = this.shift(); e !== undefined; e = this.shift()) out.push(e);
    return out;
  }

  /** Takes out the oldest queued entry; undefined when none is left. */
  shift(): NetEntry | undefined {
    while (this.head < this.items.length) {
      const pos = this.base + this.head;
      const e = this.items[this.head++]!;
      if (!e.queued) continue; // deleted while queued
      e.queued = false;
      this.count--;
      this.shiftedAt = this.timeAt(pos);
      if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
        this.items = this.items.slice(this.head);
        this.base += this.head;
        this.head = 0;
        this.runStart = this.runStart.slice(this.run);
        this.runAt = this.runAt.slice(this.run);
        this.run = 0;
      }
      return e;
    }
    this.base += this.items.length;
    this.items = [];
    this.head = 0;
    this.runStart = [];
    this.runAt = [];
    this.run = 0;
    this.shiftedAt = 0;
    return undefined;
  }

  /** The time of the run holding position `pos` (positions only grow, so runs before it are passed for good). */
  private timeAt(pos: number): number {
    const starts = this.runStart;
    if (starts.length === 0 || pos < starts[this.run]!) return 0;
    while (this.run + 1 < starts.length && starts[this.run + 1]! <= pos) this.run++;
    return this.runAt[this.run]!;
  }
}

/**
 * Entries whose own notification (echo) is expected, in the order their
 * operations were sent, with the send time. onTick takes the overdue ones from
 * the front; an entry sent again since is judged by its later slot.
 */
export class EchoWaitQueue {
  private items: NetEntry[] = [];
  private sentAt: number[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  add(e: NetEntry, at: number): void {
    this.items.push(e);
    this.sentAt.push(at);
  }

  clear(): void {
    this.items = [];
    this.sentAt = [];
    this.head = 0;
  }

  /**
   * Calls `overdue` for each entry sent before `before` that still waits for an
   * echo with nothing in flight and was not sent again since. One still in
   * flight is looked at again later (its slot moves to the back, with the same
   * time: it is taken once the slots before it are overdue too, within one
   * more wait).
   */
  takeOverdue(before: number, overdue: (e: NetEntry) => void): void {
    const end = this.items.length;
    while (this.head < end && this.sentAt[this.head]! < before) {
      const e = this.items[this.head]!;
      const at = this.sentAt[this.head]!;
      this.head++;
      if (e.dropped || e.echoes.length === 0 || e.lastSentAt !== at) continue;
      if (e.inflight > 0) this.add(e, at);
      else overdue(e);
    }
    if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.sentAt = this.sentAt.slice(this.head);
      this.head = 0;
    } else if (this.head === this.items.length) this.clear();
  }
}
