/**
 * Conversion between the route model and kernel route messages.
 *
 * toKernelRoute: a table route (plus what the export filter set) becomes the
 * RouteMessage we want the kernel to hold: our table, our protocol number,
 * the dedicated metric if configured, interface names resolved to indexes.
 * It is the single source of "desired"; normalize.ts compares it with dumps.
 *
 * fromKernelRoute: a kernel route of another protocol becomes route
 * attributes (for learn). Types and fields the model cannot carry (local,
 * broadcast, multicast, throw, encap, nexthop objects) give undefined.
 *
 * kernelDelete: the delete request for a route of ours. It names net, table,
 * protocol and metric only (the kernel matches any next hop and type), so it
 * works without knowing what exactly was installed.
 */
import type { Family, Prefix } from '../../lib/addr';
import * as C from '../../netlink/constants';
import type { RouteMessage, RouteMetrics as WireMetrics, RouteNextHop } from '../../netlink/route-codec';
import { RTAX, RouteAttrs, type LockableName, type MetricName, type NextHopSpec, type RouteAttrsSpec, type RouteType, type RouterPref } from '../../route';
import type { KernelAttrs } from '../kernel-attrs';

export interface KernelTarget {
  readonly family: Family;
  readonly table: number;
  readonly protocol: number;
  /** Dedicated metric for every route of ours; wins over the route's and the filter's. */
  readonly metric?: number;
}

/** ifname to ifindex, as the kernel protocol's link cache knows it. */
export interface LinkResolver {
  indexOf(name: string): number | undefined;
}

/** A route that cannot be expressed for the kernel right now (unknown device); retried later. */
export class ConversionError extends Error {
  constructor(
    readonly errnoName: string,
    message: string,
  ) {
    super(message);
  }
}

const TYPE_TO_RTN: Record<RouteType, number> = {
  unicast: C.RTN_UNICAST,
  blackhole: C.RTN_BLACKHOLE,
  unreachable: C.RTN_UNREACHABLE,
  prohibit: C.RTN_PROHIBIT,
};
const RTN_TO_TYPE: Partial<Record<number, RouteType>> = {
  [C.RTN_UNICAST]: 'unicast',
  [C.RTN_BLACKHOLE]: 'blackhole',
  [C.RTN_UNREACHABLE]: 'unreachable',
  [C.RTN_PROHIBIT]: 'prohibit',
};
const PREF_TO_WIRE: Record<RouterPref, number> = { low: C.ICMPV6_ROUTER_PREF_LOW, medium: C.ICMPV6_ROUTER_PREF_MEDIUM, high: C.ICMPV6_ROUTER_PREF_HIGH };
const WIRE_TO_PREF: Partial<Record<number, RouterPref>> = { 3: 'low', 0: 'medium', 1: 'high' };

/** Model metric name to codec field name (they differ for two). */
const WIRE_METRIC: Record<MetricName, keyof WireMetrics> = {
  mtu: 'mtu',
  window: 'window',
  rtt: 'rtt',
  rttvar: 'rttvar',
  ssthresh: 'ssthresh',
  cwnd: 'cwnd',
  advmss: 'advmss',
  reordering: 'reordering',
  hoplimit: 'hoplimit',
  initcwnd: 'initcwnd',
  features: 'features',
  rto_min: 'rtoMin',
  initrwnd: 'initrwnd',
  quickack: 'quickack',
  fastopen_no_cookie: 'fastopenNoCookie',
};

function resolveHop(h: NextHopSpec, links: LinkResolver): number | undefined {
  if (h.ifindex !== undefined) return h.ifindex;
  if (h.ifname === undefined) return undefined;
  const i = links.indexOf(h.ifname);
  if (i === undefined) throw new ConversionError('ENODEV', `device ${h.ifname} does not exist`);
  return i;
}

/** The route we want in the kernel for `net` with `attrs`, after the filter's `set`. */
export function toKernelRoute(net: Prefix, attrs: RouteAttrs, set: KernelAttrs | undefined, target: KernelTarget, links: LinkResolver): RouteMessage {
  const v4 = net.family === 4;
  const metric = target.metric ?? set?.metric ?? attrs.metric;
  const r: RouteMessage = {
    family: net.family,
    dst: net,
    tos: 0,
    table: target.table,
    protocol: target.protocol,
    scope: C.RT_SCOPE_UNIVERSE,
    type: TYPE_TO_RTN[attrs.type],
    flags: 0,
  };
  if (metric !== undefined) r.priority = metric;
  const prefsrc = set?.prefsrc ?? attrs.prefsrc;
  if (prefsrc) r.prefsrc = prefsrc;
  const realm = set?.realm ?? attrs.realm;
  if (realm !== undefined && v4) r.flow = realm;
  const pref = set?.pref ?? attrs.pref;
  if (pref !== undefined && !v4) r.pref = PREF_TO_WIRE[pref];

  let anyGateway = false;
  if (attrs.type === 'unicast') {
    const hops = attrs.nexthops!.hops;
    if (hops.length === 1) {
      const h = hops[0]!;
      const oif = resolveHop(h, links);
      if (oif !== undefined) r.oif = oif;
      if (h.gateway) {
        anyGateway = true;
        if (h.needsVia(net.family)) r.via = h.gateway;
        else r.gateway = h.gateway;
      }
      if (h.onlink) r.flags |= C.RTNH_F_ONLINK;
    } else {
      r.multipath = hops.map((h): RouteNextHop => {
        const hop: RouteNextHop = { oif: resolveHop(h, links) ?? 0, weight: h.weight, flags: h.onlink ? C.RTNH_F_ONLINK : 0 };
        if (h.gateway) {
          anyGateway = true;
          if (h.needsVia(net.family)) hop.via = h.gateway;
          else hop.gateway = h.gateway;
        }
        return hop;
      });
    }
  }
  const scope = set?.scope ?? attrs.scope;
  // iproute2's rule, which the kernel relies on for IPv4: a unicast route without a gateway is on-link.
  if (scope !== undefined) r.scope = scope;
  else if (v4 && attrs.type === 'unicast' && !anyGateway) r.scope = C.RT_SCOPE_LINK;

  const metrics = wireMetrics(attrs, set);
  if (metrics) r.metrics = metrics;
  return r;
}

function wireMetrics(attrs: RouteAttrs, set: KernelAttrs | undefined): WireMetrics | undefined {
  const m: WireMetrics = {};
  let any = false;
  const values: Partial<Record<MetricName, number>> = { ...attrs.metrics, ...set?.metrics };
  for (const name of Object.keys(values) as MetricName[]) {
    const v = values[name];
    if (v === undefined) continue;
    (m as Record<string, number>)[WIRE_METRIC[name]] = v;
    any = true;
  }
  const cc = set?.congctl ?? attrs.congctl;
  if (cc !== undefined) {
    m.ccAlgo = cc;
    any = true;
  }
  let lock = attrs.lockMask;
  for (const n of set?.locked ?? []) lock |= 1 << RTAX[n];
  if (lock !== 0) {
    m.lock = lock;
    any = true;
  }
  return any ? m : undefined;
}

/** The delete request for our route at `dst` (metric undefined: any metric of ours). */
export function kernelDelete(dst: Prefix, target: KernelTarget, priority: number | undefined): RouteMessage {
  const r: RouteMessage = {
    family: dst.family,
    dst,
    tos: 0,
    table: target.table,
    protocol: target.protocol,
    // RT_SCOPE_NOWHERE and RTN_UNSPEC are the kernel's wildcards for a delete (iproute2 sends the same).
    scope: C.RT_SCOPE_NOWHERE,
    type: C.RTN_UNSPEC,
    flags: 0,
  };
  if (priority !== undefined) r.priority = priority;
  return r;
}

/** A kernel route as route attributes (for learn); undefined when the model cannot carry it. */
export function fromKernelRoute(r: RouteMessage, nameOf: (index: number) => string | undefined): RouteAttrs | undefined {
  const type = RTN_TO_TYPE[r.type];
  // A route on a nexthop object is taken with the object's next hops (reported beside the id, or nexthop-view.ts).
  if (type === undefined || r.src !== undefined) return undefined;
  const spec: RouteAttrsSpec = { type };
  if (r.priority !== undefined) spec.metric = r.priority;
  if (r.prefsrc) spec.prefsrc = r.prefsrc;
  if (r.flow !== undefined && r.family === 4) spec.realm = r.flow;
  if (r.family === 4 && r.scope !== C.RT_SCOPE_UNIVERSE) spec.scope = r.scope;
  if (r.pref !== undefined && r.family === 6 && r.pref !== C.ICMPV6_ROUTER_PREF_MEDIUM) spec.pref = WIRE_TO_PREF[r.pref];
  if (r.metrics) {
    const metrics: Partial<Record<MetricName, number>> = {};
    const locked: LockableName[] = [];
    for (const name of Object.keys(WIRE_METRIC) as MetricName[]) {
      const v = r.metrics[WIRE_METRIC[name]];
      if (typeof v === 'number' && v !== 0) metrics[name] = v;
      if (r.metrics.lock !== undefined && r.metrics.lock & (1 << RTAX[name])) locked.push(name);
    }
    if (Object.keys(metrics).length) spec.metrics = metrics;
    if (locked.length) spec.locked = locked;
    if (r.metrics.ccAlgo) spec.congctl = r.metrics.ccAlgo;
  }
  if (type === 'unicast') {
    const hop = (gw: RouteMessage['gateway'], oif: number | undefined, flags: number, weight: number): NextHopSpec => {
      const h: NextHopSpec = { weight };
      if (gw) h.gateway = gw;
      if (oif !== undefined && oif !== 0) {
        h.ifindex = oif;
        const name = nameOf(oif);
        if (name !== undefined) h.ifname = name;
      }
      if (flags & C.RTNH_F_ONLINK) h.onlink = true;
      return h;
    };
    const hops =
      r.multipath && r.multipath.length > 0
        ? r.multipath.map((h) => hop(h.gateway ?? h.via, h.oif, h.flags, h.weight))
        : [hop(r.gateway ?? r.via, r.oif, r.flags, 1)];
    if (hops.some((h) => h.gateway === undefined && h.ifindex === undefined)) return undefined;
    spec.nexthops = hops;
  }
  try {
    return RouteAttrs.of(spec);
  } catch {
    return undefined;
  }
}
