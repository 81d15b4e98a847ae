import fc from 'fast-check';
import * as C from '../../../src/netlink/constants';
import { decodeRouteMessage, encodeRouteMessage } from '../../../src/netlink/route-codec';
import { newRouteHead, readRouteHead } from '../../../src/netlink/route-head';
import { routeArb } from './arbitraries';

describe('readRouteHead', () => {
  it('reads a plain route exactly as the full decoder does, and refuses anything it does not read', () => {
    const h = newRouteHead();
    fc.assert(
      fc.property(routeArb, (r) => {
        const buf = Buffer.alloc(9000);
        const n = encodeRouteMessage(buf, 0, C.RTM_NEWROUTE, 0, 1, r);
        const d = decodeRouteMessage(buf, 0, n);
        const plain = d.src === undefined && d.via === undefined && d.prefsrc === undefined && d.metrics === undefined && d.multipath === undefined && d.flow === undefined && d.nhId === undefined && d.iif === undefined && (d.unknown ?? []).every((a) => a.type === C.RTA_CACHEINFO);
        expect(readRouteHead(buf, 0, n, h)).toBe(plain);
        if (!plain) return;
        expect(h.family).toBe(d.family);
        expect([h.dstLen, h.dst0, h.dst1, h.dst2, h.dst3]).toEqual([d.dst.len, d.dst.w0, d.dst.w1, d.dst.w2, d.dst.w3]);
        expect([h.table, h.protocol, h.scope, h.type, h.flags]).toEqual([d.table, d.protocol, d.scope, d.type, d.flags]);
        expect(h.priority).toBe(d.priority ?? -1);
        expect(h.oif).toBe(d.oif ?? -1);
        expect(h.pref).toBe(d.pref ?? -1);
        expect(h.hasGateway).toBe(d.gateway !== undefined);
        if (d.gateway) expect([h.gw0, h.gw1, h.gw2, h.gw3]).toEqual([d.gateway.w0, d.gateway.w1, d.gateway.w2, d.gateway.w3]);
      }),
      { numRuns: 1000 },
    );
  });
});
