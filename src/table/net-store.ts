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
 * NetWalk is a sorted snapshot of net keys: the order feeds walk in (IPv4
 * first, then address, then length, as comparePrefix) and what lets an export
 * request tell whether it has already fed a net.
 */
import type { NetKey, Route } from '../route/route';
import type { NetFilter } from './prefilter';

export type Slot = Route | readonly Route[];

export function slotBest(slot: Slot | undefined): Route | undefined {
  return slot === undefined ? undefined : Array.isArray(slot) ? (slot as readonly Route[])[0] : (slot as Route);
}

export function slotRoutes(slot: Slot | undefined): readonly Route[] {
  return slot === undefined ? [] : Array.isArray(slot) ? (slot as readonly Route[]) : [slot as Route];
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

  delete(netWord: number | string, netLen: number): void {
    if (typeof netWord === 'number') this.v4[netLen]!.delete(netWord);
    else this.v6.delete(netWord);
  }

  getByKey(key: NetKey): Slot | undefined {
    if (typeof key === 'string') return this.v6.get(key);
    const len = key % 64;
    return this.v4[len]!.get(((key - len) / 64) | 0);
  }

  /** Every chain; safe against writes made by `fn` (Map iteration tolerates them). */
  forEachSlot(fn: (slot: Slot) => void): void {
    for (const m of this.v4) for (const slot of m.values()) fn(slot);
    for (const slot of this.v6.values()) fn(slot);
  }

  /** A sorted snapshot of the keys of nets matching `filter`, plus `extra` keys (deduplicated). */
  walk(filter: NetFilter | undefined, extra?: Iterable<NetKey>): NetWalk {
    let v4: number[] | Float64Array;
    let v6: string[] = [];
    if (filter === undefined) {
      const all = new Float64Array(this.size - this.v6.size);
      let i = 0;
      this.v4.forEach((m, len) => {
        for (const w of m.keys()) all[i++] = (w >>> 0) * 64 + len;
      });
      v4 = all;
      v6 = [...this.v6.keys()];
    } else {
      v4 = [];
      this.collectV4(filter, v4);
      for (const k of this.v6.keys()) if (filter.matches(k)) v6.push(k);
    }
    if (extra !== undefined) {
      const more: number[] = [];
      for (const k of extra) {
        if (typeof k === 'number') more.push(k);
        else v6.push(k);
      }
      if (more.length) v4 = Float64Array.from([...v4, ...more]);
    }
    const sorted4 = v4 instanceof Float64Array ? v4 : Float64Array.from(v4);
    sorted4.sort();
    v6.sort();
    return new NetWalk(dedupe4(sorted4), dedupe6(v6));
  }

  private collectV4(filter: NetFilter, out: number[]): void {
    if (filter.ranges === undefined) {
      this.v4.forEach((m, len) => {
        for (const w of m.keys()) {
          const key = (w >>> 0) * 64 + len;
          if (filter.matches(key)) out.push(key);
        }
      });
      return;
    }
    for (const r of filter.ranges) {
      if (r.prefix.family !== 4) continue;
      const base = r.prefix.w0;
      const baseMask = r.prefix.len === 0 ? 0 : (-1 << (32 - r.prefix.len)) | 0;
      for (let len = r.min; len <= r.max; len++) {
        const m = this.v4[len]!;
        if (m.size === 0) continue;
        const candidates = 2 ** (len - r.prefix.len);
        if (candidates <= m.size) {
          // Few possible nets under the range at this length: look each up (show routes 10.1.2.0/24).
          const step = len === 0 ? 0 : 2 ** (32 - len);
          for (let j = 0; j < candidates; j++) {
            const w = ((base >>> 0) + j * step) | 0;
            if (m.has(w)) out.push((w >>> 0) * 64 + len);
          }
        } else {
          for (const w of m.keys()) if ((w & baseMask) === base) out.push((w >>> 0) * 64 + len);
        }
      }
    }
  }
}

function dedupe4(a: Float64Array): Float64Array {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (i === 0 || a[i] !== a[n - 1]) a[n++] = a[i]!;
  return n === a.length ? a : a.subarray(0, n);
}

function dedupe6(a: string[]): string[] {
  return a.filter((k, i) => i === 0 || k !== a[i - 1]);
}

/** A sorted snapshot of net keys and a cursor over it. */
export class NetWalk {
  private i = 0;

  constructor(
    private readonly v4: Float64Array,
    private readonly v6: readonly string[],
  ) {}

  get total(): number {
    return this.v4.length + this.v6.length;
  }

  get done(): boolean {
    return this.i >= this.total;
  }

  /** The next key; only when !done. */
  next(): NetKey {
    const i = this.i++;
    return i < this.v4.length ? this.v4[i]! : this.v6[i - this.v4.length]!;
  }

  /** The keys not handed out yet (the cursor does not move). */
  *rest(): IterableIterator<NetKey> {
    for (let i = this.i; i < this.total; i++) yield i < this.v4.length ? this.v4[i]! : this.v6[i - this.v4.length]!;
  }

  /**
   * True when `key` sorts before the cursor: the walk has handed it out, or
   * it was not in the snapshot and lies behind the cursor.
   */
  passed(key: NetKey): boolean {
    if (this.done) return true;
    if (this.i < this.v4.length) return typeof key === 'number' && key < this.v4[this.i]!;
    return typeof key === 'number' || key < this.v6[this.i - this.v4.length]!;
  }
}
