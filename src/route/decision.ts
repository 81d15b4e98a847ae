/**
 * The route decision process: the one place that orders a net's routes, best
 * first. The table calls chainWith/chainWithout on every write; show routes
 * calls explainChain; merge_paths calls mergeable.
 *
 * Order (docs/bgp.md compares it with BIRD's and FRR's):
 *  1. higher source preference;
 *  2. at equal preference, routes with BGP attributes before routes without;
 *  3. between two BGP routes, RFC 4271 9.1.2.2 and RFC 4456:
 *     higher local preference (missing: 100), shorter AS path, lower origin
 *     (igp < egp < incomplete; missing: incomplete), lower MED (missing: 0)
 *     between routes of the same neighbouring AS, eBGP over iBGP, lower
 *     router id (the ORIGINATOR_ID when there is one; unknown: last), shorter
 *     cluster list, lower neighbour address;
 *  4. then the source name and the source's creation order, so the order is
 *     total and never depends on timing.
 * Every step compares numbers; addresses compare as numbers (IPv4 first).
 *
 * With next-hop tracking (src/table/nexthop-tracker.ts) a table puts the
 * routes whose next hop can be used before those whose cannot, each part in
 * the order above (orderEligible): eligibility is the first key, and a net
 * whose routes are all ineligible has no best route.
 *
 * MED compared only within a neighbouring AS is not a total order: three
 * routes can beat each other in a circle, and a chain built by pairwise
 * insertion would then depend on arrival order. Like BIRD's `deterministic
 * med` and FRR's `bgp deterministic-med`, the routes are grouped by
 * neighbouring AS (all in one group for a source with alwaysCompareMed):
 * each group is ordered with MED, and the chain is the merge of the groups,
 * repeatedly taking the best of the groups' heads compared without MED.
 * Each position is thus the best of the routes behind it, so the route
 * after the best is the one that wins when the best goes (the backup), and
 * the result depends only on the set of routes.
 */
import { compareAddr } from '../lib/addr';
import { ORIGIN_RANK, type BgpAttrs } from './bgp';
import type { Route } from './route';

/** Why one route ranks before another: the step of the decision process that told them apart. */
export type DecisionStep =
  | 'preference'
  | 'BGP attributes'
  | 'local preference'
  | 'AS path length'
  | 'origin'
  | 'MED'
  | 'eBGP over iBGP'
  | 'router id'
  | 'cluster list length'
  | 'neighbor address'
  | 'source name'
  | 'source age'
  // Next-hop tracking: a route whose next hop can be used ranks before one whose cannot (not a step of STEPS).
  | 'next hop';

const STEPS: readonly DecisionStep[] = [
  'preference',
  'BGP attributes',
  'local preference',
  'AS path length',
  'origin',
  'MED',
  'eBGP over iBGP',
  'router id',
  'cluster list length',
  'neighbor address',
  'source name',
  'source age',
];
const STEP_MED = STEPS.indexOf('MED') + 1;

const DEFAULT_LOCAL_PREF = 100;
/** An unknown router id ranks after every known one (0x100000000 is above any u32). */
const UNKNOWN_ID = 0x100000000;

/**
 * Compares two BGP attribute sets: negative when `a` is better, positive
 * when `b` is, zero when equal; the magnitude is the 1-based index in STEPS
 * of the deciding step. `withMed`: whether the MED step applies.
 */
function bgpStep(a: BgpAttrs, b: BgpAttrs, withMed: boolean): number {
  if (a === b) return 0;
  const pa = a.path;
  const pb = b.path;
  let x: number;
  let y: number;
  x = pa.localPref ?? DEFAULT_LOCAL_PREF;
  y = pb.localPref ?? DEFAULT_LOCAL_PREF;
  if (x !== y) return x > y ? -3 : 3;
  if (pa.pathLength !== pb.pathLength) return pa.pathLength < pb.pathLength ? -4 : 4;
  x = ORIGIN_RANK[pa.origin ?? 'incomplete'];
  y = ORIGIN_RANK[pb.origin ?? 'incomplete'];
  if (x !== y) return x < y ? -5 : 5;
  if (withMed) {
    x = pa.med ?? 0;
    y = pb.med ?? 0;
    if (x !== y) return x < y ? -STEP_MED : STEP_MED;
  }
  const ea = a.neighbor.ebgp;
  if (ea !== b.neighbor.ebgp) return ea ? -7 : 7;
  x = pa.originatorId ?? a.neighbor.routerId ?? UNKNOWN_ID;
  y = pb.originatorId ?? b.neighbor.routerId ?? UNKNOWN_ID;
  if (x !== y) return x < y ? -8 : 8;
  if (pa.clusterList.length !== pb.clusterList.length) return pa.clusterList.length < pb.clusterList.length ? -9 : 9;
  const c = compareAddr(a.neighbor.address, b.neighbor.address);
  return c < 0 ? -10 : c > 0 ? 10 : 0;
}

/** The MED group of a route (BGP routes only): its neighbouring AS, or one group for all when MED is always compared. */
function medGroup(r: Route): number {
  return r.src.alwaysCompareMed ? -1 : (r.attrs.bgp!.neighborAs ?? -2);
}

/** Same MED group: the MED step applies between them. */
function medComparable(a: Route, b: Route): boolean {
  return medGroup(a) === medGroup(b);
}

/** Signed step between two routes (see bgpStep), MED applied as the groups say. */
function step(a: Route, b: Route, withMed: boolean): number {
  if (a === b) return 0;
  if (a.src.preference !== b.src.preference) return a.src.preference > b.src.preference ? -1 : 1;
  const ba = a.attrs.bgp;
  const bb = b.attrs.bgp;
  if ((ba === undefined) !== (bb === undefined)) return ba !== undefined ? -2 : 2;
  if (ba !== undefined && bb !== undefined) {
    const s = bgpStep(ba, bb, withMed);
    if (s !== 0) return s;
  }
  if (a.src.name !== b.src.name) return a.src.name < b.src.name ? -11 : 11;
  return a.src.id < b.src.id ? -12 : a.src.id > b.src.id ? 12 : 0;
}

/**
 * Pairwise comparison (negative: `a` first). A total order for routes
 * without BGP attributes and within one MED group; the chain functions
 * below are what order a whole net.
 */
export function compareRoutes(a: Route, b: Route): number {
  return Math.sign(step(a, b, a.attrs.bgp !== undefined && b.attrs.bgp !== undefined && medComparable(a, b)));
}

/** Why `a` ranks before `b` in a chain made by this module (b directly after a, or b anywhere after a in its MED group). */
export function whyBefore(a: Route, b: Route): DecisionStep | undefined {
  const s = step(a, b, a.attrs.bgp !== undefined && b.attrs.bgp !== undefined && medComparable(a, b));
  return s === 0 ? undefined : STEPS[Math.abs(s) - 1];
}

/** Per route of a chain (best first), why it ranks where it does: [0] beat [1] by ..., [i] ranks after [i-1] by .... */
export function explainChain(chain: readonly Route[]): (DecisionStep | undefined)[] {
  return chain.map((r, i) => (i === 0 ? (chain.length > 1 ? whyBefore(r, chain[1]!) : undefined) : whyBefore(chain[i - 1]!, r)));
}

/** Routes equal to the best down to the router-id step (BIRD's rte_mergable): the candidates for one ECMP route. */
export function mergeable(best: Route, r: Route): boolean {
  if (best.src.preference !== r.src.preference) return false;
  const a = best.attrs.bgp;
  const b = r.attrs.bgp;
  if (a === undefined || b === undefined) return a === b;
  const s = Math.abs(bgpStep(a, b, medComparable(best, r)));
  return s === 0 || s >= 8;
}

/**
 * A set of routes needs the grouped ordering when three or more of equal
 * preference carry BGP attributes: with two, the merge of their groups is
 * their pairwise order, and pairwise comparison is a total order.
 */
function needsGroups(routes: readonly Route[], extra?: Route): boolean {
  let bgp = extra?.attrs.bgp !== undefined ? 1 : 0;
  for (const r of routes) if (r.attrs.bgp !== undefined) bgp++;
  if (bgp < 3) return false;
  const all = extra ? [...routes, extra] : routes;
  for (let i = 0; i < all.length; i++) {
    const r = all[i]!;
    if (r.attrs.bgp === undefined) continue;
    let same = 0;
    for (const o of all) if (o.attrs.bgp !== undefined && o.src.preference === r.src.preference) same++;
    if (same >= 3) return true;
  }
  return false;
}

/**
 * The routes in decision order (best first), as a new array: see the header.
 * Without three BGP routes of equal preference this is a plain sort by
 * compareRoutes (a total order there).
 */
export function orderRoutes(routes: readonly Route[]): Route[] {
  const out = routes.slice();
  if (!needsGroups(out)) return out.sort(compareRoutes);
  // Group by (preference, MED group); sort each group with MED; merge the heads without it.
  const groups = new Map<string, Route[]>();
  for (const r of out) {
    const key = r.attrs.bgp === undefined ? `${r.src.preference}/-` : `${r.src.preference}/${medGroup(r)}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = []));
    g.push(r);
  }
  const lists = [...groups.values()].map((g) => g.sort(compareRoutes));
  const heads = lists.map(() => 0);
  for (let k = 0; k < out.length; k++) {
    let best = -1;
    for (let i = 0; i < lists.length; i++) {
      if (heads[i]! >= lists[i]!.length) continue;
      if (best < 0 || step(lists[i]![heads[i]!]!, lists[best]![heads[best]!]!, false) < 0) best = i;
    }
    out[k] = lists[best]![heads[best]!++]!;
  }
  return out;
}

/**
 * `chain` (best first) with `route` in place of chain[replace], or added when
 * replace is -1, best first, in an array of exactly the right size (an insert
 * into a copy grows its backing store to room for 17).
 */
export function chainWith(chain: readonly Route[], replace: number, route: Route): Route[] {
  if (replace >= 0 && route.attrs.bgp === undefined && chain[replace]!.attrs.bgp === undefined) {
    const next = chain.slice();
    next[replace] = route; // same source, no BGP attributes: the place does not change
    return next;
  }
  const rest = replace >= 0 ? chain.filter((_, j) => j !== replace) : chain;
  if (needsGroups(rest, route) || (replace >= 0 && needsGroups(chain))) return orderRoutes([...rest, route]);
  const m = rest.length;
  let i = m;
  while (i > 0 && compareRoutes(rest[i - 1]!, route) > 0) i--;
  const out = new Array<Route>(m + 1);
  for (let j = 0; j < i; j++) out[j] = rest[j]!;
  out[i] = route;
  for (let j = i; j < m; j++) out[j + 1] = rest[j]!;
  return out;
}

/** `chain` without chain[remove], best first: removing a route may reorder the rest (a MED group's new head). */
export function chainWithout(chain: readonly Route[], remove: number): Route[] {
  const next = chain.slice();
  next.splice(remove, 1);
  return needsGroups(chain) ? orderRoutes(next) : next;
}

/**
 * The routes with eligible ones first, each part in decision order (next-hop
 * tracking). Depends only on the set of routes and their eligibility.
 */
export function orderEligible(routes: readonly Route[], eligible: (r: Route) => boolean): Route[] {
  const ordered = orderRoutes(routes);
  let bad = 0;
  for (const r of ordered) if (!eligible(r)) bad++;
  if (bad === 0) return ordered;
  const out = new Array<Route>(ordered.length);
  let i = 0;
  let j = ordered.length - bad;
  for (const r of ordered) {
    if (eligible(r)) out[i++] = r;
    else out[j++] = r;
  }
  return out;
}
