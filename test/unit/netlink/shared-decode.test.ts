/**
 * SharedRouteDecoder: routes that differ only in their destination share one
 * decoded RouteMessage; with its net put back, every route reads exactly as a
 * full decode of its own bytes, and bad bytes fail as they would there.
 */
import fc from 'fast-check';
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import { decodeRouteMessage, encodeRouteRequest } from '../../../src/netlink/route-codec';
import { DumpedRoutes, SharedRouteDecoder } from '../../../src/netlink/route-dump';
import { prefixArb, routeArb } from './arbitraries';

describe('SharedRouteDecoder', () => {
  it('reads every route as a full decode does, sharing one object per shape, on aligned words or not', () => {
    // A socket's buffer is 4-byte aligned (read as 32-bit words in place); a buffer that is not takes the copying path.
    const aligned = Buffer.alloc(8192);
    const unaligned = Buffer.alloc(8194).subarray(2);
    const shape = routeArb.chain((r) => fc.array(prefixArb(r.family), { minLength: 1, maxLength: 6 }).map((nets) => nets.map((dst) => ({ ...r, dst }))));
    fc.assert(
      fc.property(fc.array(shape, { minLength: 1, maxLength: 5 }), fc.integer({ min: 0, max: 1000 }), fc.constantFrom(32, 1), (shapes, seed, hashBits) => {
        const dec = new SharedRouteDecoder(4096, hashBits); // 1 bit: shapes collide and are told apart by comparing
        const routes = shapes.flat();
        // Interleave the shapes (a dump is in address order, not by shape).
        routes.sort((a, b) => ((a.dst.w0 ^ seed) >>> 0) - ((b.dst.w0 ^ seed) >>> 0));
        const seen = new Map<string, unknown>();
        for (const [i, r] of routes.entries()) {
          const buf = (i ^ seed) & 1 ? unaligned : aligned;
          const n = encodeRouteRequest(buf, 0, 1, 'add', r);
          const d = dec.decode(buf, 0, n);
          const full = decodeRouteMessage(buf, 0, n);
          expect({ ...d.route, dst: d.net }).toEqual(full);
          // One object per shape (and path): a second route of a shape gets the first one's.
          const key = `${buf === aligned} ${JSON.stringify({ ...full, dst: undefined })}`;
          if (!seen.has(key)) seen.set(key, d.route);
          else expect(d.route).toBe(seen.get(key));
        }
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    ['aligned', Buffer.alloc(512), 32],
    ['aligned, colliding hashes', Buffer.alloc(512), 1],
    ['unaligned', Buffer.alloc(514).subarray(2), 32],
    ['unaligned, colliding hashes', Buffer.alloc(514).subarray(2), 1],
  ])('tells apart shapes that differ only in a next hop (%s)', (_, buf, hashBits) => {
    const dec = new SharedRouteDecoder(4096, hashBits);
    const base = { family: 4 as const, tos: 0, table: 254, protocol: 144, scope: 0, type: 1, flags: 0 };
    const gws = ['192.0.2.1', '192.0.2.2', '198.51.100.1'].map((a) => parseAddr(a));
    for (let i = 0; i < 30; i++) {
      const n = encodeRouteRequest(buf, 0, 1, 'add', { ...base, dst: parsePrefix(`10.0.${i}.0/24`), gateway: gws[i % 3]! });
      const d = dec.decode(buf, 0, n);
      expect(d.route.gateway?.toString()).toBe(gws[i % 3]!.toString());
      expect(d.net.toString()).toBe(`10.0.${i}.0/24`);
    }
  });

  it.each([
    ['aligned', Buffer.alloc(512)],
    ['unaligned', Buffer.alloc(514).subarray(2)],
  ])('fails on bad bytes as the full decoder does, even for a known shape (%s)', (_, buf) => {
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
