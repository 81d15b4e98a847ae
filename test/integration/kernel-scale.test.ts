/**
 * Kernel protocol at scale: a crash and restart with thousands of routes
 * causes no flap, and shutdown withdraws 100,000 routes (or, with persist,
 * leaves them) while foreign routes stay.
 */
import { RouteAttrs } from '../../src/route';
import type { Table } from '../../src/table';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { kernelProtocol, newTable, ourRoutes, routeLines, RouteSource, RouteWatcher } from '../helpers/kernel-fixture';
import { parseAddr, Prefix } from '../../src/lib/addr';

const VIA_A = RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.2') }] });
const VIA_B = RouteAttrs.of({ nexthops: [{ gateway: parseAddr('198.51.100.2') }] });

/** n /32 nets under 10.64.0.0/10, announced by `src`. */
function announceMany(table: Table, src: RouteSource, n: number, attrs = VIA_A, offset = 0): Prefix[] {
  const nets: Prefix[] = [];
  for (let i = offset; i < offset + n; i++) {
    const net = Prefix.v4((10 << 24) | (64 << 16) | i, 32);
    table.announce(net, src, attrs);
    nets.push(net);
  }
  return nets;
}

function countOurs(ns: Netns): number {
  const out = ns.exec('sh', ['-c', 'ip -4 route show table main proto 144 | wc -l']);
  return Number(out.trim());
}

kernelDescribe('kernel protocol at scale', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtx')));
  afterEach(() => ns.destroy());

  it('restarts after a crash with 5,000 routes without touching the ones still wanted', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    const nets = announceMany(table, src, 5000);
    const first = kernelProtocol(ns, table);
    await first.start();
    expect(countOurs(ns)).toBe(5000);
    first.crashForTesting();
    // While "down": 200 go away, 100 change their next hop.
    for (const net of nets.slice(0, 200)) table.withdraw(net, src);
    for (const net of nets.slice(200, 300)) table.announce(net, src, VIA_B);
    const watch = new RouteWatcher(ns);
    await watch.ready();
    const second = kernelProtocol(ns, table);
    await second.start();
    const seen = await watch.stop();
    const touched = new Set(seen.map((l) => l.replace(/^Deleted /, '').split(' ')[0]));
    const deleted = seen.filter((l) => l.startsWith('Deleted'));
    expect(deleted).toHaveLength(200);
    expect(seen.length).toBe(300); // 200 deletes + 100 in-place replaces, nothing else
    for (const net of nets.slice(300)) expect(touched.has(net.toString().replace('/32', ''))).toBe(false);
    expect(countOurs(ns)).toBe(4800);
    expect(second.sync(4)!.stats.sent).toBe(300);
    expect(second.sync(4)!.stats.earlyAdds).toBe(0); // every net held a route of ours: nothing before the feed is complete
    await second.shutdown();
  });

  it('withdraws 100,000 routes on shutdown and leaves foreign routes alone', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announceMany(table, src, 100_000);
    ns.ip('route', 'add', '10.64.0.5/32', 'via', '198.51.100.2', 'proto', 'static', 'metric', '10');
    ns.ip('route', 'add', '203.0.113.0/24', 'via', '192.0.2.2', 'proto', 'static');
    const p = kernelProtocol(ns, table);
    const t0 = Date.now();
    await p.start();
    const startMs = Date.now() - t0;
    expect(countOurs(ns)).toBe(100_000);
    // The kernel drops the notifications of our own 100k adds before they reach the monitor.
    expect(p.sync(4)!.stats.notifications).toBe(0);
    expect(p.sync(4)!.stats.rawEchoes).toBe(0);
    // Adds of nets with nothing of ours went out while the first feed was still being read.
    expect(p.sync(4)!.stats.earlyAdds).toBeGreaterThan(0);
    // A few withdrawals still sit in the journal when shutdown begins.
    for (let i = 0; i < 100; i++) table.withdraw(Prefix.v4((10 << 24) | (64 << 16) | i, 32), src);
    const t1 = Date.now();
    await p.shutdown();
    const shutdownMs = Date.now() - t1;
    expect(countOurs(ns)).toBe(0);
    expect(routeLines(ns, '-4', 'main', 'static')).toEqual(['10.64.0.5 via 198.51.100.2 dev veth1 metric 10', '203.0.113.0/24 via 192.0.2.2 dev veth0']);
    console.log(`100k routes: start ${startMs} ms, shutdown ${shutdownMs} ms`);
  });

  it('without the filter, matches the echoes of its own changes on the raw notification', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announceMany(table, src, 20_000);
    // The raw match covers routes that carry their gateway; routes on nexthop objects take the decode path.
    const p = kernelProtocol(ns, table, { filterOwnEchoes: false, nexthopObjects: 'off' });
    await p.start();
    expect(countOurs(ns)).toBe(20_000);
    // Echoes come back and are recognised without a decode, every one: the pipeline drains the notifications
    // before it handles answers, so each echo is read while its change is still out (with the send queue
    // running ahead of the JS thread, answers handled first left whole chunks of echoes unread here).
    expect(p.sync(4)!.stats.rawEchoes).toBe(20_000);
    expect(p.sync(4)!.stats.earlyAdds).toBe(0); // echoes are buffered until the feed is complete: no early adds
    await p.shutdown();
    expect(countOurs(ns)).toBe(0);
  });

  it('with persist leaves every route of ours in place on shutdown', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announceMany(table, src, 20_000);
    const p = kernelProtocol(ns, table, { persist: true });
    await p.start();
    await p.shutdown();
    expect(countOurs(ns)).toBe(20_000);
    expect(ourRoutes(ns).slice(0, 1)).toEqual([expect.objectContaining({ dst: '10.64.0.0', gateway: '192.0.2.2' })]);
  });
});
