/**
 * Failover by forwarding objects (docs/failover.md) for IPv6 against the real
 * kernel, in a throwaway namespace (2001:db8::/32 only). The kernel treats
 * IPv6 its own way (docs/failover.md, "IPv6"): it tells of the routes it
 * flushes with a link's objects, takes a link's addresses on admin down, and
 * keeps routes not on objects with `linkdown`. The oracles are the same as
 * IPv4's: `ip -6 route get`, one dump of routes and objects resolved, and
 * `ip monitor` counting what changed.
 */
import { announce, kernelProtocol, newTable, ourRoutes, quiesced, RouteSource, RouteWatcher, until } from '../helpers/kernel-fixture';
import { allVia, forwardsVia, gatewaysOf, nexthopLines, routeLines, wantedVia, type IpNexthop } from '../helpers/failover-fixture';
import { createNetns, kernelDescribe, type IpRoute, type Netns } from '../helpers/netns';
import { NextHopWatch } from '../../src/proto/kernel/nexthop-watch';
import { NextHopTracker, NO_DAMPING, Table } from '../../src/table';
import type { FailoverMode } from '../../src/proto/kernel/sync-failover';

const BACKUP_METRIC = 4294967295;
/** The primary's gateway (veth2, whose peer veth3 the tests take down), the backup's (veth0), a third (veth1). */
const P = '2001:db8:3::2';
const B = '2001:db8:1::2';
const C = '2001:db8:2::2';

/** `n` /64s in 2001:db8:BLOCK::/48, written as `ip` prints them (every group nonzero). */
const nets = (n: number, block = 0x8000): string[] => Array.from({ length: n }, (_, i) => `2001:db8:${(block + (i >> 12)).toString(16)}:${(0x1000 + (i & 0xfff)).toString(16)}::/64`);
const lines = (list: readonly string[], gw: string): string[] => list.map((n) => `${n} via ${gw}`);
const probe = '2001:db8:8000:1007::1';

const ours = (ns: Netns): IpRoute[] => ourRoutes(ns, '-6');
const primaries = (ns: Netns): IpRoute[] => ours(ns).filter((r) => r.metric !== BACKUP_METRIC);

kernelDescribe('IPv6 failover by forwarding objects (real kernel)', () => {
  let ns: Netns;
  beforeEach(() => {
    ns = createNetns('krtf6');
    ns.ipBatch(['link add veth2 type veth peer name veth3', 'link set veth2 up', 'link set veth3 up', 'addr add 2001:db8:3::1/64 dev veth2 nodad']);
  });
  afterEach(() => {
    RouteWatcher.stopAll();
    ns.destroy();
  });

  it('a source withdrawn moves every net by one object replace and no route message for nets with a backup; recovery at once', async () => {
    const table = newTable();
    const primary = new RouteSource('upstream1', 200);
    const backup = new RouteSource('upstream2', 100);
    const both = nets(2000);
    const alone = nets(10, 0x9000); // only the primary has them: deleted with it
    announce(table, primary, lines([...both, ...alone], P));
    announce(table, backup, lines(both, B));
    const p = kernelProtocol(ns, table, { family: 6, failover: 'objects' });
    await p.start();
    expect(p.counts()).toMatchObject({ installed: 2010, failed: 0 });
    const group = ours(ns).find((r) => r.dst === both[0])!.nhid!;
    expect(new Set(ours(ns).filter((r) => both.includes(r.dst)).map((r) => r.nhid))).toEqual(new Set([group]));
    expect(forwardsVia(ns, probe)).toBe(P);

    const watch = new RouteWatcher(ns, ['route', 'nexthop']);
    await watch.ready();
    const stats = p.sync(6)!.stats;
    const sent = stats.sent;
    table.flush(primary);
    expect(forwardsVia(ns, probe)).toBe(B);
    await until(() => p.counts().installed === 2000 && p.counts().pending === 0);
    await p.sync(6)!.settled();
    const seen = await watch.stop();
    const gws = gatewaysOf(ns, '-6');
    for (const n of both) expect(gws.get(n)).toBe(B);
    for (const n of alone) expect(gws.has(n)).toBe(false);
    expect(nexthopLines(seen).filter((l) => l.startsWith(`id ${group} `))).toHaveLength(1);
    // Route messages: the 10 deletes of the nets without a backup, nothing else.
    expect(stats.sent - sent).toBe(10);
    expect(stats.notifications).toBe(0);
    expect(ours(ns).find((r) => r.dst === both[0])!.nhid).toBe(group);

    announce(table, primary, lines(both, P));
    await until(allVia(ns, '-6', 2000, P));
    expect(forwardsVia(ns, probe)).toBe(P);
    await p.shutdown();
    expect(ours(ns)).toEqual([]);
    await until(() => ns.ipJson<IpNexthop[]>('nexthop', 'show').length === 0);
  });

  it('three sources: each failure is one object replace; a restart in the middle of a failover moves no primary route, only the backup routes to the new next-best', async () => {
    const table = newTable();
    const [a, b, c] = [new RouteSource('a', 300), new RouteSource('b', 200), new RouteSource('c', 100)];
    const list = nets(500);
    announce(table, a, lines(list, P));
    announce(table, b, lines(list, B));
    announce(table, c, lines(list, C));
    const p = kernelProtocol(ns, table, { family: 6, failover: 'backup_routes' });
    await p.start();
    await p.sync(6)!.settled();
    expect(ours(ns).filter((r) => r.metric === BACKUP_METRIC)).toHaveLength(500);
    table.flush(a);
    expect(forwardsVia(ns, probe)).toBe(B);
    // The daemon dies before its catch-up has run; a new one starts.
    p.crashForTesting();
    const watch = new RouteWatcher(ns, ['route', 'nexthop']);
    await watch.ready();
    const again = kernelProtocol(ns, table, { family: 6, failover: 'backup_routes' });
    await again.start();
    await again.sync(6)!.settled();
    // What the catch-up would have done: the backup routes go to the new next-best (c); the primary routes stay.
    const seen = routeLines(await watch.stop());
    expect(seen.filter((l) => !l.includes(` metric ${BACKUP_METRIC}`))).toEqual([]);
    expect(seen.filter((l) => l.includes(`via ${C} `) && !l.startsWith('Deleted'))).toHaveLength(500);
    expect(allVia(ns, '-6', 500, B)()).toBe(true);

    const sent = again.sync(6)!.stats.sent;
    table.flush(b);
    expect(forwardsVia(ns, probe)).toBe(C);
    await again.sync(6)!.settled();
    // The backup routes through c stay where they are: the new primary goes there too.
    expect(again.sync(6)!.stats.sent).toBe(sent);
    expect(allVia(ns, '-6', 500, C)()).toBe(true);
    await again.shutdown();
    expect(ours(ns)).toEqual([]);
  });

  it.each(['objects', 'backup_routes'] as const)('%s: a restart after a source withdrawn changes nothing, kept backup routes included; they go when the primary moves elsewhere', async (mode) => {
    const table = newTable();
    const [a, b] = [new RouteSource('a', 200), new RouteSource('b', 100)];
    const list = nets(500);
    announce(table, a, lines(list, P));
    announce(table, b, lines(list, B));
    const p = kernelProtocol(ns, table, { family: 6, failover: mode });
    await p.start();
    table.flush(a);
    await p.sync(6)!.settled();
    await until(() => !ns.ip('nexthop').includes(P)); // the primary's hop object, unused, is collected
    // The running daemon keeps the backup routes through b: they go where the primary now does.
    expect(ours(ns)).toHaveLength(mode === 'backup_routes' ? 1000 : 500);
    p.crashForTesting();
    const watch = new RouteWatcher(ns, ['route', 'nexthop']);
    await watch.ready();
    const again = kernelProtocol(ns, table, { family: 6, failover: mode });
    await again.start();
    await again.sync(6)!.settled();
    expect(await watch.stop()).toEqual([]);
    expect(ours(ns)).toHaveLength(mode === 'backup_routes' ? 1000 : 500);
    // The primary's return wants them again: no backup route change.
    const back = new RouteWatcher(ns, ['route']);
    await back.ready();
    announce(table, a, lines(list, P));
    await until(allVia(ns, '-6', 500, P));
    await again.sync(6)!.settled();
    expect(routeLines(await back.stop()).filter((l) => l.includes(` metric ${BACKUP_METRIC}`))).toEqual([]);
    expect(ours(ns)).toHaveLength(mode === 'backup_routes' ? 1000 : 500);
    // b's routes move to another next hop: a backup route that no longer goes anywhere wanted goes.
    table.flush(a);
    announce(table, b, lines(list, C));
    await again.sync(6)!.settled();
    await until(() => ours(ns).length === 500 && allVia(ns, '-6', 500, C)());
    await again.shutdown();
    expect(ours(ns)).toEqual([]);
  });

  describe.each([
    ['objects', false],
    ['backup_routes', false],
    ['objects', true],
    ['backup_routes', true],
  ] as Array<[FailoverMode, boolean]>)('%s, next-hop tracking %s', (mode, tracking) => {
    let tracker: NextHopTracker | undefined;
    let watcher: NextHopWatch | undefined;
    let table: Table;
    const list = nets(1000);
    beforeEach(async () => {
      tracker = tracking ? new NextHopTracker({ damping: NO_DAMPING }) : undefined;
      watcher = tracker ? await NextHopWatch.open({ tracker, netns: ns.path }) : undefined;
      table = tracker ? new Table({ name: 'master6', nexthops: tracker }) : newTable();
      announce(table, new RouteSource('a', 200), lines(list, P));
      announce(table, new RouteSource('b', 100), lines(list, B));
    });
    afterEach(() => watcher?.close());

    it('carrier loss: every net forwards via the backup, the primary routes go back on their object, the link back is one replace and no route message; a restart in the middle changes nothing', async () => {
      const p = kernelProtocol(ns, table, { family: 6, failover: mode, scanIntervalMs: 0 });
      await p.start();
      await p.sync(6)!.settled();
      expect(primaries(ns)).toHaveLength(1000);
      expect(ours(ns).length - 1000).toBe(mode === 'backup_routes' ? 1000 : 0);
      const group = primaries(ns)[0]!.nhid!;
      expect(forwardsVia(ns, probe)).toBe(P);
      const { sent, repairs, scans } = p.sync(6)!.stats;
      const nh = new RouteWatcher(ns, ['nexthop']);
      await nh.ready();

      ns.ip('link', 'set', 'veth3', 'down');
      if (mode === 'backup_routes') {
        // The kernel forwards through the backup routes at once (before the daemon has done anything we wait for).
        await until(() => forwardsVia(ns, probe) === B, 2000);
      }
      await until(() => primaries(ns).length === 1000 && allVia(ns, '-6', 1000, B)(), 20000);
      // With tracking the nets want the backup's route now; without, the primary's (its object held on the backup).
      await wantedVia(p, 6, tracking ? B : P);
      expect(p.sync(6)!.stats.scans).toBeGreaterThan(scans); // the device scan the link asked for has run
      expect(allVia(ns, '-6', 1000, B)()).toBe(true);
      expect(forwardsVia(ns, probe)).toBe(B);
      expect(primaries(ns).every((r) => r.nhid === group)).toBe(true);
      expect(ours(ns).length - 1000).toBe(mode === 'backup_routes' ? 1000 : 0);
      expect(p.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
      // One route add per route the kernel flushed. IPv6 told us of each, before the link's notification and
      // as the kernel's own doing (port 0): none is a repair, none is sent before the link's flush plans it
      // (in whichever read that notification comes: test/unit/proto/kernel-failover.test.ts).
      expect(p.sync(6)!.stats.sent - sent).toBe(1000);
      expect(p.sync(6)!.stats.repairs - repairs).toBe(0);
      expect(nexthopLines(await nh.stop()).filter((l) => l.startsWith(`id ${group} `))).toHaveLength(1);

      // A restart in the middle of the failover: nothing moves.
      p.crashForTesting();
      const quiet = new RouteWatcher(ns, ['route', 'nexthop']);
      await quiet.ready();
      const again = kernelProtocol(ns, table, { family: 6, failover: mode, scanIntervalMs: 0 });
      await again.start();
      await quiesced(again.sync(6)!);
      expect(await quiet.stop()).toEqual([]);

      // The link back: one replace gives the object the primary's hops again; no route message.
      const sent2 = again.sync(6)!.stats.sent;
      const back = new RouteWatcher(ns, ['route', 'nexthop']);
      await back.ready();
      ns.ip('link', 'set', 'veth3', 'up');
      await until(() => forwardsVia(ns, probe) === P && allVia(ns, '-6', 1000, P)(), 20000);
      await wantedVia(again, 6, P);
      expect(again.sync(6)!.stats.sent).toBe(sent2);
      const seen = await back.stop();
      // The kernel tells of every route the replace moved (stamped with our port); none is a route message of ours.
      expect(routeLines(seen).filter((l) => l.startsWith('Deleted'))).toEqual([]);
      expect(nexthopLines(seen).filter((l) => l.startsWith(`id ${group} group`))).toHaveLength(1);
      expect(nexthopLines(seen).filter((l) => l.startsWith('Deleted'))).toEqual([]);
      expect(primaries(ns).every((r) => r.nhid === group)).toBe(true);
      expect(again.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
      await again.shutdown();
      expect(ours(ns)).toEqual([]);
      await until(() => ns.ipJson<IpNexthop[]>('nexthop', 'show').length === 0);
    });

    it('admin down of the primary link (its IPv6 addresses go with it): every net forwards via the backup, and back when the link and its address return', async () => {
      const p = kernelProtocol(ns, table, { family: 6, failover: mode, scanIntervalMs: 0 });
      await p.start();
      await p.sync(6)!.settled();
      ns.ip('link', 'set', 'veth2', 'down');
      await until(() => primaries(ns).length === 1000 && allVia(ns, '-6', 1000, B)(), 20000);
      await wantedVia(p, 6, tracking ? B : P);
      expect(forwardsVia(ns, probe)).toBe(B);
      expect(p.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
      ns.ip('link', 'set', 'veth2', 'up');
      ns.ip('addr', 'replace', '2001:db8:3::1/64', 'dev', 'veth2', 'nodad');
      await until(() => forwardsVia(ns, probe) === P && allVia(ns, '-6', 1000, P)(), 20000);
      await wantedVia(p, 6, P);
      expect(p.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
      expect(ours(ns).length - 1000).toBe(mode === 'backup_routes' ? 1000 : 0);
      await p.shutdown();
      expect(ours(ns)).toEqual([]);
      await until(() => ns.ipJson<IpNexthop[]>('nexthop', 'show').length === 0);
    });
  });
});
