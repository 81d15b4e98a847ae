/**
 * The order to send bulk IPv4 route changes in.
 *
 * The kernel's IPv4 FIB is an LC-trie that resizes its nodes as they fill
 * and empty. Adding or deleting a million prefixes in address order makes
 * it grow and shrink the same few nodes over and over; the same work in
 * bit-reversed address order spreads the changes over the whole trie, and
 * the kernel does it in about half the time (the same messages, only their
 * order differs; docs/netlink.md has the figures). Sorting within small batches does not
 * help: the order must span the whole set, so this is for work known in full
 * up front (the first sync after a start, the withdrawal at shutdown).
 *
 * The pipeline itself keeps its callers' order; callers that hold a whole
 * set apply this first. IPv6 changes keep their order (placed after IPv4):
 * the IPv6 FIB is a different tree and showed no such effect worth the sort.
 */
import { SpreadIds, forEachInSpreadOrder, netOrder, reverseBits32, spreadOrder, spreadOrderLookup } from '../lib/net-sort';

export { reverseBits32 };

/** Largest set sorted with the packed-key fast path: reversed word (32 bits) × index (21 bits) fits a double exactly. */
const PACKED_MAX = 1 << 21;

/**
 * `items` reordered for the kernel: those with an IPv4 address word (from
 * `wordOf`) sorted by the word's reversed bits (ties keep their order), then
 * the others (wordOf returns undefined) in their original order.
 */
export function trieSpreadOrder<T>(items: readonly T[], wordOf: (item: T) => number | undefined): T[] {
  const rest: T[] = [];
  const out: T[] = new Array<T>(items.length);
  let n = 0;
  if (items.length <= PACKED_MAX) {
    // One pass into packed keys (reversed word × PACKED_MAX + index: ties keep their order), then
    // one native numeric sort: no comparator call per comparison, no intermediate arrays.
    const packed = new Float64Array(items.length);
    let m = 0;
    for (let i = 0; i < items.length; i++) {
      const w = wordOf(items[i]!);
      if (w === undefined) rest.push(items[i]!);
      else packed[m++] = reverseBits32(w) * PACKED_MAX + i;
    }
    const sorted = packed.subarray(0, m).sort();
    for (let j = 0; j < m; j++) out[n++] = items[sorted[j]! % PACKED_MAX]!;
  } else {
    const v4: number[] = [];
    const keys: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const w = wordOf(items[i]!);
      if (w === undefined) rest.push(items[i]!);
      else {
        v4.push(i);
        keys.push(reverseBits32(w));
      }
    }
    const order = v4.map((_, j) => j);
    order.sort((a, b) => keys[a]! - keys[b]! || a - b);
    for (const j of order) out[n++] = items[v4[j]!]!;
  }
  for (const r of rest) out[n++] = r;
  return out;
}

/**
 * trieSpreadOrder for nets held in typed arrays: the permutation of 0..n-1
 * that sorts `words[i]` by reversed bits, then by `lens[i]`, ties in their
 * original order, so the same net (word and length) twice ends up adjacent
 * (a radix sort: src/lib/net-sort.ts).
 */
export function trieSpreadPermutation(words: Int32Array, lens: Uint8Array, n: number): Uint32Array {
  return netOrder(words, 1, lens, n, true);
}

/** trieSpreadPermutation where ties of one word may come in any length order; half the memory up to 2^21 nets. */
export { SpreadIds, forEachInSpreadOrder, spreadOrder, spreadOrderLookup };
