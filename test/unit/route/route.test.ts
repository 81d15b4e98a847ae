import { parsePrefix } from '../../../src/lib/addr';
import { RouteAttrs } from '../../../src/route/attrs';
import { Route, compareRoutes } from '../../../src/route/route';
import { RouteSource, compareSources } from '../../../src/route/source';

const attrs = RouteAttrs.of({ type: 'blackhole' });

describe('routes', () => {
  it('carries its net compactly and gives it back as a Prefix', () => {
    const src = new RouteSource('static', 200);
    for (const s of ['10.1.2.0/24', '0.0.0.0/0', '255.255.255.255/32', '2001:db8::/32', '::/0']) {
      const r = new Route(parsePrefix(s), src, attrs);
      expect(r.net.toString()).toBe(s);
      expect(r.netKey).toBe(parsePrefix(s).key());
      expect(r.family).toBe(s.includes(':') ? 6 : 4);
    }
  });

  it('is the same announcement when net, source and attributes are', () => {
    const src = new RouteSource('static', 200);
    const a = new Route(parsePrefix('10.0.0.0/8'), src, attrs);
    expect(a.sameAs(new Route(parsePrefix('10.0.0.0/8'), src, attrs, 5))).toBe(true);
    expect(a.sameAs(new Route(parsePrefix('10.0.0.0/9'), src, attrs))).toBe(false);
    expect(a.sameAs(new Route(parsePrefix('10.0.0.0/8'), new RouteSource('static', 200), attrs))).toBe(false);
    expect(a.sameAs(new Route(parsePrefix('10.0.0.0/8'), src, RouteAttrs.of({ type: 'prohibit' })))).toBe(false);
  });

  it('orders sources by preference, then name, then creation', () => {
    const high = new RouteSource('zeta', 200);
    const lowA = new RouteSource('alpha', 10);
    const lowB = new RouteSource('beta', 10);
    const lowB2 = new RouteSource('beta', 10);
    const sorted = [lowB2, lowA, high, lowB].sort(compareSources);
    expect(sorted).toEqual([high, lowA, lowB, lowB2]);
    expect(compareSources(lowB, lowB)).toBe(0);
    const net = parsePrefix('10.0.0.0/8');
    expect(compareRoutes(new Route(net, high, attrs), new Route(net, lowA, attrs))).toBeLessThan(0);
  });

  it('rejects an impossible preference', () => {
    expect(() => new RouteSource('x', -1)).toThrow(/preference -1/);
    expect(() => new RouteSource('x', 1.5)).toThrow(/preference 1.5/);
  });
});
