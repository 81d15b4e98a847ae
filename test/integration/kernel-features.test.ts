/**
 * Kernel protocol options against the real kernel: graceful restart, learn,
 * export filters (and changing them in place), merge_paths.
 */
import { parsePrefix } from '../../src/lib/addr';
import { parseExportFilter } from '../../src/proto/filter';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { announce, kernelProtocol, newTable, ourRoutes, routeLines, RouteSource, RouteWatcher, until } from '../helpers/kernel-fixture';

kernelDescribe('kernel protocol options', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krto')));
  afterEach(() => ns.destroy());

  it('graceful restart keeps stale routes until the wait is over, and does not flap re-announced ones', async () => {
    const t1 = newTable();
    announce(t1, new RouteSource('static1', 200), ['10.11.0.0/24 via 192.0.2.2', '10.11.1.0/24 via 192.0.2.2', '10.11.2.0/24 via 192.0.2.2']);
    const first = kernelProtocol(ns, t1);
    await first.start();
    first.crashForTesting();
    // The daemon comes back with an empty table; sources re-announce over time.
    const t2 = newTable();
    const src = new RouteSource('static1', 200);
    announce(t2, src, ['10.11.0.0/24 via 192.0.2.2']);
    const watch = new RouteWatcher(ns);
    await watch.ready();
    const second = kernelProtocol(ns, t2, { gracefulRestartMs: 800 });
    await second.start();
    expect(ourRoutes(ns)).toHaveLength(3);
    announce(t2, src, ['10.11.1.0/24 via 192.0.2.2']); // re-announced in time
    // As long as the hold lasts, nothing of ours goes (looked at on every poll until it ends); then the stale one goes.
    expect(second.sync(4)!.state).toBe('holding');
    await until(() => {
      if (second.sync(4)!.state !== 'holding') return true;
      expect(ourRoutes(ns)).toHaveLength(3);
      return false;
    }, 5000);
    await until(() => ourRoutes(ns).length === 2, 2000);
    const seen = await watch.stop();
    expect(seen).toEqual([expect.stringMatching(/^Deleted 10\.11\.2\.0\/24/)]);
    await second.shutdown();
  });

  it('learns routes of other protocols into a table, and follows their changes', async () => {
    ns.ip('route', 'add', '10.12.0.0/24', 'via', '198.51.100.2', 'proto', 'static');
    ns.ip('route', 'add', '10.12.1.0/24', 'via', '198.51.100.2', 'proto', 'static', 'metric', '5');
    const table = newTable();
    const p = kernelProtocol(ns, table, { learn: { table } });
    await p.start();
    const learned = (): string[] => ['10.12.0.0/24', '10.12.1.0/24', '10.12.2.0/24'].filter((n) => table.bestRoute(parsePrefix(n)) !== undefined);
    expect(learned()).toEqual(['10.12.0.0/24', '10.12.1.0/24']);
    expect(table.bestRoute(parsePrefix('10.12.1.0/24'))!.toString()).toBe('via 198.51.100.2 dev veth1 metric 5 (kernel1-learn)');
    ns.ip('route', 'add', '10.12.2.0/24', 'via', '192.0.2.2', 'proto', 'static');
    ns.ip('route', 'del', '10.12.0.0/24', 'proto', 'static');
    await until(() => learned().join() === '10.12.1.0/24,10.12.2.0/24', 1000);
    // Learned routes are not exported back into the kernel by the protocol that learned them.
    expect(ourRoutes(ns)).toEqual([]);
    await p.sync(4)!.scan('test'); // a scan's resync keeps what is right
    expect(learned()).toEqual(['10.12.1.0/24', '10.12.2.0/24']);
    await p.shutdown();
    expect(learned()).toEqual([]);
    expect(routeLines(ns, '-4', 'main', 'static')).toHaveLength(2);
  });

  it('applies the export filter: rejects, sets kernel attributes, and re-judges every net when it changes', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.13.0.0/24 via 192.0.2.2', '10.13.1.0/25 via 192.0.2.2', '10.99.0.0/16 via 192.0.2.2']);
    announce(table, new RouteSource('static2', 200), ['10.14.0.0/24 via 198.51.100.2']);
    const filter = parseExportFilter({
      rules: [
        { match: { net: '10.99.0.0/16+' }, action: 'reject' },
        { match: { source: 'static2' }, set: { mtu: 1400, metric: 30 }, action: 'accept' },
        { match: { net: '10.13.0.0/16{25,32}' }, set: { prefsrc: '192.0.2.1', realm: 5 } },
      ],
    });
    const p = kernelProtocol(ns, table, { filter });
    await p.start();
    expect(routeLines(ns)).toEqual([
      '10.13.0.0/24 via 192.0.2.2 dev veth0',
      '10.13.1.0/25 via 192.0.2.2 dev veth0 src 192.0.2.1 realm 5',
      '10.14.0.0/24 via 198.51.100.2 dev veth1 metric 30 mtu 1400',
    ]);
    expect(p.reconfigure({ ...optionsOf(ns, table), filter: parseExportFilter('accept') })).toBe(true);
    await until(() => routeLines(ns).length === 4, 2000);
    expect(routeLines(ns)).toEqual([
      '10.13.0.0/24 via 192.0.2.2 dev veth0',
      '10.13.1.0/25 via 192.0.2.2 dev veth0',
      '10.14.0.0/24 via 198.51.100.2 dev veth1',
      '10.99.0.0/16 via 192.0.2.2 dev veth0',
    ]);
    await p.shutdown();
  });

  it('merge_paths joins equal-best routes of several sources into one multipath route', async () => {
    const table = newTable();
    const a = new RouteSource('peerA', 100);
    const b = new RouteSource('peerB', 100);
    const c = new RouteSource('backup', 50);
    announce(table, a, ['10.15.0.0/24 via 192.0.2.2']);
    announce(table, b, ['10.15.0.0/24 via 198.51.100.2']);
    announce(table, c, ['10.15.0.0/24 via 192.0.2.3', '10.15.1.0/24 via 192.0.2.3']);
    const p = kernelProtocol(ns, table, { mergePaths: { limit: 8 } });
    await p.start();
    const text = ns.ip('route', 'show', '10.15.0.0/24', 'proto', '144');
    expect(text).toMatch(/nexthop via 192\.0\.2\.2 dev veth0 weight 1/);
    expect(text).toMatch(/nexthop via 198\.51\.100\.2 dev veth1 weight 1/);
    expect(text).not.toMatch(/192\.0\.2\.3/);
    table.withdraw(parsePrefix('10.15.0.0/24'), b);
    await until(() => routeLines(ns)[0] === '10.15.0.0/24 via 192.0.2.2 dev veth0', 1000);
    expect(routeLines(ns)).toEqual(['10.15.0.0/24 via 192.0.2.2 dev veth0', '10.15.1.0/24 via 192.0.2.3 dev veth0']);
    await p.shutdown();
  });

  it('holds a route through an unknown device as failed (ENODEV) until the device appears', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.16.0.0/24 dev vethx0', '10.16.1.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table);
    await p.start();
    expect(p.status(parsePrefix('10.16.0.0/24'))[0]).toMatchObject({ state: 'failed', error: { errnoName: 'ENODEV' } });
    expect(ourRoutes(ns)).toHaveLength(1);
    ns.ip('link', 'add', 'vethx0', 'type', 'veth', 'peer', 'name', 'vethx1');
    ns.ip('link', 'set', 'vethx0', 'up');
    ns.ip('link', 'set', 'vethx1', 'up');
    await until(() => ourRoutes(ns).length === 2, 2000);
    // The kernel can hold the route a moment before its answer is read (the sender has its own thread).
    await until(() => p.status(parsePrefix('10.16.0.0/24'))[0]!.state === 'installed', 2000);
    await p.shutdown();
  });

  it('scans periodically, and takes a new interval in place', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.17.0.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table, { scanIntervalMs: 100 });
    await p.start();
    await until(() => p.sync(4)!.stats.scans >= 3, 2000);
    expect(p.sync(4)!.stats.sent).toBe(1); // scans of a table in sync send nothing
    expect(p.reconfigure({ ...optionsOf(ns, table), scanIntervalMs: 0 })).toBe(true);
    const scans = p.sync(4)!.stats.scans;
    await new Promise((r) => setTimeout(r, 300));
    expect(p.sync(4)!.stats.scans).toBe(scans);
    expect(p.reconfigure({ ...optionsOf(ns, table), scanIntervalMs: 0, metric: 5 })).toBe(false);
    await p.shutdown();
  });
});

function optionsOf(ns: Netns, table: ReturnType<typeof newTable>): Parameters<typeof kernelProtocol>[2] & { name: string; table: typeof table } {
  return { name: 'kernel1', table, netns: ns.path, family: 4, scanIntervalMs: 0 };
}
