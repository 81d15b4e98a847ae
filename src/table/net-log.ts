/**
 * NetLog: the nets an indexed source has routes for, kept as cheaply as an
 * index can be: an append-only log of packed IPv4 keys (`(word >>> 0) * 64 +
 * len`, 8 bytes in a Float64Array) and IPv6 keys, written when the source
 * gains a net and never on a withdrawal. A Set per source cost 26 bytes a
 * net and doubled the time of an announce (docs/benchmarks.md).
 *
 * The log may hold nets the source no longer has, and a net more than once;
 * readers pass `live` (does the source still have a route there?) and get
 * each live net once. The log is compacted (sorted, deduplicated, dead nets
 * dropped) before it is read and whenever it grows past twice the source's
 * route count, so it stays within a small factor of what the source has.
 */
export type LiveNet = (word: number | string, len: number) => boolean;

export class NetLog {
  private v4 = new Float64Array(16);
  private n4 = 0;
  private v6: string[] = [];

  add(word: number | string, len: number): void {
    if (typeof word === 'string') {
      this.v6.push(word);
      return;
    }
    if (this.n4 === this.v4.length) {
      const grown = new Float64Array(this.v4.length * 2);
      grown.set(this.v4);
      this.v4 = grown;
    }
    this.v4[this.n4++] = (word >>> 0) * 64 + len;
  }

  /** Entries logged, duplicates and dead ones included. */
  get size(): number {
    return this.n4 + this.v6.length;
  }

  /** Every live net once (IPv4 as word and length, IPv6 by key with its length). Compacts first. */
  forEach(live: LiveNet, fn: (word: number | string, len: number) => void): void {
    this.compact(live);
    for (let i = 0; i < this.n4; i++) {
      const k = this.v4[i]!;
      const len = k % 64;
      fn(((k - len) / 64) | 0, len);
    }
    for (const k of this.v6) fn(k, k.charCodeAt(8));
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
    this.v6 = [...new Set(this.v6)].filter((k) => live(k, k.charCodeAt(8)));
  }
}
