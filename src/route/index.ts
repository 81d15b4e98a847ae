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
export { RouteSource, compareSources } from './source';
export { Route, compareRoutes, type NetKey } from './route';
export { RouteError } from './route-error';
export { Interner } from './intern';
