/**
 * Kernel protocol against the real kernel, in a throwaway namespace:
 * start, reconcile, restart without flap, foreign routes, shutdown.
 */
import { createNetns, kernelDescribe, OUR_PROTO_SHOWN, type Netns } from '../helpers/netns';
import { parsePrefix } from '../../src/lib/addr';
import { announce, kernelProtocol, newTable, ourRoutes, routeLines, RouteSource, RouteWatcher, until, withdraw } from '../helpers/kernel-fixture';

const KINDS4 = [
  '10.1.0.0/24 via 192.0.2.2',
  '10.1.1.0/24 via 192.0.2.2 dev veth0',
  '10.1.2.0/24 dev veth1',
  '10.1.3.0/24 via 192.0.2.2 dev veth0 onlink',
  '10.1.4.0/24 nexthop via 192.0.2.2 dev veth0 weight 2 nexthop via 198.51.100.2 dev veth1',
  'blackhole 10.1.5.0/24',
  'unreachable 10.1.6.0/24',
  'prohibit 10.1.7.0/24',
  '10.1.8.0/24 via 192.0.2.2 src 192.0.2.1 metric 50',
  '10.1.9.0/24 via 192.0.2.2 mtu 1400 advmss 1360 window 65535 rtt 100 initcwnd 10',
  '10.1.10.0/24 via 192.0.2.2 mtu lock 1300 realm 7 scope global',
  '10.1.11.0/24 via 192.0.2.2 hoplimit 64 congctl lock cubic',
  '10.1.12.0/24 via inet6 2001:db8:1::2 dev veth0',
  'default via 192.0.2.2 metric 4000',
];

kernelDescribe('kernel protocol (IPv4, main)', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtk')));
  afterEach(() => ns.destroy());

  it('installs every route kind with our protocol number and removes them all on shutdown', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, KINDS4);
    const p = kernelProtocol(ns, table);
    await p.start();
    expect(ourRoutes(ns)).toHaveLength(KINDS4.length);
    expect(p.counts()).toEqual({ installed: KINDS4.length, pending: 0, failed: 0, withdrawing: 0 });
    await p.shutdown();
    expect(ourRoutes(ns)).toHaveLength(0);
  });

  it('a restart changes nothing in the kernel for every route kind', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, KINDS4);
    const first = kernelProtocol(ns, table);
    await first.start();
    const before = routeLines(ns);
    first.crashForTesting();
    const watch = new RouteWatcher(ns);
    await watch.ready();
    const second = kernelProtocol(ns, table);
    await second.start();
    const seen = await watch.stop();
    expect(seen).toEqual([]);
    expect(second.sync(4)!.stats.sent).toBe(0);
    expect(routeLines(ns)).toEqual(before);
    await second.shutdown();
  });

  it('reconciles on start: keeps identical, replaces changed, deletes stale, adds missing', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, ['10.2.0.0/24 via 192.0.2.2', '10.2.1.0/24 via 192.0.2.2', '10.2.2.0/24 via 192.0.2.2']);
    const first = kernelProtocol(ns, table);
    await first.start();
    first.crashForTesting();
    // While down: one route changes, one goes, one is new.
    announce(table, src, ['10.2.1.0/24 via 198.51.100.2', '10.2.3.0/24 via 192.0.2.2']);
    withdraw(table, src, ['10.2.2.0/24 via 192.0.2.2']);
    const watch = new RouteWatcher(ns);
    await watch.ready();
    const second = kernelProtocol(ns, table);
    await second.start();
    const seen = await watch.stop();
    expect(routeLines(ns)).toEqual([
      '10.2.0.0/24 via 192.0.2.2 dev veth0',
      '10.2.1.0/24 via 198.51.100.2 dev veth1',
      '10.2.3.0/24 via 192.0.2.2 dev veth0',
    ]);
    expect(seen.some((l) => l.includes('10.2.0.0/24'))).toBe(false);
    expect(seen.filter((l) => l.startsWith('Deleted')).map((l) => l.split(' ')[1])).toEqual(['10.2.2.0/24']);
    await second.shutdown();
  });
});

kernelDescribe('kernel protocol lifecycle edges', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtl')));
  afterEach(() => ns.destroy());

  it('a shutdown during start waits for it, then withdraws everything', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), KINDS4);
    const p = kernelProtocol(ns, table);
    const started = p.start();
    const down = p.shutdown();
    await started;
    await down;
    expect(p.state).toBe('down');
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('fails to start, and deletes nothing, when the table stops before its first feed is complete', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), KINDS4);
    const first = kernelProtocol(ns, table);
    await first.start();
    first.crashForTesting();
    const gone = newTable();
    gone.stop('table removed by reconfiguration');
    const second = kernelProtocol(ns, gone);
    await expect(second.start()).rejects.toThrow(/before its first feed/);
    expect(second.state).toBe('down');
    expect(ourRoutes(ns)).toHaveLength(KINDS4.length);
  });
});

kernelDescribe('kernel protocol and foreign routes', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtf')));
  afterEach(() => ns.destroy());

  it('never changes or removes a foreign route: start, scans, repair, shutdown', async () => {
    // Foreign: same prefix as ours at another metric, same prefix and metric as ours, and an unrelated one.
    ns.ipBatch([
      'route add 10.8.0.0/24 via 198.51.100.2 proto static metric 100',
      'route add 10.8.1.0/24 via 198.51.100.2 proto static',
      'route add 10.8.2.0/24 via 198.51.100.2 proto boot',
      'route add 10.8.3.0/24 via 198.51.100.2 proto 145',
    ]);
    const foreign = (): string[] => ns.ip('-4', 'route', 'show', 'table', 'all').split('\n').filter((l) => l && !OUR_PROTO_SHOWN.test(l)).sort();
    const before = foreign();
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.8.0.0/24 via 192.0.2.2', '10.8.1.0/24 via 192.0.2.2', '10.8.4.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table, { backoff: { baseMs: 100, maxMs: 200, jitter: 0 } });
    await p.start();
    expect(foreign()).toEqual(before);
    // Ours at 10.8.1.0/24 cannot go in: a foreign route holds that net and metric; we say so and leave it.
    expect(p.status(parsePrefix('10.8.1.0/24'))[0]).toMatchObject({ state: 'failed', error: { errnoName: 'EEXIST' } });
    expect(ourRoutes(ns).map((r) => r.dst).sort()).toEqual(['10.8.0.0/24', '10.8.4.0/24']);
    await p.sync(4)!.scan('test');
    // A few retries of 10.8.1.0/24 happen meanwhile (counted, not slept through).
    const tried = p.status(parsePrefix('10.8.1.0/24'))[0]!.attempts;
    await until(() => p.status(parsePrefix('10.8.1.0/24'))[0]!.attempts >= tried + 2, 5000);
    expect(foreign()).toEqual(before);
    ns.ip('route', 'del', '10.8.0.0/24', 'proto', '144');
    await until(() => ourRoutes(ns).length === 2, 1000);
    expect(foreign()).toEqual(before);
    await p.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
    expect(foreign()).toEqual(before);
  });
});

kernelDescribe('kernel protocol, IPv6 and a table above 255', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krt6')));
  afterEach(() => ns.destroy());

  const KINDS6 = [
    '2001:db8:10::/48 via 2001:db8:1::2',
    '2001:db8:11::/48 via 2001:db8:1::2 dev veth0 metric 7 src 2001:db8:1::1',
    '2001:db8:12::/48 nexthop via 2001:db8:1::2 dev veth0 nexthop via 2001:db8:2::2 dev veth1 weight 3',
    '2001:db8:13::/48 dev veth1 pref high mtu 1400',
    'blackhole 2001:db8:14::/48',
    'unreachable 2001:db8:15::/48',
    'prohibit 2001:db8:16::/48',
    'default via 2001:db8:2::2 metric 2000',
  ];

  it('syncs both families into table 1000: install, restart without changes, repair, withdraw', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, [...KINDS6, ...KINDS4]);
    const first = kernelProtocol(ns, table, { family: 'both', kernelTable: 1000 });
    await first.start();
    expect(ourRoutes(ns, '-6', '1000')).toHaveLength(KINDS6.length);
    expect(ourRoutes(ns, '-4', '1000')).toHaveLength(KINDS4.length);
    expect(ourRoutes(ns, '-6', 'main')).toHaveLength(0);
    first.crashForTesting();
    const watch = new RouteWatcher(ns);
    await watch.ready();
    const second = kernelProtocol(ns, table, { family: 'both', kernelTable: 1000 });
    await second.start();
    expect(await watch.stop()).toEqual([]);
    ns.ip('-6', 'route', 'del', '2001:db8:12::/48', 'table', '1000', 'proto', '144');
    await until(() => ourRoutes(ns, '-6', '1000').length === KINDS6.length, 1000);
    await second.shutdown();
    expect(ourRoutes(ns, '-6', '1000')).toHaveLength(0);
    expect(ourRoutes(ns, '-4', '1000')).toHaveLength(0);
  });
});
