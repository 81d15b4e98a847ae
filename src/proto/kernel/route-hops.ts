/**
 * RouteHops: a route's next hops as nexthop objects, and the route through
 * one object (RTA_NH_ID) instead of carrying them. Each next hop is one hop
 * object (its device resolved from the connected prefixes when the route
 * names only a gateway); several make an ECMP group with their weights;
 * with failover, the net's next-best route (or a route next-hop tracking
 * holds unusable) picks a forwarding object keyed by both
 * (forwarding-objects.ts).
 *
 * Objects are interned in the books of NexthopObjects (one per content),
 * never referenced here: the caller refs what it keeps. A route is sent as
 * it is, on no object, when an object cannot carry it: not unicast, a realm
 * (the kernel drops RTA_FLOW on routes with an object), a per-hop realm, or
 * a gateway no connected prefix gives a device for.
 */
import * as C from '../../netlink/constants';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import type { RouteMessage } from '../../netlink/route-codec';
import type { ConnectedResolver } from './connected-prefixes';
import type { ForwardingObjects } from './forwarding-objects';
import { keyOf, type Hop, type NhObject } from './nh-object';

/** What picks a net's forwarding object (forwarding-objects.ts): its route's source, and its next-best route. */
export interface ForwardingOf {
  /** The primary's source (a forwarding object is keyed by sources and next hops). */
  readonly primarySource: string | undefined;
  /** The next-best route, converted (its next hops resolved), and its source. */
  readonly backup?: { readonly route: RouteMessage; readonly source: string | undefined };
  /** The object a route of the net is on in the kernel now: an adopted object with the same content is claimed for it first. */
  readonly hint?: number;
  /** A route ranked above the best that next-hop tracking holds unusable, converted: the net stays on the object held for it (ForwardingObjects.heldFor). */
  readonly held?: { readonly route: RouteMessage; readonly source: string | undefined };
}

/** What RouteHops reads and interns in the objects' books (NexthopObjects). */
export interface HopBooks {
  /** Routes go through objects (the option, and the kernel supports them). */
  enabled(): boolean;
  readonly forwarding: ForwardingObjects;
  readonly protocol: number;
  readonly connected: ConnectedResolver;
  /** The object with this content, if there is one. */
  lookup(key: string): NhObject | undefined;
  /** The object with this content, made (state new) when there is none. */
  intern(m: NexthopMessage, members: NhObject[] | undefined): NhObject;
}

export class RouteHops {
  constructor(private readonly books: HopBooks) {}

  /** NexthopObjects.forRoute. */
  forRoute(route: RouteMessage, fwd?: ForwardingOf): { route: RouteMessage; obj: NhObject } | undefined {
    const forwarding = this.books.forwarding;
    const singles = this.hopsFor(route, fwd?.backup !== undefined && forwarding.enabled);
    if (singles === undefined) return undefined;
    let obj: NhObject;
    if (fwd !== undefined && forwarding.enabled) {
      const held = fwd.held === undefined ? undefined : this.heldFor(fwd.held, { source: fwd.primarySource, hops: singles }, fwd.hint);
      const b = fwd.backup === undefined || held !== undefined ? undefined : this.hopsFor(fwd.backup.route);
      obj = held ?? forwarding.intern({ source: fwd.primarySource, hops: singles }, b === undefined ? undefined : { source: fwd.backup!.source, hops: b }, fwd.hint);
    } else if (singles.length === 1) obj = singles[0]!.obj;
    else {
      const m: NexthopMessage = { id: 0, family: undefined, protocol: this.books.protocol, scope: 0, flags: 0, group: singles.map((s) => ({ id: s.obj.id, weight: s.weight })) };
      obj = this.books.intern(m, singles.map((s) => s.obj));
    }
    const out: RouteMessage = { ...route, flags: route.flags & ~C.RTNH_F_ONLINK, nhId: obj.id };
    delete out.gateway;
    delete out.via;
    delete out.oif;
    delete out.multipath;
    return { route: out, obj };
  }

  /** The object held on `best` for the held route (ForwardingObjects.internHeld). */
  private heldFor(held: { readonly route: RouteMessage; readonly source: string | undefined }, best: { source: string | undefined; hops: readonly Hop[] }, hint: number | undefined): NhObject | undefined {
    const hops = this.hopsFor(held.route);
    return hops === undefined ? undefined : this.books.forwarding.internHeld({ source: held.source, hops }, best, hint);
  }

  /** The hop objects a route's next hops are, among those that exist (none made). */
  findHops(route: RouteMessage): NhObject[] {
    const out: NhObject[] = [];
    this.eachHop(route, (m) => {
      const o = this.books.lookup(keyOf(m));
      if (o !== undefined) out.push(o);
    });
    return out;
  }

  /**
   * A route's next hops as hop objects with weights, sorted by id (interned, not referenced); undefined
   * when it is sent as it is (see the module comment).
   */
  hopsFor(route: RouteMessage, keepDevice = false): Hop[] | undefined {
    const singles: Hop[] = [];
    const n = route.multipath?.length ?? 1;
    const ok = this.eachHop(route, (m, weight) => singles.push({ obj: this.books.intern(m, undefined), weight: n === 1 ? 1 : weight }), keepDevice);
    return ok ? singles.sort((a, b) => a.obj.id - b.obj.id) : undefined;
  }

  /** Each next hop of a route as an object's content (its device resolved; `keepDevice`: ForwardingObjects.deviceOf); false when it is sent as it is. */
  private eachHop(route: RouteMessage, fn: (m: NexthopMessage, weight: number) => void, keepDevice = false): boolean {
    if (!this.books.enabled() || route.type !== C.RTN_UNICAST || route.flow !== undefined) return false;
    const hops = route.multipath ?? [{ gateway: route.gateway, via: route.via, oif: route.oif ?? 0, flags: route.flags, weight: 1, flow: undefined }];
    const msgs: NexthopMessage[] = [];
    for (const h of hops) {
      const gw = h.gateway ?? h.via;
      let oif = h.oif;
      if (oif === 0 && gw !== undefined) oif = this.books.connected.deviceFor(gw) ?? (keepDevice ? this.books.forwarding.deviceOf(gw) : undefined) ?? 0;
      if (oif === 0 || h.flow !== undefined) return false;
      const m: NexthopMessage = { id: 0, family: gw?.family ?? route.family, protocol: this.books.protocol, scope: 0, flags: h.flags & C.RTNH_F_ONLINK, oif };
      if (gw !== undefined) m.gateway = gw;
      msgs.push(m);
    }
    msgs.forEach((m, i) => fn(m, hops[i]!.weight));
    return true;
  }
}
