/**
 * Canonical form of a kernel route, so "what we want" and "what the kernel
 * reports back" compare equal exactly when the kernel holds our route as we
 * would install it. The kernel adds, drops and rewrites details on the way
 * through; each rule below undoes one of them (docs/kernel.md has the table):
 *
 *  - metric: none means 0 for IPv4 and 1024 for IPv6 (the kernel's default);
 *  - IPv6 scope: the kernel stores none (always reports universe): ignored;
 *  - IPv6 router preference: none means medium (0), which IPv6 reports always;
 *  - realm (RTA_FLOW) is IPv4 only; IPv6 ignores it;
 *  - next-hop flags: only ONLINK is ours; LINKDOWN, DEAD, OFFLOAD, TRAP... are
 *    state the kernel reports, never configuration;
 *  - blackhole/unreachable/prohibit: no next hop (IPv6 reports `dev lo`);
 *  - multipath: order does not matter (hops are sorted); one-hop multipath
 *    is the same as a single next hop; weights count only with 2+ hops;
 *  - a gateway without a device: the kernel fills in the device it resolved,
 *    so a hop we send without oif matches the gateway on any oif;
 *  - RTAX metrics: 0 means unset (the kernel does not store zeros), and the
 *    kernel clamps advmss to 65495, mtu to 65520 and hoplimit to 255;
 *  - RTA_CACHEINFO, RTA_EXPIRES and other unknown attributes: ignored;
 *  - a route on a nexthop object (RTA_NH_ID): the kernel reports the
 *    object's gateway and device beside the id; only the id is compared
 *    (the object's content is the object's business, nexthop-objects.ts),
 *    and a route with an id never equals one without.
 */
import * as C from '../../netlink/constants';
import { METRIC_NAMES, type RouteMessage, type RouteMetrics, type RouteNextHop } from '../../netlink/route-codec';
import type { RouteHead } from '../../netlink/route-head';

/** The kernel's metric when a route has none. */
export function effectivePriority(r: Pick<RouteMessage, 'family' | 'priority'>): number {
  return r.priority ?? (r.family === 6 ? 1024 : 0);
}

const CLAMP: Partial<Record<string, number>> = { advmss: 65535 - 40, mtu: 65535 - 15, hoplimit: 255 };

function canonicalMetrics(m: RouteMetrics | undefined): string {
  if (!m) return '';
  const parts: string[] = [];
  for (let t = 1; t < METRIC_NAMES.length; t++) {
    const name = METRIC_NAMES[t]!;
    if (name === 'ccAlgo') {
      if (m.ccAlgo !== undefined && m.ccAlgo !== '') parts.push(`cc=${m.ccAlgo}`);
      continue;
    }
    let v = m[name];
    if (v === undefined || v === 0) continue;
    const clamp = CLAMP[name];
    if (clamp !== undefined && v > clamp) v = clamp;
    parts.push(`${t}=${v >>> 0}`);
  }
  return parts.join(',');
}

interface HopView {
  gw: string;
  oif: number | undefined;
  flags: number;
  weight: number;
  flow: number | undefined;
}

function hopsOf(r: RouteMessage): HopView[] {
  if (r.multipath && r.multipath.length > 0) {
    return r.multipath.map((h: RouteNextHop) => ({
      gw: (h.gateway ?? h.via)?.toString() ?? '',
      oif: h.oif === 0 ? undefined : h.oif,
      flags: h.flags & C.RTNH_F_ONLINK,
      weight: h.weight,
      flow: h.flow,
    }));
  }
  return [{ gw: (r.gateway ?? r.via)?.toString() ?? '', oif: r.oif, flags: r.flags & C.RTNH_F_ONLINK, weight: 1, flow: undefined }];
}

/**
 * Canonical text of a route's content (not its identity: dst and table are
 * left out). `oiflessGateways`: gateways whose device is left to the kernel;
 * their oif is not part of the text.
 */
export function canonicalRoute(r: RouteMessage, oiflessGateways?: ReadonlySet<string>): string {
  const v6 = r.family === 6;
  const parts: (string | number)[] = [r.type, effectivePriority(r), v6 ? '-' : r.scope, r.prefsrc?.toString() ?? '', v6 ? '-' : (r.flow ?? 0), v6 ? (r.pref ?? C.ICMPV6_ROUTER_PREF_MEDIUM) : '-', canonicalMetrics(r.metrics)];
  if (r.nhId !== undefined) parts.push(`nh${r.nhId}`);
  else if (r.type === C.RTN_UNICAST) {
    const hops = hopsOf(r);
    const single = hops.length === 1;
    const text = hops.map((h) => {
      const oif = h.gw !== '' && oiflessGateways?.has(h.gw) ? '*' : (h.oif ?? '');
      return `${h.gw}@${oif}/${h.flags}/${single ? 1 : h.weight}/${v6 ? '' : (h.flow ?? '')}`;
    });
    text.sort();
    parts.push(text.join('|'));
  }
  return parts.join(' ');
}

/** Gateways of `r` sent without a device (the kernel picks the device). */
export function oiflessGateways(r: RouteMessage): ReadonlySet<string> | undefined {
  let out: Set<string> | undefined;
  for (const h of hopsOf(r)) if (h.gw !== '' && h.oif === undefined) (out ??= new Set()).add(h.gw);
  return out;
}

/**
 * True when the kernel's `have` is our `want` as installed: every attribute we set, nothing else we
 * would change. Both are routes of one net (dst is not compared: the kernel sync's `want` is a
 * template shared by every net with the same attributes).
 */
export function sameKernelRoute(want: RouteMessage, have: RouteMessage): boolean {
  if (want.family !== have.family || want.table !== have.table || want.protocol !== have.protocol || want.nhId !== have.nhId) return false;
  const quick = sameSimpleRoute(want, have);
  if (quick !== undefined) return quick;
  const wild = oiflessGateways(want);
  return canonicalRoute(want, wild) === canonicalRoute(have, wild);
}

/**
 * The answer canonicalRoute() would give, without building its texts, for
 * the shape nearly every route has: unicast, one gateway (no RTA_VIA), no
 * multipath, no RTAX metrics on either side. Undefined for anything else
 * (the texts decide). Each comparison is the canonical rule of the same
 * field, so the two can never disagree (a unit test checks them side by side).
 */
export function sameSimpleRoute(want: RouteMessage, have: RouteMessage): boolean | undefined {
  if (want.type !== C.RTN_UNICAST || have.type !== C.RTN_UNICAST) return undefined;
  if (want.multipath !== undefined || have.multipath !== undefined || want.metrics !== undefined || have.metrics !== undefined) return undefined;
  if (want.gateway === undefined || have.gateway === undefined || want.via !== undefined || have.via !== undefined) return undefined;
  const v6 = want.family === 6;
  if (effectivePriority(want) !== effectivePriority(have)) return false;
  if (!v6 && (want.scope !== have.scope || (want.flow ?? 0) !== (have.flow ?? 0))) return false;
  if (v6 && (want.pref ?? C.ICMPV6_ROUTER_PREF_MEDIUM) !== (have.pref ?? C.ICMPV6_ROUTER_PREF_MEDIUM)) return false;
  if (want.prefsrc === undefined ? have.prefsrc !== undefined : have.prefsrc === undefined || !want.prefsrc.equals(have.prefsrc)) return false;
  if (!want.gateway.equals(have.gateway)) return false;
  if ((want.flags & C.RTNH_F_ONLINK) !== (have.flags & C.RTNH_F_ONLINK)) return false;
  // A gateway sent without a device matches it on any device (the kernel fills one in).
  return want.oif === undefined || want.oif === have.oif;
}

/**
 * sameSimpleRoute against a notification read in place (netlink/route-head.ts): true when `want`
 * is unicast through one gateway with nothing else sameSimpleRoute leaves to the texts (no
 * prefsrc, realm, RTAX metrics, multipath or RTA_VIA) and the notification carries exactly it.
 * False means "decode it and compare in full", never "different".
 */
export function sameSimpleHead(want: RouteMessage, h: RouteHead): boolean {
  if (want.type !== C.RTN_UNICAST || h.type !== C.RTN_UNICAST || want.family !== h.family || !h.hasGateway || want.nhId !== undefined) return false;
  if (want.gateway === undefined || want.multipath !== undefined || want.metrics !== undefined || want.via !== undefined || want.prefsrc !== undefined) return false;
  if (want.table !== h.table || want.protocol !== h.protocol) return false;
  const v6 = want.family === 6;
  if (effectivePriority(want) !== (h.priority >= 0 ? h.priority : v6 ? 1024 : 0)) return false;
  if (!v6 && (want.scope !== h.scope || (want.flow ?? 0) !== 0)) return false;
  if (v6 && (want.pref ?? C.ICMPV6_ROUTER_PREF_MEDIUM) !== (h.pref >= 0 ? h.pref : C.ICMPV6_ROUTER_PREF_MEDIUM)) return false;
  const g = want.gateway;
  if ((g.w0 | 0) !== h.gw0 || (v6 && ((g.w1 | 0) !== h.gw1 || (g.w2 | 0) !== h.gw2 || (g.w3 | 0) !== h.gw3))) return false;
  if ((want.flags & C.RTNH_F_ONLINK) !== (h.flags & C.RTNH_F_ONLINK)) return false;
  return want.oif === undefined || want.oif === h.oif;
}
