import fc from 'fast-check';
import { Prefix } from '../../../src/lib/addr';
import { NO_METRIC, V4DeleteSource } from '../../../src/netlink/bulk-delete';
import * as C from '../../../src/netlink/constants';
import { encodeRouteRequest, type RouteMessage } from '../../../src/netlink/route-codec';

/** The delete the kernel protocol would build as a RouteMessage (kernelDelete's fields). */
function asMessage(word: number, len: number, table: number, protocol: number, metric: number): RouteMessage {
  const r: RouteMessage = { family: 4, dst: Prefix.v4(word, len), tos: 0, table, protocol, scope: C.RT_SCOPE_NOWHERE, type: C.RTN_UNSPEC, flags: 0 };
  if (metric !== NO_METRIC) r.priority = metric;
  return r;
}

describe('V4DeleteSource', () => {
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
          const src = new V4DeleteSource({ table, protocol }, Int32Array.of(word), Uint8Array.of(len), Float64Array.of(metric), 1);
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

  it('returns 0 when the request does not fit', () => {
    const src = new V4DeleteSource({ table: 254, protocol: 144 }, Int32Array.of(0x0a000000), Uint8Array.of(24), Float64Array.of(7), 1);
    expect(src.encode(Buffer.alloc(51), 0, 1, 0)).toBe(0); // header 16, rtmsg 12, table, dst, metric 8 each
    expect(src.encode(Buffer.alloc(52), 0, 1, 0)).toBe(52);
  });
});
