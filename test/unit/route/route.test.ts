import { RouteAttrs } from '../../../src/route/attrs';
import { compareRoutes } from '../../../src/route/decision';
import { Route } from '../../../src/route/route';
import { RouteSource } from '../../../src/route/source';

const attrs = RouteAttrs.of({ type: 'blackhole' });

describe('routes', () => {
  it('is the same announcement when source and attributes are', () => {
    const src = new RouteSource('static', 200);
    const a = new Route(src, attrs);
    expect(a.sameAs(new Route(src, attrs))).toBe(true);
    expect(a.sameAs(new Route(new RouteSource('static', 200), attrs))).toBe(false);
    expect(a.sameAs(new Route(src, RouteAttrs.of({ type: 'prohibit' })))).toBe(false);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('orders sources by preference, then name, then creation', () => {
    const high = new RouteSource('zeta', 200);
    const lowA = new RouteSource('alpha', 10);
    const lowB = new RouteSource('beta', 10);
    const lowB2 = new RouteSource('beta', 10);
    const routes = [lowB2, lowA, high, lowB].map((s) => new Route(s, attrs));
    expect(routes.sort(compareRoutes).map((r) => r.src)).toEqual([high, lowA, lowB, lowB2]);
    expect(compareRoutes(routes[0]!, routes[0]!)).toBe(0);
  });

  it('rejects an impossible preference', () => {
    expect(() => new RouteSource('x', -1)).toThrow(/preference -1/);
    expect(() => new RouteSource('x', 1.5)).toThrow(/preference 1.5/);
  });
});
