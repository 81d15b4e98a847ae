import { parseAddr } from '../../../src/lib/addr';
import { RouteAttrs, RTAX } from '../../../src/route/attrs';
import { NextHopSet } from '../../../src/route/nexthop';

const gw = parseAddr('192.0.2.1');

describe('route attributes', () => {
  it('interns attribute sets: a million routes through one gateway share one object', () => {
    const sets = new Set<RouteAttrs>();
    for (let i = 0; i < 1000; i++) sets.add(RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.1') }], metric: 100 }));
    expect(sets.size).toBe(1);
    const a = [...sets][0]!;
    expect(a.nexthops).toBe(NextHopSet.of([{ gateway: gw }]));
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('makes equality a pointer comparison over every attribute', () => {
    const base = { nexthops: [{ gateway: gw }] };
    const variants = [
      RouteAttrs.of(base),
      RouteAttrs.of({ ...base, metric: 1 }),
      RouteAttrs.of({ ...base, prefsrc: parseAddr('192.0.2.9') }),
      RouteAttrs.of({ ...base, realm: 7 }),
      RouteAttrs.of({ ...base, scope: 253 }),
      RouteAttrs.of({ ...base, pref: 'high' }),
      RouteAttrs.of({ ...base, metrics: { mtu: 1400 } }),
      RouteAttrs.of({ ...base, metrics: { mtu: 1400 }, locked: ['mtu'] }),
      RouteAttrs.of({ ...base, congctl: 'bbr' }),
      RouteAttrs.of({ ...base, congctl: 'bbr', locked: ['congctl'] }),
      RouteAttrs.of({ type: 'blackhole' }),
      RouteAttrs.of({ type: 'unreachable' }),
      RouteAttrs.of({ type: 'prohibit' }),
    ];
    expect(new Set(variants).size).toBe(variants.length);
    for (const v of variants) expect(RouteAttrs.of(v.toSpec())).toBe(v);
  });

  it('keeps every RTAX metric and encodes locks as the kernel does', () => {
    const metrics = {
      mtu: 1400, window: 1, rtt: 2, rttvar: 3, ssthresh: 4, cwnd: 5, advmss: 1360, reordering: 6, hoplimit: 64,
      initcwnd: 10, features: 1, rto_min: 200, initrwnd: 20, quickack: 1, fastopen_no_cookie: 1,
    };
    const a = RouteAttrs.of({ type: 'unreachable', metrics, locked: ['mtu', 'rto_min', 'congctl'], congctl: 'cubic' });
    expect(a.metrics).toEqual(metrics);
    expect(a.lockMask).toBe((1 << RTAX.mtu) | (1 << RTAX.rto_min) | (1 << RTAX.congctl));
    expect(a.isLocked('mtu')).toBe(true);
    expect(a.isLocked('advmss')).toBe(false);
    expect(a.toString()).toContain('mtu lock 1400');
    expect(a.toString()).toContain('congctl lock cubic');
  });

  it('ignores metric key order and undefined metrics', () => {
    expect(RouteAttrs.of({ type: 'blackhole', metrics: { mtu: 1, advmss: 2 } })).toBe(
      RouteAttrs.of({ type: 'blackhole', metrics: { advmss: 2, mtu: 1, cwnd: undefined } }),
    );
    expect(RouteAttrs.of({ type: 'blackhole', metrics: {} })).toBe(RouteAttrs.of({ type: 'blackhole' }));
  });

  it('derives with() a new interned set', () => {
    const a = RouteAttrs.of({ nexthops: [{ gateway: gw }], metric: 5 });
    expect(a.with({ metric: 6 })).toBe(RouteAttrs.of({ nexthops: [{ gateway: gw }], metric: 6 }));
    expect(a.with({ metric: 5 })).toBe(a);
  });

  it.each([
    [{}, /next hops or a type/],
    [{ type: 'unicast' as const }, /at least one next hop/],
    [{ type: 'blackhole' as const, nexthops: [{ gateway: gw }] }, /blackhole route has no next hops/],
    [{ type: 'blackhole' as const, metric: -1 }, /metric -1/],
    [{ type: 'blackhole' as const, scope: 256 }, /scope 256/],
    [{ type: 'blackhole' as const, metrics: { mtu: 2 ** 32 } }, /mtu 4294967296/],
    [{ type: 'blackhole' as const, metrics: { bogus: 1 } as never }, /not a route metric/],
    [{ type: 'blackhole' as const, locked: ['bogus'] as never }, /cannot lock/],
    [{ type: 'blackhole' as const, congctl: 'a b' }, /not a valid algorithm name/],
  ])('rejects impossible attributes %#', (spec, msg) => {
    expect(() => RouteAttrs.of(spec)).toThrow(msg);
  });
});
