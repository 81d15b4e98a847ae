/**
 * KernelNexthopView: every nexthop object in the namespace (ours and
 * others'), as the dumps and notifications tell it, so a foreign route that
 * names one (RTA_NH_ID: FRR installs all its routes that way) can be learned
 * with its gateway and device.
 *
 * With net.ipv4.nexthop_compat_mode on (the default) the kernel reports a
 * route's next hops beside its id, and a change of the object as route
 * notifications: the route is taken as reported. With it off, a route
 * carries the id alone and expand() fills in the object's next hops (a
 * group's members as multipath); the kernel then says nothing to the routes
 * when the object changes, so learned routes follow at the next scan.
 */
import * as C from '../../netlink/constants';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import type { RouteMessage, RouteNextHop } from '../../netlink/route-codec';

export class KernelNexthopView {
  private readonly objects = new Map<number, NexthopMessage>();

  /** A dump of every object: the view becomes it. */
  reset(dumped: readonly NexthopMessage[]): void {
    this.objects.clear();
    for (const m of dumped) this.objects.set(m.id, m);
  }

  /** A nexthop notification (anyone's). */
  note(m: NexthopMessage, deleted: boolean): void {
    if (deleted) this.objects.delete(m.id);
    else this.objects.set(m.id, m);
  }

  /** `r` with the next hops of the object it names, when it carries the id alone; else `r` itself. */
  expand(r: RouteMessage): RouteMessage {
    if (r.nhId === undefined || r.gateway !== undefined || r.via !== undefined || r.oif !== undefined || r.multipath !== undefined) return r;
    const o = this.objects.get(r.nhId);
    if (o === undefined) return r;
    if (o.blackhole) return { ...r, type: C.RTN_BLACKHOLE };
    const out: RouteMessage = { ...r };
    if (o.group !== undefined) {
      const hops: RouteNextHop[] = [];
      for (const g of o.group) {
        const m = this.objects.get(g.id);
        if (m === undefined || m.group !== undefined) return r;
        const h: RouteNextHop = { oif: m.oif ?? 0, weight: g.weight, flags: m.flags & C.RTNH_F_ONLINK };
        if (m.gateway !== undefined) h[m.gateway.family === r.family ? 'gateway' : 'via'] = m.gateway;
        hops.push(h);
      }
      out.multipath = hops;
      return out;
    }
    if (o.oif !== undefined) out.oif = o.oif;
    if (o.gateway !== undefined) out[o.gateway.family === r.family ? 'gateway' : 'via'] = o.gateway;
    out.flags |= o.flags & C.RTNH_F_ONLINK;
    return out;
  }
}
