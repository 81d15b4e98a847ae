/**
 * NetWalk: a sorted snapshot of a table's nets and a cursor over it, the
 * order feeds walk in (IPv4 first, then address, then length, as
 * comparePrefix), and what lets an export request tell whether it has already
 * fed a net. NetStore.walk() makes one.
 *
 * A walk that follows its table (an export request's) goes on after the
 * snapshot over the nets that got an id after it, in id order, as the table
 * hands them out (the tail: a filling table's feed, docs/table.md "Fills").
 */
import { Prefix, prefixFromKey } from '../lib/addr';
import type { NetIndex } from '../lib/net-index';
import type { NetKey } from '../route/route';
import type { Slot } from './slot';
import type { NetFilter } from './prefilter';

/** What a walk reads of one family of the store: its index and the chains by id. */
export interface WalkFamily {
  readonly index: NetIndex;
  readonly slots: (Slot | undefined)[];
}

/** A following walk's part of one family: the ids from `start` (the index's end at the snapshot) on; `pos` is the next. */
interface Tail {
  readonly fam: WalkFamily;
  readonly start: number;
  pos: number;
  readonly filter: NetFilter | undefined;
}

function caughtUp(t: Tail | undefined): boolean {
  return t === undefined || t.pos >= t.fam.index.end;
}

/** One family's part of a walk: words and lengths in walk order, with the chains if captured. */
export interface WalkPart {
  readonly n: number;
  readonly stride: 1 | 4;
  readonly words: Int32Array;
  readonly lens: Uint8Array;
  /** Each net's id at the snapshot (-1: none), to find its chain without hashing while the id still holds it. */
  readonly ids: Int32Array;
  readonly slots: (Slot | undefined)[] | undefined;
  readonly family: WalkFamily;
}

/** The chain the net at walk position i has now: through its id while the id still holds it, else a lookup. */
function current(part: WalkPart, i: number, len: number, w0: number, w1: number, w2: number, w3: number): number {
  const idx = part.family.index;
  const id = part.ids[i]!;
  const k = id * part.stride;
  const same =
    id >= 0 && idx.lens[id] === len && idx.words[k] === w0 && (part.stride === 1 || (idx.words[k + 1] === w1 && idx.words[k + 2] === w2 && idx.words[k + 3] === w3));
  if (same) return id;
  return part.stride === 1 ? idx.find4(w0, len) : idx.find6(w0, w1, w2, w3, len);
}

/**
 * A sorted snapshot of nets and a cursor over it (IPv4 first, then address,
 * then length: comparePrefix order).
 *
 * Chains: a feeder's walk captured them (chains are copy-on-write, so that
 * is a consistent picture of one moment). An export request's walk reads a
 * net's current chain when it gets there, which is the chain of the moment
 * the snapshot was taken: the request walks on only when it has read the
 * whole journal, and a net changed since the snapshot has a journal item,
 * which has already brought that net's feed forward (the request skips it
 * here). Keeping the chains would cost an 8-byte slot per net for nothing.
 */
export class NetWalk {
  /** The net last handed out: family, words, length, chain. */
  v6 = false;
  word = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  len = -1;
  slot: Slot | undefined = undefined;
  /** The net last handed out came from the tail (after the snapshot). */
  fromTail = false;
  private i4 = 0;
  private i6 = 0;
  /** Following the table (an export request): per family, the ids handed out after the snapshot. */
  private tail4: Tail | undefined;
  private tail6: Tail | undefined;

  constructor(
    private readonly a: WalkPart,
    private readonly b: WalkPart,
  ) {}

  get size(): number {
    return this.a.n + this.b.n;
  }

  /** Nothing left to hand out now (a following walk may have more after the table's next write). */
  get done(): boolean {
    return this.i4 >= this.a.n && this.i6 >= this.b.n && caughtUp(this.tail4) && caughtUp(this.tail6);
  }

  /** After the snapshot, walk the ids `fam` hands out from now on, in id order, as they come. */
  follow(fam: WalkFamily, filter: NetFilter | undefined): void {
    const t: Tail = { fam, start: fam.index.end, pos: fam.index.end, filter };
    if (fam.index.stride === 1) this.tail4 = t;
    else this.tail6 = t;
  }

  /**
   * The tail will hand out id `id` (of the family of `v6`) when it gets there, if the net then
   * holding it is not one of the snapshot's (see ExportRequest.covers).
   */
  tailAhead(v6: boolean, id: number): boolean {
    const t = v6 ? this.tail6 : this.tail4;
    return t !== undefined && id >= t.pos;
  }

  /** The tail has been past id `id` (of the family of `v6`): it handed out, or skipped, the net then holding it. */
  tailPassed(v6: boolean, id: number): boolean {
    const t = v6 ? this.tail6 : this.tail4;
    return t !== undefined && id >= t.start && id < t.pos;
  }

  /** Moves to the next net; false when done. */
  advance(): boolean {
    if (this.i4 < this.a.n) {
      const i = this.i4++;
      this.word = this.a.words[i]!;
      this.len = this.a.lens[i]!;
      if (this.a.slots !== undefined) this.slot = this.a.slots[i];
      else this.readCurrent(this.a, i);
      return true;
    }
    if (this.i6 < this.b.n) {
      const i = this.i6++;
      const k = i * 4;
      const w = this.b.words;
      this.v6 = true;
      this.word = w[k]!;
      this.w1 = w[k + 1]!;
      this.w2 = w[k + 2]!;
      this.w3 = w[k + 3]!;
      this.len = this.b.lens[i]!;
      if (this.b.slots !== undefined) this.slot = this.b.slots[i];
      else this.readCurrent(this.b, i);
      return true;
    }
    return this.advanceTail(this.tail4) || this.advanceTail(this.tail6);
  }

  /** The snapshot net at i's chain now. */
  private readCurrent(part: WalkPart, i: number): void {
    const id = current(part, i, this.len, this.word, this.w1, this.w2, this.w3);
    this.slot = id < 0 ? undefined : part.family.slots[id];
  }

  /** `key` is one of the snapshot's nets (a binary search: the snapshot is sorted). */
  inSnapshot(key: NetKey): boolean {
    if (typeof key !== 'number') return this.inSnapshot6(key);
    const len = key & 63;
    return this.inSnapshot4((key - len) / 64, len);
  }

  /** The net of `word` (an IPv4 address word, or an IPv6 key) and `len` is one of the snapshot's: inSnapshot without a key made. */
  inSnapshotAt(word: number | string, len: number): boolean {
    return typeof word === 'number' ? this.inSnapshot4(word >>> 0, len) : this.inSnapshot6(word);
  }

  private inSnapshot4(addr: number, len: number): boolean {
    const part = this.a;
    if (part.n === 0) return false;
    let lo = 0;
    let hi = part.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const w = part.words[mid]! >>> 0;
      if (w < addr || (w === addr && part.lens[mid]! < len)) lo = mid + 1;
      else hi = mid;
    }
    return lo < part.n && part.words[lo]! >>> 0 === addr && part.lens[lo] === len;
  }

  private inSnapshot6(key: string): boolean {
    const part = this.b;
    if (part.n === 0) return false;
    const p = prefixFromKey(key);
    const kw = [p.w0 >>> 0, p.w1 >>> 0, p.w2 >>> 0, p.w3 >>> 0];
    const cmp = (i: number): number => {
      for (let j = 0; j < 4; j++) {
        const w = part.words[i * 4 + j]! >>> 0;
        if (w !== kw[j]) return w < kw[j]! ? -1 : 1;
      }
      return part.lens[i]! - p.len;
    };
    let lo = 0;
    let hi = part.n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(mid) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo < part.n && cmp(lo) === 0;
  }

  private advanceTail(t: Tail | undefined): boolean {
    if (t === undefined) return false;
    const idx = t.fam.index;
    while (t.pos < idx.end) {
      const id = t.pos++;
      if (!idx.live(id)) continue;
      const stride = idx.stride;
      if (t.filter !== undefined && t.filter.family === undefined && !t.filter.matches(stride === 1 ? (idx.words[id]! >>> 0) * 64 + idx.lens[id]! : idx.prefix(id).key())) continue;
      const k = id * stride;
      this.v6 = stride !== 1;
      this.word = idx.words[k]!;
      if (this.v6) {
        this.w1 = idx.words[k + 1]!;
        this.w2 = idx.words[k + 2]!;
        this.w3 = idx.words[k + 3]!;
      }
      this.len = idx.lens[id]!;
      this.slot = t.fam.slots[id];
      this.fromTail = true;
      return true;
    }
    return false;
  }

  /** The net last handed out, as a Prefix. */
  net(): Prefix {
    return this.v6 ? new Prefix(6, this.len, this.word, this.w1, this.w2, this.w3) : new Prefix(4, this.len, this.word);
  }

  /** The key of the net last handed out (an IPv6 key is a string made here). */
  get key(): NetKey {
    return this.v6 ? this.net().key() : (this.word >>> 0) * 64 + this.len;
  }

  /** The keys not handed out yet (the cursor does not move). */
  *rest(): IterableIterator<NetKey> {
    for (let i = this.i4; i < this.a.n; i++) yield (this.a.words[i]! >>> 0) * 64 + this.a.lens[i]!;
    for (let i = this.i6; i < this.b.n; i++) {
      const k = i * 4;
      const w = this.b.words;
      yield new Prefix(6, this.b.lens[i]!, w[k]!, w[k + 1]!, w[k + 2]!, w[k + 3]!).key();
    }
  }

  /**
   * True when `key` sorts at or before the net last handed out: the walk has
   * handed it out, or it was not in the snapshot and lies behind the cursor
   * (either answer is right for such a net: the reader never had it).
   */
  passed(key: NetKey): boolean {
    if (this.i4 >= this.a.n && this.i6 >= this.b.n) return true; // the snapshot is handed out (a tail may follow)
    if (this.len < 0) return false;
    if (typeof key === 'number') {
      if (this.v6) return true;
      const len = key & 63;
      const addr = (key - len) / 64;
      const at = this.word >>> 0;
      return addr < at || (addr === at && len <= this.len);
    }
    if (!this.v6) return false;
    const p = prefixFromKey(key);
    const a = [p.w0, p.w1, p.w2, p.w3];
    const b = [this.word, this.w1, this.w2, this.w3];
    for (let i = 0; i < 4; i++) {
      const x = a[i]! >>> 0;
      const y = b[i]! >>> 0;
      if (x !== y) return x < y;
    }
    return p.len <= this.len;
  }
}
