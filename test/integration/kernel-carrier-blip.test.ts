/**
 * A carrier blip the daemon hears of only afterwards: a link loses its
 * carrier and gets it back before the daemon has read the notification.
 * Meanwhile the kernel has acted: it deleted the nexthop objects on the link
 * (and the groups left empty) and every route on them, or took a member out
 * of a group. The daemon then reads "carrier gone" and "carrier back" in one
 * go, the link already usable again.
 *
 * The test takes the carrier away (veth3, veth2's peer, down: `ip link set
 * carrier` is not supported on veth) and waits, without yielding, until the
 * kernel has flushed, then gives it back and waits for it, again without
 * yielding: the daemon shares this thread and cannot read its sockets in
 * between. Then every route the daemon wants must be back in the kernel,
 * as before, with no periodic scan to repair it (its interval is an hour),
 * and foreign routes untouched. Plain routes (they survive carrier loss,
 * marked linkdown), routes on nexthop objects, and both failover modes, with
 * and without next-hop tracking, both families. The same for the link itself
 * set down and up (IPv4: that takes plain routes too, with no notification),
 * and for ten blips back to back in one `ip -batch`, where the link watch
 * may see the carrier gone or not.
 */
import { announce, kernelProtocol, newTable, ourRoutes, quiesced, RouteSource, routeLines, until, untilBlocking } from '../helpers/kernel-fixture';
import { gatewaysOf, type IpNexthop } from '../helpers/failover-fixture';
import { createNetns, kernelDescribe, type IpRoute, type Netns } from '../helpers/netns';
import { NextHopWatch } from '../../src/proto/kernel/nexthop-watch';
import type { FailoverMode } from '../../src/proto/kernel/sync-failover';
import type { NexthopMode } from '../../src/proto/kernel/nexthop-objects';
import { NextHopTracker, NO_DAMPING, Table } from '../../src/table';

const HOUR = 3_600_000;

/** One family's addresses: the primary's gateway on veth2 (its carrier blips), the backup's on veth0, an ECMP partner on veth1. */
interface Family {
  family: 4 | 6;
  flag: '-4' | '-6';
  P: string;
  B: string;
  E: string;
  /** `n` nets in block `block` (0, 100, 110: disjoint), as `ip` prints them. */
  nets(n: number, block?: number): string[];
  /** Someone else's routes: one through veth2, one elsewhere, one in another table. */
  foreign: string[];
}

const V4: Family = {
  family: 4,
  flag: '-4',
  P: '203.0.113.2',
  B: '192.0.2.2',
  E: '198.51.100.2',
  nets: (n, block = 0) => Array.from({ length: n }, (_, i) => `10.${block + (i >> 8)}.${i & 255}.0/24`),
  foreign: ['route add 10.200.0.0/24 via 203.0.113.2 proto static', 'route add 10.200.1.0/24 via 192.0.2.2 proto static', 'route add 10.200.2.0/24 via 203.0.113.2 proto 145 table 300'],
};

const V6: Family = {
  family: 6,
  flag: '-6',
  P: '2001:db8:3::2',
  B: '2001:db8:1::2',
  E: '2001:db8:2::2',
  nets: (n, block = 0) => Array.from({ length: n }, (_, i) => `2001:db8:${(0x8000 + block * 16 + (i >> 12)).toString(16)}:${(0x1000 + (i & 0xfff)).toString(16)}::/64`),
  foreign: ['route add 2001:db8:f000::/64 via 2001:db8:3::2 proto static', 'route add 2001:db8:f001::/64 via 2001:db8:1::2 proto static', 'route add 2001:db8:f002::/64 via 2001:db8:3::2 proto 145 table 300'],
};

interface Case {
  name: string;
  nexthopObjects: NexthopMode;
  failover?: FailoverMode;
  tracking: boolean;
}

const CASES: Case[] = [
  { name: 'plain routes', nexthopObjects: 'off', tracking: false },
  { name: 'routes on nexthop objects', nexthopObjects: 'auto', tracking: false },
  { name: 'routes on nexthop objects, next-hop tracking', nexthopObjects: 'auto', tracking: true },
  { name: 'failover: objects', nexthopObjects: 'auto', failover: 'objects', tracking: false },
  { name: 'failover: objects, next-hop tracking', nexthopObjects: 'auto', failover: 'objects', tracking: true },
  { name: 'failover: backup_routes', nexthopObjects: 'auto', failover: 'backup_routes', tracking: false },
  { name: 'failover: backup_routes, next-hop tracking', nexthopObjects: 'auto', failover: 'backup_routes', tracking: true },
];

/** Routes of other protocols, in every table, as iproute2 prints them (flags such as linkdown left out). */
function foreign(ns: Netns, f: Family = V4): string[] {
  return ns
    .ipJson<IpRoute[]>(f.flag, 'route', 'show', 'table', 'all')
    .filter((r) => r.protocol !== 'krtsync' && r.protocol !== '144')
    .map((r) => JSON.stringify({ ...r, flags: undefined }))
    .sort();
}

/** Whether the kernel marks device `dev` as having its carrier (operstate UP, set once the link watch has run). */
function carrierOn(ns: Netns, dev: string): boolean {
  return ns.ipJson<Array<{ operstate: string }>>('link', 'show', 'dev', dev)[0]!.operstate === 'UP';
}

/** What the daemon keeps in the kernel, in a form to compare before and after: route lines without nhid, and each net's resolved gateways. */
function kernelView(ns: Netns, f: Family = V4): { lines: string[]; gateways: [string, string][]; objects: number } {
  return {
    lines: routeLines(ns, f.flag),
    gateways: [...gatewaysOf(ns, f.flag)].sort(),
    objects: ns.ipJson<IpNexthop[]>('nexthop', 'show').length,
  };
}

kernelDescribe('carrier lost and back before the daemon reads of it (real kernel)', () => {
  let ns: Netns;
  let watcher: NextHopWatch | undefined;
  beforeEach(() => {
    ns = createNetns('krtblip');
    ns.ipBatch(['link add veth2 type veth peer name veth3', 'link set veth2 up', 'link set veth3 up', 'addr add 203.0.113.1/24 dev veth2', 'addr add 2001:db8:3::1/64 dev veth2 nodad']);
    untilBlocking(() => carrierOn(ns, 'veth2'), 5000);
  });
  afterEach(() => {
    watcher?.close();
    watcher = undefined;
    ns.destroy();
  });

  async function setUp(c: Case, f: Family = V4) {
    const tracker = c.tracking ? new NextHopTracker({ damping: NO_DAMPING }) : undefined;
    if (tracker) watcher = await NextHopWatch.open({ tracker, netns: ns.path });
    const table = tracker ? new Table({ name: `master${f.family}`, nexthops: tracker }) : newTable();
    // 300 nets from both sources (the primary best), 20 only from the primary, 20 ECMP across veth2 and veth1.
    announce(table, new RouteSource('a', 200), [...f.nets(300), ...f.nets(20, 100)].map((n) => `${n} via ${f.P}`));
    announce(table, new RouteSource('b', 100), f.nets(300).map((n) => `${n} via ${f.B}`));
    announce(table, new RouteSource('c', 150), f.nets(20, 110).map((n) => `${n} nexthop via ${f.P} nexthop via ${f.E}`));
    ns.ipBatch(f.foreign);
    const p = kernelProtocol(ns, table, {
      family: f.family,
      nexthopObjects: c.nexthopObjects,
      ...(c.failover ? { failover: c.failover } : {}),
      scanIntervalMs: HOUR,
      backoff: { baseMs: HOUR, maxMs: HOUR, jitter: 0 }, // a refused route is not retried on a timer either
    });
    await p.start();
    const sync = p.sync(f.family)!;
    await quiesced(sync);
    expect(p.counts()).toMatchObject({ installed: 340, failed: 0, pending: 0 });
    return { p, sync };
  }

  /** Takes veth2's carrier away and gives it back, without yielding: the kernel acts on both, the daemon reads neither. */
  function blip(objects: boolean): void {
    ns.ip('link', 'set', 'veth3', 'down');
    // The link watch runs the flush (objects, and the routes on them) a moment after the carrier went.
    untilBlocking(() => !carrierOn(ns, 'veth2') && (!objects || !ns.ip('nexthop', 'show').includes('dev veth2')), 5000);
    ns.ip('link', 'set', 'veth3', 'up');
    untilBlocking(() => carrierOn(ns, 'veth2'), 5000);
  }

  it.each([V4, V6].flatMap((f) => CASES.map((c) => [f.family, c.name, c, f] as const)))('IPv%s, %s: every route is back as it was, without a periodic scan; foreign routes untouched', async (_, __, c, f) => {
    const { p, sync } = await setUp(c, f);
    const before = kernelView(ns, f);
    const others = foreign(ns, f);
    const { scans, resyncs } = sync.stats;
    blip(c.nexthopObjects !== 'off');
    if (c.nexthopObjects !== 'off') expect(ourRoutes(ns, f.flag).length).toBeLessThan(before.lines.length); // the kernel did take routes
    await until(() => JSON.stringify(kernelView(ns, f)) === JSON.stringify(before), 10000).catch((e: Error) => {
      const now = kernelView(ns, f);
      throw new Error(`${e.message}: missing ${JSON.stringify(before.lines.filter((l) => !now.lines.includes(l)).slice(0, 5))}, extra ${JSON.stringify(now.lines.filter((l) => !before.lines.includes(l)).slice(0, 5))}, status ${JSON.stringify(p.status().filter((s) => s.state !== 'installed').slice(0, 3))}`);
    });
    await quiesced(sync);
    expect(kernelView(ns, f)).toEqual(before);
    expect(p.counts()).toMatchObject({ installed: 340, failed: 0, pending: 0 });
    expect(foreign(ns, f)).toEqual(others);
    // Any scan that ran was one the events asked for: the periodic one is an hour away.
    expect(sync.stats.scans - scans).toBe(sync.stats.resyncs - resyncs);
    await p.shutdown();
    expect(ourRoutes(ns, f.flag)).toEqual([]);
    expect(foreign(ns, f)).toEqual(others);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s: the link itself down and up before the daemon reads of it: every route is back as it was, without a periodic scan', async (_, c) => {
    const { p, sync } = await setUp(c);
    const before = kernelView(ns);
    const others = foreign(ns);
    const { scans, resyncs } = sync.stats;
    // Admin down takes every route through veth2, plain ones too (IPv4: without a notification), but for the
    // address's local route and the hops of a multipath route that has others (marked dead); up gives the
    // kernel's own (connected, broadcast) back at once.
    ns.ip('link', 'set', 'veth2', 'down');
    untilBlocking(() => !ns.ip('-4', 'route', 'show', 'table', 'all').split('\n').some((l) => l.includes('dev veth2') && !l.startsWith('local ') && !l.includes(' dead')), 5000);
    ns.ip('link', 'set', 'veth2', 'up');
    untilBlocking(() => carrierOn(ns, 'veth2'), 5000);
    // What the kernel took of others' is theirs to put back: the rest stays as it is now.
    const kept = foreign(ns);
    expect(others.filter((r) => !kept.includes(r)).map((r) => (JSON.parse(r) as IpRoute).dst).sort()).toEqual(['10.200.0.0/24', '10.200.2.0/24']);
    expect(ourRoutes(ns).length).toBeLessThan(before.lines.length);
    await until(() => JSON.stringify(kernelView(ns)) === JSON.stringify(before), 10000).catch((e: Error) => {
      const now = kernelView(ns);
      throw new Error(`${e.message}: missing ${JSON.stringify(before.lines.filter((l) => !now.lines.includes(l)).slice(0, 5))}, extra ${JSON.stringify(now.lines.filter((l) => !before.lines.includes(l)).slice(0, 5))}`);
    });
    await quiesced(sync);
    expect(kernelView(ns)).toEqual(before);
    expect(p.counts()).toMatchObject({ installed: 340, failed: 0, pending: 0 });
    expect(foreign(ns)).toEqual(kept);
    expect(sync.stats.scans - scans).toBe(sync.stats.resyncs - resyncs);
    await p.shutdown();
  });

  it.each(CASES.filter((c) => c.nexthopObjects !== 'off').map((c) => [c.name, c] as const))('%s: ten blips in a row, back to back in one batch: every route is back as it was', async (_, c) => {
    const { p, sync } = await setUp(c);
    const before = kernelView(ns);
    const others = foreign(ns);
    // One `ip` process: down and up as fast as the kernel takes them; the link watch may see either state.
    ns.ipBatch(Array.from({ length: 10 }, () => ['link set veth3 down', 'link set veth3 up']).flat());
    untilBlocking(() => carrierOn(ns, 'veth2'), 5000);
    await until(() => JSON.stringify(kernelView(ns)) === JSON.stringify(before), 10000);
    await quiesced(sync);
    expect(kernelView(ns)).toEqual(before);
    expect(p.counts()).toMatchObject({ installed: 340, failed: 0, pending: 0 });
    expect(foreign(ns)).toEqual(others);
    await p.shutdown();
  });
});
