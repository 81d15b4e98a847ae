/**
 * The BGP conditions of a filter rule's match (filter.ts): on communities,
 * large communities, the AS path, and the neighbour a route came from. A
 * route without BGP attributes matches none of them.
 *
 *   community:        ["65001:100", "65001:*", "*:666"]    any listed community (a `*` half matches any)
 *   large_community:  ["65001:1:*"]                          likewise, three parts
 *   as_path:          "_65010$"  or a list (any matches)     a regular expression over the path as
 *                                                            `show routes` prints it ("65001 65002 {7 8}");
 *                                                            `_` matches a boundary, as in Cisco and FRR
 *   as_path_length:   3 or {min, max}
 *   neighbor:         prefix ranges the neighbour's address falls in
 *   neighbor_as:      ASNs of the neighbour
 *
 * Paths are interned, so each condition remembers its answer per path: a
 * million routes with a few paths run each regular expression a few times.
 */
import { Prefix, type Addr } from '../lib/addr';
import type { PrefixSet } from '../lib/prefix-set';
import type { BgpAttrs, BgpPath } from '../route';

export interface BgpMatch {
  community?: PathTest;
  largeCommunity?: PathTest;
  asPath?: PathTest;
  asPathLength?: { min: number; max: number };
  neighbor?: PrefixSet;
  neighborAs?: ReadonlySet<number>;
}

/** A test on a path, its answers remembered per (interned) path. */
export class PathTest {
  private readonly seen = new WeakMap<BgpPath, boolean>();

  constructor(private readonly test: (p: BgpPath) => boolean) {}

  matches(p: BgpPath): boolean {
    let v = this.seen.get(p);
    if (v === undefined) this.seen.set(p, (v = this.test(p)));
    return v;
  }
}

export function bgpMatches(m: BgpMatch, bgp: BgpAttrs | undefined): boolean {
  if (bgp === undefined) return false;
  const p = bgp.path;
  if (m.community && !m.community.matches(p)) return false;
  if (m.largeCommunity && !m.largeCommunity.matches(p)) return false;
  if (m.asPath && !m.asPath.matches(p)) return false;
  if (m.asPathLength && (p.pathLength < m.asPathLength.min || p.pathLength > m.asPathLength.max)) return false;
  if (m.neighbor && !m.neighbor.matches(hostPrefix(bgp.neighbor.address))) return false;
  if (m.neighborAs && (bgp.neighbor.as === undefined || !m.neighborAs.has(bgp.neighbor.as))) return false;
  return true;
}

export function hostPrefix(a: Addr): Prefix {
  return new Prefix(a.family, a.family === 4 ? 32 : 128, a.w0, a.w1, a.w2, a.w3);
}

/** `65001:*` and friends: each part a number (at most `max`) or `*`. Returns undefined when malformed. */
export function communityPattern(s: string, parts: 2 | 3): ((values: readonly number[]) => boolean) | undefined {
  const bits = s.split(':');
  if (bits.length !== parts) return undefined;
  const max = parts === 2 ? 0xffff : 0xffffffff;
  const want: (number | undefined)[] = [];
  for (const b of bits) {
    if (b === '*') want.push(undefined);
    else if (/^\d{1,10}$/.test(b) && Number(b) <= max) want.push(Number(b));
    else return undefined;
  }
  return (values) => want.every((w, i) => w === undefined || w === values[i]);
}

export function standardCommunityTest(patterns: readonly ((v: readonly number[]) => boolean)[]): PathTest {
  return new PathTest((p) => p.communities.some((c) => patterns.some((f) => f([c >>> 16, c & 0xffff]))));
}

export function largeCommunityTest(patterns: readonly ((v: readonly number[]) => boolean)[]): PathTest {
  return new PathTest((p) => p.largeCommunities.some((l) => patterns.some((f) => f(l))));
}

/** An AS path regular expression: `_` stands for a boundary (start, end, space, or a segment bracket). Throws SyntaxError. */
export function asPathTest(sources: readonly string[]): PathTest {
  const res = sources.map((s) => new RegExp(s.replace(/_/g, '(?:^|$|[ {}()\\[\\]])')));
  return new PathTest((p) => {
    const text = p.asPathText();
    return res.some((re) => re.test(text));
  });
}
