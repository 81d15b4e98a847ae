/**
 * The journal: sequence-numbered changes of one exporter, oldest first.
 *
 * Items are shared by every reader and never change after the write that
 * made them, except for one link: `nextSameNet` points to the next item of
 * the same net (BIRD's per-net pending chain), set when that item is written.
 * A reader squashes by following it, without scanning the journal.
 *
 * Trimming drops items below the slowest reader's position; the last item
 * of each net is only held for nets that still have items, so an idle
 * table's journal is empty. It is kept like the table's NetStore: IPv4 in one
 * Map per prefix length keyed by the int32 address word (a Smi), IPv6 by key
 * string. Keyed by the IPv4 NetKey (word * 64 + len, a heap number beyond
 * the Smi range) its four Map operations per item were about 1.7 s per
 * million changes.
 */
import { type Prefix, prefixFromKey } from '../lib/addr';
import type { NetKey, Route } from '../route/route';
import type { UpdateItem } from './items';
import { InvariantError } from '../lib/errors';
import { netKeyOf } from './net-store';

export class JournalItem implements UpdateItem {
  /** The next item of the same net, once written. */
  nextSameNet: JournalItem | undefined = undefined;
  private netCache: Prefix | undefined = undefined;
  readonly new: Route | undefined;

  constructor(
    readonly seq: number,
    readonly key: NetKey,
    /** The net as the NetStore keys it: IPv4 address word (int32) and length, or the IPv6 key string. */
    readonly netWord: number | string,
    readonly netLen: number,
    readonly old: Route | undefined,
    neu: Route | undefined,
  ) {
    this.new = neu;
  }

  get kind(): 'update' {
    return 'update';
  }

  /** Built once, on first use, and shared by every reader of the item. */
  get net(): Prefix {
    return (this.netCache ??= prefixFromKey(this.key));
  }
}

const COMPACT_AT = 4096;

export class Journal {
  private items: (JournalItem | undefined)[] = [];
  /** Index in `items` of the first live item. */
  private head = 0;
  private nextSeq = 1;
  private readonly lastV4: Map<number, JournalItem>[] = Array.from({ length: 33 }, () => new Map<number, JournalItem>());
  private readonly lastV6 = new Map<string, JournalItem>();

  /** The seq the next write gets; readers at `end` have read everything. */
  get end(): number {
    return this.nextSeq;
  }

  /** The oldest seq still held. */
  get start(): number {
    return this.nextSeq - (this.items.length - this.head);
  }

  get length(): number {
    return this.items.length - this.head;
  }

  push(netWord: number | string, netLen: number, old: Route | undefined, neu: Route | undefined): JournalItem {
    const item = new JournalItem(this.nextSeq++, netKeyOf(netWord, netLen), netWord, netLen, old, neu);
    if (typeof netWord === 'number') {
      const last = this.lastV4[netLen]!;
      const prev = last.get(netWord);
      if (prev !== undefined) prev.nextSameNet = item;
      last.set(netWord, item);
    } else {
      const prev = this.lastV6.get(netWord);
      if (prev !== undefined) prev.nextSameNet = item;
      this.lastV6.set(netWord, item);
    }
    this.items.push(item);
    return item;
  }

  at(seq: number): JournalItem {
    const item = this.items[this.head + seq - this.start];
    if (item === undefined || item.seq !== seq) throw new InvariantError(`journal: seq ${seq} is not held (${this.start}..${this.end})`);
    return item;
  }

  /** Drops every item with seq below `seq`. */
  trimTo(seq: number): void {
    const stop = Math.min(seq, this.end);
    for (let s = this.start; s < stop; s++) {
      const item = this.items[this.head]!;
      const w = item.netWord;
      if (typeof w === 'number') {
        const last = this.lastV4[item.netLen]!;
        if (last.get(w) === item) last.delete(w);
      } else if (this.lastV6.get(w) === item) this.lastV6.delete(w);
      this.items[this.head++] = undefined;
    }
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Nets with items still held (for tests: empty once every reader caught up). */
  get pendingNets(): number {
    let n = this.lastV6.size;
    for (const m of this.lastV4) n += m.size;
    return n;
  }
}
