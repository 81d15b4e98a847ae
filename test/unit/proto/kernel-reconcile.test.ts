/**
 * Normalization (what the kernel reports back equals what we sent) and the
 * reconcile decisions, without a kernel.
 */
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import { parseRouteLine } from '../../../src/config/route-syntax';
import * as C from '../../../src/netlink/constants';
import type { RouteMessage } from '../../../src/netlink/route-codec';
import { toKernelRoute, fromKernelRoute, type KernelTarget } from '../../../src/proto/kernel/convert';
import { canonicalRoute, sameKernelRoute } from '../../../src/proto/kernel/normalize';
import { KernelRoutes } from '../../../src/proto/kernel/kernel-routes';
import { RouteStore, type PlanOut } from '../../../src/proto/kernel/route-store';

const T4: KernelTarget = { family: 4, table: 254, protocol: 144 };
const T6: KernelTarget = { family: 6, table: 1000, protocol: 144 };
const links = { indexOf: (n: string) => ({ veth0: 3, veth1: 4 })[n] };

function want(line: string, target = T4): RouteMessage {
  const { net, attrs } = parseRouteLine(line);
  return toKernelRoute(net, attrs, undefined, target, links);
}

describe('normalization', () => {
  it('treats a missing IPv6 metric as 1024 and a missing preference as medium', () => {
    const w = want('2001:db8:10::/48 via 2001:db8:1::2 dev veth0', T6);
    expect(sameKernelRoute(w, { ...w, priority: 1024, pref: C.ICMPV6_ROUTER_PREF_MEDIUM })).toBe(true);
    expect(sameKernelRoute(w, { ...w, priority: 1025 })).toBe(false);
    expect(sameKernelRoute(w, { ...w, pref: C.ICMPV6_ROUTER_PREF_HIGH })).toBe(false);
  });

  it('gives IPv4 dev-only routes scope link, and ignores the scope of IPv6 routes', () => {
    expect(want('10.0.0.0/24 dev veth0').scope).toBe(C.RT_SCOPE_LINK);
    expect(want('10.0.0.0/24 via 192.0.2.2').scope).toBe(C.RT_SCOPE_UNIVERSE);
    const w6 = want('2001:db8:13::/48 dev veth1', T6);
    expect(sameKernelRoute(w6, { ...w6, scope: 200 })).toBe(true);
    const w4 = want('10.0.0.0/24 dev veth0');
    expect(sameKernelRoute(w4, { ...w4, scope: 0 })).toBe(false);
  });

  it('ignores the kernel state flags LINKDOWN and DEAD but not ONLINK', () => {
    const w = want('10.0.0.0/24 via 192.0.2.2 dev veth0');
    expect(sameKernelRoute(w, { ...w, flags: C.RTNH_F_LINKDOWN | C.RTNH_F_DEAD })).toBe(true);
    expect(sameKernelRoute(w, { ...w, flags: C.RTNH_F_ONLINK })).toBe(false);
  });

  it('ignores RTA_CACHEINFO and other attributes it does not set', () => {
    const w = want('10.0.0.0/24 via 192.0.2.2 dev veth0');
    expect(sameKernelRoute(w, { ...w, unknown: [{ type: C.RTA_CACHEINFO, bytes: Buffer.alloc(16) }] })).toBe(true);
  });

  it('compares multipath routes regardless of hop order, with weights', () => {
    const w = want('10.0.0.0/24 nexthop via 192.0.2.2 dev veth0 weight 2 nexthop via 198.51.100.2 dev veth1');
    const reversed = { ...w, multipath: [...w.multipath!].reverse() };
    expect(sameKernelRoute(w, reversed)).toBe(true);
    const reweighted = { ...w, multipath: w.multipath!.map((h) => ({ ...h, weight: 1 })) };
    expect(sameKernelRoute(w, reweighted)).toBe(false);
  });

  it('matches a gateway sent without a device on whatever device the kernel resolved', () => {
    const w = want('10.0.0.0/24 via 192.0.2.2');
    expect(w.oif).toBeUndefined();
    expect(sameKernelRoute(w, { ...w, oif: 3 })).toBe(true);
    expect(sameKernelRoute(w, { ...w, oif: 3, gateway: parseAddr('192.0.2.3') })).toBe(false);
  });

  it('drops zero metrics and applies the kernel clamps', () => {
    const w = want('10.0.0.0/24 via 192.0.2.2 advmss 70000');
    expect(sameKernelRoute(w, { ...w, metrics: { advmss: 65495 } })).toBe(true);
    const plain = want('10.0.0.0/24 via 192.0.2.2');
    expect(canonicalRoute(plain)).toBe(canonicalRoute({ ...plain, metrics: { mtu: 0 } }));
  });

  it('ignores next hops of blackhole routes (IPv6 reports dev lo)', () => {
    const w = want('blackhole 2001:db8::/48', T6);
    expect(sameKernelRoute(w, { ...w, oif: 1 })).toBe(true);
  });

  it('never matches a route of another protocol or table', () => {
    const w = want('10.0.0.0/24 via 192.0.2.2');
    expect(sameKernelRoute(w, { ...w, protocol: 4 })).toBe(false);
    expect(sameKernelRoute(w, { ...w, table: 100 })).toBe(false);
  });
});

describe('reconcile decisions (RouteStore.plan)', () => {
  const net = parsePrefix('10.0.0.0/24');
  const base = want('10.0.0.0/24 via 192.0.2.2 dev veth0');
  /** A store with one net wanting `line` (undefined: nothing) and the kernel holding `held`. */
  function planFor(line: string | undefined, held: RouteMessage[]): { ops: string[]; store: RouteStore; routes: KernelRoutes; id: number } {
    const routes = new KernelRoutes(T4, links);
    const store = new RouteStore(4, routes);
    const id = store.idOf(net);
    if (line !== undefined) store.setWant(id, routes.wanted(parseRouteLine(line).attrs, undefined, 'static1'));
    for (const h of held) store.addHave(id, routes.seen(h));
    const out: PlanOut = { n: 0, cmds: [], ids: [] };
    const n = store.plan(id, out);
    const ops = out.cmds.slice(0, n).map((c, k) => `${c} ${routes.get(out.ids[k]!).priority}`);
    return { ops, store, routes, id };
  }

  it('leaves an identical route alone, and holds the wanted route itself from then on', () => {
    const { ops, store, id } = planFor('10.0.0.0/24 via 192.0.2.2 dev veth0', [{ ...base, unknown: [] }]);
    expect(ops).toEqual([]);
    expect(store.have[id]).toBe(store.want[id]);
  });

  it('replaces a route of ours that differs, in place', () => {
    expect(planFor('10.0.0.0/24 via 192.0.2.2 dev veth0', [{ ...base, gateway: parseAddr('192.0.2.9') }]).ops).toEqual(['replace 0']);
  });

  it('adds (never replaces) when nothing of ours is at that metric', () => {
    expect(planFor('10.0.0.0/24 via 192.0.2.2 dev veth0', []).ops).toEqual(['add 0']);
  });

  it('moves to a new metric make-before-break: add, then delete the old', () => {
    expect(planFor('10.0.0.0/24 via 192.0.2.2 dev veth0 metric 20', [{ ...base, priority: 10 }]).ops).toEqual(['add 20', 'delete 10']);
  });

  it('keeps the route at the wanted metric and deletes the others', () => {
    expect(planFor('10.0.0.0/24 via 192.0.2.2 dev veth0 metric 20', [{ ...base, priority: 10 }, { ...base, priority: 20 }, { ...base, priority: 30 }]).ops).toEqual(['delete 10', 'delete 30']);
  });

  it('deletes what nothing wants, naming net, table, protocol and metric only', () => {
    const { ops, routes } = planFor(undefined, [{ ...base, priority: 10 }]);
    expect(ops).toEqual(['delete 10']);
    const del = routes.deleteTemplate(10).route;
    expect(del).toMatchObject({ table: 254, protocol: 144, type: C.RTN_UNSPEC, scope: C.RT_SCOPE_NOWHERE, priority: 10 });
    expect(del.gateway).toBeUndefined();
  });

  it('plans nothing for a route that cannot be expressed (an unknown device), and keeps what the kernel has', () => {
    expect(planFor('10.0.0.0/24 dev veth9', [{ ...base }]).ops).toEqual([]);
  });

  it('forgets kernel routes nothing refers to any more', () => {
    const { store, routes, id } = planFor('10.0.0.0/24 via 192.0.2.2 dev veth0', [{ ...base, gateway: parseAddr('192.0.2.9') }, { ...base, priority: 5 }]);
    expect(routes.size).toBe(3);
    store.drop(id);
    expect(routes.size).toBe(0);
  });
});

describe('conversion', () => {
  it('puts the dedicated metric above the route and the filter', () => {
    const { net, attrs } = parseRouteLine('10.0.0.0/24 via 192.0.2.2 metric 5');
    expect(toKernelRoute(net, attrs, { metric: 7 }, T4, links).priority).toBe(7);
    expect(toKernelRoute(net, attrs, { metric: 7 }, { ...T4, metric: 9 }, links).priority).toBe(9);
  });

  it('refuses a device it does not know, with ENODEV', () => {
    const { net, attrs } = parseRouteLine('10.0.0.0/24 dev nosuch0');
    expect(() => toKernelRoute(net, attrs, undefined, T4, links)).toThrow(/nosuch0/);
  });

  it('turns a kernel route back into the attributes it came from (learn)', () => {
    const line = '10.0.0.0/24 via 192.0.2.2 dev veth0 metric 5 mtu lock 1400';
    const w = want(line);
    const attrs = fromKernelRoute({ ...w, protocol: 4 }, (i) => (i === 3 ? 'veth0' : undefined))!;
    expect(attrs.toString()).toBe('via 192.0.2.2 dev veth0 metric 5 mtu lock 1400');
    expect(fromKernelRoute({ ...w, type: C.RTN_LOCAL }, () => undefined)).toBeUndefined();
  });

  it('keeps IPv6 table ids above 255', () => {
    expect(want('2001:db8::/32 via 2001:db8:1::2', T6).table).toBe(1000);
    expect(parsePrefix('2001:db8::/32').equals(want('2001:db8::/32 via 2001:db8:1::2', T6).dst)).toBe(true);
  });
});
