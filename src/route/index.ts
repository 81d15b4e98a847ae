/** The route model: next hops, attribute sets (interned), sources and routes. */
export { NextHop, NextHopSet, internedNextHopSets, type NextHopSpec } from './nexthop';
export {
  RouteAttrs,
  RTAX,
  internedRouteAttrs,
  type LockableName,
  type MetricName,
  type RouteAttrsSpec,
  type RouteMetrics,
  type RouterPref,
  type RouteType,
} from './attrs';
export { RouteSource, type RouteSourceOptions } from './source';
export { Route, type NetKey } from './route';
export {
  BgpAttrs,
  BgpNeighbor,
  BgpPath,
  formatCommunity,
  formatId,
  parseCommunity,
  parseLargeCommunity,
  type AsSegment,
  type AsSegmentType,
  type BgpAttrsJson,
  type BgpNeighborSpec,
  type BgpOrigin,
  type BgpPathSpec,
} from './bgp';
export { chainWith, chainWithout, compareRoutes, explainChain, mergeable, orderEligible, orderRoutes, whyBefore, type DecisionStep } from './decision';
export { RouteError } from './route-error';
export { Interner } from './intern';
