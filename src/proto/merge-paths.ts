/**
 * merge_paths: equal-best routes of several sources become one multipath
 * route. Routes are "equal best" when the decision process says so
 * (src/route/decision.ts, `mergeable`: the same preference, and for BGP
 * routes equal down to the router-id step, as BIRD's rte_mergable), so BGP
 * multipath is this option on the kernel protocol. Only unicast routes
 * merge, and only routes the export filter accepted (the caller filters
 * first). The merged route keeps the best route's other attributes; next
 * hops are deduplicated and capped at `limit` (best first), so adding a
 * source never reorders the hops already there.
 */
import { mergeable, NextHopSet, RouteAttrs, type NextHop, type Route } from '../route';

export interface MergePathsOptions {
  /** Most next hops in one merged route (the kernel allows many; 16 is a sane cap). */
  limit: number;
}

/** The attributes to export for a net, given its accepted routes, best first. */
export function mergePaths(accepted: readonly Route[], opts: MergePathsOptions): RouteAttrs | undefined {
  const best = accepted[0];
  if (!best) return undefined;
  if (best.attrs.type !== 'unicast' || accepted.length === 1) return best.attrs;
  const hops: NextHop[] = [];
  const seen = new Set<string>();
  for (const r of accepted) {
    if (r.src.preference !== best.src.preference) break;
    if (r.attrs.type !== 'unicast' || !mergeable(best, r)) continue;
    for (const h of r.attrs.nexthops!.hops) {
      // Weight is not part of a hop's identity here: the same way out from two sources is one path.
      const id = `${h.gateway ?? ''}|${h.ifindex ?? ''}|${h.ifname ?? ''}|${h.onlink}`;
      if (seen.has(id) || hops.length >= opts.limit) continue;
      seen.add(id);
      hops.push(h);
    }
  }
  if (hops.length === best.attrs.nexthops!.hops.length) return best.attrs;
  return best.attrs.with({ nexthops: NextHopSet.of(hops) });
}
