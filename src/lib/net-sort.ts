/**
 * Sorting a million nets held in typed arrays, without a comparator or an
 * object per net: a stable LSD radix sort that moves each key with its
 * index (every pass reads both arrays in order). It yields the permutation
 * of 0..n-1 that orders the nets by address (each word unsigned, the first
 * most significant), then by length, ties kept in their order; with
 * `spread`, IPv4 words are compared by their reversed bits instead (the
 * order the kernel's trie takes fastest: src/netlink/order.ts).
 */

/** The 32 bits of `x` in reverse order, as an unsigned number. */
export function reverseBits32(x: number): number {
  x = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  x = ((x >>> 2) & 0x33333333) | ((x & 0x33333333) << 2);
  x = ((x >>> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
  x = ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
  return ((x >>> 16) | (x << 16)) >>> 0;
}

/**
 * One stable counting pass of an LSD radix sort: items 0..n-1 (key and a value moved with it) into
 * `key2`/`val2`, ordered by `bits` bits of the key from `shift` on. `count` has room for 2^bits
 * (only those are used).
 */
function radixPass(key: Uint32Array, val: Uint32Array, key2: Uint32Array, val2: Uint32Array, count: Uint32Array, n: number, shift: number, bits: number): void {
  const mask = (1 << bits) - 1;
  count.fill(0, 0, mask + 1);
  for (let j = 0; j < n; j++) count[(key[j]! >>> shift) & mask]!++;
  let sum = 0;
  for (let d = 0; d <= mask; d++) {
    const c = count[d]!;
    count[d] = sum;
    sum += c;
  }
  for (let j = 0; j < n; j++) {
    const k = key[j]!;
    const at = count[(k >>> shift) & mask]!++;
    key2[at] = k;
    val2[at] = val[j]!;
  }
}

/** The permutation that sorts net i = (words[i * stride ...], lens[i]) for i < n (see the module's header). */
export function netOrder(words: Int32Array, stride: 1 | 4, lens: Uint8Array, n: number, spread = false): Uint32Array {
  let idx = new Uint32Array(n);
  let key = new Uint32Array(n);
  let idx2 = new Uint32Array(n);
  let key2 = new Uint32Array(n);
  const count = new Uint32Array(2048);
  const pass = (shift: number, bits: number): void => {
    radixPass(key, idx, key2, idx2, count, n, shift, bits);
    [idx, idx2] = [idx2, idx];
    [key, key2] = [key2, key];
  };
  let sameLen = true;
  for (let i = 0; i < n; i++) {
    idx[i] = i;
    key[i] = lens[i]!;
    if (lens[i] !== lens[0]) sameLen = false;
  }
  if (!sameLen) pass(0, 8);
  for (let w = stride - 1; w >= 0; w--) {
    // The key of each item in its current place, from the word the next passes sort by.
    for (let j = 0; j < n; j++) {
      const x = words[idx[j]! * stride + w]!;
      key[j] = spread ? reverseBits32(x) : x >>> 0;
    }
    pass(0, 11);
    pass(11, 11);
    pass(22, 10);
  }
  return idx;
}

/**
 * IPv4 words and a payload each, put in trie-spread order together (src/netlink/order.ts): the
 * words' reversed bits ascending, ties in their order, each payload moved with its word. `words` is
 * taken over (its memory holds the reversed words); returns the reversed words (reverseBits32
 * undoes it) and the payloads, in order (8 bytes a net more while it sorts). With `head` below n,
 * the nets after the first `head` of that order are then put in address order (ties still in their
 * order): what a nexthop object's delete walks fastest (routes-file.ts). SpreadSort all at once.
 */
export function spreadSortWith(words: Int32Array, payload: Uint32Array, n: number, head = n): { keys: Uint32Array; payload: Uint32Array } {
  const sort = new SpreadSort(words, payload, n, head);
  sort.ensure(n);
  return sort;
}

/**
 * spreadSortWith's order, made final a part at a time from the front, so that a caller reading it
 * in order (a start announcing a routes file) has its first nets after one pass over the keys, not
 * three: a stable radix sort whose first pass is on the keys' most significant varying bits (up to
 * 2^11 buckets, each in the nets' order), and each bucket is then sorted on its other bits (LSD,
 * digits sized to the bucket, or an insertion sort if small) when `ensure` reaches it. Where a
 * permutation sorted as packed doubles (spreadOrder) took five times as long at a million nets, and
 * reading the nets' columns through it was a cache miss per column. With `head` below n, reaching
 * past `head` sorts all the rest (from `head` on) in address order, ties in their order; if the
 * nets were given in address order, that is one pass over them instead, and only the buckets the
 * head reaches into are filled (a 1M-line file: 41 ms, not 91).
 * `keys` and `payload` hold the order (keys reversed), final below `ready`.
 */
export class SpreadSort {
  /** The order (keys reversed), final below `ready`; read them anew after each `ensure` (tailInOrder moves them). */
  keys: Uint32Array;
  payload: Uint32Array;
  /** Positions below it are final. */
  ready = 0;
  private readonly scratchKeys: Uint32Array;
  private readonly scratchPay: Uint32Array;
  /** Where each bucket starts (and n at the end), and the next bucket to sort. */
  private readonly starts: Uint32Array;
  private bucket = 0;
  /** The bits below the first pass's digit, left for each bucket's sort. */
  private readonly lowBits: number;
  private readonly count = new Uint32Array(2048);
  /**
   * The nets were given in address order (a routes file written sorted, as most are): the tail is
   * then taken in one pass over them as given (tailInOrder) instead of sorted, so the caller's
   * arrays (the reversed words and the payloads, in the order given) are not used as scratch: the
   * head's buckets are sorted through `bucketKeys`/`bucketPay`, as large as the largest of them.
   */
  private readonly inOrder: boolean;
  private bucketKeys = new Uint32Array(0);
  private bucketPay = new Uint32Array(0);

  constructor(
    words: Int32Array,
    payload: Uint32Array,
    private readonly n: number,
    private readonly head = n,
  ) {
    const key = new Uint32Array(words.buffer, words.byteOffset, n);
    this.inOrder = head < n && inAddressOrder(key, n);
    let diff = 0;
    for (let i = 0; i < n; i++) {
      const k = reverseBits32(key[i]!);
      key[i] = k;
      diff |= k ^ key[0]!;
    }
    const top = 32 - Math.clz32(diff); // the varying bits are below it
    const bits = Math.min(11, top);
    this.lowBits = top - bits;
    const mask = (1 << bits) - 1;
    const shift = this.lowBits;
    const count = new Uint32Array((1 << bits) + 1);
    for (let j = 0; j < n; j++) count[((key[j]! >>> shift) & mask) + 1]!++;
    for (let d = 1; d <= 1 << bits; d++) count[d]! += count[d - 1]!;
    this.starts = count.slice();
    // Given in address order, only the buckets the head reaches into are needed: the tail is taken
    // from the nets as given (tailInOrder). The last of them is the one position head - 1 is in.
    let upTo = mask;
    if (this.inOrder) for (upTo = -1; upTo < mask && count[upTo + 1]! < head; ) upTo++;
    this.keys = new Uint32Array(count[upTo + 1]!);
    this.payload = new Uint32Array(count[upTo + 1]!);
    for (let j = 0; j < n; j++) {
      const k = key[j]!;
      const d = (k >>> shift) & mask;
      if (d > upTo) continue;
      const at = count[d]!++;
      this.keys[at] = k;
      this.payload[at] = payload[j]!;
    }
    this.scratchKeys = key;
    this.scratchPay = payload.subarray(0, n);
  }

  /** Makes the order final at least below `end` (at most n); returns how far it is final. */
  ensure(end: number): number {
    const { n, head, starts } = this;
    while (this.ready < Math.min(end, n)) {
      if (this.ready >= head) {
        this.sortTail();
        break;
      }
      const from = starts[this.bucket]!;
      const to = starts[++this.bucket]!;
      this.sortBucket(from, to);
      this.ready = Math.min(to, head); // from `head` on, the order changes yet (sortTail)
    }
    return this.ready;
  }

  /** Bucket [from, to) on its low bits, stably, into place. */
  private sortBucket(from: number, to: number): void {
    const m = to - from;
    const keys = this.keys;
    const pay = this.payload;
    if (m < 2 || this.lowBits === 0) return;
    if (m <= INSERTION_MAX) {
      for (let i = from + 1; i < to; i++) {
        const k = keys[i]!;
        const p = pay[i]!;
        let j = i - 1;
        for (; j >= from && keys[j]! > k; j--) {
          keys[j + 1] = keys[j]!;
          pay[j + 1] = pay[j]!;
        }
        keys[j + 1] = k;
        pay[j + 1] = p;
      }
      return;
    }
    // Digits about as wide as the bucket's size in bits: a count array no larger than the bucket.
    const passes = Math.ceil(this.lowBits / Math.min(11, Math.max(4, 32 - Math.clz32(m))));
    const bits = Math.ceil(this.lowBits / passes);
    let k1 = keys.subarray(from, to);
    let p1 = pay.subarray(from, to);
    if (this.inOrder && this.bucketKeys.length < m) {
      this.bucketKeys = new Uint32Array(m);
      this.bucketPay = new Uint32Array(m);
    }
    let k2 = this.inOrder ? this.bucketKeys.subarray(0, m) : this.scratchKeys.subarray(from, to);
    let p2 = this.inOrder ? this.bucketPay.subarray(0, m) : this.scratchPay.subarray(from, to);
    for (let shift = 0; shift < this.lowBits; shift += bits) {
      radixPass(k1, p1, k2, p2, this.count, m, shift, Math.min(bits, this.lowBits - shift));
      [k1, k2] = [k2, k1];
      [p1, p2] = [p2, p1];
    }
    if (k1.buffer !== keys.buffer) {
      keys.set(k1, from);
      pay.set(p1, from);
    }
  }

  /** The rest, from `head` on (the buckets not sorted yet, and the end of the one `head` is in), in address order. */
  private sortTail(): void {
    const { head, n, keys } = this;
    if (this.inOrder) return this.tailInOrder();
    const tk = keys.subarray(head);
    for (let i = 0; i < tk.length; i++) tk[i] = reverseBits32(tk[i]!);
    const tail = sort32With(tk, this.payload.subarray(head), this.scratchKeys.subarray(head), this.scratchPay.subarray(head), this.count);
    // An odd number of passes leaves the tail in the scratch arrays: back beside the head (in place otherwise).
    const sk = tail.keys;
    for (let i = 0; i < sk.length; i++) keys[head + i] = reverseBits32(sk[i]!);
    this.payload.set(tail.payload, head);
    this.ready = n;
  }

  /**
   * sortTail for nets given in address order: the tail is every net not in the head, in the order
   * given. The head is the first `head` nets by reversed word, ties in their order: the nets whose
   * reversed word is below the head's last (K), and the first `c` of those equal to it, where `c`
   * is how many the head ends with.
   */
  private tailInOrder(): void {
    const { head, n, keys, payload } = this;
    const given = this.scratchKeys; // the reversed words, in the order given
    const givenPay = this.scratchPay;
    const last = head > 0 ? keys[head - 1]! : 0;
    let headTies = 0;
    for (let i = head - 1; i >= 0 && keys[i] === last; i--) headTies++;
    // Given in address order, the ties of K lie side by side: the head has the first `headTies`.
    let tailTies = 0;
    if (headTies > 0) for (let i = 0; i < n; i++) if (given[i] === last) tailTies++;
    tailTies -= headTies;
    // The tail moved up in place to [head, n), from the end (a net is written at or after where it
    // was read), then the head put before it: memory the sort has touched already, where a fresh
    // array of n would fault its pages in on the JS thread in the middle of the fill.
    let w = n;
    for (let i = n - 1; w > head; i--) {
      const k = given[i]!;
      if (head > 0 && (k < last || (k === last && tailTies-- <= 0))) continue; // in the head
      w--;
      given[w] = k;
      givenPay[w] = givenPay[i]!;
    }
    given.set(keys.subarray(0, head));
    givenPay.set(payload.subarray(0, head));
    this.keys = given;
    this.payload = givenPay;
    this.ready = n;
  }
}

/** Whether the first n words are in address order (unsigned, ties allowed). */
function inAddressOrder(words: Uint32Array, n: number): boolean {
  for (let i = 1; i < n; i++) if (words[i]! < words[i - 1]!) return false;
  return true;
}

/** Buckets up to this size are sorted by insertion (a radix pass costs its count array). */
const INSERTION_MAX = 32;

/**
 * A stable LSD radix sort of 32-bit keys with a value each (three passes of radixPass), between
 * (key, val) and (key2, val2), all of the same length; returns the pair holding the result.
 */
function sort32With(key: Uint32Array, val: Uint32Array, key2: Uint32Array, val2: Uint32Array, count: Uint32Array): { keys: Uint32Array; payload: Uint32Array } {
  const n = key.length;
  for (const [shift, bits] of [
    [0, 11],
    [11, 11],
    [22, 10],
  ] as const) {
    radixPass(key, val, key2, val2, count, n, shift, bits);
    [key, key2] = [key2, key];
    [val, val2] = [val2, val];
  }
  return { keys: key, payload: val };
}

/** Largest set sorted by packing key and index into one double: a 32-bit key and a 21-bit index fit its 53 bits. */
const PACKED_MAX = 1 << 21;

/**
 * The IPv4 trie-spread order (src/netlink/order.ts) of n nets: the permutation sorting them by
 * reversed bits, ties in their order. Net i is words[i], or words[at[i]] when `at` is given (ids
 * into a store's columns, read in place). Up to 2^21 nets as packed doubles sorted natively in
 * place (8 bytes a net); more by the radix sort, which needs 16 and its own copy of the words.
 */
export function spreadOrder(words: Int32Array, lens: Uint8Array, n: number, at?: Int32Array): Uint32Array {
  const out = new Uint32Array(n);
  let k = 0;
  forEachInSpreadOrder(words, lens, n, at, (i) => (out[k++] = i));
  return out;
}

/** spreadOrder's permutation handed out one index at a time, without the array of it. */
export function forEachInSpreadOrder(words: Int32Array, lens: Uint8Array, n: number, at: Int32Array | undefined, fn: (i: number) => void): void {
  if (n > PACKED_MAX) {
    let order: Uint32Array;
    if (at === undefined) order = netOrder(words, 1, lens, n, true);
    else {
      const w = new Int32Array(n);
      const l = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        w[i] = words[at[i]!]!;
        l[i] = lens[at[i]!]!;
      }
      order = netOrder(w, 1, l, n, true);
    }
    for (let i = 0; i < n; i++) fn(order[i]!);
    return;
  }
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = reverseBits32(words[at === undefined ? i : at[i]!]!) * PACKED_MAX + i;
  packed.sort();
  for (let i = 0; i < n; i++) fn(packed[i]! % PACKED_MAX);
}

/**
 * spreadOrder's permutation as a lookup by position, for a caller that reads it bit by bit (a
 * shutdown sends it in batches): up to 2^21 nets only the sorted packed keys are kept (8 bytes a
 * net, where the keys and an order array were 12).
 */
export function spreadOrderLookup(words: Int32Array, lens: Uint8Array, n: number): (k: number) => number {
  if (n > PACKED_MAX) {
    const order = netOrder(words, 1, lens, n, true);
    return (k) => order[k]!;
  }
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = reverseBits32(words[i]!) * PACKED_MAX + i;
  packed.sort();
  return (k) => packed[k]! % PACKED_MAX;
}

/** Out-of-order ids SpreadIds.sort() moves into place one by one (a move is up to a memmove of the whole) before it sorts instead. */
const MAX_STRAYS = 16;

/**
 * Ids of IPv4 nets (below 2^21) gathered with their words and handed out in the words' trie-spread
 * order (or, with `spread` false, in address order): one packed double an id (reversed word and
 * id), sorted natively in place, and nothing else: a store's nets are read where they are. For the
 * first sync's work and the shutdown's deletes of a million routes (an id list, a key list and an
 * order of them were 16 bytes an id).
 */
export class SpreadIds {
  private packed: Float64Array;
  n = 0;

  constructor(
    capacity: number,
    private readonly spread = true,
  ) {
    this.packed = new Float64Array(capacity);
  }

  /** Whether ids below `end` fit. */
  static fits(end: number): boolean {
    return end <= PACKED_MAX;
  }

  push(word: number, id: number): void {
    this.packed[this.n++] = (this.spread ? reverseBits32(word) : word >>> 0) * PACKED_MAX + id;
  }

  /** Sorts what was pushed; at() then reads the order. */
  sort(): void {
    this.packed = this.packed.subarray(0, this.n);
    // Ids pushed in the order asked for already, or but for a few (a link's lost routes in address order,
    // their ids handed out in that order by an ordered feed: at a million, one id out of place), cost one
    // pass and a move of each stray into place, not the native sort's n log n (50 ms at a million).
    const p = this.packed;
    let strays = 0;
    for (let k = 1; k < p.length; k++) {
      const v = p[k]!;
      if (v >= p[k - 1]!) continue;
      if (++strays > MAX_STRAYS) {
        p.sort();
        return;
      }
      // p[0..k) is sorted: v goes before the first larger one there.
      let lo = 0;
      let hi = k - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (p[mid]! > v) hi = mid;
        else lo = mid + 1;
      }
      p.copyWithin(lo + 1, lo, k);
      p[lo] = v;
    }
  }

  /** The id at position k of the order. */
  at(k: number): number {
    return this.packed[k]! % PACKED_MAX;
  }
}

/**
 * netOrder for every IPv4 net of a store, by id: ids below `end` whose length is not `skip`, in
 * address-then-length order. Up to 2^21 ids, as packed doubles (word and id) sorted natively in
 * place, with each run of one word then put in length order: 8 bytes an id while it sorts, where
 * the radix sort's four arrays were 16.
 */
export function v4Order(words: Int32Array, lens: Uint8Array, end: number, skip: number): Uint32Array {
  if (end > PACKED_MAX) {
    const order = netOrder(words, 1, lens, end);
    let n = 0;
    for (let j = 0; j < end; j++) if (lens[order[j]!] !== skip) order[n++] = order[j]!;
    return order.subarray(0, n);
  }
  let n = 0;
  for (let id = 0; id < end; id++) if (lens[id] !== skip) n++;
  const packed = new Float64Array(n);
  let k = 0;
  for (let id = 0; id < end; id++) if (lens[id] !== skip) packed[k++] = (words[id]! >>> 0) * PACKED_MAX + id;
  packed.sort();
  const out = new Uint32Array(n);
  for (let j = 0; j < n; j++) out[j] = packed[j]! % PACKED_MAX;
  // Equal words sort by id: put each such run in length order (runs are a few nets).
  for (let j = 1; j < n; j++) {
    const id = out[j]!;
    const w = words[id]!;
    let i = j;
    while (i > 0 && words[out[i - 1]!] === w && lens[out[i - 1]!]! > lens[id]!) {
      out[i] = out[i - 1]!;
      i--;
    }
    out[i] = id;
  }
  return out;
}
