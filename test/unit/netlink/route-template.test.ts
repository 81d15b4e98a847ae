import fc from 'fast-check';
import { encodeRouteRequest, type RouteCommand } from '../../../src/netlink/route-codec';
import { RouteTemplate } from '../../../src/netlink/route-template';
import { prefixArb, routeArb } from './arbitraries';

describe('RouteTemplate', () => {
  it('writes byte for byte what encodeRouteRequest writes for the route with that net', () => {
    fc.assert(
      fc.property(
        routeArb.chain((r) => fc.tuple(fc.constant(r), prefixArb(r.family))),
        fc.constantFrom<RouteCommand>('add', 'replace', 'delete'),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.constantFrom(0, 4, 6, 8195),
        ([route, net], cmd, seq, at) => {
          // At a 4-aligned place (words on a little-endian host) and elsewhere (bytes), into two buffers
          // in turn (the word view follows the buffer written to), one of them a view at an odd offset.
          const t = new RouteTemplate(route);
          for (const memory of [Buffer.alloc(9001, 0xee).subarray(1), Buffer.alloc(9000, 0xee)]) {
            const want = Buffer.alloc(9000, 0xee);
            const got = Buffer.from(memory);
            got.fill(0xee);
            const n = encodeRouteRequest(want, at, seq, cmd, route, false, net);
            if (n === 0) {
              expect(t.encode(memory, at, seq, cmd, net.len, net.w0, net.w1, net.w2, net.w3)).toBe(0);
              continue;
            }
            expect(t.encode(memory, at, seq, cmd, net.len, net.w0, net.w1, net.w2, net.w3)).toBe(n);
            expect(memory.equals(want)).toBe(true);
            expect(t.encode(got, 9000 - n + 1, seq, cmd, net.len, net.w0, net.w1, net.w2, net.w3)).toBe(0);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
