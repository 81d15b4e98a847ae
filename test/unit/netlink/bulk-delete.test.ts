import fc from 'fast-check';
import { Prefix } from '../../../src/lib/addr';
import { NO_METRIC, NetDeleteSource } from '../../../src/netlink/bulk-delete';
import * as C from '../../../src/netlink/constants';
import { encodeRouteRequest, type RouteMessage } from '../../../src/netlink/route-codec';

/** The delete the kernel protocol would build as a RouteMessage (kernelDelete's fields). */
function asMessage(word: number, len: number, table: number, protocol: number, metric: number): RouteMessage {
  const r: RouteMessage = { family: 4, dst: Prefix.v4(word, len), tos: 0, table, protocol, scope: C.RT_SCOPE_NOWHERE, type: C.RTN_UNSPEC, flags: 0 };
  if (metric !== NO_METRIC) r.priority = metric;
  return r;
}

describe('NetDeleteSource', () => {
  it('encodes the same bytes as encodeRouteRequest for the same delete, and the same op', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        fc.integer({ min: 1, max: 255 }),
        fc.oneof(fc.constant(NO_METRIC), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (rawWord, len, table, protocol, metric, seq) => {
          const word = Prefix.v4(rawWord, len).w0;
          const src = new NetDeleteSource(4, { table, protocol }, Int32Array.of(word), Uint8Array.of(len), Float64Array.of(metric), 1);
          const want = Buffer.alloc(128, 0xee);
          const got = Buffer.alloc(128, 0xee);
          const r = asMessage(word, len, table, protocol, metric);
          const n = encodeRouteRequest(want, 4, seq, 'delete', r, false);
          expect(src.encode(got, 4, seq, 0)).toBe(n);
          expect(got.equals(want)).toBe(true);
          expect(src.op(0)).toEqual({ cmd: 'delete', route: r });
        },
      ),
    );
  });

  it('encodes IPv6 deletes as encodeRouteRequest does', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.integer(), fc.integer(), fc.integer(), fc.integer()),
        fc.integer({ min: 0, max: 128 }),
        fc.oneof(fc.constant(NO_METRIC), fc.integer({ min: 0, max: 2 ** 32 - 1 })),
        ([a, b, c, d], len, metric) => {
          const dst = Prefix.of(new Prefix(6, 128, a, b, c, d).addr, len);
          const src = new NetDeleteSource(6, { table: 1000, protocol: 144 }, Int32Array.of(dst.w0, dst.w1, dst.w2, dst.w3), Uint8Array.of(len), Float64Array.of(metric), 1);
          const r: RouteMessage = { family: 6, dst, tos: 0, table: 1000, protocol: 144, scope: C.RT_SCOPE_NOWHERE, type: C.RTN_UNSPEC, flags: 0 };
          if (metric !== NO_METRIC) r.priority = metric;
          const want = Buffer.alloc(128, 0xee);
          const got = Buffer.alloc(128, 0xee);
          expect(src.encode(got, 0, 9, 0)).toBe(encodeRouteRequest(want, 0, 9, 'delete', r, false));
          expect(got.equals(want)).toBe(true);
          expect(src.op(0)).toEqual({ cmd: 'delete', route: r });
        },
      ),
    );
  });

  it('returns 0 when the request does not fit', () => {
    const src = new NetDeleteSource(4, { table: 254, protocol: 144 }, Int32Array.of(0x0a000000), Uint8Array.of(24), Float64Array.of(7), 1);
    expect(src.encode(Buffer.alloc(51), 0, 1, 0)).toBe(0); // header 16, rtmsg 12, table, dst, metric 8 each
    expect(src.encode(Buffer.alloc(52), 0, 1, 0)).toBe(52);
  });
});
