/**
 * NetStore: the table's nets and their routes, laid out for memory.
 *
 * IPv4 nets live in 33 Maps, one per prefix length, keyed by the address word
 * as an int32: a small integer in V8, so the key costs nothing beyond the Map
 * entry (a single Map keyed by addr*64+len would box most keys as 16-byte heap
 * numbers). IPv6 nets live in one Map keyed by the prefixKey string.
 *
 * The value (a Slot) is the net's chain, best first: the Route itself in the
 * common one-route case, or a frozen array of two or more. Chains are
 * copy-on-write, so a reader may keep one without copying and a writer never
 * changes one a reader holds. There is no per-net object and no Prefix: nets
 * are materialized only when handed to readers.
 *
 * NetWalk is a sorted snapshot of nets with their chains: the order feeds
 * walk in (IPv4 first, then address, then length, as comparePrefix), and
 * what lets an export request tell whether it has already fed a net.
 */
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

export class NetStore {
  private readonly v4: Map<number, Slot>[] = Array.from({ length: 33 }, () => new Map<number, Slot>());
  private readonly v6 = new Map<string, Slot>();

  get size(): number {
    let n = this.v6.size;
    for (const m of this.v4) n += m.size;
    return n;
  }

  get(netWord: number | string, netLen: number): Slot | undefined {
    return typeof netWord === 'number' ? this.v4[netLen]!.get(netWord) : this.v6.get(netWord);
  }

  set(netWord: number | string, netLen: number, slot: Slot): void {
    if (typeof netWord === 'number') this.v4[netLen]!.set(netWord, slot);
    else this.v6.set(netWord, slot);
  }

  /** Forgets every chain at once. */
  clear(): void {
    for (const m of this.v4) m.clear();
    this.v6.clear();
  }

  delete(netWord: number | string, netLen: number): void {
    if (typeof netWord === 'number') this.v4[netLen]!.delete(netWord);
    else this.v6.delete(netWord);
  }

  getByKey(key: NetKey): Slot | undefined {
    if (typeof key === 'string') return this.v6.get(key);
    const len = key & 63;
    return this.v4[len]!.get(((key - len) / 64) | 0);
  }

  /** Every net of `family` that has routes, in no particular order: IPv4 as (address word, length), IPv6 by key. */
  forEachNet(family: 4 | 6, v4: (word: number, len: number) => void, v6: (key: string) => void): void {
    if (family === 4) {
      for (let len = 0; len <= 32; len++) for (const w of this.v4[len]!.keys()) v4(w, len);
    } else for (const k of this.v6.keys()) v6(k);
  }

  /** Every net with its chain: IPv4 as (address word, length), IPv6 as (key, length). `fn` must not write. */
  forEachEntry(fn: (word: number | string, len: number, slot: Slot) => void): void {
    for (let len = 0; len <= 32; len++) for (const [w, slot] of this.v4[len]!) fn(w, len, slot);
    for (const [k, slot] of this.v6) fn(k, k.charCodeAt(8), slot);
  }

  /**
   * A sorted snapshot of the nets matching `filter`, with their chains as
   * they are now, plus `extra` keys: distinct nets that have no routes now
   * (for refeeds), which the walk hands out with no chain.
   */
  walk(filter: NetFilter | undefined, extra?: Iterable<NetKey>): NetWalk {
    const lists: V4List[] = [];
    this.v4.forEach((m, len) => {
      if (m.size === 0) return;
      const words: number[] = [];
      const slots: Slot[] = [];
      if (filter === undefined || filter.family === 4) {
        m.forEach((slot, w) => {
          words.push(w);
          slots.push(slot);
        });
      } else if (filter.family === 6) {
        return;
      } else {
        this.collectV4(filter, len, m, words, slots);
      }
      if (words.length <= LIST_MAX) lists.push(v4List(len, words, slots));
      else for (let i = 0; i < words.length; i += LIST_MAX) lists.push(v4List(len, words.slice(i, i + LIST_MAX), slots.slice(i, i + LIST_MAX)));
    });
    let v6 = filter?.family === 4 ? [] : [...this.v6].filter(([k]) => filter === undefined || filter.family === 6 || filter.matches(k));
    if (extra !== undefined) {
      const extraV4 = new Map<number, number[]>();
      for (const k of extra) {
        if (typeof k === 'string') v6.push([k, undefined as unknown as Slot]);
        else {
          const len = k & 63;
          const words = extraV4.get(len) ?? [];
          words.push(((k - len) / 64) | 0);
          extraV4.set(len, words);
        }
      }
      for (const [len, words] of extraV4) lists.push(v4List(len, words, new Array<Slot>(words.length)));
    }
    v6.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return new NetWalk(lists, v6);
  }

  /** The nets of length `len` under the filter's ranges (or passing its predicate). */
  private collectV4(filter: NetFilter, len: number, m: Map<number, Slot>, words: number[], slots: Slot[]): void {
    if (filter.ranges === undefined) {
      for (const [w, slot] of m) {
        if (filter.matches((w >>> 0) * 64 + len)) {
          words.push(w);
          slots.push(slot);
        }
      }
      return;
    }
    const seen = new Set<number>(); // ranges may overlap
    const add = (w: number, slot: Slot): void => {
      if (seen.has(w)) return;
      seen.add(w);
      words.push(w);
      slots.push(slot);
    };
    for (const r of filter.ranges) {
      if (r.prefix.family !== 4 || len < r.min || len > r.max) continue;
      const base = r.prefix.w0;
      const candidates = 2 ** (len - r.prefix.len);
      if (candidates <= m.size) {
        // Few possible nets under the range at this length: look each up (show routes 10.1.2.0/24).
        const step = len === 0 ? 0 : 2 ** (32 - len);
        for (let j = 0; j < candidates; j++) {
          const w = ((base >>> 0) + j * step) | 0;
          const slot = m.get(w);
          if (slot !== undefined) add(w, slot);
        }
      } else {
        const mask = r.prefix.len === 0 ? 0 : (-1 << (32 - r.prefix.len)) | 0;
        for (const [w, slot] of m) if ((w & mask) === base) add(w, slot);
      }
    }
  }
}

/**
 * Entries per sorted list: a list sorts address and list index packed in one
 * double (32 + 21 bits, exact below 2^53), natively, without a comparator.
 */
const LIST_MAX = 2 ** 21;

/** IPv4 nets of one length, sorted by address, each with its chain at snapshot time. */
interface V4List {
  readonly len: number;
  /** (address >>> 0) * LIST_MAX + index into slots, ascending. */
  readonly packed: Float64Array;
  readonly slots: readonly (Slot | undefined)[];
  next: number;
}

function v4List(len: number, words: readonly number[], slots: readonly (Slot | undefined)[]): V4List {
  const packed = new Float64Array(words.length);
  for (let i = 0; i < words.length; i++) packed[i] = (words[i]! >>> 0) * LIST_MAX + i;
  packed.sort();
  return { len, packed, slots, next: 0 };
}

/**
 * A sorted snapshot of nets with their chains, and a cursor over it (IPv4
 * first, then address, then length: comparePrefix order). The IPv4 lists,
 * one or more per length, are merged as the cursor moves.
 *
 * The chains are those of the moment the snapshot was taken (chains are
 * copy-on-write, so this is a consistent picture). An export request may use
 * them as they are: a net changed since then has a journal item, which the
 * request reads before it walks further, and which brings that net forward.
 */
export class NetWalk {
  /** The net last handed out by advance(). */
  word = 0;
  len = -1;
  v6key: string | undefined = undefined;
  slot: Slot | undefined = undefined;
  private lastAddr = -1; // unsigned; -1: nothing handed out yet
  private v6next = 0;
  private readonly total: number;
  private handed = 0;

  constructor(
    private readonly lists: V4List[],
    private readonly v6: readonly (readonly [string, Slot | undefined])[],
  ) {
    this.total = v6.length + lists.reduce((n, l) => n + l.packed.length, 0);
  }

  get size(): number {
    return this.total;
  }

  get done(): boolean {
    return this.handed >= this.total;
  }

  /** Moves to the next net (word/len or v6key, and slot); false when done. */
  advance(): boolean {
    if (this.handed >= this.total) return false;
    this.handed++;
    let best: V4List | undefined;
    let bestAddr = 0;
    for (const l of this.lists) {
      if (l.next >= l.packed.length) continue;
      const addr = Math.floor(l.packed[l.next]! / LIST_MAX);
      if (best === undefined || addr < bestAddr || (addr === bestAddr && l.len < best.len)) {
        best = l;
        bestAddr = addr;
      }
    }
    if (best !== undefined) {
      const packed = best.packed[best.next++]!;
      this.word = bestAddr | 0;
      this.len = best.len;
      this.slot = best.slots[packed - bestAddr * LIST_MAX];
      this.lastAddr = bestAddr;
      return true;
    }
    const [key, slot] = this.v6[this.v6next++]!;
    this.v6key = key;
    this.slot = slot;
    return true;
  }

  /** The key of the net last handed out. */
  get key(): NetKey {
    return this.v6key ?? (this.word >>> 0) * 64 + this.len;
  }

  /** The keys not handed out yet (the cursor does not move). */
  *rest(): IterableIterator<NetKey> {
    for (const l of this.lists) {
      for (let i = l.next; i < l.packed.length; i++) yield Math.floor(l.packed[i]! / LIST_MAX) * 64 + l.len;
    }
    for (let i = this.v6next; i < this.v6.length; i++) yield this.v6[i]![0];
  }

  /**
   * True when `key` sorts at or before the net last handed out: the walk has
   * handed it out, or it was not in the snapshot and lies behind the cursor
   * (either answer is right for such a net: the reader never had it).
   */
  passed(key: NetKey): boolean {
    if (typeof key === 'string') return this.v6key !== undefined && key <= this.v6key;
    if (this.v6key !== undefined) return true;
    if (this.lastAddr < 0) return false;
    const len = key & 63;
    const addr = (key - len) / 64;
    return addr < this.lastAddr || (addr === this.lastAddr && len <= this.len);
  }
}
