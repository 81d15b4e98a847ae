/**
 * NetStore: the table's nets and their routes, laid out for memory.
 *
 * Nets live in a NetIndex per family (src/lib/net-index.ts: address words
 * and length in typed arrays, found through an open-addressing hash, each
 * net a dense id), and each net's chain in an array indexed by that id: no
 * Map entry, key, object or Prefix per net. A million IPv4 nets cost 13
 * bytes each outside V8's heap and one 8-byte slot inside it, where a Map
 * per prefix length cost about 42 bytes a net in one large object, twice
 * that while it grew. IPv6 nets are words too, never a string.
 *
 * The value (a Slot) is the net's chain, best first: the Route itself in the
 * common one-route case, or a frozen array of two or more. Chains are
 * copy-on-write, so a reader may keep one without copying and a writer never
 * changes one a reader holds. Callers name a net as the table does: an IPv4
 * net by its address word (int32) and length, an IPv6 net by its prefixKey
 * string (read here as words, never stored).
 *
 * NetWalk is a sorted snapshot of nets: the order feeds walk in (IPv4 first,
 * then address, then length, as comparePrefix), and what lets an export
 * request tell whether it has already fed a net. A feeder's walk also keeps
 * each net's chain of that moment (a consistent picture); an export
 * request's reads each chain when it gets there (see NetWalk).
 */
import { Prefix, prefixFromKey } from '../lib/addr';
import { FREE_LEN, NetIndex } from '../lib/net-index';
import { NetList } from '../lib/net-list';
import { netOrder, v4Order } from '../lib/net-sort';
import type { NetKey, Route } from '../route/route';
import type { NetFilter } from './prefilter';

export type Slot = Route | readonly Route[];

export function slotBest(slot: Slot | undefined): Route | undefined {
  return slot === undefined ? undefined : Array.isArray(slot) ? (slot as readonly Route[])[0] : (slot as Route);
}

const NO_ROUTES: readonly Route[] = Object.freeze([]);

/** The chain in a slot, best first (shared and frozen: never written to). */
export function slotRoutes(slot: Slot | undefined): readonly Route[] {
  return slot === undefined ? NO_ROUTES : Array.isArray(slot) ? (slot as readonly Route[]) : (slot as Route).alone;
}

export function netKeyOf(netWord: number | string, netLen: number): NetKey {
  return typeof netWord === 'number' ? (netWord >>> 0) * 64 + netLen : netWord;
}

/** An IPv6 prefixKey's words: 16 bits a character, the length in the ninth. */
function keyWord(k: string, i: number): number {
  return (k.charCodeAt(2 * i) << 16) | k.charCodeAt(2 * i + 1);
}

/** The slots of one family: a NetIndex and the chains by id. */
class Family {
  readonly index: NetIndex;
  slots: (Slot | undefined)[];

  constructor(family: 4 | 6) {
    this.index = new NetIndex(family);
    this.slots = new Array<Slot | undefined>(this.index.capacity).fill(undefined);
    this.index.onGrow = (cap) => {
      const slots = new Array<Slot | undefined>(cap).fill(undefined);
      for (let i = 0; i < this.slots.length; i++) slots[i] = this.slots[i];
      this.slots = slots;
    };
  }

  set(id: number, slot: Slot): number {
    this.slots[id] = slot;
    return id;
  }

  remove(id: number): number {
    if (id < 0) return id;
    this.slots[id] = undefined;
    this.index.remove(id);
    return id;
  }
}

export class NetStore {
  private v4 = new Family(4);
  private v6 = new Family(6);

  get size(): number {
    return this.v4.index.size + this.v6.index.size;
  }

  sizeOf(family: 4 | 6): number {
    return (family === 4 ? this.v4 : this.v6).index.size;
  }

  /** Room for `n` nets of `family` at once (no rehash or copy on the way there). */
  reserve(family: 4 | 6, n: number): void {
    (family === 4 ? this.v4 : this.v6).index.reserve(n);
  }

  /** The net's id in its family's index (-1: not held). */
  idOf(netWord: number | string, netLen: number): number {
    if (typeof netWord === 'number') return this.v4.index.find4(netWord, netLen);
    return this.v6.index.find6(keyWord(netWord, 0), keyWord(netWord, 1), keyWord(netWord, 2), keyWord(netWord, 3), netLen);
  }

  get(netWord: number | string, netLen: number): Slot | undefined {
    const id = this.idOf(netWord, netLen);
    return id < 0 ? undefined : (typeof netWord === 'number' ? this.v4 : this.v6).slots[id];
  }

  /** Sets the net's chain; returns its id (what the exporters journal beside the net). */
  set(netWord: number | string, netLen: number, slot: Slot): number {
    if (typeof netWord === 'number') return this.v4.set(this.v4.index.insert4(netWord, netLen), slot);
    return this.v6.set(this.v6.index.insert6(keyWord(netWord, 0), keyWord(netWord, 1), keyWord(netWord, 2), keyWord(netWord, 3), netLen), slot);
  }

  /** Removes the net; returns the id it had (-1: none). */
  delete(netWord: number | string, netLen: number): number {
    return (typeof netWord === 'number' ? this.v4 : this.v6).remove(this.idOf(netWord, netLen));
  }

  /** Forgets every chain at once. */
  clear(): void {
    this.v4 = new Family(4);
    this.v6 = new Family(6);
  }

  getByKey(key: NetKey): Slot | undefined {
    if (typeof key === 'string') return this.get(key, key.charCodeAt(8));
    const len = key & 63;
    return this.get(((key - len) / 64) | 0, len);
  }

  /** Every net of `family` that has routes, in no particular order: IPv4 as (address word, length), IPv6 as a Prefix. */
  forEachNet(family: 4 | 6, v4: (word: number, len: number) => void, v6: (net: Prefix) => void): void {
    if (family === 4) {
      const idx = this.v4.index;
      idx.forEach((id) => v4(idx.words[id]!, idx.lens[id]!));
    } else {
      const idx = this.v6.index;
      idx.forEach((id) => v6(idx.prefix(id)));
    }
  }

  /** Every net with its chain: IPv4 as (address word, length), IPv6 as (key, length). `fn` must not write. */
  forEachEntry(fn: (word: number | string, len: number, slot: Slot) => void): void {
    const a = this.v4;
    a.index.forEach((id) => fn(a.index.words[id]!, a.index.lens[id]!, a.slots[id]!));
    const b = this.v6;
    b.index.forEach((id) => fn(b.index.prefix(id).key() as string, b.index.lens[id]!, b.slots[id]!));
  }

  /**
   * A sorted snapshot of the nets matching `filter`, plus `extra` keys (distinct nets with no
   * routes now, for refeeds: handed out with no chain). With `capture` each net's chain of this
   * moment is kept (a feeder's consistent picture); without, the walk reads it when it gets there.
   * With `follow` (an export request) the walk goes on, after the snapshot, over the nets that get
   * an id after it, in id order, as the table grows (see NetWalk: a filling table's feed).
   */
  walk(filter: NetFilter | undefined, extra?: Iterable<NetKey>, capture = false, follow = false): NetWalk {
    const w = this.snapshot(filter, extra, capture);
    if (follow) {
      if (filter?.family !== 6) w.follow(this.v4, filter);
      if (filter?.family !== 4) w.follow(this.v6, filter);
    }
    return w;
  }

  private snapshot(filter: NetFilter | undefined, extra: Iterable<NetKey> | undefined, capture: boolean): NetWalk {
    // Every net of a family (the kernel protocol's feed): sorted straight from the index's own
    // columns by a radix sort that yields their ids, so the walk reads each chain through its id
    // (in address order, which is usually id order) instead of hashing each net again.
    if (extra === undefined && (filter === undefined || filter.family !== undefined)) {
      const none = new NetList(1, 0);
      return new NetWalk(
        filter?.family === 6 ? sorted(none, this.v4, capture) : wholeFamily(this.v4, capture),
        filter?.family === 4 ? sorted(new NetList(4, 0), this.v6, capture) : wholeFamily(this.v6, capture),
      );
    }
    // A prefilter's nets, or a refeed's (with the nets it owes): gathered with their ids, then sorted.
    const v4 = new NetList(1, filter?.family === 6 ? 16 : this.v4.index.size + 16, true);
    const v6 = new NetList(4, filter?.family === 4 ? 16 : this.v6.index.size + 16, true);
    if (filter?.family !== 6) this.collect(this.v4.index, filter, (len, id, w0) => v4.push(len, id, w0));
    if (filter?.family !== 4) this.collect(this.v6.index, filter, (len, id, w0, w1, w2, w3) => v6.push(len, id, w0, w1, w2, w3));
    if (extra !== undefined) {
      for (const k of extra) {
        if (typeof k === 'number') {
          const len = k & 63;
          v4.push(len, -1, ((k - len) / 64) | 0);
        } else v6.push(k.charCodeAt(8), -1, keyWord(k, 0), keyWord(k, 1), keyWord(k, 2), keyWord(k, 3));
      }
    }
    return new NetWalk(sorted(v4, this.v4, capture), sorted(v6, this.v6, capture));
  }

  /** The nets of one family passing `filter`, to `out`; prefix ranges look only where matching nets can be. */
  private collect(idx: NetIndex, filter: NetFilter | undefined, out: (len: number, id: number, w0: number, w1: number, w2: number, w3: number) => void): void {
    const stride = idx.stride;
    const w = idx.words;
    const all = (test?: (id: number) => boolean): void =>
      idx.forEach((id) => {
        if (test !== undefined && !test(id)) return;
        if (stride === 1) out(idx.lens[id]!, id, w[id]!, 0, 0, 0);
        else out(idx.lens[id]!, id, w[id * 4]!, w[id * 4 + 1]!, w[id * 4 + 2]!, w[id * 4 + 3]!);
      });
    if (filter === undefined || filter.family !== undefined) return all();
    const ranges = filter.ranges;
    if (ranges === undefined) return all((id) => filter.matches(stride === 1 ? (idx.words[id]! >>> 0) * 64 + idx.lens[id]! : idx.prefix(id).key()));
    // Few possible nets under a range at some length (show routes 10.1.2.0/24): look each up; else one pass over all.
    let scan = false;
    for (const r of ranges) {
      if (r.prefix.family !== idx.family) continue;
      for (let len = r.min; len <= r.max && !scan; len++) if (stride !== 1 || 2 ** (len - r.prefix.len) > idx.size) scan = true;
    }
    if (scan) {
      all((id) =>
        stride === 1
          ? filter.matchesWords!(4, idx.lens[id]!, w[id]!, 0, 0, 0)
          : filter.matchesWords!(6, idx.lens[id]!, w[id * 4]!, w[id * 4 + 1]!, w[id * 4 + 2]!, w[id * 4 + 3]!),
      );
      return;
    }
    if (idx.family !== 4) return; // IPv6 ranges are always scanned: none of them matched this family
    for (const r of ranges) {
      if (r.prefix.family !== 4) continue;
      for (let len = r.min; len <= r.max; len++) {
        const step = len === 0 ? 0 : 2 ** (32 - len);
        for (let j = 0; j < 2 ** (len - r.prefix.len); j++) {
          const w = ((r.prefix.w0 >>> 0) + j * step) | 0;
          const id = idx.find4(w, len);
          if (id >= 0) out(len, id, w, 0, 0, 0);
        }
      }
    }
  }
}

/** A following walk's part of one family: the ids from `start` (the index's end at the snapshot) on; `pos` is the next. */
interface Tail {
  readonly fam: Family;
  readonly start: number;
  pos: number;
  readonly filter: NetFilter | undefined;
}

function caughtUp(t: Tail | undefined): boolean {
  return t === undefined || t.pos >= t.fam.index.end;
}

/** One family's part of a walk: words and lengths in walk order, with the chains if captured. */
interface WalkPart {
  readonly n: number;
  readonly stride: 1 | 4;
  readonly words: Int32Array;
  readonly lens: Uint8Array;
  /** Each net's id at the snapshot (-1: none), to find its chain without hashing while the id still holds it. */
  readonly ids: Int32Array;
  readonly slots: (Slot | undefined)[] | undefined;
  readonly family: Family;
}

/** Every net of a family in address order, with its id, sorted in place of the index's columns. */
function wholeFamily(fam: Family, capture: boolean): WalkPart {
  const idx = fam.index;
  const stride = idx.stride;
  const order = stride === 1 ? v4Order(idx.words, idx.lens, idx.end, FREE_LEN) : netOrder(idx.words, stride, idx.lens, idx.end);
  const size = idx.size;
  const words = new Int32Array(size * stride);
  const lens = new Uint8Array(size);
  const ids = new Int32Array(size);
  const slots = capture ? new Array<Slot | undefined>(size) : undefined;
  let n = 0;
  for (let j = 0; j < order.length; j++) {
    const id = order[j]!;
    if (!idx.live(id)) continue; // an id no longer in use (its stale words sort anywhere)
    for (let w = 0; w < stride; w++) words[n * stride + w] = idx.words[id * stride + w]!;
    lens[n] = idx.lens[id]!;
    ids[n] = id;
    if (slots !== undefined) slots[n] = fam.slots[id];
    n++;
  }
  return { n, stride, words, lens, ids, slots, family: fam };
}

/** `list` sorted (address, then length), duplicates (overlapping ranges) dropped, chains captured if asked. */
function sorted(list: NetList, fam: Family, capture: boolean): WalkPart {
  const stride = list.stride;
  const order = netOrder(list.words, stride, list.lens, list.n);
  const words = new Int32Array(list.n * stride);
  const lens = new Uint8Array(list.n);
  const ids = new Int32Array(list.n);
  const slots = capture ? new Array<Slot | undefined>(list.n) : undefined;
  let n = 0;
  for (let j = 0; j < list.n; j++) {
    const i = order[j]!;
    if (n > 0 && lens[n - 1] === list.lens[i]) {
      let same = true;
      for (let w = 0; w < stride && same; w++) same = words[(n - 1) * stride + w] === list.words[i * stride + w];
      if (same) continue;
    }
    for (let w = 0; w < stride; w++) words[n * stride + w] = list.words[i * stride + w]!;
    lens[n] = list.lens[i]!;
    const id = list.values[i]!;
    ids[n] = id;
    if (slots !== undefined) slots[n] = id < 0 ? undefined : fam.slots[id];
    n++;
  }
  return { n, stride, words, lens, ids, slots, family: fam };
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
  follow(fam: Family, filter: NetFilter | undefined): void {
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
    if (typeof key === 'number') {
      const part = this.a;
      if (part.n === 0) return false;
      const len = key & 63;
      const addr = (key - len) / 64;
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
