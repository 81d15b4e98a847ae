/**
 * KernelRoutes: wanted routes interned by what the kernel sees (BGP
 * attributes left out, filter settings by content), refcounted ids reused,
 * the same-as answers forgotten with the routes they name.
 */
import { parseAddr } from '../../../src/lib/addr';
import { parseRouteLine } from '../../../src/config/route-syntax';
import { KernelRoutes } from '../../../src/proto/kernel/kernel-routes';
import { BgpAttrs, BgpNeighbor, BgpPath } from '../../../src/route/bgp';

const T4 = { family: 4 as const, table: 254, protocol: 144 };
const links = { indexOf: (n: string) => ({ veth0: 3 })[n] };
const attrs = (line: string) => parseRouteLine(`10.0.0.0/24 ${line}`).attrs;

describe('KernelRoutes', () => {
  it('shares one wanted route among attribute sets that differ only in BGP attributes', () => {
    const routes = new KernelRoutes(T4, links);
    const neighbor = BgpNeighbor.of({ address: parseAddr('192.0.2.2'), as: 65001, localAs: 65000 });
    const base = attrs('via 192.0.2.2');
    const ids = [1, 2, 3].map((n) => routes.wanted(base.with({ bgp: BgpAttrs.of(BgpPath.of({ asPath: [65001, n] }), neighbor) }), undefined, 'bgp1'));
    expect(new Set(ids).size).toBe(1);
    expect(routes.wanted(base, undefined, 'bgp1')).toBe(ids[0]);
    expect(routes.get(ids[0]!).route!.gateway!.toString()).toBe('192.0.2.2');
    expect(routes.wanted(base, undefined, 'static1')).not.toBe(ids[0]);
  });

  it('takes filter settings by content: equal ones made apart share a route, others do not', () => {
    const routes = new KernelRoutes(T4, links);
    const a = attrs('via 192.0.2.2');
    const mk = () => ({ metric: 50, prefsrc: parseAddr('192.0.2.1'), metrics: { mtu: 1400 }, locked: ['mtu' as const] });
    const id = routes.wanted(a, mk(), undefined);
    expect(routes.wanted(a, mk(), undefined)).toBe(id);
    expect(routes.wanted(a, { ...mk(), metric: 51 }, undefined)).not.toBe(id);
    expect(routes.wanted(a, { ...mk(), metrics: { mtu: 1500 } }, undefined)).not.toBe(id);
    expect(routes.wanted(a, { ...mk(), locked: [] }, undefined)).not.toBe(id);
    expect(routes.wanted(a, undefined, undefined)).not.toBe(id);
    expect(routes.get(id).priority).toBe(50);
  });

  it('forgets a route its last user lets go, reuses its id, and drops the answers that named it', () => {
    const routes = new KernelRoutes(T4, links);
    const w = routes.wanted(attrs('via 192.0.2.2'), undefined, undefined);
    routes.ref(w);
    const seen = { ...routes.get(w).route!, gateway: parseAddr('192.0.2.2') };
    const h = routes.seen(seen);
    routes.ref(h);
    expect(routes.seen(seen)).toBe(h);
    expect(routes.same(w, h)).toBe(true);
    expect(routes.get(w).sameAs.get(h)).toBe(true);
    routes.unref(h);
    expect(routes.get(w).sameAs.has(h)).toBe(false);
    expect(routes.size).toBe(1);
    const other = routes.seen({ ...seen, gateway: parseAddr('192.0.2.3') });
    expect(other).toBe(h); // the id is reused
    routes.ref(other);
    expect(routes.same(w, other)).toBe(false);
    routes.unref(w);
    routes.unref(other);
    expect(routes.size).toBe(0);
  });

  it('converts routes naming a device again when links change; a changed one gets a new id', () => {
    const ifs: Record<string, number> = { veth0: 3 };
    const routes = new KernelRoutes(T4, { indexOf: (n: string) => ifs[n] });
    const dev = routes.wanted(attrs('dev veth1'), undefined, undefined);
    const via = routes.wanted(attrs('via 192.0.2.2'), undefined, undefined);
    routes.ref(dev);
    routes.ref(via);
    expect(routes.get(dev).error?.errnoName).toBe('ENODEV');
    ifs.veth1 = 4;
    const moved = routes.reconvert();
    expect([...moved.keys()]).toEqual([dev]);
    const now = moved.get(dev)!;
    expect(routes.get(now).route!.oif).toBe(4);
    expect(routes.wanted(attrs('dev veth1'), undefined, undefined)).toBe(now);
    expect(routes.get(dev).error?.errnoName).toBe('ENODEV'); // kept for the changes that named it
    routes.unref(dev);
    expect(routes.wanted(attrs('via 192.0.2.2'), undefined, undefined)).toBe(via);
  });
});
