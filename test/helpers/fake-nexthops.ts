/**
 * The fake kernel's nexthop objects (test/helpers/fake-kernel.ts), with the
 * rules of Linux 6.x the sync depends on:
 *  - add (CREATE|EXCL) of an id that exists: EEXIST; replace: the object
 *    at that id; delete of a missing id: ENOENT; deleting an object deletes
 *    every route using it (and takes it out of groups; a group left empty
 *    goes too);
 *  - a gateway or device object needs its device (ENODEV), up (ENETDOWN),
 *    and a gateway inside a connected prefix of it unless onlink
 *    (ENETUNREACH); a group needs its members (EINVAL);
 *  - a route naming an id that does not exist: EINVAL "Nexthop id does not
 *    exist"; with an id it must carry no gateway, device or multipath; the
 *    kernel reports the object's gateway and device beside the id (a group's
 *    as multipath);
 *  - a link going down deletes its objects and the routes on them, and
 *    tells nobody.
 * Changes are notified (RTM_NEWNEXTHOP / DELNEXTHOP) to every monitor: the
 * kernel filter on the pipeline's port does not cover the client socket
 * objects are made through.
 */
import { constants as osConstants } from 'node:os';
import * as C from '../../src/netlink/constants';
import type { NexthopMessage } from '../../src/netlink/nexthop-codec';
import type { RouteMessage, RouteNextHop } from '../../src/netlink/route-codec';
import type { FakeLink } from './fake-kernel';

const { EEXIST, ENOENT, ENETUNREACH, ENODEV, ENETDOWN, EINVAL } = osConstants.errno;

export type KernelAnswer = { errno: number; extAck?: string } | undefined;

export class FakeNexthops {
  readonly objects = new Map<number, NexthopMessage>();
  /** Set false: a kernel without nexthop objects (dumps fail EOPNOTSUPP). */
  supported = true;

  constructor(private readonly links: ReadonlyMap<number, FakeLink>) {}

  /** Applies one object change; `removeRoutes` drops the routes on the ids it is given. */
  apply(cmd: 'add' | 'replace' | 'delete', m: NexthopMessage, removeRoutes: (ids: Set<number>) => void): KernelAnswer {
    const there = this.objects.get(m.id);
    if (cmd === 'delete') {
      if (there === undefined) return { errno: ENOENT, extAck: 'Nexthop id does not exist' };
      removeRoutes(this.remove(new Set([m.id])));
      return undefined;
    }
    if (there !== undefined && cmd === 'add') return { errno: EEXIST, extAck: 'Nexthop id already exists' };
    if (m.id === 0) return { errno: EINVAL, extAck: 'Invalid nexthop id' };
    if (m.group !== undefined) {
      if (m.group.some((g) => !this.objects.has(g.id) || this.objects.get(g.id)!.group !== undefined)) return { errno: EINVAL, extAck: 'Invalid nexthop id' };
    } else if (!m.blackhole) {
      const l = m.oif === undefined ? undefined : this.links.get(m.oif);
      if (l === undefined) return { errno: ENODEV, extAck: 'Device attribute required for non-blackhole and non-fdb nexthops' };
      if (!l.up) return { errno: ENETDOWN, extAck: 'Device for nexthop is not up' };
      if (m.gateway !== undefined && !(m.flags & C.RTNH_F_ONLINK) && !l.connected.some((p) => p.contains(m.gateway!))) return { errno: ENETUNREACH, extAck: 'Nexthop has invalid gateway' };
    }
    this.objects.set(m.id, { ...m, scope: m.gateway ? C.RT_SCOPE_UNIVERSE : C.RT_SCOPE_LINK });
    return undefined;
  }

  /** Objects on a device that went down, and groups left empty: gone, with their routes (silently). */
  linkDown(index: number, removeRoutes: (ids: Set<number>) => void): void {
    const ids = new Set<number>();
    for (const [id, o] of this.objects) if (o.oif === index) ids.add(id);
    if (ids.size > 0) removeRoutes(this.remove(ids));
  }

  /** Removes `ids`, takes them out of groups (an emptied group goes too); returns every id removed. */
  private remove(ids: Set<number>): Set<number> {
    for (const id of ids) this.objects.delete(id);
    for (const [id, o] of this.objects) {
      if (o.group === undefined || !o.group.some((g) => ids.has(g.id))) continue;
      const rest = o.group.filter((g) => !ids.has(g.id));
      if (rest.length === 0) {
        this.objects.delete(id);
        ids.add(id);
      } else this.objects.set(id, { ...o, group: rest });
    }
    return ids;
  }

  /** A route naming an object, as the kernel stores and reports it; or the refusal. */
  stored(r: RouteMessage): RouteMessage | { errno: number; extAck: string } {
    const o = this.objects.get(r.nhId!);
    if (o === undefined) return { errno: EINVAL, extAck: 'Nexthop id does not exist' };
    if (r.gateway !== undefined || r.oif !== undefined || r.multipath !== undefined || r.via !== undefined) return { errno: EINVAL, extAck: 'Nexthop specification and nexthop id are mutually exclusive' };
    const out: RouteMessage = { ...r };
    if (o.group !== undefined) {
      out.multipath = o.group.map((g): RouteNextHop => {
        const m = this.objects.get(g.id)!;
        const h: RouteNextHop = { oif: m.oif ?? 0, weight: g.weight, flags: m.flags };
        if (m.gateway !== undefined) h[m.gateway.family === r.family ? 'gateway' : 'via'] = m.gateway;
        return h;
      });
    } else {
      if (o.oif !== undefined) out.oif = o.oif;
      if (o.gateway !== undefined) out[o.gateway.family === r.family ? 'gateway' : 'via'] = o.gateway;
    }
    return out;
  }
}
