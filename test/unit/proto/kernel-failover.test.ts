/**
 * Prefix-independent failover (src/proto/kernel/forwarding-objects.ts,
 * sync-failover.ts; docs/failover.md) against the fake kernel
 * (test/helpers/fake-kernel.ts, fake-nexthops.ts): routes on forwarding
 * objects keyed by best and next-best route, a source withdrawn as a whole
 * switched by one object replace per (primary, backup) pair, the per-net
 * catch-up sending no route message, recovery, restarts.
 * test/integration/kernel-failover.test.ts checks the same against Linux.
 */
import type { NexthopMessage } from '../../../src/netlink/nexthop-codec';
import type { RouteMessage } from '../../../src/netlink/route-codec';
import { KernelProtocol, type KernelProtocolOptions } from '../../../src/proto/kernel/kernel-protocol';
import { isForwardingId } from '../../../src/proto/kernel/forwarding-objects';
import { parsePrefix } from '../../../src/lib/addr';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger, trackedTable, until } from '../../helpers/kernel-fixture';

const PROTO = 144;

function setup(extra: Partial<KernelProtocolOptions> = {}, kernel = new FakeKernel(), table = new Table({ name: 'master4' })) {
  const options: KernelProtocolOptions = { name: 'kernel1', table, family: 4, scanIntervalMs: 0, kernelIo: kernel.provider, log: memoryLogger(), failover: 'objects', ...extra };
  return { kernel, table, options, p: new KernelProtocol(options) };
}

const ourRoutes = (k: FakeKernel): RouteMessage[] => k.all().filter((r) => r.protocol === PROTO && r.table === 254);
const route = (k: FakeKernel, dst: string): RouteMessage | undefined => ourRoutes(k).find((r) => r.dst.toString() === dst);
const objects = (k: FakeKernel): NexthopMessage[] => [...k.nexthops.objects.values()];
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The gateways a net of ours forwards to now: its route of ours at the lowest metric, resolved through the kernel's objects (route -> object -> members). */
function via(k: FakeKernel, dst: string): string[] {
  const r = ourRoutes(k)
    .filter((x) => x.dst.toString() === dst)
    .sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0))[0];
  if (r === undefined) return [];
  if (r.nhId === undefined) return [r.gateway?.toString() ?? '?'];
  const o = k.nexthops.objects.get(r.nhId);
  if (o === undefined) return [];
  const hops = o.group ? o.group.map((g) => k.nexthops.objects.get(g.id)) : [o];
  return hops.map((h) => h?.gateway?.toString() ?? '?').sort();
}

/** A /24's place in trie-spread order: its address with the bits reversed (src/lib/net-sort.ts). */
const spreadKey = (net: string): number => {
  const w = net.split('/')[0]!.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  let r = 0;
  for (let b = 0; b < 32; b++) r = r * 2 + (Math.floor(w / 2 ** b) % 2);
  return r;
};
const nets = (n: number, third = 10): string[] => Array.from({ length: n }, (_, i) => `${third}.${i >> 8}.${i & 255}.0/24`);
const lines = (list: string[], gw: string): string[] => list.map((n) => `${n} via ${gw}`);

/** Sources a (200, via 192.0.2.2) and b (100, via 198.51.100.2) announcing `list`: a the best of each net, b the next-best. */
function twoSources(table: Table, list: string[]): { a: RouteSource; b: RouteSource } {
  const a = new RouteSource('a', 200);
  const b = new RouteSource('b', 100);
  announce(table, a, lines(list, '192.0.2.2'));
  announce(table, b, lines(list, '198.51.100.2'));
  return { a, b };
}

describe('failover by forwarding objects (fake kernel)', () => {
  it('puts nets with the same best and next-best on one forwarding group; a source withdrawn is one replace, and the catch-up sends no route message', async () => {
    const { kernel, table, p } = setup();
    const primary = new RouteSource('upstream1', 200);
    const backup = new RouteSource('upstream2', 100);
    const both = nets(300);
    const only = nets(5, 20); // nets the backup does not have: deleted with the primary
    announce(table, primary, lines([...both, ...only], '192.0.2.2'));
    announce(table, backup, lines(both, '198.51.100.2'));
    await p.start();
    const sync = p.sync(4)!;
    expect(p.counts().installed).toBe(305);
    const fwd = route(kernel, both[0]!)!.nhId!;
    expect(isForwardingId(fwd)).toBe(true);
    expect(kernel.nexthops.objects.get(fwd)!.group).toHaveLength(1);
    for (const n of both) expect(route(kernel, n)!.nhId).toBe(fwd);
    expect(via(kernel, both[7]!)).toEqual(['192.0.2.2']);
    // The nets without a backup are on an object of their own (the same hops, another pair).
    expect(route(kernel, only[0]!)!.nhId).not.toBe(fwd);

    const mark = kernel.log.length;
    table.flush(primary);
    await until(() => p.counts().installed === 300 && p.counts().pending === 0);
    await sync.settled();
    // Every net with a backup forwards via it, by one object replace; the catch-up sent no route change for them.
    for (const n of both) expect(via(kernel, n)).toEqual(['198.51.100.2']);
    for (const n of both) expect(route(kernel, n)!.nhId).toBe(fwd);
    const changes = kernel.ourChanges(mark);
    expect(changes.filter((c) => c === `replace nexthop ${fwd}`)).toHaveLength(1);
    expect(changes.filter((c) => /^(add|replace|del) \d/.test(c)).map((c) => c.split(' ')[1]).sort()).toEqual([...only].sort());
    expect(changes.findIndex((c) => c === `replace nexthop ${fwd}`)).toBeLessThan(changes.findIndex((c) => c.startsWith('del ')));
    for (const n of only) expect(route(kernel, n)).toBeUndefined();
    expect(sync.failover.stats).toMatchObject({ failovers: 1, switched: 1, refused: 0 });

    // Recovery: the primary comes back; its nets move back (route replaces onto a new object with its hops), no wait.
    announce(table, primary, lines(both, '192.0.2.2'));
    await until(() => both.every((n) => via(kernel, n)[0] === '192.0.2.2'));
    await sync.settled();
    expect(p.counts()).toMatchObject({ installed: 300, pending: 0, failed: 0 });
    expect(route(kernel, both[0]!)!.nhId).not.toBe(fwd);
    await until(() => !kernel.nexthops.objects.has(fwd), 4000); // the switched object goes once nothing is on it

    // A second failure: again one replace.
    const again = route(kernel, both[0]!)!.nhId!;
    const mark2 = kernel.log.length;
    table.flush(primary);
    await until(() => both.every((n) => via(kernel, n)[0] === '198.51.100.2'));
    await sync.settled();
    expect(kernel.ourChanges(mark2).filter((c) => /^(add|replace|del) \d/.test(c))).toEqual([]);
    expect(route(kernel, both[0]!)!.nhId).toBe(again);
    await p.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel)).toEqual([]);
  });

  it('three sources: the first failure moves to the second, the next to the third, each by object replace', async () => {
    const { kernel, table, p } = setup();
    kernel.addLink('veth2', ['203.0.113.0/24']);
    await tick();
    const [a, b, c] = [new RouteSource('a', 300), new RouteSource('b', 200), new RouteSource('c', 100)];
    const list = nets(50);
    announce(table, a, lines(list, '192.0.2.2'));
    announce(table, b, lines(list, '198.51.100.2'));
    announce(table, c, lines(list, '203.0.113.2'));
    await p.start();
    const sync = p.sync(4)!;
    const mark = kernel.log.length;
    table.flush(a);
    await until(() => list.every((n) => via(kernel, n)[0] === '198.51.100.2'));
    await sync.settled();
    // The catch-up re-keys the switched object to (b, c): the next failure is one replace again.
    expect(kernel.ourChanges(mark).filter((x) => /^(add|replace|del) \d/.test(x))).toEqual([]);
    const mark2 = kernel.log.length;
    table.flush(b);
    await until(() => list.every((n) => via(kernel, n)[0] === '203.0.113.2'));
    await sync.settled();
    expect(kernel.ourChanges(mark2).filter((x) => /^(add|replace|del) \d/.test(x))).toEqual([]);
    expect(kernel.ourChanges(mark2).filter((x) => x.startsWith('replace nexthop'))).toHaveLength(1);
    expect(sync.failover.stats.switched).toBe(2);
    await p.shutdown();
  });

  it('an ECMP primary: the group holds its members with their weights; the backup replaces them all', async () => {
    const { kernel, table, p } = setup();
    kernel.addLink('veth2', ['203.0.113.0/24']);
    await tick();
    const a = new RouteSource('a', 300);
    const b = new RouteSource('b', 200);
    const list = nets(20);
    announce(table, a, list.map((n) => `${n} nexthop via 192.0.2.2 weight 1 nexthop via 198.51.100.2 weight 2`));
    announce(table, b, lines(list, '203.0.113.2'));
    await p.start();
    const g = kernel.nexthops.objects.get(route(kernel, list[0]!)!.nhId!)!;
    expect(g.group!.map((x) => x.weight).sort()).toEqual([1, 2]);
    expect(via(kernel, list[3]!)).toEqual(['192.0.2.2', '198.51.100.2']);
    table.flush(a);
    await until(() => list.every((n) => via(kernel, n).join() === '203.0.113.2'));
    await p.shutdown();
  });

  it('a restart in the middle of a failover changes nothing: the switched object is claimed by content', async () => {
    const { kernel, table, p, options } = setup();
    const list = nets(40);
    const { a } = twoSources(table, list);
    await p.start();
    const fwd = route(kernel, list[0]!)!.nhId!;
    // The object is switched, then the daemon dies before any catch-up.
    table.flush(a);
    await until(() => via(kernel, list[0]!)[0] === '198.51.100.2');
    p.crashForTesting();
    const mark = kernel.log.length;
    const primaryHop = objects(kernel).find((o) => o.gateway?.toString() === '192.0.2.2')!.id;
    const again = new KernelProtocol({ ...options, log: memoryLogger() });
    await again.start();
    // Nothing moves: no route change, no object changed; only the primary's hop object, unused since the switch, is deleted.
    await until(() => !kernel.nexthops.objects.has(primaryHop));
    await tick(20);
    expect(kernel.ourChanges(mark)).toEqual([`delete nexthop ${primaryHop}`]);
    for (const n of list) expect(route(kernel, n)!.nhId).toBe(fwd);
    // And a restart before the failover: the primary's object is claimed the same way.
    announce(table, a, lines(list, '192.0.2.2'));
    await until(() => list.every((n) => via(kernel, n)[0] === '192.0.2.2'));
    await again.sync(4)!.settled();
    await until(() => !kernel.nexthops.objects.has(fwd), 4000); // nothing is on the switched one any more: deleted
    again.crashForTesting();
    const mark2 = kernel.log.length;
    const third = new KernelProtocol({ ...options, log: memoryLogger() });
    await third.start();
    await tick(20);
    expect(kernel.ourChanges(mark2)).toEqual([]);
    await third.shutdown();
    expect(objects(kernel)).toEqual([]);
  });

  it('a flapping source: each failure is one replace, each return a route replace per net; nothing is left behind', async () => {
    const { kernel, table, p } = setup();
    const a = new RouteSource('a', 200);
    const b = new RouteSource('b', 100);
    const list = nets(64);
    announce(table, b, lines(list, '198.51.100.2'));
    announce(table, a, lines(list, '192.0.2.2'));
    await p.start();
    const sync = p.sync(4)!;
    const mark = kernel.log.length;
    // Down and up again and again, faster than the catch-up: the kernel must end where the table is.
    for (let i = 0; i < 5; i++) {
      table.flush(a);
      await tick(i % 2 === 0 ? 0 : 5);
      announce(table, a, lines(list, '192.0.2.2'));
      await tick(i % 2 === 0 ? 1 : 0);
    }
    await until(() => list.every((n) => via(kernel, n)[0] === '192.0.2.2'));
    await sync.settled();
    expect(p.counts()).toMatchObject({ installed: 64, pending: 0, failed: 0 });
    // Replaces grow with failures, not nets (64 here): one per failure, plus at most one more when the
    // failure switched an object whose add was still out (it is replaced with its new content once the add
    // is answered; how often that happens depends on the timers' interleaving, seen once under load).
    // A failure whose object was not in the kernel yet switches it in our books only.
    const replaces = kernel.ourChanges(mark).filter((c) => c.startsWith('replace nexthop')).length;
    expect(replaces).toBeGreaterThanOrEqual(1);
    expect(replaces).toBeLessThanOrEqual(2 * 5);
    // Every object left is used by a route of ours or by a group of ours.
    // Every object in the kernel is one we know and use (a route's, a group's member, a next-best's hop): none leaked.
    await until(() => sync.nexthops.retiredCount === 0 && objects(kernel).every((o) => sync.nexthopStatus().some((s) => s.id === o.id && s.refs > 0)), 5000);
    expect(objects(kernel)).toHaveLength(3); // the two hops and one forwarding group
    await p.shutdown();
    expect(objects(kernel)).toEqual([]);
  });

  it('backup_routes: a backup route per net at the backup metric survives carrier loss of the primary link and forwards at once; recovery; shutdown', async () => {
    const { kernel, table, p } = setup({ failover: 'backup_routes' });
    const a = new RouteSource('a', 200);
    const b = new RouteSource('b', 100);
    const list = nets(100);
    const alone = nets(4, 30);
    announce(table, a, lines([...list, ...alone], '192.0.2.2'));
    announce(table, b, lines(list, '198.51.100.2'));
    await p.start();
    const sync = p.sync(4)!;
    await sync.settled();
    const at = (dst: string) => ourRoutes(kernel).filter((r) => r.dst.toString() === dst).map((r) => r.priority ?? 0).sort((x, y) => x - y);
    expect(at(list[0]!)).toEqual([0, 4294967295]);
    expect(at(alone[0]!)).toEqual([0]); // no next-best: no backup route
    const backupRoute = ourRoutes(kernel).find((r) => r.dst.toString() === list[0] && r.priority === 4294967295)!;
    expect(isForwardingId(backupRoute.nhId!)).toBe(false); // on the next-best's own hop object
    expect(p.counts()).toMatchObject({ installed: 104, failed: 0 }); // counts are the primary routes
    expect(sync.backups!.store.counts()).toMatchObject({ installed: 100 });

    // The primary link loses carrier: the kernel deletes its objects, the groups left empty and their routes.
    kernel.setLink('veth0', false);
    for (const n of list) expect(via(kernel, n)).toEqual(['198.51.100.2']); // at once: nothing of ours ran yet
    for (const n of alone) expect(via(kernel, n)).toEqual([]);
    await tick(300);
    for (const n of list) expect(via(kernel, n)).toEqual(['198.51.100.2']); // the daemon's reaction moves nothing
    // The link comes back: the primary routes return (no backoff wait), the backups stay.
    kernel.setLink('veth0', true);
    await until(() => [...list, ...alone].every((n) => via(kernel, n)[0] === '192.0.2.2'), 5000);
    await sync.settled();
    expect(at(list[5]!)).toEqual([0, 4294967295]);

    // The primary source withdrawn: one replace; the backup routes stay (they go where the primaries now do,
    // and the primary's return wants them again): no route change at all for the nets with a backup.
    const mark = kernel.log.length;
    table.flush(a);
    await until(() => list.every((n) => via(kernel, n)[0] === '198.51.100.2'), 5000);
    await sync.settled();
    const changes = kernel.ourChanges(mark);
    expect(changes.filter((c) => c.startsWith('replace nexthop'))).toHaveLength(1);
    expect(changes.filter((c) => /^(add|replace|del) \d/.test(c) && !c.startsWith('del 30.'))).toEqual([]); // only the nets no one else has go
    for (const n of list) expect(at(n)).toEqual([0, 4294967295]);
    // A backup route that no longer goes where the primary does goes, but only once the new primary is in.
    kernel.addLink('veth2', ['203.0.113.0/24']);
    await tick();
    const c = new RouteSource('c', 300);
    const moved = list.slice(0, 10);
    announce(table, c, lines(moved, '203.0.113.2'));
    table.flush(b);
    await until(() => moved.every((n) => via(kernel, n)[0] === '203.0.113.2' && at(n).length === 1) && sync.backups!.waiting === 0, 5000);
    await sync.settled();
    for (const n of moved) expect(at(n)).toEqual([0]);
    await p.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel)).toEqual([]);
  });

  it('objects: carrier loss of the primary link: the kernel deletes the group and its routes; the object is made again with the backup hops and the routes put back; the link back is one replace', async () => {
    const { kernel, table, p } = setup();
    const list = nets(80);
    twoSources(table, list);
    await p.start();
    const sync = p.sync(4)!;
    const fwd = route(kernel, list[0]!)!.nhId!;
    kernel.setLink('veth0', false);
    expect(route(kernel, list[0]!)).toBeUndefined(); // the kernel's own doing
    await until(() => list.every((n) => via(kernel, n)[0] === '198.51.100.2'), 5000);
    await sync.settled();
    expect(p.counts()).toMatchObject({ installed: 80, failed: 0, pending: 0 }); // settled: nothing waits for the dead link
    expect(route(kernel, list[0]!)!.nhId).toBe(fwd); // the same object, made again with the backup's hops
    const mark = kernel.log.length;
    kernel.setLink('veth0', true);
    await until(() => list.every((n) => via(kernel, n)[0] === '192.0.2.2'), 5000);
    await sync.settled();
    const changes = kernel.ourChanges(mark);
    expect(changes.filter((c) => /^(add|replace|del) \d/.test(c))).toEqual([]);
    expect(changes.filter((c) => c === `replace nexthop ${fwd}`)).toHaveLength(1);
    await p.shutdown();
    expect(objects(kernel)).toEqual([]);
  });

  describe.each([
    ['in one read', false],
    ['after the monitor has read the deletes (a busy kernel)', true],
  ])('carrier loss told route by route (IPv6), the link notification %s', (_, later) => {
    it.each(['objects', 'backup_routes'] as const)('%s: one route add per route the kernel flushed', async (mode) => {
      const { kernel, table, p } = setup({ failover: mode });
      const list = nets(80);
      twoSources(table, list);
      await p.start();
      const sync = p.sync(4)!;
      await sync.settled();
      const { sent, repairs } = sync.stats;
      const tellLink = kernel.setLink('veth0', false, { ipv6: true, linkLater: later });
      if (later) {
        await until(() => sync.stats.notifications >= 80);
        await tick(20); // the sender has had every chance to go
        tellLink();
      }
      await until(() => list.every((n) => via(kernel, n)[0] === '198.51.100.2'), 5000);
      await until(() => p.counts().installed === 80 && p.counts().pending === 0, 5000);
      await sync.settled();
      await tick(300); // a scan the link change asked for
      await sync.settled();
      expect(p.counts()).toMatchObject({ installed: 80, failed: 0, pending: 0 });
      expect(sync.stats.sent - sent).toBe(80);
      expect(sync.stats.repairs - repairs).toBe(0);
      await p.shutdown();
      expect(objects(kernel)).toEqual([]);
    });
  });

  describe('an ECMP primary that lost a member to its link (the kernel keeps the group with the rest)', () => {
    /** Nets on a two-member primary (veth0, veth2) with a backup (veth1), veth2 down: the group forwards via the member left. */
    const shrunk = async () => {
      const { kernel, table, p, options } = setup();
      kernel.addLink('veth2', ['203.0.113.0/24']);
      const list = nets(40);
      const a = new RouteSource('a', 200);
      announce(table, a, list.map((n) => `${n} nexthop via 192.0.2.2 nexthop via 203.0.113.2`));
      announce(table, new RouteSource('b', 100), lines(list, '198.51.100.2'));
      await p.start();
      const sync = p.sync(4)!;
      expect(via(kernel, list[0]!)).toEqual(['192.0.2.2', '203.0.113.2']);
      kernel.setLink('veth2', false);
      await until(() => list.every((n) => via(kernel, n).join() === '192.0.2.2'), 5000);
      // Our books have it too: the group is to be made whole again (it cannot be, while veth2 is down).
      await until(() => sync.nexthopStatus().some((o) => o.kind === 'group' && o.state !== 'live'));
      await sync.settled();
      return { kernel, table, p, sync, list, a, group: route(kernel, list[0]!)!.nhId!, log: (options.log as ReturnType<typeof memoryLogger>).entries };
    };

    /** The source withdrawn: its nets forward via the backup at the next turn (one replace, sent at once), and keep doing so. */
    const withdrawn = async ({ kernel, table, p, sync, list, a, group, log }: Awaited<ReturnType<typeof shrunk>>, release?: () => void, answerLate = false): Promise<void> => {
      const mark = kernel.log.length;
      const sent = sync.stats.sent;
      const held = answerLate ? kernel.holdNexthops() : undefined;
      table.flush(a);
      // Sent by the switch itself, before the flush returns: not left to the catch-up, nor to the object's retry.
      expect(log.filter((e) => /^source a withdrawn: 1 forwarding objects switched to their backup, 1 replaced in the kernel/.test(e.msg))).toHaveLength(1);
      release?.();
      if (held !== undefined) {
        // The catch-up plans the nets while the switch's answer is still out (a loaded machine reads it late):
        // every net wants the backup's route. Its flush, queued then, runs before the answer released now.
        await until(() => p.status().every((st) => st.route === 'via 198.51.100.2'));
        held();
      }
      await tick();
      await tick();
      expect(list.filter((n) => via(kernel, n).join() !== '198.51.100.2')).toEqual([]);
      expect(kernel.ourChanges(mark)).toContain(`replace nexthop ${group}`);
      await tick(600); // the collector's turn: the primary's hop objects go, after the replace
      await sync.settled();
      expect(list.filter((n) => via(kernel, n).join() !== '198.51.100.2')).toEqual([]);
      expect(p.counts()).toMatchObject({ installed: 40, failed: 0, pending: 0 });
      expect(sync.stats.sent).toBe(sent); // no route message
      await p.shutdown();
      expect(objects(kernel)).toEqual([]);
    };

    it('a source withdrawn while the link is still down moves the nets by one replace of the group over what the kernel kept', async () => {
      await withdrawn(await shrunk());
    });

    it('a source withdrawn, the catch-up planning its nets before the switch is answered: they wait for the answer, none fails', async () => {
      await withdrawn(await shrunk(), undefined, true);
    });

    it('a source withdrawn while the replace that makes the group whole again is out: the switch goes right behind it', async () => {
      const s = await shrunk();
      const release = s.kernel.holdNexthops();
      s.kernel.setLink('veth2', true);
      await until(() => s.kernel.nexthopsWaiting > 0); // the member's add is out, unanswered; the group's replace waits for it
      await withdrawn(s, release);
    });
  });

  it('backup_routes: backup routes the kernel refused while their link was down go in at once when it comes back, not after their backoff', async () => {
    const { kernel, table, p } = setup({ failover: 'backup_routes', backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } });
    const list = nets(10);
    twoSources(table, list);
    kernel.setLink('veth1', false);
    await p.start();
    const sync = p.sync(4)!;
    await until(() => sync.backups!.store.counts().failed === 10);
    expect(p.counts()).toMatchObject({ installed: 10, failed: 0 });
    kernel.setLink('veth1', true);
    await until(() => sync.backups!.store.counts().installed === 10, 2000);
    for (const n of list) expect(ourRoutes(kernel).filter((r) => r.dst.toString() === n)).toHaveLength(2);
    await p.shutdown();
  });

  it('backup_routes: a restart changes nothing, backup routes included', async () => {
    const { kernel, table, p, options } = setup({ failover: 'backup_routes' });
    const list = nets(50);
    twoSources(table, list);
    await p.start();
    await p.sync(4)!.settled();
    p.crashForTesting();
    const mark = kernel.log.length;
    const again = new KernelProtocol({ ...options, log: memoryLogger() });
    await again.start();
    await again.sync(4)!.settled();
    await tick(20);
    expect(kernel.ourChanges(mark)).toEqual([]);
    expect(ourRoutes(kernel)).toHaveLength(100);
    await again.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
  });

  it('next-hop tracking: a primary next hop judged unusable is one replace before the table reorders its nets; the catch-up sends no route message; its return is one replace too', async () => {
    const list = nets(120);
    const { kernel, p, tracker, links } = tracked('objects', list);
    await p.start();
    const sync = p.sync(4)!;
    const fwd = route(kernel, list[0]!)!.nhId!;
    const mark = kernel.log.length;
    // The tracker alone says veth0 cannot be used (a failed neighbour, say): the kernel keeps its objects.
    let replacedFirst = false;
    const off = tracker.subscribe(() => (replacedFirst = sync.failover.stats.switched === 1));
    tracker.setLink({ ...links[0]!, carrier: false });
    tracker.flush();
    off();
    expect(replacedFirst).toBe(true); // switched before the table's subscribers heard of it
    await until(() => list.every((n) => via(kernel, n)[0] === '198.51.100.2'));
    await sync.settled();
    let changes = kernel.ourChanges(mark);
    expect(changes.filter((c) => c === `replace nexthop ${fwd}`)).toHaveLength(1);
    expect(changes.filter((c) => /^(add|replace|del) \d/.test(c))).toEqual([]);
    for (const n of list) expect(route(kernel, n)!.nhId).toBe(fwd);
    // Back: the object held on the backup gets the primary's hops again before the table makes the primary
    // best again (at once, no wait); the nets' new pair is its key: no route message.
    const mark2 = kernel.log.length;
    tracker.setLink(links[0]!);
    tracker.flush();
    await until(() => list.every((n) => via(kernel, n)[0] === '192.0.2.2'));
    await sync.settled();
    await tick(20);
    changes = kernel.ourChanges(mark2);
    expect(changes).toEqual([`replace nexthop ${fwd}`]);
    for (const n of list) expect(route(kernel, n)!.nhId).toBe(fwd);
    await p.shutdown();
    expect(objects(kernel)).toEqual([]);
  });

  /** A table fed by a tracker that knows veth0 (192.0.2.0/24) and veth1 (198.51.100.0/24), with a and b announcing `list` through them. */
  function tracked(mode: 'objects' | 'backup_routes', list: string[], kernel = new FakeKernel(), extra: Partial<KernelProtocolOptions> = {}) {
    const { tracker, links, table } = trackedTable(['192.0.2.0/24', '198.51.100.0/24']);
    const s = setup({ failover: mode, ...extra }, kernel, table);
    const { a } = twoSources(s.table, list);
    return { ...s, tracker, links, a };
  }
  const routeChanges = (changes: string[]): string[] => changes.filter((c) => /^(add|replace|del) \d/.test(c));

  it.each([
    ['objects', 'the kernel first', undefined],
    ['objects', 'the tracker first', undefined],
    ['backup_routes', 'the kernel first', undefined],
    ['backup_routes', 'the tracker first', undefined],
    ['backup_routes', 'the kernel first', 7],
    ['backup_routes', 'the tracker first', 7],
    ['objects', 'the tracker first', 7],
  ] as const)('%s, next-hop tracking, carrier loss heard by %s (nets exported again %s a turn): one route add per route the kernel flushed, onto the object held on the backup; the link back is one replace and no route message', async (mode, first, slice) => {
    const list = nets(60);
    const { kernel, p, tracker, links } = tracked(mode, list, new FakeKernel(), slice === undefined ? {} : { reexportSlice: slice });
    await p.start();
    const sync = p.sync(4)!;
    await sync.settled();
    const primary = (n: string): RouteMessage | undefined => ourRoutes(kernel).find((r) => r.dst.toString() === n && (r.priority ?? 0) === 0);
    const fwd = primary(list[0]!)!.nhId!;
    const mark = kernel.log.length;
    // Carrier loss as the daemon hears it: the kernel flushes (its link notification reaches the sync) and the
    // tracker (its own socket) judges veth0 unusable, in either order.
    const down = { ...links[0]!, carrier: false };
    if (first === 'the kernel first') {
      kernel.setLink('veth0', false);
      await tick(5);
      tracker.setLink(down);
      tracker.flush();
    } else {
      tracker.setLink(down);
      tracker.flush();
      kernel.setLink('veth0', false);
    }
    // In slices, the nets not exported yet count as pending: the protocol is not idle before they are done.
    if (slice !== undefined) expect(p.counts().pending - p.sync(4)!.counts().pending).toBe(list.length - slice);
    await until(() => list.every((n) => via(kernel, n)[0] === '198.51.100.2' && primary(n) !== undefined), 5000);
    await sync.settled();
    await tick(400); // the scan that follows the link change
    await sync.settled();
    const changes = kernel.ourChanges(mark);
    // One add per flushed route, each onto the same object (held on the backup, keeping its key): nothing else.
    expect(routeChanges(changes).map((c) => c.split(' ')[0])).toEqual(list.map(() => 'add'));
    expect(changes.filter((c) => /^(add|replace|delete) nexthop/.test(c)).length).toBeLessThanOrEqual(2); // the object made again or replaced
    for (const n of list) expect(primary(n)!.nhId).toBe(fwd);
    expect(p.counts()).toMatchObject({ installed: 60, failed: 0, pending: 0 });
    // The link back: the hop object is made again and the held object gets it: one replace, no route message.
    const mark2 = kernel.log.length;
    kernel.setLink('veth0', true);
    tracker.setLink(links[0]!);
    tracker.flush();
    await until(() => list.every((n) => via(kernel, n)[0] === '192.0.2.2'), 5000);
    await sync.settled();
    await tick(400);
    await sync.settled();
    const back = kernel.ourChanges(mark2);
    expect(routeChanges(back)).toEqual([]);
    expect(back.filter((c) => c.startsWith('replace nexthop'))).toEqual([`replace nexthop ${fwd}`]);
    expect(back.filter((c) => c.startsWith('add nexthop'))).toHaveLength(1); // the primary's hop object, flushed with its link
    for (const n of list) expect(primary(n)!.nhId).toBe(fwd);
    await p.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel)).toEqual([]);
  });

  it.each([
    ['objects', 'on', 'the sync'],
    ['backup_routes', 'on', 'the sync'],
    ['objects', 'on', 'the tracker'],
    ['backup_routes', 'on', 'the tracker'],
    ['objects', 'off', 'the sync'],
    ['backup_routes', 'off', 'the sync'],
  ] as const)('%s, next-hop tracking %s, the kernel\'s link notification read by %s first: the routes carrier loss flushed are added again from our books at once, one add each, with no dump', async (mode, tracking, first) => {
    const list = nets(50);
    const s = tracking === 'on' ? tracked(mode, list) : { ...setup({ failover: mode }), tracker: undefined, links: undefined };
    if (tracking === 'off') twoSources(s.table, list);
    const { kernel, p } = s;
    await p.start();
    const sync = p.sync(4)!;
    await sync.settled();
    await tick(20);
    const primary = (n: string): RouteMessage | undefined => ourRoutes(kernel).find((r) => r.dst.toString() === n && (r.priority ?? 0) === 0);
    const fwd = primary(list[0]!)!.nhId!;
    const mark = kernel.log.length;
    const dumps = kernel.dumpLog.length;
    // The kernel flushes veth0's objects and every route on them, then tells: the sync's monitor hears it, and the
    // tracker (its own socket) after it, as on Linux where both sockets get the one notification.
    // The tracker's socket may be read first: the hold drains the sync's monitor before it acts.
    kernel.setLink('veth0', false);
    if (first === 'the sync') {
      kernel.deliverAll();
      expect(sync.counts().pending).toBe(50); // marked lost and planned again before anything else ran
    }
    if (s.tracker !== undefined) {
      s.tracker.setLink({ ...s.links[0]!, carrier: false });
      s.tracker.flush();
    }
    await until(() => list.every((n) => primary(n) !== undefined && via(kernel, n)[0] === '198.51.100.2'), 5000);
    await sync.settled();
    await tick(400); // a scan, had one been asked for, would have run by now
    await sync.settled();
    const adds = routeChanges(kernel.ourChanges(mark));
    expect(adds.map((c) => c.split(' ')[0])).toEqual(list.map(() => 'add'));
    // The order the kernel takes fastest: with backup routes each net's trie leaf stayed (address order), without
    // them the adds build the leaves again (trie-spread order). The first planned waits for its object (made again
    // with the backup's hops) and goes last.
    const order = adds.map((c) => c.split(' ')[1]);
    const want = mode === 'backup_routes' ? [...list] : [...list].sort((x, y) => spreadKey(x) - spreadKey(y));
    expect(order).toEqual([...want.slice(1), want[0]]);
    for (const n of list) expect(primary(n)!.nhId).toBe(fwd);
    expect(kernel.dumpLog.slice(dumps)).toEqual([]); // no route dump: neither the table nor the device
    expect(sync.stats.dumps).toBe(0);
    expect(p.counts()).toMatchObject({ installed: 50, failed: 0, pending: 0 });
    await p.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel)).toEqual([]);
  });

  it('a replace of ours out across the flush (the tracker judged the hop before the kernel flushed): the books cannot tell, and the whole-table scan puts the routes back', async () => {
    const list = nets(30);
    const { kernel, p, tracker, links } = tracked('backup_routes', list);
    await p.start();
    const sync = p.sync(4)!;
    await sync.settled();
    const dumps = kernel.dumpLog.length;
    tracker.setLink({ ...links[0]!, carrier: false });
    tracker.flush(); // holds the object: its replace is out when the kernel flushes and the sync hears of it
    kernel.setLink('veth0', false);
    kernel.deliverAll();
    await until(() => list.every((n) => ourRoutes(kernel).some((r) => r.dst.toString() === n && (r.priority ?? 0) === 0)), 5000);
    await sync.settled();
    expect(kernel.dumpLog.slice(dumps).some((d) => d.oif === undefined)).toBe(true);
    expect(sync.stats.dumps).toBeGreaterThan(0);
    expect(p.counts()).toMatchObject({ installed: 30, failed: 0, pending: 0 });
    await p.shutdown();
  });

  it('next-hop tracking: a restart while an object is held on its backup changes nothing; a route withdrawn meanwhile leaves it; the kernel ends where the table is', async () => {
    const list = nets(40);
    const { kernel, table, p, tracker, links, options, a } = tracked('backup_routes', list);
    await p.start();
    await p.sync(4)!.settled();
    const primary = (n: string): RouteMessage | undefined => ourRoutes(kernel).find((r) => r.dst.toString() === n && (r.priority ?? 0) === 0);
    const fwd = primary(list[0]!)!.nhId!;
    kernel.setLink('veth0', false);
    tracker.setLink({ ...links[0]!, carrier: false });
    tracker.flush();
    await until(() => list.every((n) => primary(n)?.nhId === fwd && via(kernel, n)[0] === '198.51.100.2'), 5000);
    await p.sync(4)!.settled();
    await tick(400);
    await p.sync(4)!.settled();
    // a withdraws a few nets while its next hop is held: they leave the held object (their best is b's alone now).
    const gone = list.slice(0, 5);
    for (const n of gone) table.withdraw(parsePrefix(n), a);
    await until(() => gone.every((n) => primary(n) !== undefined && primary(n)!.nhId !== fwd), 5000);
    p.crashForTesting();
    const mark = kernel.log.length;
    const again = new KernelProtocol({ ...options, log: memoryLogger() });
    await again.start();
    await again.sync(4)!.settled();
    await tick(20);
    // No flap: no change at all. The backup routes of the nets a withdrew (kept by the running daemon: they go
    // where the primary now does) are adopted by the fresh start by the same rule, not deleted.
    expect(kernel.ourChanges(mark)).toEqual([]);
    for (const n of gone) expect(ourRoutes(kernel).filter((r) => r.dst.toString() === n)).toHaveLength(2);
    // The link back after the restart: the adopted object was claimed by content; the nets move back and the
    // ones a withdrew stay on b's next hop.
    kernel.setLink('veth0', true);
    tracker.setLink(links[0]!);
    tracker.flush();
    await until(() => list.every((n) => via(kernel, n)[0] === (gone.includes(n) ? '198.51.100.2' : '192.0.2.2')), 5000);
    await again.sync(4)!.settled();
    expect(again.counts()).toMatchObject({ installed: 40, failed: 0, pending: 0 });
    await again.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel)).toEqual([]);
  });

  it('status (show protocols, metrics): each forwarding object by what it forwards to, and a failover in force while one forwards to its backup', async () => {
    const { kernel, table, p, options } = setup();
    const list = nets(20);
    const { a } = twoSources(table, list);
    await p.start();
    const st = (k = p) => k.sync(4)!.failover.status()!;
    expect(st()).toEqual({ mode: 'objects', active: true, objects: { primary: 1, switched: 0, degraded: 0, held: 0, adopted: 0 }, inForce: 0, events: { failovers: 0, switched: 0, refused: 0 } });
    // The primary's link down (no tracking here): degraded, forwarding to the backup; back with the link.
    kernel.setLink('veth0', false);
    await until(() => st().objects.degraded === 1);
    expect(st().inForce).toBe(1);
    kernel.setLink('veth0', true);
    await until(() => st().objects.primary === 1 && st().inForce === 0);
    await p.sync(4)!.settled();
    // A source withdrawn: switched until the nets' catch-up claims it for their new pair.
    table.flush(a);
    expect(st()).toMatchObject({ objects: { primary: 0, switched: 1 }, inForce: 1, events: { failovers: 1, switched: 1, refused: 0 } });
    await until(() => st().objects.switched === 0);
    expect(st()).toMatchObject({ objects: { primary: 1, switched: 0 }, inForce: 0 });
    // A restart: the object found in the kernel is adopted, and claimed by the first feed.
    p.crashForTesting();
    const again = new KernelProtocol({ ...options, log: memoryLogger() });
    await again.start();
    expect(st(again)).toMatchObject({ objects: { primary: 1, adopted: 0 }, inForce: 0 });
    await again.shutdown();
    // Failover off: no status.
    const off = setup({ failover: 'off' });
    await off.p.start();
    expect(off.p.sync(4)!.failover.status()).toBeUndefined();
    await off.p.shutdown();
  });

  it('with failover off, routes stay on their next hops\' objects and a withdrawn source costs a message per net', async () => {
    const { kernel, table, p } = setup({ failover: 'off' });
    const list = nets(30);
    const { a } = twoSources(table, list);
    await p.start();
    expect(isForwardingId(route(kernel, list[0]!)!.nhId!)).toBe(false);
    const mark = kernel.log.length;
    table.flush(a);
    await until(() => list.every((n) => via(kernel, n)[0] === '198.51.100.2'));
    expect(kernel.ourChanges(mark).filter((x) => x.startsWith('replace 10.'))).toHaveLength(30);
    await p.shutdown();
  });
});
