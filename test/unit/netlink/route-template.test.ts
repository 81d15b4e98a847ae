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
        ([route, net], cmd, seq) => {
          const want = Buffer.alloc(9000, 0xee);
          const got = Buffer.alloc(9000, 0xee);
          const n = encodeRouteRequest(want, 4, seq, cmd, route, false, net);
          const t = new RouteTemplate(route);
          expect(t.encode(got, 4, seq, cmd, net.len, net.w0, net.w1, net.w2, net.w3)).toBe(n);
          expect(got.equals(want)).toBe(true);
          expect(t.encode(got, 9000 - n + 1, seq, cmd, net.len, net.w0, net.w1, net.w2, net.w3)).toBe(0);
        },
      ),
      { numRuns: 500 },
    );
  });
});
