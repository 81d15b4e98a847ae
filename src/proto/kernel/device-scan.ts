/**
 * Device scans: what a link or address change costs a KernelSync.
 *
 * The kernel drops routes without telling anyone (IPv4) when their device
 * goes down or goes away, and deletes nexthop objects on a device that goes
 * down or loses carrier together with every route on them. A whole-table
 * dump after every such change finds them, at the price of a million routes
 * decoded per flap. A device scan asks only what can have changed:
 *
 *  - which nets hold a route of ours through one of the devices: its own
 *    device or hops, or the device whose connected prefix covers its
 *    gateway. A route on a nexthop object of ours is not asked about: the
 *    link event told from our books what the kernel deleted with the device
 *    (link-flush.ts), or asked for the whole table when it could not. The
 *    held routes are a handful of interned shapes, asked once each; the nets
 *    are one pass over the route store's columns. None: nothing to dump;
 *  - else the kernel dumps our routes of our table through each device
 *    (NETLINK_GET_STRICT_CHK filters by table, protocol and RTA_OIF, routes
 *    on nexthop objects included), and a net whose held route is not in that
 *    dump (at its metric) has lost it: it is planned again.
 *
 * A held route whose device cannot be told (a gateway no connected prefix
 * covers, an object we do not know) needs the whole-table scan:
 * findHeldThrough() says 'full'. An address that goes takes routes on any
 * device (those preferring it as their source): SyncNotices asks for the
 * whole-table scan then.
 */
import * as C from '../../netlink/constants';
import type { DumpedRoutes } from '../../netlink/route-dump';
import type { KernelRoutes } from './kernel-routes';
import type { ConnectedResolver } from './nexthop-objects';
import { effectivePriority } from './normalize';
import { MANY, type RouteStore } from './route-store';

/** What a device scan is asked to check (gathered between two scans). */
export class DeviceScanRequest {
  /** Devices that went down or away. */
  readonly devices = new Set<number>();
  /** Something asked for the whole table (an overflow, a conflict, an address gone...). */
  full = false;

  /** Takes what was asked so far, and starts a new request. */
  take(): { devices: Set<number>; full: boolean } {
    const out = { devices: new Set(this.devices), full: this.full };
    this.devices.clear();
    this.full = false;
    return out;
  }
}

export interface HeldThrough {
  /** Nets holding a route of ours through one of the devices. */
  readonly ids: number[];
  /** Those routes (KernelRoute ids). */
  readonly rids: ReadonlySet<number>;
}

/** The nets that hold a route of ours through one of `devices`, or 'full' when some held route's device cannot be told. */
export function findHeldThrough(store: RouteStore, routes: KernelRoutes, connected: ConnectedResolver, devices: ReadonlySet<number>): HeldThrough | 'full' {
  const verdict = new Map<number, boolean | 'full'>();
  const ask = (rid: number): boolean | 'full' => {
    let v = verdict.get(rid);
    if (v === undefined) {
      v = through(routes, rid, connected, devices);
      verdict.set(rid, v);
    }
    return v;
  };
  const ids: number[] = [];
  const rids = new Set<number>();
  let full = false;
  store.forEach((id) => {
    const h = store.have[id]!;
    // Most nets hold one route, on an object, asked about once: no list made for them.
    if (full || h === 0 || (h !== MANY && ask(h) === false)) return;
    let hit = false;
    for (const rid of store.haves(id)) {
      const v = ask(rid);
      if (v === 'full') full = true;
      else if (v) {
        hit = true;
        rids.add(rid);
      }
    }
    if (hit) ids.push(id);
  });
  return full ? 'full' : { ids, rids };
}

/** Whether the held route `rid` goes through one of `devices` ('full': cannot tell). */
function through(routes: KernelRoutes, rid: number, connected: ConnectedResolver, devices: ReadonlySet<number>): boolean | 'full' {
  const r = routes.get(rid);
  const m = r.route;
  if (m === undefined || m.type !== C.RTN_UNICAST) return false;
  if (m.nhId !== undefined) {
    if (r.nh === undefined) return m.oif !== undefined ? devices.has(m.oif) : 'full';
    return false; // on an object of ours: the link event has accounted for it (link-flush.ts)
  }
  const hops = m.multipath ?? [{ gateway: m.gateway, via: m.via, oif: m.oif ?? 0 }];
  for (const h of hops) {
    let oif: number | undefined = h.oif !== 0 ? h.oif : undefined;
    const gw = h.gateway ?? h.via;
    if (oif === undefined && gw !== undefined) oif = connected.deviceFor(gw);
    if (oif === undefined) return 'full';
    if (devices.has(oif)) return true;
  }
  return false;
}

/**
 * After the dumps of the devices' routes: each net of `held` whose route through them is not in
 * any dump (at its metric) has lost it. Returns those nets (their view is already corrected).
 */
export function dropMissing(store: RouteStore, routes: KernelRoutes, held: HeldThrough, dumps: readonly DumpedRoutes[]): number[] {
  const present = new Map<number, number[]>();
  const nets = store.nets;
  for (const d of dumps) {
    let lastRoute: unknown;
    let prio = 0;
    d.forEach((family, len, w0, w1, w2, w3, route) => {
      if (route !== lastRoute) {
        lastRoute = route;
        prio = effectivePriority(route);
      }
      const id = family === 4 ? nets.find4(w0, len) : nets.find6(w0, w1, w2, w3, len);
      if (id < 0) return;
      const list = present.get(id);
      if (list === undefined) present.set(id, [prio]);
      else list.push(prio);
    });
  }
  const lost: number[] = [];
  for (const id of held.ids) {
    const have = present.get(id) ?? [];
    let changed = false;
    for (const rid of store.haves(id)) {
      if (!held.rids.has(rid)) continue;
      const prio = routes.get(rid).priority;
      if (have.includes(prio)) continue;
      store.removeHave(id, prio);
      changed = true;
    }
    if (changed) lost.push(id);
  }
  return lost;
}
