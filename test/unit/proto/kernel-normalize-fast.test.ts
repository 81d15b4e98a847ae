/**
 * sameSimpleRoute (the allocation-free path of sameKernelRoute) must give the
 * same answer as the canonical texts for every pair it answers at all.
 */
import fc from 'fast-check';
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import * as C from '../../../src/netlink/constants';
import type { RouteMessage } from '../../../src/netlink/route-codec';
import { canonicalRoute, oiflessGateways, sameSimpleRoute } from '../../../src/proto/kernel/normalize';

const v4 = (family: 4 | 6): RouteMessage => ({
  family,
  dst: parsePrefix(family === 4 ? '10.1.0.0/24' : '2001:db8:5::/48'),
  tos: 0,
  table: 254,
  protocol: 144,
  scope: 0,
  type: C.RTN_UNICAST,
  flags: 0,
});

const gw = (family: 4 | 6, i: number) => parseAddr(family === 4 ? `192.0.2.${i}` : `2001:db8::${i}`);

function arbRoute(family: 4 | 6): fc.Arbitrary<RouteMessage> {
  return fc
    .record({
      type: fc.constantFrom(C.RTN_UNICAST, C.RTN_UNICAST, C.RTN_BLACKHOLE),
      gw: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
      oif: fc.option(fc.integer({ min: 0, max: 2 }), { nil: undefined }),
      priority: fc.option(fc.constantFrom(0, 1024, 5), { nil: undefined }),
      scope: fc.constantFrom(0, 253),
      flags: fc.constantFrom(0, C.RTNH_F_ONLINK, C.RTNH_F_LINKDOWN),
      prefsrc: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
      flow: fc.option(fc.constantFrom(0, 7), { nil: undefined }),
      pref: fc.option(fc.constantFrom(0, 1, 3), { nil: undefined }),
      mtu: fc.option(fc.constantFrom(0, 1400), { nil: undefined }),
    })
    .map((o) => {
      const r = v4(family);
      r.type = o.type;
      r.scope = o.scope;
      r.flags = o.flags;
      if (o.gw !== undefined) r.gateway = gw(family, o.gw);
      if (o.oif !== undefined) r.oif = o.oif;
      if (o.priority !== undefined) r.priority = o.priority;
      if (o.prefsrc !== undefined) r.prefsrc = gw(family, 10 + o.prefsrc);
      if (o.flow !== undefined) r.flow = o.flow;
      if (o.pref !== undefined) r.pref = o.pref;
      if (o.mtu !== undefined) r.metrics = { mtu: o.mtu };
      return r;
    });
}

describe('sameSimpleRoute', () => {
  for (const family of [4, 6] as const) {
    test(`agrees with the canonical texts (IPv${family})`, () => {
      fc.assert(
        fc.property(arbRoute(family), arbRoute(family), (want, have) => {
          const quick = sameSimpleRoute(want, have);
          if (quick === undefined) return;
          const wild = oiflessGateways(want);
          expect(quick).toBe(canonicalRoute(want, wild) === canonicalRoute(have, wild));
        }),
        { numRuns: 5000 },
      );
    });
  }

  test('answers the common shape and leaves the rest to the texts', () => {
    const a = { ...v4(4), gateway: gw(4, 1) };
    expect(sameSimpleRoute(a, { ...a, oif: 3 })).toBe(true);
    expect(sameSimpleRoute(a, { ...a, gateway: gw(4, 2) })).toBe(false);
    expect(sameSimpleRoute({ ...a, metrics: { mtu: 1400 } }, a)).toBeUndefined();
    expect(sameSimpleRoute({ ...a, type: C.RTN_BLACKHOLE }, a)).toBeUndefined();
  });
});
