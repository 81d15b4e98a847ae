/**
 * The journal: sequence-numbered changes of one exporter, oldest first.
 *
 * Items are shared by every reader and never change after the write that
 * made them, except for one link: `nextSameNet` points to the next item of
 * the same net (BIRD's per-net pending chain), set when that item is written.
 * A reader squashes by following it, without scanning the journal.
 *
 * Trimming drops items below the slowest reader's position; `lastOfNet` only
 * holds nets that still have items, so an idle table's journal is empty.
 */
import { type Prefix, prefixFromKey } from '../lib/addr';
import type { NetKey, Route } from '../route/route';
import type { UpdateItem } from './items';
import { InvariantError } from '../lib/errors';

export class JournalItem implements UpdateItem {
  /** The next item of the same net, once written. */
  nextSameNet: JournalItem | undefined = undefined;
  private netCache: Prefix | undefined = undefined;
  readonly new: Route | undefined;

  constructor(
    readonly seq: number,
    readonly key: NetKey,
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
  private readonly lastOfNet = new Map<NetKey, JournalItem>();

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

  push(key: NetKey, old: Route | undefined, neu: Route | undefined): JournalItem {
    const item = new JournalItem(this.nextSeq++, key, old, neu);
    const prev = this.lastOfNet.get(key);
    if (prev !== undefined) prev.nextSameNet = item;
    this.lastOfNet.set(key, item);
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
      if (this.lastOfNet.get(item.key) === item) this.lastOfNet.delete(item.key);
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
    return this.lastOfNet.size;
  }
}
