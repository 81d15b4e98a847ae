/** encode -> decode is the identity on every route message the codec can express, and on acks. */
import fc from 'fast-check';
import { decodeMessages } from '../../../src/netlink/message-codec';
import { encodeRouteRequest, routeMessageSize } from '../../../src/netlink/route-codec';
import { prefixArb, routeArb } from './arbitraries';

describe('route codec round trip', () => {
  it('decodes what it encodes, unknown attributes included', () => {
    const buf = Buffer.alloc(8192);
    fc.assert(
      fc.property(routeArb, fc.constantFrom('add', 'replace', 'append', 'delete' as const), fc.integer({ min: 0, max: 0xffffffff }), (r, cmd, seq) => {
        const n = encodeRouteRequest(buf, 0, seq, cmd, r);
        expect(n).toBe(routeMessageSize(r));
        const msgs = decodeMessages(buf, 0, n);
        expect(msgs).toHaveLength(1);
        const m = msgs[0]!;
        if (m.kind !== 'route') throw new Error(`decoded as ${m.kind}: ${m.kind === 'malformed' ? m.error.message : ''}`);
        expect(m.header.seq).toBe(seq);
        expect(m.deleted).toBe(cmd === 'delete');
        expect(m.route).toEqual(r);
      }),
      { numRuns: 2000 },
    );
  });

  it('sends a shared route for another net byte for byte as the route with that dst', () => {
    const a = Buffer.alloc(8192);
    const b = Buffer.alloc(8192);
    const arb = routeArb.chain((r) => prefixArb(r.family).map((dst) => [r, dst] as const));
    fc.assert(
      fc.property(arb, fc.constantFrom('add', 'replace', 'delete' as const), ([r, dst], cmd) => {
        const n = encodeRouteRequest(a, 0, 7, cmd, r, false, dst);
        expect(n).toBe(encodeRouteRequest(b, 0, 7, cmd, { ...r, dst }, false));
        expect(a.subarray(0, n).equals(b.subarray(0, n))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('packs many messages back to back in one buffer, each 4-byte aligned, and returns 0 once full', () => {
    fc.assert(
      fc.property(fc.array(routeArb, { minLength: 1, maxLength: 40 }), (routes) => {
        const buf = Buffer.alloc(2048);
        let off = 0;
        const sent = [];
        for (const r of routes) {
          const n = encodeRouteRequest(buf, off, sent.length, 'add', r);
          if (n === 0) {
            expect(off + routeMessageSize(r)).toBeGreaterThan(buf.length);
            break;
          }
          expect(n % 4).toBe(0);
          sent.push(r);
          off += n;
        }
        const got = decodeMessages(buf, 0, off).map((m) => (m.kind === 'route' ? m.route : m));
        expect(got).toEqual(sent);
      }),
      { numRuns: 300 },
    );
  });
});
