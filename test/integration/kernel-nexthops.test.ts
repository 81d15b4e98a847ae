/**
 * Routes on kernel nexthop objects against the real kernel, in a throwaway
 * namespace: `ip -j route` and `ip -j nexthop` are the oracle.
 */
import { parsePrefix } from '../../src/lib/addr';
import { idRange } from '../../src/proto/kernel/nexthop-objects';
import { announce, kernelProtocol, memoryLogger, newTable, ourRoutes, RouteSource, RouteWatcher, until, withdraw } from '../helpers/kernel-fixture';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

interface IpNexthop {
  id: number;
  gateway?: string;
  dev?: string;
  protocol: string;
  flags: string[];
  group?: { id: number; weight?: number }[];
}

const KINDS = [
  '10.1.0.0/24 via 192.0.2.2', // the device from the connected route
  '10.1.1.0/24 via 192.0.2.2 dev veth0', // same next hop: same object
  '10.1.2.0/24 dev veth1',
  '10.1.3.0/24 via 203.0.113.9 dev veth0 onlink',
  '10.1.4.0/24 nexthop via 192.0.2.2 dev veth0 weight 2 nexthop via 198.51.100.2 dev veth1',
  '10.1.8.0/24 via 192.0.2.2 src 192.0.2.1 metric 50',
  '10.1.9.0/24 via 192.0.2.2 mtu 1400 advmss 1360 window 65535 rtt 100 initcwnd 10',
  '10.1.11.0/24 via 192.0.2.2 hoplimit 64 congctl lock cubic',
  '10.1.12.0/24 via inet6 2001:db8:1::2 dev veth0',
  'default via 192.0.2.2 metric 4000',
  // Not on objects: no next hop (a route type), and a realm (the kernel drops RTA_FLOW with an object).
  'blackhole 10.1.5.0/24',
  'unreachable 10.1.6.0/24',
  'prohibit 10.1.7.0/24',
  '10.1.10.0/24 via 192.0.2.2 mtu lock 1300 realm 7',
];
const KINDS6 = ['2001:db8:10::/48 via 2001:db8:1::2', '2001:db8:11::/48 nexthop via 2001:db8:1::2 weight 3 nexthop via 2001:db8:2::2', 'blackhole 2001:db8:12::/48'];

const nexthops = (ns: Netns): IpNexthop[] => ns.ipJson<IpNexthop[]>('nexthop', 'show');
const nhidOf = (ns: Netns, dst: string, family: '-4' | '-6' = '-4'): number | undefined => ourRoutes(ns, family).find((r) => r.dst === dst)?.nhid;

kernelDescribe('kernel protocol on nexthop objects', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtn')));
  afterEach(() => ns.destroy());

  it('puts every route kind with next hops on objects of ours, and a restart changes nothing, routes and objects alike', async () => {
    const table4 = newTable();
    const table6 = newTable('master6');
    announce(table4, new RouteSource('static1', 200), KINDS);
    announce(table6, new RouteSource('static1', 200), KINDS6);
    const first = [kernelProtocol(ns, table4, { nexthopObjects: 'on' }), kernelProtocol(ns, table6, { family: 6, nexthopObjects: 'on' })];
    for (const p of first) await p.start();
    expect(first[0]!.counts()).toEqual({ installed: KINDS.length, pending: 0, failed: 0, withdrawing: 0 });
    expect(first[1]!.counts()).toEqual({ installed: KINDS6.length, pending: 0, failed: 0, withdrawing: 0 });

    const objs = nexthops(ns);
    const byId = new Map(objs.map((o) => [o.id, o]));
    const r4 = ourRoutes(ns);
    const withId = r4.filter((r) => r.nhid !== undefined).map((r) => r.dst).sort();
    expect(withId).toEqual(['10.1.0.0/24', '10.1.1.0/24', '10.1.11.0/24', '10.1.12.0/24', '10.1.2.0/24', '10.1.3.0/24', '10.1.4.0/24', '10.1.8.0/24', '10.1.9.0/24', 'default']);
    expect(nhidOf(ns, '10.1.0.0/24')).toBe(nhidOf(ns, '10.1.1.0/24'));
    expect(byId.get(nhidOf(ns, '10.1.0.0/24')!)).toMatchObject({ gateway: '192.0.2.2', dev: 'veth0' });
    expect(byId.get(nhidOf(ns, '10.1.2.0/24')!)).toMatchObject({ dev: 'veth1' });
    expect(byId.get(nhidOf(ns, '10.1.3.0/24')!)).toMatchObject({ gateway: '203.0.113.9', dev: 'veth0', flags: ['onlink'] });
    expect(byId.get(nhidOf(ns, '10.1.12.0/24')!)).toMatchObject({ gateway: '2001:db8:1::2', dev: 'veth0' });
    const group = byId.get(nhidOf(ns, '10.1.4.0/24')!)!;
    expect(group.group).toHaveLength(2);
    expect(group.group!.map((g) => [byId.get(g.id)!.gateway, g.weight ?? 1]).sort()).toEqual([
      ['192.0.2.2', 2],
      ['198.51.100.2', 1],
    ]);
    const g6 = byId.get(nhidOf(ns, '2001:db8:11::/48', '-6')!)!;
    expect(g6.group!.map((g) => [byId.get(g.id)!.gateway, g.weight ?? 1]).sort()).toEqual([
      ['2001:db8:1::2', 3],
      ['2001:db8:2::2', 1],
    ]);
    for (const dst of ['10.1.5.0/24', '10.1.6.0/24', '10.1.7.0/24', '10.1.10.0/24']) expect(nhidOf(ns, dst)).toBeUndefined();
    // Ours: our protocol number, ids in each sync's range.
    const r4range = idRange({ protocol: 144, family: 4, table: 254 });
    const r6range = idRange({ protocol: 144, family: 6, table: 254 });
    for (const o of objs) {
      expect(o.protocol).toMatch(/^(144|krtsync)$/);
      const inRange = (r: { first: number; last: number }): boolean => o.id >= r.first && o.id <= r.last;
      expect(inRange(r4range) || inRange(r6range)).toBe(true);
    }

    for (const p of first) p.crashForTesting();
    const watch = new RouteWatcher(ns, ['route', 'nexthop']);
    await watch.ready();
    const second = [kernelProtocol(ns, table4, { nexthopObjects: 'on' }), kernelProtocol(ns, table6, { family: 6, nexthopObjects: 'on' })];
    for (const p of second) await p.start();
    expect(await watch.stop()).toEqual([]);
    expect(second[0]!.sync(4)!.stats.sent + second[1]!.sync(6)!.stats.sent).toBe(0);
    expect(nexthops(ns)).toEqual(objs);
    for (const p of second) await p.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
    expect(ourRoutes(ns, '-6')).toEqual([]);
    expect(nexthops(ns)).toEqual([]);
  });

  it('turning the option off and on replaces routes in place: no route deleted, none added', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), KINDS);
    const opts = { nexthopObjects: 'auto' as const };
    const p = kernelProtocol(ns, table, opts);
    await p.start();
    const dsts = ourRoutes(ns).map((r) => r.dst).sort();
    const options = (p as unknown as { options: Parameters<typeof p.reconfigure>[0] }).options;
    const watch = new RouteWatcher(ns);
    await watch.ready();
    expect(p.reconfigure({ ...options, nexthopObjects: 'off' })).toBe(true);
    await until(() => ourRoutes(ns).every((r) => r.nhid === undefined) && nexthops(ns).length === 0, 5000);
    expect(ourRoutes(ns).find((r) => r.dst === '10.1.0.0/24')).toMatchObject({ gateway: '192.0.2.2', dev: 'veth0' });
    expect(p.reconfigure({ ...options, nexthopObjects: 'on' })).toBe(true);
    await until(() => ourRoutes(ns).filter((r) => r.nhid !== undefined).length === 10, 5000);
    const seen = await watch.stop();
    expect(seen.filter((l) => l.startsWith('Deleted'))).toEqual([]);
    expect(ourRoutes(ns).map((r) => r.dst).sort()).toEqual(dsts);
    expect(p.counts().installed).toBe(KINDS.length);
    await p.shutdown();
  });

  it('a link going down takes its objects and their routes; they come back with it', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.2.0.0/24 via 198.51.100.2', '10.2.1.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2']);
    const p = kernelProtocol(ns, table, { backoff: { baseMs: 200, maxMs: 2000, jitter: 0 } });
    await p.start();
    expect(nexthops(ns)).toHaveLength(3);
    ns.ip('link', 'set', 'veth1', 'down'); // veth0, its peer, loses carrier too
    await until(() => p.counts().failed === 2, 3000);
    expect(ourRoutes(ns)).toEqual([]);
    expect(nexthops(ns)).toEqual([]);
    ns.ip('link', 'set', 'veth1', 'up');
    await until(() => p.counts().installed === 2 && ourRoutes(ns).length === 2, 5000);
    expect(nexthops(ns)).toHaveLength(3);
    expect(nexthops(ns).find((o) => o.id === nhidOf(ns, '10.2.1.0/24'))!.group).toHaveLength(2);
    await p.shutdown();
    expect(nexthops(ns)).toEqual([]);
  });

  it('repairs a foreign delete of our object, and the routes the kernel deleted with it, within a second', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.3.0.0/24 via 192.0.2.2', '10.3.1.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table);
    await p.start();
    const id = nhidOf(ns, '10.3.0.0/24')!;
    ns.ip('nexthop', 'del', 'id', String(id));
    expect(ourRoutes(ns)).toEqual([]);
    const ms = await until(() => ourRoutes(ns).length === 2, 1000);
    expect(ms).toBeLessThan(1000);
    expect(nhidOf(ns, '10.3.1.0/24')).toBe(id);
    expect(nexthops(ns)).toMatchObject([{ id, gateway: '192.0.2.2', dev: 'veth0' }]);
    await p.shutdown();
  });

  it('never deletes an object a foreign route uses, in any table', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, ['10.4.0.0/24 via 192.0.2.2', '10.4.1.0/24 via 198.51.100.2']);
    const log = memoryLogger();
    const p = kernelProtocol(ns, table, { log });
    await p.start();
    const a = nhidOf(ns, '10.4.0.0/24')!;
    const b = nhidOf(ns, '10.4.1.0/24')!;
    ns.ip('route', 'add', '10.99.0.0/24', 'nhid', String(a), 'proto', 'static');
    ns.ip('route', 'add', '10.98.0.0/24', 'nhid', String(b), 'table', '300');
    withdraw(table, src, ['10.4.0.0/24 via 192.0.2.2']);
    await until(() => ourRoutes(ns).length === 1, 2000);
    // Unused objects are collected at most every 2 s: the run that found a's foreign user and kept it says so.
    await until(() => log.entries.some((e) => e.msg.includes('nexthop objects of ours are kept: routes of others use them')), 10000);
    expect(nexthops(ns).map((o) => o.id).sort()).toEqual([a, b].sort());
    await p.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
    expect(nexthops(ns).map((o) => o.id).sort()).toEqual([a, b].sort());
    expect(ns.ip('route', 'show', '10.99.0.0/24')).toContain(`nhid ${a}`);
    expect(ns.ip('route', 'show', 'table', '300')).toContain(`nhid ${b}`);
    expect(table.bestRoute(parsePrefix('10.4.1.0/24'))).toBeDefined();
  });

  it('hears foreign routes put on our objects after start, of either family, and removed again', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, ['10.5.0.0/24 via 192.0.2.2', '10.5.1.0/24 via 198.51.100.2', '10.5.2.0/24 via inet6 2001:db8:1::2 dev veth0']);
    const p = kernelProtocol(ns, table);
    await p.start();
    const a = nhidOf(ns, '10.5.0.0/24')!;
    const v6 = nhidOf(ns, '10.5.2.0/24')!;
    ns.ip('-6', 'route', 'add', '2001:db8:40::/48', 'nhid', String(v6), 'table', '300'); // an IPv6 route on the IPv6 object of our IPv4 route
    ns.ip('route', 'add', '10.97.0.0/24', 'nhid', String(a));
    ns.ip('route', 'del', '10.97.0.0/24'); // removed again: a may go
    await p.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
    expect(nexthops(ns).map((o) => o.id)).toEqual([v6]);
    expect(ns.ip('-6', 'route', 'show', 'table', '300')).toContain(`nhid ${v6}`);
  });

  for (const compat of [1, 0]) {
    it(`learns foreign routes on nexthop objects (FRR's way) with their next hops, nexthop_compat_mode ${compat}`, async () => {
      ns.exec('sysctl', ['-q', '-w', `net.ipv4.nexthop_compat_mode=${compat}`]);
      ns.ip('nexthop', 'add', 'id', '7001', 'via', '198.51.100.2', 'dev', 'veth1', 'proto', 'zebra');
      ns.ip('nexthop', 'add', 'id', '7002', 'via', '192.0.2.2', 'dev', 'veth0', 'proto', 'zebra');
      ns.ip('nexthop', 'add', 'id', '7003', 'group', '7001,2/7002', 'proto', 'zebra');
      ns.ip('route', 'add', '10.7.0.0/24', 'nhid', '7001', 'proto', 'zebra', 'metric', '20');
      ns.ip('route', 'add', '10.7.1.0/24', 'nhid', '7003', 'proto', 'zebra', 'metric', '20');
      const table = newTable();
      const p = kernelProtocol(ns, table, { learn: { table } });
      await p.start();
      const learned = (net: string): string | undefined => table.bestRoute(parsePrefix(net))?.toString();
      expect(learned('10.7.0.0/24')).toBe('via 198.51.100.2 dev veth1 metric 20 (kernel1-learn)');
      expect(learned('10.7.1.0/24')).toBe('via 192.0.2.2 dev veth0, via 198.51.100.2 dev veth1 weight 2 metric 20 (kernel1-learn)'); // 7001 has weight 2
      ns.ip('route', 'add', '10.7.2.0/24', 'nhid', '7002', 'proto', 'zebra'); // a notification
      await until(() => learned('10.7.2.0/24') === 'via 192.0.2.2 dev veth0 (kernel1-learn)', 2000);
      expect(ourRoutes(ns)).toEqual([]); // learned routes are not exported back
      await p.shutdown();
      expect(learned('10.7.0.0/24')).toBeUndefined();
    });
  }

  it('after a restart, counts the foreign routes already on the objects it adopts', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, ['10.6.0.0/24 via 192.0.2.2', '10.6.1.0/24 via 198.51.100.2']);
    const p = kernelProtocol(ns, table);
    await p.start();
    const a = nhidOf(ns, '10.6.0.0/24')!;
    p.crashForTesting(); // routes and objects stay: the next start adopts them
    ns.ip('route', 'add', '10.96.0.0/24', 'nhid', String(a), 'table', '301');
    const again = kernelProtocol(ns, table);
    await again.start();
    await again.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
    expect(nexthops(ns).map((o) => o.id)).toEqual([a]);
    expect(ns.ip('route', 'show', 'table', '301')).toContain(`nhid ${a}`);
  });
});
