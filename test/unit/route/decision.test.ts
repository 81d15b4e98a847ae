import fc from 'fast-check';
import { parseAddr } from '../../../src/lib/addr';
import { RouteAttrs } from '../../../src/route/attrs';
import { BgpAttrs, BgpNeighbor, BgpPath, parseCommunity, type BgpPathSpec } from '../../../src/route/bgp';
import { chainWith, chainWithout, compareRoutes, explainChain, mergeable, orderRoutes, whyBefore } from '../../../src/route/decision';
import { Route } from '../../../src/route/route';
import { RouteSource } from '../../../src/route/source';

const id = (s: string): number => parseAddr(s).w0 >>> 0;
const comm = (s: string): number => parseCommunity(s)!;

interface Peer {
  addr: string;
  as?: number;
  localAs?: number;
  rid?: string;
  pref?: number;
  always?: boolean;
}

/** A route from neighbour `peer` with path attributes `path` (a source per neighbour, as the stream protocol makes). */
function bgpRoute(peer: Peer, path: BgpPathSpec, src?: RouteSource): Route {
  const neighbor = BgpNeighbor.of({
    address: parseAddr(peer.addr),
    ...(peer.as !== undefined ? { as: peer.as } : {}),
    localAs: peer.localAs ?? 65000,
    ...(peer.rid !== undefined ? { routerId: id(peer.rid) } : {}),
  });
  const attrs = RouteAttrs.of({ nexthops: [{ gateway: parseAddr(peer.addr) }], bgp: BgpAttrs.of(BgpPath.of(path), neighbor) });
  return new Route(src ?? new RouteSource(`bgp/exa/${peer.addr}`, peer.pref ?? 100, { alwaysCompareMed: peer.always ?? false }), attrs);
}

const plain = (name: string, pref = 100): Route => new Route(new RouteSource(name, pref), RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.1') }] }));

/** The winner of two routes, and why, whichever order they are given in. */
function duel(a: Route, b: Route): { first: Route; why: string | undefined } {
  const ab = orderRoutes([a, b]);
  expect(orderRoutes([b, a])).toEqual(ab);
  return { first: ab[0]!, why: whyBefore(ab[0]!, ab[1]!) };
}

const A = { addr: '192.0.2.10', as: 65001, rid: '10.0.0.1' };
const B = { addr: '198.51.100.9', as: 65002, rid: '10.0.0.2' };

describe('the decision process', () => {
  it('prefers higher source preference over any BGP attribute', () => {
    const a = bgpRoute({ ...A, pref: 90 }, { localPref: 500 });
    const b = bgpRoute(B, { localPref: 10 });
    expect(duel(a, b)).toEqual({ first: b, why: 'preference' });
  });

  it('prefers a route with BGP attributes at equal preference, whatever the names', () => {
    const a = plain('aaa');
    const b = bgpRoute(B, {});
    expect(duel(a, b)).toEqual({ first: b, why: 'BGP attributes' });
  });

  it('prefers the higher local preference (missing counts as 100)', () => {
    expect(duel(bgpRoute(A, { localPref: 99, asPath: [1] }), bgpRoute(B, { asPath: [1, 2, 3] }))).toMatchObject({ why: 'local preference', first: { src: { name: 'bgp/exa/198.51.100.9' } } });
    expect(duel(bgpRoute(A, { localPref: 101, asPath: [1, 2, 3] }), bgpRoute(B, { asPath: [1] }))).toMatchObject({ why: 'local preference', first: { src: { name: 'bgp/exa/192.0.2.10' } } });
  });

  it('prefers the shorter AS path: a set counts one, confederation segments none', () => {
    const long = bgpRoute(A, { asPath: [65001, 65010, 65011, 65012] });
    const short = bgpRoute(B, { asPath: [65002] });
    expect(duel(long, short)).toEqual({ first: short, why: 'AS path length' });
    const withSet = bgpRoute(A, { asPath: [{ type: 'sequence', asns: [65001] }, { type: 'set', asns: [1, 2, 3, 4] }] });
    const confed = bgpRoute(B, { asPath: [{ type: 'confed-sequence', asns: [64512, 64513, 64514] }, { type: 'sequence', asns: [65002, 7, 8] }] });
    expect(withSet.attrs.bgp!.path.pathLength).toBe(2);
    expect(confed.attrs.bgp!.path.pathLength).toBe(3);
    expect(duel(withSet, confed)).toEqual({ first: withSet, why: 'AS path length' });
  });

  it('prefers the lower origin: igp, egp, incomplete (missing counts as incomplete)', () => {
    expect(duel(bgpRoute(A, { origin: 'egp' }), bgpRoute(B, { origin: 'igp' }))).toMatchObject({ why: 'origin', first: { src: { name: 'bgp/exa/198.51.100.9' } } });
    expect(duel(bgpRoute(A, {}), bgpRoute(B, { origin: 'egp' }))).toMatchObject({ why: 'origin', first: { src: { name: 'bgp/exa/198.51.100.9' } } });
  });

  it('compares MED only between routes of the same neighbouring AS (missing counts as 0)', () => {
    const sameAs = { asPath: [65010, 1] };
    expect(duel(bgpRoute(A, { ...sameAs, med: 50 }), bgpRoute(B, { ...sameAs, med: 10 }))).toMatchObject({ why: 'MED', first: { src: { name: 'bgp/exa/198.51.100.9' } } });
    expect(duel(bgpRoute(A, { ...sameAs, med: 1 }), bgpRoute(B, sameAs))).toMatchObject({ why: 'MED', first: { src: { name: 'bgp/exa/198.51.100.9' } } });
    // Different neighbouring ASes: MED is skipped, the router id decides (A's is lower).
    expect(duel(bgpRoute(A, { asPath: [65001], med: 50 }), bgpRoute(B, { asPath: [65002], med: 10 }))).toMatchObject({ why: 'router id', first: { src: { name: 'bgp/exa/192.0.2.10' } } });
  });

  it('takes the neighbour AS for an empty path (iBGP-originated routes compare MED)', () => {
    const ibgpA = { ...A, as: 65000 };
    const ibgpB = { ...B, as: 65000 };
    expect(duel(bgpRoute(ibgpA, { med: 20 }), bgpRoute(ibgpB, { med: 5 }))).toMatchObject({ why: 'MED', first: { src: { name: 'bgp/exa/198.51.100.9' } } });
  });

  it('always compares MED for sources that ask for it', () => {
    const a = bgpRoute({ ...A, always: true }, { asPath: [65001], med: 50 });
    const b = bgpRoute({ ...B, always: true }, { asPath: [65002], med: 10 });
    expect(duel(a, b)).toEqual({ first: b, why: 'MED' });
  });

  it('prefers eBGP over iBGP', () => {
    const ibgp = bgpRoute({ ...A, as: 65000 }, { asPath: [65010] });
    const ebgp = bgpRoute({ ...B, rid: '10.0.0.99' }, { asPath: [65002] });
    expect(duel(ibgp, ebgp)).toEqual({ first: ebgp, why: 'eBGP over iBGP' });
  });

  it('prefers the lower router id, as a number; the originator id stands in for it; unknown ranks last', () => {
    const r9 = bgpRoute({ ...A, rid: '9.0.0.1' }, { asPath: [65001] });
    const r10 = bgpRoute({ ...B, rid: '10.0.0.1' }, { asPath: [65002] });
    expect(duel(r9, r10)).toEqual({ first: r9, why: 'router id' });
    const reflected = bgpRoute({ ...B, rid: '1.1.1.1' }, { asPath: [65002], originatorId: id('200.0.0.1') });
    expect(duel(r9, reflected)).toEqual({ first: r9, why: 'router id' });
    const unknown = bgpRoute({ addr: '192.0.2.1', as: 65003 }, { asPath: [65003] });
    expect(duel(unknown, r10)).toEqual({ first: r10, why: 'router id' });
  });

  it('prefers the shorter cluster list', () => {
    const a = bgpRoute(A, { asPath: [1], originatorId: 5, clusterList: [1, 2] });
    const b = bgpRoute(B, { asPath: [1], originatorId: 5, clusterList: [3] });
    expect(duel(a, b)).toEqual({ first: b, why: 'cluster list length' });
  });

  it('breaks the last tie by neighbour address as a number: 10.0.0.9 before 10.0.0.10', () => {
    const n10 = bgpRoute({ addr: '10.0.0.10', as: 65001, rid: '1.1.1.1' }, { asPath: [65001] });
    const n9 = bgpRoute({ addr: '10.0.0.9', as: 65002, rid: '1.1.1.1' }, { asPath: [65002] });
    expect(duel(n10, n9)).toEqual({ first: n9, why: 'neighbor address' });
    const v6 = bgpRoute({ addr: '2001:db8::1', as: 65003, rid: '1.1.1.1' }, { asPath: [65003] });
    expect(duel(v6, n10)).toEqual({ first: n10, why: 'neighbor address' });
  });

  it('falls back to source name, then creation order, for routes without BGP attributes', () => {
    expect(duel(plain('zeta'), plain('alpha'))).toMatchObject({ why: 'source name', first: { src: { name: 'alpha' } } });
    const first = plain('same');
    const second = plain('same');
    expect(duel(second, first)).toEqual({ first, why: 'source age' });
  });

  it('orders a circle of MED comparisons the same way whatever the arrival order (deterministic MED)', () => {
    // X1 beats X2 on MED (same AS 65010); X2 beats Y on router id; Y beats X1 on router id:
    // pairwise, a circle. Grouped: X's best is X1 (MED), X1 against Y without MED: Y (router id 2 < 3).
    const x1 = bgpRoute({ addr: '192.0.2.1', as: 65010, rid: '0.0.0.3' }, { asPath: [65010], med: 0 });
    const x2 = bgpRoute({ addr: '192.0.2.2', as: 65010, rid: '0.0.0.1' }, { asPath: [65010], med: 10 });
    const y = bgpRoute({ addr: '192.0.2.3', as: 65020, rid: '0.0.0.2' }, { asPath: [65020] });
    expect(compareRoutes(x1, x2)).toBeLessThan(0);
    expect(compareRoutes(x2, y)).toBeLessThan(0);
    expect(compareRoutes(y, x1)).toBeLessThan(0);
    const orders = [
      [x1, x2, y],
      [x1, y, x2],
      [x2, x1, y],
      [x2, y, x1],
      [y, x1, x2],
      [y, x2, x1],
    ].map((o) => orderRoutes(o));
    for (const o of orders) expect(o).toEqual([y, x1, x2]);
    expect(explainChain(orders[0]!)).toEqual(['router id', 'router id', 'MED']);
    // Built one route at a time, as the table does, in every arrival order: the same chain.
    for (const o of [[x1, x2, y], [y, x2, x1], [x2, y, x1]]) {
      let chain: Route[] = [];
      for (const r of o) chain = chainWith(chain, -1, r);
      expect(chain).toEqual([y, x1, x2]);
    }
  });

  it('puts the backup second: the route that wins when the best goes, even if that reorders the rest', () => {
    // Without X1, X2 is its AS's best and beats Y on router id: removing a route that is not the best changes the best.
    const x1 = bgpRoute({ addr: '192.0.2.1', as: 65010, rid: '0.0.0.3' }, { asPath: [65010], med: 0 });
    const x2 = bgpRoute({ addr: '192.0.2.2', as: 65010, rid: '0.0.0.1' }, { asPath: [65010], med: 10 });
    const y = bgpRoute({ addr: '192.0.2.3', as: 65020, rid: '0.0.0.2' }, { asPath: [65020] });
    const chain = orderRoutes([x1, x2, y]);
    expect(chainWithout(chain, chain.indexOf(x1))).toEqual([x2, y]);
    expect(chainWithout(chain, chain.indexOf(y))).toEqual([x1, x2]);
    // A route replaced by the same source with other attributes moves to its new place.
    const x2better = bgpRoute({ addr: '192.0.2.2', as: 65010, rid: '0.0.0.1' }, { asPath: [65010], localPref: 200 }, x2.src);
    expect(chainWith(chain, chain.indexOf(x2), x2better)).toEqual([x2better, y, x1]);
  });

  it('gives every permutation of random routes one order, each route the best of those behind it', () => {
    const peers = [0, 1, 2, 3, 4].map((i) => ({ addr: `192.0.2.${i + 1}`, as: 65001 + (i % 2), rid: `0.0.0.${5 - i}` }));
    const route = fc.record({ peer: fc.integer({ min: 0, max: 4 }), lp: fc.constantFrom(100, 200), len: fc.integer({ min: 1, max: 2 }), med: fc.integer({ min: 0, max: 2 }), origin: fc.constantFrom('igp', 'egp') as fc.Arbitrary<'igp' | 'egp'> });
    fc.assert(
      fc.property(fc.uniqueArray(route, { minLength: 1, maxLength: 5, selector: (r) => r.peer }), fc.context(), (specs, ctx) => {
        const routes = specs.map((s) => bgpRoute(peers[s.peer]!, { localPref: s.lp, asPath: Array.from({ length: s.len }, () => peers[s.peer]!.as), med: s.med, origin: s.origin }));
        const order = orderRoutes(routes);
        ctx.log(order.map((r) => r.src.name).join(' > '));
        expect(orderRoutes([...routes].reverse())).toEqual(order);
        let chain: Route[] = [];
        for (const r of routes) chain = chainWith(chain, -1, r);
        expect(chain).toEqual(order);
        // Removing the best leaves the same order of the rest as ordering the rest anew.
        expect(chainWithout(order, 0)).toEqual(orderRoutes(order.slice(1)));
      }),
    );
  });

  it('merges routes equal down to the router id, not those that differ before it', () => {
    const a = bgpRoute(A, { asPath: [65001], med: 5 });
    const b = bgpRoute(B, { asPath: [65002], med: 7 }); // other AS: MED not compared
    const longer = bgpRoute({ ...B, addr: '198.51.100.10' }, { asPath: [65002, 1] });
    const ibgp = bgpRoute({ ...B, addr: '198.51.100.11', as: 65000 }, { asPath: [65002] });
    expect(mergeable(a, b)).toBe(true);
    expect(mergeable(a, longer)).toBe(false);
    expect(mergeable(a, ibgp)).toBe(false);
    expect(mergeable(a, bgpRoute({ ...A, addr: '192.0.2.11' }, { asPath: [65001], med: 6 }))).toBe(false);
    expect(mergeable(plain('x'), plain('y'))).toBe(true);
    expect(mergeable(plain('x'), plain('y', 50))).toBe(false);
    expect(mergeable(a, plain('x'))).toBe(false);
  });
});

describe('BGP attributes', () => {
  it('interns paths, neighbours and their pairs: equal content is one object', () => {
    const p1 = BgpPath.of({ origin: 'igp', asPath: [65001, 65002], communities: [comm('65001:2'), comm('65001:1'), comm('65001:1')] });
    const p2 = BgpPath.of({ origin: 'igp', asPath: [{ type: 'sequence', asns: [65001, 65002] }], communities: [comm('65001:1'), comm('65001:2')] });
    expect(p1).toBe(p2);
    expect(p1.communities).toEqual([comm('65001:1'), comm('65001:2')]);
    expect(BgpPath.of({ asPath: [{ type: 'set', asns: [3, 1, 2] }] })).toBe(BgpPath.of({ asPath: [{ type: 'set', asns: [1, 2, 3, 3] }] }));
    const n = BgpNeighbor.of({ address: parseAddr('192.0.2.1'), as: 65001, localAs: 65000 });
    expect(BgpNeighbor.of({ address: parseAddr('192.0.2.1'), as: 65001, localAs: 65000 })).toBe(n);
    expect(BgpAttrs.of(p1, n)).toBe(BgpAttrs.of(p2, n));
    const attrs = RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.1') }], bgp: BgpAttrs.of(p1, n) });
    expect(RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.1') }], bgp: BgpAttrs.of(p2, n) })).toBe(attrs);
    expect(RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.1') }] })).not.toBe(attrs);
    expect(attrs.toString()).toBe('via 192.0.2.1'); // the kernel's view
  });

  it('shows the attributes as JSON, ids dotted, communities as pairs', () => {
    const path = BgpPath.of({ origin: 'egp', asPath: [{ type: 'sequence', asns: [65001] }, { type: 'set', asns: [7, 8] }], localPref: 200, med: 3, communities: [comm('65001:7')], largeCommunities: [[65001, 1, 2]] });
    const bgp = BgpAttrs.of(path, BgpNeighbor.of({ address: parseAddr('192.0.2.1'), as: 65001, localAs: 65000, routerId: id('10.0.0.1') }));
    expect(bgp.toJSON()).toEqual({
      neighbor: '192.0.2.1',
      neighbor_as: 65001,
      local_as: 65000,
      router_id: '10.0.0.1',
      origin: 'egp',
      as_path: '65001 {7 8}',
      path_length: 2,
      local_pref: 200,
      med: 3,
      communities: ['65001:7'],
      large_communities: ['65001:1:2'],
    });
  });

  it('refuses impossible values', () => {
    expect(() => BgpPath.of({ localPref: -1 })).toThrow(/local preference -1/);
    expect(() => BgpPath.of({ asPath: [2 ** 32] })).toThrow(/ASN/);
    expect(() => BgpPath.of({ origin: 'x' as never })).toThrow(/origin/);
    expect(() => BgpNeighbor.of({ address: parseAddr('192.0.2.1'), as: 1.5 })).toThrow(/neighbor AS/);
  });
});
