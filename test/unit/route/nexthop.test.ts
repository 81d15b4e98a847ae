import { parseAddr } from '../../../src/lib/addr';
import { NextHop, NextHopSet } from '../../../src/route/nexthop';
import { RouteError } from '../../../src/route/route-error';

const gw = parseAddr('192.0.2.1');
const gw2 = parseAddr('192.0.2.2');

describe('next hops', () => {
  it('orders the hops of a set by gateway as a number: 192.0.2.9 before 192.0.2.10, IPv4 before IPv6', () => {
    const set = NextHopSet.of([{ gateway: parseAddr('2001:db8::1') }, { gateway: parseAddr('192.0.2.10') }, { gateway: parseAddr('192.0.2.9') }, { ifname: 'eth0' }]);
    expect(set.toString()).toBe('via 192.0.2.9, via 192.0.2.10, via 2001:db8::1, dev eth0');
  });

  it('interns a next-hop set: the same hops give the same object', () => {
    const a = NextHopSet.of([{ gateway: gw, ifname: 'eth0' }]);
    const b = NextHopSet.of([{ gateway: parseAddr('192.0.2.1'), ifname: 'eth0' }]);
    expect(a).toBe(b);
    expect(NextHopSet.of([{ gateway: gw, ifname: 'eth1' }])).not.toBe(a);
  });

  it('treats multipath hops as a set: order does not matter', () => {
    const a = NextHopSet.of([{ gateway: gw, weight: 2 }, { gateway: gw2 }]);
    const b = NextHopSet.of([{ gateway: gw2 }, { gateway: gw, weight: 2 }]);
    expect(a).toBe(b);
    expect(a.isMultipath).toBe(true);
    expect(a.hops.map((h) => h.gateway?.toString())).toEqual(['192.0.2.1', '192.0.2.2']);
  });

  it('tells weight, onlink and device apart', () => {
    const base = NextHopSet.of([{ gateway: gw, ifindex: 3 }]);
    expect(NextHopSet.of([{ gateway: gw, ifindex: 3, weight: 2 }])).not.toBe(base);
    expect(NextHopSet.of([{ gateway: gw, ifindex: 3, onlink: true }])).not.toBe(base);
    expect(NextHopSet.of([{ gateway: gw, ifindex: 4 }])).not.toBe(base);
    expect(NextHopSet.of([{ gateway: gw, ifindex: 3, ifname: 'eth0' }])).not.toBe(base);
  });

  it('allows a gateway of the other family and says it needs RTA_VIA', () => {
    const hop = new NextHop({ gateway: parseAddr('2001:db8::1'), ifname: 'eth0' });
    expect(hop.needsVia(4)).toBe(true);
    expect(hop.needsVia(6)).toBe(false);
    expect(new NextHop({ ifindex: 2 }).needsVia(4)).toBe(false);
  });

  it.each([
    [{}, /gateway or a device/],
    [{ gateway: gw, weight: 0 }, /weight 0/],
    [{ gateway: gw, weight: 257 }, /weight 257/],
    [{ gateway: gw, onlink: true }, /onlink next hop needs a device/],
    [{ gateway: parseAddr('fe80::1') }, /link-local gateway needs a device/],
    [{ ifindex: 0 }, /ifindex 0/],
    [{ ifname: 'has space' }, /not a valid interface name/],
  ])('rejects an impossible next hop %#', (spec, msg) => {
    expect(() => new NextHop(spec)).toThrow(msg);
    expect(() => new NextHop(spec)).toThrow(RouteError);
  });

  it('rejects an empty set and duplicate hops', () => {
    expect(() => NextHopSet.of([])).toThrow(/at least one next hop/);
    expect(() => NextHopSet.of([{ gateway: gw }, { gateway: gw }])).toThrow(/duplicate next hop/);
  });

  it('formats like ip route', () => {
    expect(NextHopSet.of([{ gateway: gw, ifname: 'eth0', onlink: true, weight: 3 }]).toString()).toBe(
      'via 192.0.2.1 dev eth0 onlink weight 3',
    );
  });
});
