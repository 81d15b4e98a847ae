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
 *
 * IPv4 entries grow by doubling up to a block (64 Ki entries), then a block
 * at a time, never copied; a compaction puts them back into one array. A
 * log of a million nets (one gateway's in a first sync) grown by doubling
 * made 16 MB of ArrayBuffers for 8 MB of entries, the copies left behind
 * long-lived garbage that V8 counts against its old generation's limit
 * until a full collection frees it (docs/benchmarks.md, Round 17a).
 */
import { grownTo } from '../lib/net-list';
import { netOrder } from '../lib/net-sort';

export type LiveNet = (word: number | string, len: number) => boolean;

/** IPv4 entries in a block (512 KiB). */
const BLOCK = 65536;

export class NetLog {
  /** IPv4 packed keys: every block full but the last, which holds `last4`. */
  private v4: Float64Array[] = [new Float64Array(16)];
  private last4 = 0;
  private n4 = 0;
  private w6 = new Int32Array(0);
  private l6 = new Uint8Array(0);
  private n6 = 0;
  /** Since the last compaction, every net was logged after a smaller one (IPv4 only): the log is sorted, each net once. */
  private inOrder = true;
  /** The IPv4 key logged last. */
  private lastKey = 0;

  /** The log is sorted with no net twice (it may still name nets no longer live): compacting would only drop dead ones. */
  get ordered(): boolean {
    return this.inOrder;
  }

  constructor(
    /** IPv4 entries a block holds (tests use small ones). */
    private readonly block = BLOCK,
  ) {}

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
    let b = this.v4[this.v4.length - 1]!;
    if (this.last4 === b.length) {
      if (this.v4.length === 1 && b.length < this.block) {
        const grown = new Float64Array(Math.min(this.block, b.length * 2));
        grown.set(b);
        this.v4[0] = b = grown;
      } else {
        this.v4.push((b = new Float64Array(this.block)));
        this.last4 = 0;
      }
    }
    const k = (word >>> 0) * 64 + len;
    if (this.n4 > 0 && k <= this.lastKey) this.inOrder = false;
    b[this.last4++] = k;
    this.lastKey = k;
    this.n4++;
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
    const blocks = this.v4;
    for (let j = 0; j < blocks.length; j++) {
      const b = blocks[j]!;
      const n = j === blocks.length - 1 ? this.last4 : b.length;
      for (let i = 0; i < n; i++) {
        const k = b[i]!;
        const len = k % 64;
        fn(((k - len) / 64) | 0, len);
      }
    }
    for (let i = 0; i < this.n6; i++) fn(this.key6(i), this.l6[i]!);
  }

  /** Sorts, deduplicates and drops dead nets (the owner calls it when the log is past twice its routes). */
  compact(live: LiveNet): void {
    let all = this.v4[0]!;
    if (this.v4.length > 1) {
      all = new Float64Array(this.n4);
      let at = 0;
      for (let j = 0; j < this.v4.length; j++) {
        const b = this.v4[j]!;
        const n = j === this.v4.length - 1 ? this.last4 : b.length;
        all.set(n === b.length ? b : b.subarray(0, n), at);
        at += n;
      }
    }
    const keys = all.subarray(0, this.n4).sort();
    let m = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (i > 0 && k === keys[i - 1]) continue;
      const len = k % 64;
      if (live(((k - len) / 64) | 0, len)) keys[m++] = k;
    }
    if (all.length > 64 && m < all.length / 4) all = all.slice(0, Math.max(16, m * 2));
    this.v4 = [all];
    this.n4 = this.last4 = m;
    this.lastKey = m > 0 ? all[m - 1]! : 0;
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
