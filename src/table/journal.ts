/**
 * The journal: sequence-numbered changes of one exporter, oldest first.
 *
 * Items are shared by every reader and never change after the write that
 * made them, except for one link: each item knows the next item of the same
 * net (BIRD's per-net pending chain), set when that item is written. A
 * reader squashes by following it, without scanning the journal.
 *
 * Items are columns, not objects: per item its net (an IPv4 address word
 * and length in typed arrays; an IPv6 net's key string beside them), its old
 * and new route, the net's id in the table, and the distance to the next item of its net. A reader
 * gets an UpdateItem made when it reads (and dropped at once). A journal
 * item as an object with its boxed key was about 100 bytes, and during a
 * churn of a million routes tens of thousands of them lived long enough to
 * be promoted to V8's old generation, so the churn's garbage piled up there;
 * as columns an item is 25 bytes and nothing to promote.
 *
 * Trimming drops items below the slowest reader's position; the last item
 * of each net is only held for nets that still have items, so an idle
 * table's journal is empty. The last item per net is found like the table's
 * nets: IPv4 in one Map per prefix length keyed by the int32 address word
 * (a Smi), IPv6 by key string.
 */
import { InvariantError } from '../lib/errors';
import { Prefix, prefixFromKey } from '../lib/addr';
import { grownTo } from '../lib/net-list';
import type { NetKey, Route } from '../route/route';
import type { UpdateItem } from './items';

export class Journal {
  /** Seq of the item at index 0. */
  private base = 1;
  /** Index of the first live item, and one past the last. */
  private head = 0;
  private tail = 0;
  private words = new Int32Array(256);
  private lens = new Uint8Array(256);
  /** The net's id in the table's index when the item was written (readers following a filling table compare it). */
  private ids = new Int32Array(256);
  /** Distance to the next item of the same net (0: none yet). */
  private next = new Int32Array(256);
  private olds: (Route | undefined)[] = new Array<Route | undefined>(256).fill(undefined);
  private news: (Route | undefined)[] = new Array<Route | undefined>(256).fill(undefined);
  /** IPv6 items' key strings (undefined for IPv4 items), made only once an IPv6 item comes. */
  private v6keys: (string | undefined)[] | undefined = undefined;
  private readonly lastV4: Map<number, number>[] = Array.from({ length: 33 }, () => new Map<number, number>());
  private readonly lastV6 = new Map<string, number>();

  /** The seq the next write gets; readers at `end` have read everything. */
  get end(): number {
    return this.base + this.tail;
  }

  /** The oldest seq still held. */
  get start(): number {
    return this.base + this.head;
  }

  get length(): number {
    return this.tail - this.head;
  }

  push(netWord: number | string, netLen: number, id: number, old: Route | undefined, neu: Route | undefined): void {
    if (this.tail === this.lens.length) this.makeRoom();
    const i = this.tail++;
    const seq = this.base + i;
    this.lens[i] = netLen;
    this.ids[i] = id;
    this.next[i] = 0;
    this.olds[i] = old;
    this.news[i] = neu;
    let prev: number | undefined;
    if (typeof netWord === 'number') {
      this.words[i] = netWord;
      if (this.v6keys !== undefined) this.v6keys[i] = undefined;
      const last = this.lastV4[netLen]!;
      prev = last.get(netWord);
      last.set(netWord, seq);
    } else {
      (this.v6keys ??= new Array<string | undefined>(this.lens.length).fill(undefined))[i] = netWord;
      prev = this.lastV6.get(netWord);
      this.lastV6.set(netWord, seq);
    }
    if (prev !== undefined && prev >= this.start) this.next[prev - this.base] = seq - prev;
  }

  /** The key of item `seq` (an IPv4 key is a number, an IPv6 key its string). */
  key(seq: number): NetKey {
    const i = this.index(seq);
    const k = this.v6keys?.[i];
    return k !== undefined ? k : (this.words[i]! >>> 0) * 64 + this.lens[i]!;
  }

  /** Item `seq`'s net as NetStore names it: an IPv4 address word (int32), or an IPv6 key. */
  word(seq: number): number | string {
    const i = this.index(seq);
    return this.v6keys?.[i] ?? this.words[i]!;
  }

  /** Item `seq`'s prefix length. */
  len(seq: number): number {
    return this.lens[this.index(seq)]!;
  }

  /** The id item `seq`'s net had in the table's index (NetStore) when it was written. */
  id(seq: number): number {
    return this.ids[this.index(seq)]!;
  }

  old(seq: number): Route | undefined {
    return this.olds[this.index(seq)];
  }

  new(seq: number): Route | undefined {
    return this.news[this.index(seq)];
  }

  /** The seq of the next item of the same net, if one has been written. */
  nextSameNet(seq: number): number | undefined {
    const d = this.next[this.index(seq)]!;
    return d === 0 ? undefined : seq + d;
  }

  /** The net of item `seq`, as a Prefix (made on each call). */
  net(seq: number): Prefix {
    const i = this.index(seq);
    const k = this.v6keys?.[i];
    return k !== undefined ? prefixFromKey(k) : new Prefix(4, this.lens[i]!, this.words[i]!);
  }

  /** Item `seq` as a reader gets it. */
  item(seq: number): UpdateItem {
    const i = this.index(seq);
    return { kind: 'update', seq, net: this.net(seq), old: this.olds[i], new: this.news[i] };
  }

  /** Drops every item with seq below `seq`. */
  trimTo(seq: number): void {
    const stop = Math.min(seq, this.end);
    for (let s = this.start; s < stop; s++) {
      const i = this.head++;
      const k = this.v6keys?.[i];
      if (k !== undefined) {
        if (this.lastV6.get(k) === s) this.lastV6.delete(k);
        this.v6keys![i] = undefined;
      } else {
        const last = this.lastV4[this.lens[i]!]!;
        if (last.get(this.words[i]!) === s) last.delete(this.words[i]!);
      }
      this.olds[i] = undefined;
      this.news[i] = undefined;
    }
    if (this.head === this.tail) {
      this.base += this.head;
      this.head = this.tail = 0;
    }
  }

  /** Nets with items still held (for tests: empty once every reader caught up). */
  get pendingNets(): number {
    let n = this.lastV6.size;
    for (const m of this.lastV4) n += m.size;
    return n;
  }

  private index(seq: number): number {
    const i = seq - this.base;
    if (i < this.head || i >= this.tail) throw new InvariantError(`journal: seq ${seq} is not held (${this.start}..${this.end})`);
    return i;
  }

  /** Full: move the live items down when most of the room is trimmed, else double it. */
  private makeRoom(): void {
    const live = this.tail - this.head;
    if (this.head > 0 && live * 2 <= this.lens.length) {
      const h = this.head;
      this.words.copyWithin(0, h, this.tail);
      this.lens.copyWithin(0, h, this.tail);
      this.ids.copyWithin(0, h, this.tail);
      this.next.copyWithin(0, h, this.tail);
      this.olds.copyWithin(0, h, this.tail);
      this.news.copyWithin(0, h, this.tail);
      this.v6keys?.copyWithin(0, h, this.tail);
      this.olds.fill(undefined, live);
      this.news.fill(undefined, live);
      this.v6keys?.fill(undefined, live);
      this.base += h;
      this.head = 0;
      this.tail = live;
      return;
    }
    const cap = this.lens.length * 2;
    this.words = grownTo(this.words, cap);
    this.lens = grownTo(this.lens, cap);
    this.ids = grownTo(this.ids, cap);
    this.next = grownTo(this.next, cap);
    this.olds.length = cap;
    this.olds.fill(undefined, this.tail);
    this.news.length = cap;
    this.news.fill(undefined, this.tail);
    if (this.v6keys !== undefined) {
      this.v6keys.length = cap;
      this.v6keys.fill(undefined, this.tail);
    }
  }
}
