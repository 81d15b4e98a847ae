/**
 * Kernel protocol against the real kernel, in a throwaway namespace:
 * start, reconcile, restart without flap, foreign routes, shutdown.
 */
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { announce, kernelProtocol, newTable, ourRoutes, routeLines, RouteSource, RouteWatcher, withdraw } from '../helpers/kernel-fixture';

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
