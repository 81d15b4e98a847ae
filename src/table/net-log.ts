/**
 * NetLog: the nets an indexed source has routes for, kept as cheaply as an
 * index can be: an append-only log of packed IPv4 keys (`(word >>> 0) * 64 +
 * len`, 8 bytes in a Float64Array) and IPv6 nets as four words and a length
 * (17 bytes in typed arrays; their key strings were about 48 bytes a net in
 * V8's heap), written when the source gains a net and never on a
 * withdrawal. A Set per source cost 26 bytes a net and doubled the time of
 * an announce (docs/benchmarks.md).
 *
 * The log may hold nets the source no longer has, and a net more than once;
 * readers pass `live` (does the source still have a route there?) and get
 * each live net once. The log is compacted (sorted, deduplicated, dead nets
 * dropped) before it is read and whenever it grows past twice the source's
 * route count, so it stays within a small factor of what the source has.
 */
import { grownTo } from '../lib/net-list';
import { netOrder } from '../lib/net-sort';

export type LiveNet = (word: number | string, len: number) => boolean;

export class NetLog {
  private v4 = new Float64Array(16);
  private n4 = 0;
  private w6 = new Int32Array(0);
  private l6 = new Uint8Array(0);
  private n6 = 0;
  /** Since the last compaction, every net was logged after a smaller one (IPv4 only): the log is sorted, each net once. */
  private inOrder = true;

  /** The log is sorted with no net twice (it may still name nets no longer live): compacting would only drop dead ones. */
  get ordered(): boolean {
    return this.inOrder;
  }

  add(word: number | string, len: number): void {
    if (typeof word === 'string') {
      this.inOrder = false;
      if (this.n6 === this.l6.length) {
        const cap = Math.max(16, this.n6 * 2);
        this.w6 = grownTo(this.w6, cap * 4);
        this.l6 = grownTo(this.l6, cap);
      }
      const k = this.n6 * 4;
      for (let i = 0; i < 4; i++) this.w6[k + i] = (word.charCodeAt(2 * i) << 16) | word.charCodeAt(2 * i + 1);
      this.l6[this.n6++] = len;
      return;
    }
    if (this.n4 === this.v4.length) {
      const grown = new Float64Array(this.v4.length * 2);
      grown.set(this.v4);
      this.v4 = grown;
    }
    const k = (word >>> 0) * 64 + len;
    if (this.n4 > 0 && k <= this.v4[this.n4 - 1]!) this.inOrder = false;
    this.v4[this.n4++] = k;
  }

  /** Entries logged, duplicates and dead ones included. */
  get size(): number {
    return this.n4 + this.n6;
  }

  /** Every live net once (IPv4 as word and length, IPv6 by key with its length). Compacts first. */
  forEach(live: LiveNet, fn: (word: number | string, len: number) => void): void {
    this.compact(live);
    this.forEachLogged(fn);
  }

  /** Every net as logged, without compacting: for an owner that knows the log is compact and all live. */
  forEachLogged(fn: (word: number | string, len: number) => void): void {
    for (let i = 0; i < this.n4; i++) {
      const k = this.v4[i]!;
      const len = k % 64;
      fn(((k - len) / 64) | 0, len);
    }
    for (let i = 0; i < this.n6; i++) fn(this.key6(i), this.l6[i]!);
  }

  /** Sorts, deduplicates and drops dead nets (the owner calls it when the log is past twice its routes). */
  compact(live: LiveNet): void {
    const keys = this.v4.subarray(0, this.n4).sort();
    let m = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (i > 0 && k === keys[i - 1]) continue;
      const len = k % 64;
      if (live(((k - len) / 64) | 0, len)) keys[m++] = k;
    }
    this.n4 = m;
    if (this.v4.length > 64 && m < this.v4.length / 4) this.v4 = this.v4.slice(0, Math.max(16, m * 2));
    this.compact6(live);
    this.inOrder = this.n6 === 0;
  }

  /** IPv6: in address order by a radix sort, duplicates and dead nets dropped, in place. */
  private compact6(live: LiveNet): void {
    if (this.n6 === 0) return;
    const order = netOrder(this.w6, 4, this.l6, this.n6);
    const w = new Int32Array(this.n6 * 4);
    const l = new Uint8Array(this.n6);
    let m = 0;
    for (let j = 0; j < order.length; j++) {
      const i = order[j]!;
      const k = i * 4;
      if (m > 0) {
        const p = (m - 1) * 4;
        if (l[m - 1] === this.l6[i] && w[p] === this.w6[k] && w[p + 1] === this.w6[k + 1] && w[p + 2] === this.w6[k + 2] && w[p + 3] === this.w6[k + 3]) continue;
      }
      if (!live(this.key6(i), this.l6[i]!)) continue;
      w.set(this.w6.subarray(k, k + 4), m * 4);
      l[m++] = this.l6[i]!;
    }
    const cap = Math.max(16, m * 2);
    this.w6 = cap < this.n6 ? w.slice(0, cap * 4) : w;
    this.l6 = cap < this.n6 ? l.slice(0, cap) : l;
    this.n6 = m;
  }

  /** The table's key of logged IPv6 net i (prefixKey's string). */
  private key6(i: number): string {
    const w = this.w6;
    const k = i * 4;
    return String.fromCharCode(w[k]! >>> 16, w[k]! & 0xffff, w[k + 1]! >>> 16, w[k + 1]! & 0xffff, w[k + 2]! >>> 16, w[k + 2]! & 0xffff, w[k + 3]! >>> 16, w[k + 3]! & 0xffff, this.l6[i]!);
  }
}
