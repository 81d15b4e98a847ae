/**
 * Route attribute sets, interned.
 *
 * A RouteAttrs is everything about a route except its net and its source: the
 * destination kind (unicast with a next-hop set, or blackhole / unreachable /
 * prohibit), the kernel priority (metric), prefsrc, realm, scope, the IPv6
 * router preference, the RTAX metrics with their per-metric locks, and the
 * congestion control name, and for a route learned over BGP its BGP
 * attributes (src/route/bgp.ts; the kernel never sees them). Like BIRD 3's
 * ea_list the next hops live inside the attribute set, so a stored route
 * holds one pointer for all of it.
 *
 * Attribute sets are immutable and interned: RouteAttrs.of() returns the one
 * live object for given content, so `a === b` is attribute equality and a
 * million routes with the same attributes share one object.
 */
import type { Addr } from '../lib/addr';
import type { BgpAttrs } from './bgp';
import { Interner } from './intern';
import { NextHopSet, type NextHop, type NextHopSpec } from './nexthop';
import { RouteError } from './route-error';

export type RouteType = 'unicast' | 'blackhole' | 'unreachable' | 'prohibit';
/** IPv6 router preference (RFC 4191), RTA_PREF. */
export type RouterPref = 'low' | 'medium' | 'high';

/** RTAX_* numbers (linux/rtnetlink.h) of the metrics a route may carry. */
export const RTAX = {
  mtu: 2,
  window: 3,
  rtt: 4,
  rttvar: 5,
  ssthresh: 6,
  cwnd: 7,
  advmss: 8,
  reordering: 9,
  hoplimit: 10,
  initcwnd: 11,
  features: 12,
  rto_min: 13,
  initrwnd: 14,
  quickack: 15,
  congctl: 16, // RTAX_CC_ALGO: a string, kept apart in `congctl`
  fastopen_no_cookie: 17,
} as const;

/** The numeric metrics (all but the congestion control name). */
export type MetricName = Exclude<keyof typeof RTAX, 'congctl'>;
/** What can be locked: any metric, and the congestion control. */
export type LockableName = keyof typeof RTAX;
export type RouteMetrics = Readonly<Partial<Record<MetricName, number>>>;

const METRIC_NAMES = (Object.keys(RTAX) as LockableName[]).filter((n): n is MetricName => n !== 'congctl');

export interface RouteAttrsSpec {
  /** Default: 'unicast' when next hops are given. */
  type?: RouteType;
  nexthops?: NextHopSet | readonly (NextHopSpec | NextHop)[];
  metric?: number;
  prefsrc?: Addr;
  realm?: number;
  scope?: number;
  pref?: RouterPref;
  metrics?: RouteMetrics;
  /** Metrics (and 'congctl') the kernel must not change: the RTAX_LOCK bits. */
  locked?: readonly LockableName[];
  congctl?: string;
  /** BGP attributes (interned on their own); not part of what the kernel holds. */
  bgp?: BgpAttrs;
}

const attrSets = new Interner<RouteAttrs>();

function checkU32(what: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) {
    throw new RouteError(`${what} ${v}: must be an integer 0..4294967295`);
  }
}

export class RouteAttrs {
  readonly type: RouteType;
  /** Present exactly when type is 'unicast'. */
  readonly nexthops: NextHopSet | undefined;
  readonly metric: number | undefined;
  readonly prefsrc: Addr | undefined;
  readonly realm: number | undefined;
  readonly scope: number | undefined;
  readonly pref: RouterPref | undefined;
  /** Frozen; undefined when the route has no metrics. */
  readonly metrics: RouteMetrics | undefined;
  /** RTAX_LOCK bitmask: bit (1 << RTAX[name]) per locked metric, as the kernel encodes it. */
  readonly lockMask: number;
  readonly congctl: string | undefined;
  readonly bgp: BgpAttrs | undefined;

  private constructor(spec: RouteAttrsSpec, nexthops: NextHopSet | undefined, metrics: RouteMetrics | undefined, lockMask: number) {
    this.type = spec.type ?? 'unicast';
    this.nexthops = nexthops;
    this.metric = spec.metric;
    this.prefsrc = spec.prefsrc;
    this.realm = spec.realm;
    this.scope = spec.scope;
    this.pref = spec.pref;
    this.metrics = metrics;
    this.lockMask = lockMask;
    this.congctl = spec.congctl;
    this.bgp = spec.bgp;
    Object.freeze(this);
  }

  /** The shared attribute set with this content. Throws RouteError on impossible content. */
  static of(spec: RouteAttrsSpec): RouteAttrs {
    const type = spec.type ?? (spec.nexthops !== undefined ? 'unicast' : undefined);
    if (type === undefined) throw new RouteError('a route needs next hops or a type (blackhole, unreachable, prohibit)');
    let nexthops: NextHopSet | undefined;
    if (type === 'unicast') {
      if (spec.nexthops === undefined) throw new RouteError('a unicast route needs at least one next hop');
      nexthops = spec.nexthops instanceof NextHopSet ? spec.nexthops : NextHopSet.of(spec.nexthops);
    } else if (spec.nexthops !== undefined) {
      throw new RouteError(`a ${type} route has no next hops`);
    }
    checkU32('metric', spec.metric);
    checkU32('realm', spec.realm);
    if (spec.scope !== undefined && !(Number.isInteger(spec.scope) && spec.scope >= 0 && spec.scope <= 255)) {
      throw new RouteError(`scope ${spec.scope}: must be an integer 0..255`);
    }
    const metrics = canonicalMetrics(spec.metrics);
    let lockMask = 0;
    for (const name of spec.locked ?? []) {
      if (!(name in RTAX)) throw new RouteError(`cannot lock ${JSON.stringify(name)}: not a route metric`);
      lockMask |= 1 << RTAX[name];
    }
    if (spec.congctl !== undefined && !/^[\w-]{1,15}$/.test(spec.congctl)) {
      throw new RouteError(`congestion control ${JSON.stringify(spec.congctl)}: not a valid algorithm name`);
    }
    const metricsKey = metrics ? METRIC_NAMES.map((n) => metrics[n] ?? '').join(',') : '';
    const key = [
      type,
      nexthops?.id ?? '',
      spec.metric ?? '',
      spec.prefsrc?.toString() ?? '',
      spec.realm ?? '',
      spec.scope ?? '',
      spec.pref ?? '',
      metricsKey,
      lockMask,
      spec.congctl ?? '',
      spec.bgp?.id ?? '',
    ].join(';');
    return attrSets.intern(key, () => new RouteAttrs({ ...spec, type }, nexthops, metrics, lockMask));
  }

  /** This set with some fields changed (interned like any other). */
  with(change: RouteAttrsSpec): RouteAttrs {
    return RouteAttrs.of({ ...this.toSpec(), ...change });
  }

  isLocked(name: LockableName): boolean {
    return (this.lockMask & (1 << RTAX[name])) !== 0;
  }

  toSpec(): RouteAttrsSpec {
    const locked = (Object.keys(RTAX) as LockableName[]).filter((n) => this.isLocked(n));
    const spec: RouteAttrsSpec = { type: this.type };
    if (this.nexthops) spec.nexthops = this.nexthops;
    if (this.metric !== undefined) spec.metric = this.metric;
    if (this.prefsrc) spec.prefsrc = this.prefsrc;
    if (this.realm !== undefined) spec.realm = this.realm;
    if (this.scope !== undefined) spec.scope = this.scope;
    if (this.pref) spec.pref = this.pref;
    if (this.metrics) spec.metrics = this.metrics;
    if (locked.length) spec.locked = locked;
    if (this.congctl !== undefined) spec.congctl = this.congctl;
    if (this.bgp) spec.bgp = this.bgp;
    return spec;
  }

  /** The kernel's view: everything but the BGP attributes (shown apart). */
  toString(): string {
    const parts: string[] = [this.type === 'unicast' ? this.nexthops!.toString() : this.type];
    if (this.metric !== undefined) parts.push(`metric ${this.metric}`);
    if (this.prefsrc) parts.push(`src ${this.prefsrc}`);
    if (this.realm !== undefined) parts.push(`realm ${this.realm}`);
    if (this.scope !== undefined) parts.push(`scope ${this.scope}`);
    if (this.pref) parts.push(`pref ${this.pref}`);
    for (const n of METRIC_NAMES) {
      const v = this.metrics?.[n];
      if (v !== undefined) parts.push(`${n}${this.isLocked(n) ? ' lock' : ''} ${v}`);
    }
    if (this.congctl !== undefined) parts.push(`congctl${this.isLocked('congctl') ? ' lock' : ''} ${this.congctl}`);
    return parts.join(' ');
  }
}

function canonicalMetrics(m: RouteMetrics | undefined): RouteMetrics | undefined {
  if (m === undefined) return undefined;
  const out: Partial<Record<MetricName, number>> = {};
  let any = false;
  for (const name of Object.keys(m) as MetricName[]) {
    if (!METRIC_NAMES.includes(name)) throw new RouteError(`${JSON.stringify(name)}: not a route metric`);
    const v = m[name];
    if (v === undefined) continue;
    checkU32(name, v);
    out[name] = v;
    any = true;
  }
  return any ? Object.freeze(out) : undefined;
}

/** Number of interned attribute sets (for tests and `show memory`). */
export function internedRouteAttrs(): number {
  return attrSets.size;
}
