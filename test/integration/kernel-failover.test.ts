/**
 * Failover by forwarding objects (docs/failover.md) against the real kernel,
 * in a throwaway namespace: `ip -j route`, `ip -j nexthop`, `ip route get`
 * and `ip monitor` are the oracle. A source withdrawn as a whole moves
 * forwarding for every net with one nexthop replace per (primary, backup)
 * pair; the per-net catch-up sends no route change; recovery needs no wait;
 * a restart in the middle changes nothing. Carrier loss costs one route
 * message per route the kernel flushed, told from our books with no dump;
 * with next-hop tracking its return is one replace (the object is held on
 * its backup, keeping its key).
 */
import { announce, kernelProtocol, newTable, ourRoutes, quiesced, RouteSource, RouteWatcher, until, untilBlocking } from '../helpers/kernel-fixture';
import { forwardsVia, gatewaysOf, nexthopLines, routeLines, wantedVia, type IpNexthop } from '../helpers/failover-fixture';
import { createNetns, kernelDescribe, type IpRoute, type Netns } from '../helpers/netns';
import { NextHopWatch } from '../../src/proto/kernel/nexthop-watch';
import { NextHopTracker, NO_DAMPING, Table } from '../../src/table';

/** Why routes are not installed, counted by reason, with the objects that are not live: empty when all is well. */
const failures = (p: ReturnType<typeof kernelProtocol>): string[] => {
  const why = new Map<string, number>();
  for (const r of p.status()) {
    if (r.state === 'installed') continue;
    const k = `${r.state} ${r.error?.errnoName ?? ''} ${r.error?.extAck ?? ''} ${r.error?.message ?? ''}`;
    why.set(k, (why.get(k) ?? 0) + 1);
  }
  if (why.size === 0) return [];
  const objects = p.sync(4)!.nexthopStatus().filter((o) => o.state !== 'live').map((o) => JSON.stringify(o));
  return [...[...why].map(([k, n]) => `${n} routes: ${k}`), ...objects];
};
const nets = (n: number, second = 0): string[] => Array.from({ length: n }, (_, i) => `10.${second + (i >> 8)}.${i & 255}.0/24`);
const lines = (list: readonly string[], gw: string): string[] => list.map((n) => `${n} via ${gw}`);

/** Sources a (200, via 203.0.113.2 on veth2) and b (100, via 192.0.2.2) announcing `list`: a the best of each net, b the next-best. */
function twoSources(table: Table, list: readonly string[]): void {
  announce(table, new RouteSource('a', 200), lines(list, '203.0.113.2'));
  announce(table, new RouteSource('b', 100), lines(list, '192.0.2.2'));
}

kernelDescribe('failover by forwarding objects (real kernel)', () => {
  let ns: Netns;
  beforeEach(() => {
    ns = createNetns('krtf');
    // A third upstream for the three-source case.
    ns.ipBatch(['link add veth2 type veth peer name veth3', 'link set veth2 up', 'link set veth3 up', 'addr add 203.0.113.1/24 dev veth2']);
  });
  afterEach(() => {
    RouteWatcher.stopAll();
    ns.destroy();
  });

  it('a source withdrawn moves every net by one object replace, sends no route change for nets with a backup, and recovers at once', async () => {
    const table = newTable();
    const primary = new RouteSource('upstream1', 200);
    const backup = new RouteSource('upstream2', 100);
    const both = nets(2000);
    const alone = nets(10, 100); // only the primary has them: deleted with it
    announce(table, primary, lines([...both, ...alone], '192.0.2.2'));
    announce(table, backup, lines(both, '198.51.100.2'));
    const p = kernelProtocol(ns, table, { failover: 'objects' });
    await p.start();
    expect(p.counts()).toMatchObject({ installed: 2010, failed: 0 });
    const group = ourRoutes(ns).find((r) => r.dst === both[0])!.nhid!;
    expect(new Set(ourRoutes(ns).filter((r) => both.includes(r.dst)).map((r) => r.nhid))).toEqual(new Set([group]));
    expect(ns.ipJson<IpNexthop[]>('nexthop', 'show', 'id', String(group))[0]!.group).toHaveLength(1);
    expect(forwardsVia(ns, '10.3.7.1')).toBe('192.0.2.2');

    const watch = new RouteWatcher(ns, ['nexthop']);
    await watch.ready();
    const stats = p.sync(4)!.stats;
    const sent = stats.sent;
    table.flush(primary);
    // The switch was sent before flush() returned to us: the kernel forwards via the backup now.
    expect(forwardsVia(ns, '10.3.7.1')).toBe('198.51.100.2');
    await until(() => p.counts().installed === 2000 && p.counts().pending === 0);
    await p.sync(4)!.settled();
    const seen = await watch.stop();
    const gws = gatewaysOf(ns);
    for (const n of both) expect(gws.get(n)).toBe('198.51.100.2');
    for (const n of alone) expect(gws.has(n)).toBe(false);
    // One nexthop change (the group's new content), and route changes only for the 10 nets without a backup.
    expect(nexthopLines(seen).filter((l) => l.startsWith(`id ${group} `))).toHaveLength(1);
    expect(stats.sent - sent).toBe(10);
    // The kernel stamps our port on the notification of every route the replace moved: filtered in the kernel, none reach us.
    expect(stats.notifications).toBe(0);
    expect(ourRoutes(ns).find((r) => r.dst === both[0])!.nhid).toBe(group);

    // Recovery: no backoff, no wait; the nets go back to the primary.
    announce(table, primary, lines(both, '192.0.2.2'));
    await until(() => [...gatewaysOf(ns).values()].every((g) => g === '192.0.2.2'));
    expect(forwardsVia(ns, '10.3.7.1')).toBe('192.0.2.2');
    await p.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
    await until(() => ns.ipJson<IpNexthop[]>('nexthop', 'show').length === 0);
  });

  it('three sources: each failure is one object replace, and a restart in the middle of a failover changes nothing', async () => {
    const table = newTable();
    const [a, b, c] = [new RouteSource('a', 300), new RouteSource('b', 200), new RouteSource('c', 100)];
    const list = nets(500);
    announce(table, a, lines(list, '192.0.2.2'));
    announce(table, b, lines(list, '198.51.100.2'));
    announce(table, c, lines(list, '203.0.113.2'));
    const p = kernelProtocol(ns, table, { failover: 'objects' });
    await p.start();
    table.flush(a);
    expect(forwardsVia(ns, '10.1.2.3')).toBe('198.51.100.2');
    // The daemon dies before its catch-up has run; a new one starts.
    p.crashForTesting();
    const watch = new RouteWatcher(ns, ['route']);
    await watch.ready();
    const again = kernelProtocol(ns, table, { failover: 'objects' });
    await again.start();
    await again.sync(4)!.settled();
    expect(routeLines(await watch.stop())).toEqual([]);
    for (const g of gatewaysOf(ns).values()) expect(g).toBe('198.51.100.2');

    const sent = again.sync(4)!.stats.sent;
    table.flush(b);
    expect(forwardsVia(ns, '10.1.2.3')).toBe('203.0.113.2');
    await again.sync(4)!.settled();
    expect(again.sync(4)!.stats.sent).toBe(sent);
    for (const g of gatewaysOf(ns).values()) expect(g).toBe('203.0.113.2');
    await again.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('an ECMP primary: the group carries its members and weights; losing a member\'s carrier leaves the rest forwarding', async () => {
    const table = newTable();
    const a = new RouteSource('a', 200);
    const b = new RouteSource('b', 100);
    const list = nets(200);
    announce(table, a, list.map((n) => `${n} nexthop via 192.0.2.2 weight 1 nexthop via 203.0.113.2 weight 3`));
    announce(table, b, lines(list, '198.51.100.2'));
    const p = kernelProtocol(ns, table, { failover: 'objects' });
    await p.start();
    const g = ns.ipJson<IpNexthop[]>('nexthop', 'show', 'id', String(ourRoutes(ns)[0]!.nhid))[0]!;
    expect(g.group!.map((x) => x.weight ?? 1).sort()).toEqual([1, 3]);
    for (const gw of gatewaysOf(ns).values()) expect(gw).toBe('192.0.2.2,203.0.113.2');
    // veth2's peer goes down: veth2 loses carrier, and the kernel takes its member out of the group itself;
    // every net keeps forwarding via the other member.
    ns.ip('link', 'set', 'veth3', 'down');
    await until(() => [...gatewaysOf(ns).values()].every((x) => x === '192.0.2.2'));
    expect(gatewaysOf(ns).size).toBe(200);
    expect(forwardsVia(ns, '10.0.9.1')).toBe('192.0.2.2');
    ns.ip('link', 'set', 'veth3', 'up');
    await until(() => gatewaysOf(ns).size === 200 && [...gatewaysOf(ns).values()].every((x) => x === '192.0.2.2,203.0.113.2'), 10000);
    // And the source withdrawn at once, though the replace that made the group whole may not be answered yet:
    // the switch goes right behind it, on the same socket (docs/failover.md). One replace moves every net.
    table.flush(a);
    expect(forwardsVia(ns, '10.0.9.1')).toBe('198.51.100.2');
    expect([...gatewaysOf(ns).values()].filter((x) => x !== '198.51.100.2')).toEqual([]);
    // The nets' new wants come through the table's journal; the link changes' device scan may hold them.
    await until(() => p.status().every((st) => st.route === 'via 198.51.100.2'), 10000);
    await quiesced(p.sync(4)!);
    expect(p.counts()).toMatchObject({ installed: 200, failed: 0 });
    await p.shutdown();
  });

  it('an ECMP primary short of a member (its link down) whose source is withdrawn: one replace of what the kernel kept of the group moves every net to the backup', async () => {
    const table = newTable();
    const a = new RouteSource('a', 200);
    announce(table, a, nets(200).map((n) => `${n} nexthop via 192.0.2.2 nexthop via 203.0.113.2`));
    announce(table, new RouteSource('b', 100), lines(nets(200), '198.51.100.2'));
    const p = kernelProtocol(ns, table, { failover: 'objects' });
    await p.start();
    ns.ip('link', 'set', 'veth3', 'down');
    await until(() => [...gatewaysOf(ns).values()].every((x) => x === '192.0.2.2'));
    // Our books know: the group is to be made whole again, which cannot be while veth2 has no carrier.
    await until(() => p.sync(4)!.nexthopStatus().some((o) => o.kind === 'group' && o.state !== 'live'), 10000);
    // And the device scan the link asked for is over before the baseline is taken.
    await quiesced(p.sync(4)!);
    const sent = p.sync(4)!.stats.sent;
    table.flush(a);
    expect(forwardsVia(ns, '10.0.9.1')).toBe('198.51.100.2');
    expect([...gatewaysOf(ns).values()].filter((x) => x !== '198.51.100.2')).toEqual([]);
    // The primary's hop objects are collected after it (deleting them first would have emptied the group, and the
    // kernel would have deleted it with every route on it).
    await until(() => !ns.ip('nexthop').includes('192.0.2.2'), 10000);
    // The nets' new wants come through the table's journal; the device scan veth2 going down asked for may hold
    // them until its pruning (its timer fires late on a loaded machine, while the switch's answer is out).
    await until(() => p.status().every((st) => st.route === 'via 198.51.100.2'), 10000);
    await quiesced(p.sync(4)!);
    expect(gatewaysOf(ns).size).toBe(200);
    // On failure, say why (errno and extended ack per route; the objects' states and errors).
    expect(failures(p)).toEqual([]);
    expect(p.counts()).toMatchObject({ installed: 200, failed: 0, pending: 0 });
    expect(p.sync(4)!.stats.sent).toBe(sent); // no route message
    ns.ip('link', 'set', 'veth3', 'up');
    await p.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('backup_routes: carrier loss of the primary link leaves every net forwarding via its backup route at once, the catch-up moves nothing, the link back is one replace; a restart changes nothing', async () => {
    const table = newTable();
    const list = nets(1000);
    twoSources(table, list);
    const p = kernelProtocol(ns, table, { failover: 'backup_routes', scanIntervalMs: 0 });
    await p.start();
    await p.sync(4)!.settled();
    const ours = ourRoutes(ns);
    expect(ours).toHaveLength(2000);
    expect(ours.filter((r) => r.metric === 4294967295)).toHaveLength(1000);
    expect(forwardsVia(ns, '10.2.3.4')).toBe('203.0.113.2');

    // A restart changes nothing, backup routes and objects included.
    p.crashForTesting();
    const watch = new RouteWatcher(ns, ['route', 'nexthop']);
    await watch.ready();
    const again = kernelProtocol(ns, table, { failover: 'backup_routes', scanIntervalMs: 0 });
    await again.start();
    await again.sync(4)!.settled();
    expect(await watch.stop()).toEqual([]);

    // veth2's peer goes down: veth2 loses carrier; the kernel deletes the primary's object, its group and routes.
    ns.ip('link', 'set', 'veth3', 'down');
    // The kernel's doing (its link watch flushes shortly after), seen before the daemon, which shares this thread
    // and puts the routes back at once, can act: polled without yielding.
    untilBlocking(() => ourRoutes(ns).length === 1000, 5000);
    expect(forwardsVia(ns, '10.2.3.4')).toBe('192.0.2.2');
    for (const r of ourRoutes(ns)) expect(r.metric).toBe(4294967295);
    // The daemon's reaction moves nothing: the forwarding object is made again with the backup's hops and the
    // primary routes go back on it (through the backup, where the backup routes already forward).
    await until(() => ourRoutes(ns).length === 2000, 10000);
    expect(ourRoutes(ns).every((r) => r.gateway === '192.0.2.2')).toBe(true);
    await quiesced(again.sync(4)!); // and the device scan the link asked for
    expect(ourRoutes(ns).every((r) => r.gateway === '192.0.2.2')).toBe(true);
    expect(again.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
    // The link back: one replace puts the object on the primary's hops again.
    const sent = again.sync(4)!.stats.sent;
    ns.ip('link', 'set', 'veth3', 'up');
    await until(() => forwardsVia(ns, '10.2.3.4') === '203.0.113.2', 10000);
    await until(() => [...gatewaysOf(ns).values()].every((g) => g === '203.0.113.2'), 10000);
    await quiesced(again.sync(4)!);
    expect(again.sync(4)!.stats.sent).toBe(sent);
    await again.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
    await until(() => ns.ipJson<IpNexthop[]>('nexthop', 'show').length === 0);
  });

  it('objects: carrier loss of the primary link: the kernel deletes the group and its routes; they come back through the backup, a restart changes nothing, and the link back is one replace', async () => {
    const table = newTable();
    const list = nets(1000);
    twoSources(table, list);
    const p = kernelProtocol(ns, table, { failover: 'objects', scanIntervalMs: 0 });
    await p.start();
    const group = ourRoutes(ns)[0]!.nhid!;
    const { sent: sent0, dumps, scans } = p.sync(4)!.stats;
    ns.ip('link', 'set', 'veth3', 'down');
    await until(() => gatewaysOf(ns).size === 1000 && [...gatewaysOf(ns).values()].every((g) => g === '192.0.2.2'), 10000);
    // The routes came back on the link's notification; the device scan it asked for has run too.
    await quiesced(p.sync(4)!);
    expect(p.sync(4)!.stats.scans).toBeGreaterThan(scans);
    expect(p.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
    expect(ourRoutes(ns)[0]!.nhid).toBe(group);
    // One add per route the kernel flushed, known from our books: no route dump.
    expect(p.sync(4)!.stats.sent - sent0).toBe(1000);
    expect(p.sync(4)!.stats.dumps).toBe(dumps);
    // A restart while the link is down: the object is made degraded (the kernel refuses the primary's hop on a
    // link without carrier) and claims the one the routes are on. No change, nothing failed.
    p.crashForTesting();
    const quiet = new RouteWatcher(ns, ['route', 'nexthop']);
    await quiet.ready();
    const again = kernelProtocol(ns, table, { failover: 'objects', scanIntervalMs: 0 });
    await again.start();
    await again.sync(4)!.settled();
    expect(await quiet.stop()).toEqual([]);
    expect(again.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
    const sent = again.sync(4)!.stats.sent;
    ns.ip('link', 'set', 'veth3', 'up');
    await until(() => [...gatewaysOf(ns).values()].every((g) => g === '203.0.113.2'), 10000);
    await quiesced(again.sync(4)!);
    expect(again.sync(4)!.stats.sent).toBe(sent);
    expect(ourRoutes(ns)[0]!.nhid).toBe(group);
    await again.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
  });
  it('backup_routes with next-hop tracking: a restart in the middle of the catch-up (its nets exported again in slices) moves no route: the new start claims the held object by content and adds only what is missing; the link back is one replace', async () => {
    const tracker = new NextHopTracker({ damping: NO_DAMPING });
    const watcher = await NextHopWatch.open({ tracker, netns: ns.path });
    try {
      const table = new Table({ name: 'master4', nexthops: tracker });
      const list = nets(1000);
      twoSources(table, list);
      const opts = { failover: 'backup_routes', scanIntervalMs: 0, reexportSlice: 1 } as const;
      const p = kernelProtocol(ns, table, opts);
      await p.start();
      const sync = p.sync(4)!;
      await sync.settled();
      const primaries = (): IpRoute[] => ourRoutes(ns).filter((r) => r.metric !== 4294967295);
      const group = primaries()[0]!.nhid!;
      ns.ip('link', 'set', 'veth3', 'down');
      // The tracker's verdict is in and its nets are being exported again, one a turn: crash now.
      const t0 = Date.now();
      while (p.counts().pending - sync.counts().pending <= 0) {
        if (Date.now() - t0 > 10000) throw new Error('the catch-up never waited in slices');
        await new Promise((r) => setImmediate(r));
      }
      p.crashForTesting();
      const watch = new RouteWatcher(ns, ['route']);
      await watch.ready();
      const again = kernelProtocol(ns, table, opts);
      await again.start();
      await again.sync(4)!.settled();
      await until(() => primaries().length === 1000);
      const lines = routeLines(await watch.stop());
      // Only adds of what the kernel flushed and the crashed sync had not put back, each onto the held object.
      expect(lines.every((l) => !l.startsWith('Deleted') && l.includes(`nhid ${group} `) && !l.includes('metric 4294967295'))).toBe(true);
      expect(lines.length).toBeLessThanOrEqual(1000);
      expect(primaries().every((r) => r.nhid === group)).toBe(true);
      expect([...gatewaysOf(ns).values()].every((g) => g === '192.0.2.2')).toBe(true);
      expect(again.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
      // The link back: one replace of the object, no route message.
      const sent = again.sync(4)!.stats.sent;
      ns.ip('link', 'set', 'veth3', 'up');
      await until(() => [...gatewaysOf(ns).values()].every((g) => g === '203.0.113.2'), 20000);
      await wantedVia(again, 4, '203.0.113.2');
      expect(again.sync(4)!.stats.sent).toBe(sent);
      expect(primaries().every((r) => r.nhid === group)).toBe(true);
      await again.shutdown();
      expect(ourRoutes(ns)).toEqual([]);
    } finally {
      watcher.close();
    }
  });
  it.each([
    ['backup_routes', undefined],
    ['objects', undefined],
    ['backup_routes', 64],
  ] as const)('%s with next-hop tracking (nets exported again %s a turn): carrier loss costs one route message per route the kernel flushed, onto the object held on the backup; the link back is one replace and no route message', async (mode, slice) => {
    const tracker = new NextHopTracker({ damping: NO_DAMPING });
    const watcher = await NextHopWatch.open({ tracker, netns: ns.path });
    try {
      const table = new Table({ name: 'master4', nexthops: tracker });
      const list = nets(1000);
      twoSources(table, list);
      const p = kernelProtocol(ns, table, { failover: mode, scanIntervalMs: 0, ...(slice !== undefined ? { reexportSlice: slice } : {}) });
      await p.start();
      const sync = p.sync(4)!;
      await sync.settled();
      const primaries = (): IpRoute[] => ourRoutes(ns).filter((r) => r.metric !== 4294967295);
      const group = primaries()[0]!.nhid!;
      const { sent, dumps, scans } = sync.stats;
      const watch = new RouteWatcher(ns, ['nexthop']);
      await watch.ready();
      // veth2's peer goes down: the kernel flushes the primary's objects and routes; the tracker (its own socket) and the sync hear of it.
      ns.ip('link', 'set', 'veth3', 'down');
      await until(() => primaries().length === 1000 && [...gatewaysOf(ns).values()].every((g) => g === '192.0.2.2'), 20000);
      // The tracker's verdict is taken (every net wants the backup's route) and the link's device scan has run.
      await wantedVia(p, 4, '192.0.2.2');
      expect(sync.stats.scans).toBeGreaterThan(scans);
      // One route message per flushed route, every one onto the same object, held on the backup (made again once),
      // known from our books whichever socket was read first: no route dump (link-flush.ts).
      expect(sync.stats.sent - sent).toBe(1000);
      expect(sync.stats.dumps).toBe(dumps);
      expect(primaries().every((r) => r.nhid === group)).toBe(true);
      expect(nexthopLines(await watch.stop()).filter((l) => l.startsWith(`id ${group} `))).toHaveLength(1);
      expect(p.counts()).toMatchObject({ installed: 1000, failed: 0, pending: 0 });
      // The link back: one replace gives the object the primary's hops again; no route message.
      const sent2 = sync.stats.sent;
      const watch2 = new RouteWatcher(ns, ['nexthop']);
      await watch2.ready();
      ns.ip('link', 'set', 'veth3', 'up');
      await until(() => forwardsVia(ns, '10.2.3.4') === '203.0.113.2' && [...gatewaysOf(ns).values()].every((g) => g === '203.0.113.2'), 20000);
      // The tracker's verdict that the link is back is taken too: every net wants the primary's route again.
      await wantedVia(p, 4, '203.0.113.2');
      expect(sync.stats.sent).toBe(sent2);
      const back = nexthopLines(await watch2.stop());
      expect(back.filter((l) => l.startsWith(`id ${group} group`))).toHaveLength(1);
      expect(back.filter((l) => l.startsWith('Deleted'))).toEqual([]);
      expect(primaries().every((r) => r.nhid === group)).toBe(true);
      await p.shutdown();
      expect(ourRoutes(ns)).toEqual([]);
      await until(() => ns.ipJson<IpNexthop[]>('nexthop', 'show').length === 0);
    } finally {
      watcher.close();
    }
  });
});
