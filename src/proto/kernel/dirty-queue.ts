/**
 * The routes the kernel sync has to plan, first in first out, each at most
 * once: route ids in a typed array, membership as the route's QUEUED bit
 * (route-store.ts). Adding and removing are O(1); a route removed and added
 * again is planned once (its older slot is skipped, or taken first and the
 * newer one skipped: planning is the same either way). A million entries in
 * a Set were about 1 s of a first sync (hashing, inserts and deletes in
 * trie-spread order).
 */
import { QUEUED, type RouteStore } from './route-store';

export class DirtyQueue {
  private ids = new Int32Array(1024);
  private head = 0;
  private tail = 0;
  private count = 0;

  constructor(private readonly store: RouteStore) {}

  get size(): number {
    return this.count;
  }

  add(id: number): void {
    if (this.store.flag(id, QUEUED)) return;
    this.store.setFlag(id, QUEUED, true);
    if (this.tail === this.ids.length) this.makeRoom();
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
      const id = this.ids[this.head++]!;
      if (!this.store.flag(id, QUEUED)) continue; // removed while queued
      this.store.setFlag(id, QUEUED, false);
      this.count--;
      return id;
    }
    this.head = this.tail = 0;
    return -1;
  }

  /** Empties the queue (its routes were taken some other way). */
  clear(): void {
    for (let id = this.shift(); id >= 0; id = this.shift());
  }

  private makeRoom(): void {
    if (this.head * 2 >= this.ids.length) {
      this.ids.copyWithin(0, this.head, this.tail);
    } else {
      const ids = new Int32Array(this.ids.length * 2);
      ids.set(this.ids.subarray(this.head, this.tail));
      this.ids = ids;
    }
    this.tail -= this.head;
    this.head = 0;
  }
}
