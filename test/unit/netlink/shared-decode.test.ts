/**
 * SharedRouteDecoder: routes that differ only in their destination share one
 * decoded RouteMessage; with its net put back, every route reads exactly as a
 * full decode of its own bytes, and bad bytes fail as they would there.
 */
import fc from 'fast-check';
import { parsePrefix } from '../../../src/lib/addr';
import { DumpedRoutes, SharedRouteDecoder, decodeRouteMessage, encodeRouteRequest } from '../../../src/netlink/route-codec';
import { prefixArb, routeArb } from './arbitraries';

describe('SharedRouteDecoder', () => {
  it('reads every route as a full decode does, sharing one object per shape', () => {
    const buf = Buffer.alloc(8192);
    const shape = routeArb.chain((r) => fc.array(prefixArb(r.family), { minLength: 1, maxLength: 6 }).map((nets) => nets.map((dst) => ({ ...r, dst }))));
    fc.assert(
      fc.property(fc.array(shape, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 1000 }), (shapes, seed) => {
        const dec = new SharedRouteDecoder();
        const routes = shapes.flat();
        // Interleave the shapes (a dump is in address order, not by shape).
        routes.sort((a, b) => ((a.dst.w0 ^ seed) >>> 0) - ((b.dst.w0 ^ seed) >>> 0));
        const seen = new Map<string, unknown>();
        for (const r of routes) {
          const n = encodeRouteRequest(buf, 0, 1, 'add', r);
          const d = dec.decode(buf, 0, n);
          const full = decodeRouteMessage(buf, 0, n);
          expect({ ...d.route, dst: d.net }).toEqual(full);
          // One object per shape: a second route of a shape gets the first one's.
          const key = JSON.stringify({ ...full, dst: undefined });
          if (!seen.has(key)) seen.set(key, d.route);
          else expect(d.route).toBe(seen.get(key));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('fails on bad bytes as the full decoder does, even for a known shape', () => {
    const buf = Buffer.alloc(512);
    const dec = new SharedRouteDecoder();
    const r = { family: 4 as const, dst: parsePrefix('10.0.0.0/24'), tos: 0, table: 254, protocol: 144, scope: 0, type: 1, flags: 0 };
    const n = encodeRouteRequest(buf, 0, 1, 'add', r);
    dec.decode(buf, 0, n);
    buf[17] = 33; // rtm_dst_len beyond 32, same shape otherwise
    expect(() => decodeRouteMessage(buf, 0, n)).toThrow(/prefix length 33/);
    expect(() => dec.decode(buf, 0, n)).toThrow(/prefix length 33/);
    buf[17] = 24;
    buf.writeUInt16LE(400, 28); // an attribute longer than the message
    expect(() => dec.decode(buf, 0, n)).toThrow(/out of bounds/);
  });

  it('keeps decoded routes by column with the nets a full decode gives, in either family', () => {
    const buf = Buffer.alloc(8192);
    const shape = routeArb.chain((r) => fc.array(prefixArb(r.family), { minLength: 1, maxLength: 6 }).map((nets) => nets.map((dst) => ({ ...r, dst }))));
    fc.assert(
      fc.property(fc.array(shape, { minLength: 1, maxLength: 5 }), (shapes) => {
        const dec = new SharedRouteDecoder();
        const out = new DumpedRoutes();
        const want: string[] = [];
        for (const r of shapes.flat()) {
          const n = encodeRouteRequest(buf, 0, 1, 'add', r);
          const route = dec.decodeRoute(buf, 0, n);
          out.pushDecoded(dec, route);
          const full = decodeRouteMessage(buf, 0, n);
          want.push(`${full.dst} ${JSON.stringify({ ...full, dst: undefined })}`);
        }
        const got = out.map((net, route) => `${net} ${JSON.stringify({ ...route, dst: undefined })}`);
        expect(out.length).toBe(want.length);
        expect(got.sort()).toEqual(want.sort()); // IPv4 first, then IPv6: a dump is of one family anyway
      }),
      { numRuns: 300 },
    );
  });
});
