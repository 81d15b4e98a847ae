/**
 * Prefilters: which nets a reader wants, decided on the net alone (never on
 * its routes, so the answer for a net cannot change while a reader runs).
 *
 * - prefix: the prefix and every prefix inside it;
 * - set: a PrefixSet (ranges like 10.0.0.0/8{16,24});
 * - family: every net of one address family (no work per net: the key's
 *   type says it);
 * - predicate: any test on the net (a Prefix is built per net tested).
 *
 * compilePrefilter() turns one into a NetFilter: a test on a NetKey plus,
 * for prefix and set filters, the ranges, which NetStore uses to look only
 * where matching nets can be instead of scanning the whole table.
 */
import { type Prefix, maskFor, prefixFromKey } from '../lib/addr';
import { PrefixSet, type PrefixRange, prefixRange, rangeMatches } from '../lib/prefix-set';
import type { NetKey } from '../route/route';

export type Prefilter =
  | { readonly kind: 'prefix'; readonly prefix: Prefix }
  | { readonly kind: 'set'; readonly set: PrefixSet | readonly (PrefixRange | string)[] }
  | { readonly kind: 'family'; readonly family: 4 | 6 }
  | { readonly kind: 'predicate'; readonly test: (net: Prefix) => boolean };

export interface NetFilter {
  matches(key: NetKey): boolean;
  /** matches() for a net given by its words and length (set with `ranges`): no key or Prefix made. */
  matchesWords?(family: 4 | 6, len: number, w0: number, w1: number, w2: number, w3: number): boolean;
  /** Where matching nets can be; undefined means anywhere (a predicate, a family). */
  readonly ranges: readonly PrefixRange[] | undefined;
  /** Set for a family filter: every net of it matches, none of the other (walks skip the other whole). */
  readonly family?: 4 | 6;
}

export function compilePrefilter(pf: Prefilter | undefined): NetFilter | undefined {
  if (pf === undefined) return undefined;
  switch (pf.kind) {
    case 'prefix':
      return rangesFilter([prefixRange(pf.prefix, pf.prefix.len, pf.prefix.maxLen)]);
    case 'set':
      return rangesFilter((pf.set instanceof PrefixSet ? pf.set : new PrefixSet(pf.set)).ranges);
    case 'family': {
      const v4 = pf.family === 4;
      return { ranges: undefined, family: pf.family, matches: (key) => (typeof key === 'number') === v4 };
    }
    case 'predicate': {
      const test = pf.test;
      return { ranges: undefined, matches: (key) => test(prefixFromKey(key)) };
    }
  }
}

function rangesFilter(ranges: readonly PrefixRange[]): NetFilter {
  return {
    ranges,
    matchesWords(family, len, w0, w1, w2, w3) {
      for (const r of ranges) {
        const p = r.prefix;
        if (p.family !== family || len < r.min || len > r.max) continue;
        if ((w0 & maskFor(p.len, 0)) === p.w0 && (w1 & maskFor(p.len, 1)) === p.w1 && (w2 & maskFor(p.len, 2)) === p.w2 && (w3 & maskFor(p.len, 3)) === p.w3) return true;
      }
      return false;
    },
    matches(key) {
      if (typeof key === 'number') {
        // IPv4 fast path on the numeric key, no Prefix built.
        const len = key % 64;
        const word = ((key - len) / 64) | 0;
        for (const r of ranges) {
          if (r.prefix.family !== 4 || len < r.min || len > r.max) continue;
          const mask = r.prefix.len === 0 ? 0 : (-1 << (32 - r.prefix.len)) | 0;
          if ((word & mask) === r.prefix.w0) return true;
        }
        return false;
      }
      const net = prefixFromKey(key);
      return ranges.some((r) => rangeMatches(r, net));
    },
  };
}
