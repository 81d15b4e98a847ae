import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import { RouteAttrs } from '../../../src/route/attrs';
import { NextHopSet } from '../../../src/route/nexthop';
import { RouteSource } from '../../../src/route/source';
import { FlapDamping, DEFAULT_DAMPING, NO_DAMPING } from '../../../src/table/nexthop-damping';
import { NextHopTracker, type NextHopChange } from '../../../src/table/nexthop-tracker';
import { Table } from '../../../src/table/table';
import { NetLog } from '../../../src/table/net-log';
import type { ExportItem } from '../../../src/table/items';
import { Puller } from './puller';
import { ReaderView } from './reader-view';
import { p } from './fixtures';

const gw = (a: string, extra: { dev?: string; onlink?: boolean } = {}): NextHopSet =>
  NextHopSet.of([{ gateway: parseAddr(a), ...(extra.dev ? { ifname: extra.dev } : {}), ...(extra.onlink ? { onlink: true } : {}) }]);
const attrsVia = (set: NextHopSet): RouteAttrs => RouteAttrs.of({ nexthops: set });

/** veth0 (1): 192.0.2.0/24; veth1 (2): 198.51.100.0/24; veth2 (3): 203.0.113.0/24; all up. */
function tracker(opts: ConstructorParameters<typeof NextHopTracker>[0] = {}): NextHopTracker {
  const t = new NextHopTracker({ damping: NO_DAMPING, ...opts });
  t.resync(
    [
      { index: 1, name: 'veth0', up: true, carrier: true },
      { index: 2, name: 'veth1', up: true, carrier: true },
      { index: 3, name: 'veth2', up: true, carrier: true },
    ],
    [
      { prefix: parsePrefix('192.0.2.0/24'), ifindex: 1 },
      { prefix: parsePrefix('198.51.100.0/24'), ifindex: 2 },
      { prefix: parsePrefix('203.0.113.0/24'), ifindex: 3 },
      { prefix: parsePrefix('2001:db8:1::/64'), ifindex: 1 },
    ],
  );
  t.flush();
  return t;
}

/** veth0 loses and regains carrier `times` times, the clock moved by `tick` after each change. */
function flapVeth0(t: NextHopTracker, times: number, tick: () => void): void {
  for (let i = 0; i < times; i++) {
    for (const carrier of [false, true]) {
      t.setLink({ index: 1, name: 'veth0', up: true, carrier });
      t.flush();
      tick();
    }
  }
}

describe('next-hop tracker', () => {
  it('says why a next hop cannot be used: no carrier, down, no connected route, no device', () => {
    const t = tracker();
    const a = gw('192.0.2.2');
    expect(t.eligible(a)).toBe(true);
    expect(t.why(a)).toBeUndefined();
    t.setLink({ index: 1, name: 'veth0', up: true, carrier: false });
    t.flush();
    expect(t.eligible(a)).toBe(false);
    expect(t.why(a)).toBe('next hop via 192.0.2.2: dev veth0 has no carrier');
    t.setLink({ index: 1, name: 'veth0', up: false, carrier: false });
    t.flush();
    expect(t.why(a)).toBe('next hop via 192.0.2.2: dev veth0 is down');
    expect(t.why(gw('10.9.9.9'))).toBe('next hop via 10.9.9.9: no connected route covers 10.9.9.9');
    expect(t.why(gw('198.51.100.7', { dev: 'veth0' }))).toBe('next hop via 198.51.100.7 dev veth0: no connected route covers 198.51.100.7 on dev veth0');
    expect(t.why(gw('10.9.9.9', { dev: 'veth9', onlink: true }))).toBe('next hop via 10.9.9.9 dev veth9 onlink: dev veth9 does not exist');
    expect(t.eligible(gw('10.9.9.9', { dev: 'veth1', onlink: true }))).toBe(true); // onlink: the device is enough
    const devOnly = NextHopSet.of([{ ifname: 'veth0' }]);
    expect(t.why(devOnly)).toBe('next hop dev veth0: dev veth0 is down');
  });

  it('reports each next hop with its device, state, damping and the routes through it (show nexthops)', () => {
    let now = 1_000_000;
    const t = tracker({ damping: { ...DEFAULT_DAMPING, halfLifeMs: 15_000, maxHoldMs: 60_000 }, now: () => now });
    const table = new Table({ name: 'master4', nexthops: t });
    const primary = new RouteSource('primary', 200);
    const backup = new RouteSource('backup', 100);
    const A = attrsVia(gw('192.0.2.2'));
    const B = attrsVia(NextHopSet.of([{ gateway: parseAddr('198.51.100.2') }, { gateway: parseAddr('192.0.2.2') }]));
    for (let i = 0; i < 3; i++) table.announce(p(`10.${i}.0.0/16`), primary, A);
    table.announce(p('10.0.0.0/16'), backup, B);
    const report = () => Object.fromEntries(t.report((set) => table.routesUsing(set)).map((h) => [h.hop, h]));
    expect(report()).toEqual({
      'via 192.0.2.2': { hop: 'via 192.0.2.2', dev: 'veth0', usable: true, state: 'usable', flaps: 0, penalty: 0, sets: 2, routes: 4 },
      'via 198.51.100.2': { hop: 'via 198.51.100.2', dev: 'veth1', usable: true, state: 'usable', flaps: 0, penalty: 0, sets: 1, routes: 1 },
    });
    // Three failures in a row: the third recovery is held down.
    flapVeth0(t, 3, () => (now += 100));
    const held = report()['via 192.0.2.2']!;
    expect(held).toMatchObject({ dev: 'veth0', usable: false, state: 'held', flaps: 3, routes: 4 });
    expect(held.heldUntil).toBeGreaterThan(now);
    expect(held.reason).toMatch(/^flapping \(3 failures\), held down for \d+ s more$/);
    t.setLink({ index: 1, name: 'veth0', up: false, carrier: false });
    t.flush();
    expect(report()['via 192.0.2.2']).toMatchObject({ state: 'down', reason: 'dev veth0 is down' });
    // Without a table to ask, no count; a gateway no connected prefix covers has no device.
    t.eligible(gw('10.9.9.9'));
    expect(t.report().find((h) => h.hop === 'via 10.9.9.9')).toEqual({ hop: 'via 10.9.9.9', usable: false, state: 'down', reason: 'no connected route covers 10.9.9.9', flaps: 0, penalty: 0, sets: 1 });
    t.close();
  });

  it('a gateway whose neighbour entry failed is unusable until the entry is fine again', () => {
    const t = tracker();
    const a = gw('192.0.2.2');
    const other = gw('192.0.2.3');
    t.setNeighbour(1, parseAddr('192.0.2.2'), true);
    t.flush();
    expect(t.why(a)).toBe('next hop via 192.0.2.2: neighbour 192.0.2.2 on dev veth0 failed');
    expect(t.eligible(other)).toBe(true);
    expect(t.eligible(gw('192.0.2.2', { dev: 'veth0', onlink: true }))).toBe(false);
    t.setNeighbour(1, parseAddr('192.0.2.2'), false);
    t.flush();
    expect(t.eligible(a)).toBe(true);
  });

  it('knows nothing before the first resync: everything is usable', () => {
    const t = new NextHopTracker();
    expect(t.eligible(gw('10.9.9.9'))).toBe(true);
    expect(t.synced).toBe(false);
  });

  it('reports the sets whose verdict changed, once per flush', () => {
    const t = tracker();
    const a = gw('192.0.2.2');
    const b = gw('198.51.100.2');
    const ecmp = NextHopSet.of([{ gateway: parseAddr('192.0.2.2') }, { gateway: parseAddr('198.51.100.2') }]);
    for (const s of [a, b, ecmp]) t.eligible(s);
    const seen: NextHopChange[][] = [];
    t.subscribe((c) => seen.push([...c]));
    t.setLink({ index: 1, name: 'veth0', up: true, carrier: false });
    t.flush();
    t.flush(); // nothing new
    expect(seen).toHaveLength(1);
    expect(seen[0]!.map((c) => [c.set.toString(), c.wasEligible, c.eligible, c.gained])).toEqual([
      ['via 192.0.2.2', true, false, false],
      ['via 192.0.2.2, via 198.51.100.2', true, true, false], // one member left: still eligible, fewer hops
    ]);
    expect(t.usableHops(ecmp)).toBe(b);
    expect(t.usableHops(a)).toBeUndefined();
    t.setLink({ index: 1, name: 'veth0', up: true, carrier: true });
    t.flush();
    expect(t.usableHops(ecmp)).toBe(ecmp);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.every((c) => c.gained)).toBe(true);
  });

  it('a hop without a device takes the device of the longest connected prefix covering its gateway', () => {
    const t = tracker();
    t.setConnected({ prefix: parsePrefix('192.0.2.128/25'), ifindex: 2 }, true);
    t.flush();
    const inner = gw('192.0.2.200');
    const outer = gw('192.0.2.2');
    expect(t.eligible(inner)).toBe(true);
    t.setLink({ index: 2, name: 'veth1', up: true, carrier: false });
    t.flush();
    expect(t.eligible(inner)).toBe(false); // on veth1
    expect(t.eligible(outer)).toBe(true); // on veth0
  });
});

describe('flap damping', () => {
  it('never holds back a first recovery; holds a flapping next hop, longer with more flaps, at most maxHold', () => {
    const d = new FlapDamping(DEFAULT_DAMPING);
    d.failed(0);
    expect(d.recovered(1000)).toBe(0);
    d.failed(2000);
    expect(d.recovered(3000)).toBe(0); // two flaps: still below suppress
    d.failed(4000);
    const held3 = d.recovered(5000);
    expect(held3).toBeGreaterThan(5000);
    for (let i = 0; i < 20; i++) d.failed(6000 + i);
    const held = d.recovered(7000);
    expect(held).toBeGreaterThan(held3);
    expect(held).toBeLessThanOrEqual(7000 + DEFAULT_DAMPING.maxHoldMs);
    expect(d.holding(held - 1)).toBe(true);
    expect(d.holding(held)).toBe(false);
    // Decayed: a later failure and recovery go through again.
    d.failed(held + 10 * DEFAULT_DAMPING.halfLifeMs);
    expect(d.recovered(held + 10 * DEFAULT_DAMPING.halfLifeMs + 1)).toBe(0);
  });

  it('the tracker releases a held next hop by itself once the penalty decayed', () => {
    let now = 0;
    jest.useFakeTimers();
    try {
      const t = tracker({ damping: DEFAULT_DAMPING, now: () => now });
      const a = gw('192.0.2.2');
      t.eligible(a);
      const changes: boolean[] = [];
      t.subscribe((c) => changes.push(c[0]!.eligible));
      flapVeth0(t, 3, () => (now += 100));
      // Two flaps went through; the third recovery is held.
      expect(changes).toEqual([false, true, false, true, false]);
      expect(t.eligible(a)).toBe(false);
      expect(t.why(a)).toMatch(/^next hop via 192\.0\.2\.2: flapping \(3 failures\), held down for \d+ s more$/);
      expect(t.counts()).toMatchObject({ held: 1, unusable: 1 });
      now += DEFAULT_DAMPING.maxHoldMs;
      jest.advanceTimersByTime(DEFAULT_DAMPING.maxHoldMs);
      expect(t.eligible(a)).toBe(true);
      expect(changes).toEqual([false, true, false, true, false, true]);
      t.close();
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('table with next-hop tracking', () => {
  const primary = new RouteSource('bgp-a', 100);
  const backup = new RouteSource('bgp-b', 90);
  const third = new RouteSource('bgp-c', 80);
  const A = attrsVia(gw('192.0.2.2'));
  const B = attrsVia(gw('198.51.100.2'));
  const C = attrsVia(gw('203.0.113.2'));

  it('makes the next source best while the primary next hop is down, and the primary again once it is back', async () => {
    const t = tracker();
    const table = new Table({ name: 'master4', nexthops: t });
    const view = new ReaderView('best');
    const bestOf = (n: string): string | undefined => view.nets.get(n)?.[0]?.attrs.toString();
    const sub = new Puller<ExportItem>(table.best.subscribe({ name: 'k' })[Symbol.asyncIterator]());
    for (let i = 0; i < 50; i++) {
      table.announce(p(`10.${i}.0.0/16`), primary, A);
      table.announce(p(`10.${i}.0.0/16`), backup, B);
    }
    table.announce(p('10.200.0.0/16'), primary, A); // only the primary
    table.announce(p('10.201.0.0/16'), backup, B); // only the backup
    await sub.drain(view);
    expect(view.errors).toEqual([]);
    expect(bestOf('10.0.0.0/16')).toBe('via 192.0.2.2');
    t.setLink({ index: 1, name: 'veth0', up: true, carrier: false });
    t.flush();
    // Synchronously: the table's own answers have moved.
    expect(table.bestRoute(p('10.7.0.0/16'))?.src).toBe(backup);
    expect(table.routes(p('10.7.0.0/16')).map((r) => r.src.name)).toEqual(['bgp-b', 'bgp-a']);
    expect(table.bestRoute(p('10.200.0.0/16'))).toBeUndefined(); // no eligible route: no best
    await sub.drain(view);
    for (let i = 0; i < 50; i++) expect(bestOf(`10.${i}.0.0/16`)).toBe('via 198.51.100.2');
    expect(bestOf('10.200.0.0/16')).toBeUndefined();
    expect(bestOf('10.201.0.0/16')).toBe('via 198.51.100.2');
    // An announcement while it is down keeps eligible routes first.
    table.announce(p('10.7.0.0/16'), primary, attrsVia(gw('192.0.2.3')));
    expect(table.bestRoute(p('10.7.0.0/16'))?.src).toBe(backup);
    t.setLink({ index: 1, name: 'veth0', up: true, carrier: true });
    t.flush();
    await sub.drain(view);
    expect(bestOf('10.0.0.0/16')).toBe('via 192.0.2.2');
    expect(bestOf('10.7.0.0/16')).toBe('via 192.0.2.3');
    expect(bestOf('10.200.0.0/16')).toBe('via 192.0.2.2');
    expect(table.routes(p('10.8.0.0/16')).map((r) => r.src.name)).toEqual(['bgp-a', 'bgp-b']);
    expect(view.errors).toEqual([]);
  });

  it('with three sources, the third takes over when the first two fail, in decision order', () => {
    const t = tracker();
    const table = new Table({ name: 'master4', nexthops: t });
    const net = p('10.1.0.0/16');
    table.announce(net, third, C);
    table.announce(net, primary, A);
    table.announce(net, backup, B);
    const best = (): string | undefined => table.bestRoute(net)?.src.name;
    expect(best()).toBe('bgp-a');
    t.setLink({ index: 1, name: 'veth0', up: true, carrier: false });
    t.setLink({ index: 2, name: 'veth1', up: true, carrier: false });
    t.flush();
    expect(best()).toBe('bgp-c');
    expect(table.routes(net).map((r) => r.src.name)).toEqual(['bgp-c', 'bgp-a', 'bgp-b']);
    t.setLink({ index: 2, name: 'veth1', up: true, carrier: true });
    t.flush();
    expect(best()).toBe('bgp-b');
    table.withdraw(net, backup);
    expect(best()).toBe('bgp-c');
    expect(table.routes(net).map((r) => r.src.name)).toEqual(['bgp-c', 'bgp-a']);
  });

  it('touches only the nets using a next hop that changed, through the index', () => {
    const t = tracker();
    const table = new Table({ name: 'master4', nexthops: t });
    for (let i = 0; i < 1000; i++) table.announce(p(`10.${i >> 8}.${i & 255}.0/24`), primary, i < 10 ? A : C);
    const seen: string[] = [];
    table.forEachNetUsing(A.nexthops!, (n) => seen.push(n.toString()));
    expect(seen).toHaveLength(10);
    // Routes that moved to another next hop leave the index.
    for (let i = 0; i < 5; i++) table.announce(p(`10.0.${i}.0/24`), primary, C);
    seen.length = 0;
    table.forEachNetUsing(A.nexthops!, (n) => seen.push(n.toString()));
    expect(seen.sort()).toEqual(['10.0.5.0/24', '10.0.6.0/24', '10.0.7.0/24', '10.0.8.0/24', '10.0.9.0/24']);
  });

  it('walks a set whose nets were logged in address order, none gone, without sorting its log; out of order or after a withdrawal it compacts', () => {
    const t = tracker();
    const table = new Table({ name: 'master4', nexthops: t });
    const compact = jest.spyOn(NetLog.prototype, 'compact');
    try {
      const walk = (): string[] => {
        const seen: string[] = [];
        table.forEachNetUsing(A.nexthops!, (n) => seen.push(n.toString()));
        return seen;
      };
      for (let i = 0; i < 4; i++) table.announce(p(`10.0.${i}.0/24`), primary, A);
      expect(walk()).toEqual(['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24']);
      expect(compact).not.toHaveBeenCalled();
      table.announce(p('9.0.0.0/24'), primary, A); // logged after a larger net: sorted before the walk
      expect(walk()).toEqual(['9.0.0.0/24', '10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24']);
      expect(compact).toHaveBeenCalledTimes(1);
      table.announce(p('10.0.4.0/24'), primary, A);
      table.withdraw(p('10.0.2.0/24'), primary); // in order, but a net is gone: dropped before the walk
      expect(walk()).toEqual(['9.0.0.0/24', '10.0.0.0/24', '10.0.1.0/24', '10.0.3.0/24', '10.0.4.0/24']);
      expect(compact).toHaveBeenCalledTimes(2);
    } finally {
      compact.mockRestore();
    }
  });

  it('walks the nets of a set again without compacting only while no route came or went, and each net once', () => {
    const t = tracker();
    const table = new Table({ name: 'master4', nexthops: t });
    const walk = (): string[] => {
      const seen: string[] = [];
      table.forEachNetUsing(A.nexthops!, (n) => seen.push(n.toString()));
      return seen.sort();
    };
    for (let i = 0; i < 4; i++) table.announce(p(`10.0.${i}.0/24`), primary, A);
    const all = ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24', '10.0.3.0/24'];
    expect(walk()).toEqual(all);
    expect(walk()).toEqual(all); // the log as compacted
    table.withdraw(p('10.0.1.0/24'), primary); // a withdrawal does not write the log: the next walk must drop it
    expect(walk()).toEqual(all.filter((n) => n !== '10.0.1.0/24'));
    table.announce(p('10.0.1.0/24'), primary, A);
    table.announce(p('10.0.1.0/24'), backup, A); // the same set from a second source: logged twice, walked once
    expect(walk()).toEqual(all);
    expect(walk()).toEqual(all);
  });

  it('keeps blackhole routes eligible and a table without tracking unchanged', () => {
    const t = tracker();
    t.setLink({ index: 1, name: 'veth0', up: false, carrier: false });
    t.flush();
    const table = new Table({ name: 'master4', nexthops: t });
    table.announce(p('10.1.0.0/16'), backup, RouteAttrs.of({ type: 'blackhole' }));
    table.announce(p('10.1.0.0/16'), primary, A);
    expect(table.bestRoute(p('10.1.0.0/16'))?.attrs.type).toBe('blackhole');
    const plain = new Table({ name: 'plain' });
    plain.announce(p('10.1.0.0/16'), primary, A);
    expect(plain.bestRoute(p('10.1.0.0/16'))?.attrs).toBe(A);
  });
});
