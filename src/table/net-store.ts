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
 * walk() makes a NetWalk (net-walk.ts), a sorted snapshot of nets: the order
 * feeds walk in. A feeder's walk also keeps each net's chain of that moment
 * (a consistent picture); an export request's reads each chain when it gets
 * there, and follows the table after it (see NetWalk).
 */
import type { Prefix } from '../lib/addr';
import { FREE_LEN, NetIndex } from '../lib/net-index';
import { NetList } from '../lib/net-list';
import { netOrder, v4Order } from '../lib/net-sort';
import type { NetKey } from '../route/route';
import { NetWalk, type WalkPart } from './net-walk';
import { slotBest, slotRoutes, type Slot } from './slot';
import type { NetFilter } from './prefilter';

export { NetWalk, slotBest, slotRoutes, type Slot };

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

  /** A hint before announcing the IPv4 nets words[0..n) (NetIndex.warm4). */
  warm4(words: Int32Array, lens: Uint8Array, n: number): number {
    return this.v4.index.warm4(words, lens, 0, n);
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
