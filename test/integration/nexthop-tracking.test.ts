/**
 * Next-hop tracking against the real kernel: a router namespace with three
 * upstream links (veth pairs whose far ends sit in a peer namespace), three
 * sources announcing the same nets through one upstream each, and carrier
 * loss made the way it happens, by taking the far end of a veth down.
 *
 * iproute2 is the oracle for what the kernel forwards with; `ip monitor
 * route` counts the kernel changes a flapping link causes. The backoff is
 * set to a minute, so a route that waited for its retry time instead of
 * being moved or retried at once would miss every deadline here.
 *
 * Every kernel test runs twice: routes carrying their next hops, and routes
 * on kernel nexthop objects (the default), where the kernel itself deletes
 * the objects on a link that loses carrier, and every route on them, without
 * a route notification. With objects, the oracle resolves each route through
 * its object (`ip -j nexthop`) and checks that no object of ours is left that
 * no route uses.
 */
import { parsePrefix } from '../../src/lib/addr';
import { NextHopWatch } from '../../src/proto/kernel/nexthop-watch';
import { RouteSource } from '../../src/route';
import { NextHopTracker, NO_DAMPING, Table, type DampingSettings } from '../../src/table';
import { KrtsyncDaemon, until as untilWhat } from '../helpers/daemon-fixture';
import { announce, kernelProtocol, RouteWatcher, until } from '../helpers/kernel-fixture';
import { createNetns, dropNhid, kernelDescribe, linkNetns, type Netns } from '../helpers/netns';
import type { KernelProtocol } from '../../src/proto/kernel/kernel-protocol';
import type { NexthopMode } from '../../src/proto/kernel/nexthop-objects';

const N = 300;
const nets = Array.from({ length: N }, (_, i) => `10.${20 + (i >> 8)}.${i & 255}.0/24`);
const MINUTE_BACKOFF = { baseMs: 60_000, maxMs: 120_000, jitter: 0 };

interface Rig {
  router: Netns;
  peer: Netns;
  tracker: NextHopTracker;
  watch: NextHopWatch;
  readonly table: Table;
  kernel: KernelProtocol;
}

const rigs: Rig[] = [];

async function rig(objects: NexthopMode, damping: DampingSettings = NO_DAMPING, neighbours = false, now?: () => number): Promise<Rig> {
  const router = createNetns('krt-nht', { bare: true });
  const peer = createNetns('krt-nhp', { bare: true });
  linkNetns(router, 'up0', '192.0.2.1/24', peer, 'p0', '192.0.2.2/24');
  linkNetns(router, 'up1', '198.51.100.1/24', peer, 'p1', '198.51.100.2/24');
  linkNetns(router, 'up2', '203.0.113.1/24', peer, 'p2', '203.0.113.2/24');
  const tracker = new NextHopTracker({ damping, ...(now ? { now } : {}) });
  const watch = await NextHopWatch.open({ tracker, netns: router.path, neighbours });
  const table = new Table({ name: 'master4', nexthops: tracker });
  const kernel = kernelProtocol(router, table, { backoff: MINUTE_BACKOFF, nexthopObjects: objects });
  const r = { router, peer, tracker, watch, table, kernel };
  rigs.push(r);
  return r;
}

interface IpNexthop {
  id: number;
  gateway?: string;
  group?: Array<{ id: number }>;
  protocol?: string;
}

/**
 * Gateway (or "gw1+gw2" for multipath) of each of our routes, by net. A route on a nexthop object is
 * resolved through the object (and a group through its members), as the kernel forwards it.
 */
function via(ns: Netns): Map<string, string> {
  const objects = new Map(ns.ipJson<IpNexthop[]>('nexthop', 'show').map((o) => [o.id, o]));
  const gateways = (id: number): string[] => {
    const o = objects.get(id);
    if (o === undefined) return [`missing object ${id}`];
    return o.group ? o.group.flatMap((m) => gateways(m.id)) : [o.gateway ?? 'no gateway'];
  };
  const out = new Map<string, string>();
  for (const r of ns.ipJson<Array<{ dst: string; nhid?: number; gateway?: string; nexthops?: Array<{ gateway: string }> }>>('-4', 'route', 'show', 'proto', '144')) {
    out.set(r.dst, r.nhid !== undefined ? gateways(r.nhid).join('+') : (r.gateway ?? (r.nexthops ?? []).map((h) => h.gateway).join('+')));
  }
  return out;
}

/** Objects of ours in the kernel that no route of ours uses (directly or as a member of a used group). */
function strayObjects(ns: Netns): number[] {
  const ours = ns.ipJson<IpNexthop[]>('nexthop', 'show', 'proto', '144');
  const byId = new Map(ours.map((o) => [o.id, o]));
  const used = new Set<number>();
  const use = (id: number): void => {
    used.add(id);
    for (const m of byId.get(id)?.group ?? []) use(m.id);
  };
  for (const r of ns.ipJson<Array<{ nhid?: number }>>('-4', 'route', 'show', 'table', 'all', 'proto', '144')) if (r.nhid !== undefined) use(r.nhid);
  return ours.filter((o) => !used.has(o.id)).map((o) => o.id);
}

/** With objects: every route of ours names one, and no object of ours is left unused (deleted within the sync's 2 s collect). */
async function objectsTidy(r: Rig, objects: NexthopMode): Promise<void> {
  if (objects !== 'on') return;
  const routes = r.router.ipJson<Array<{ dst: string; nhid?: number }>>('-4', 'route', 'show', 'proto', '144');
  expect(routes.filter((x) => x.nhid === undefined)).toEqual([]);
  await until(() => strayObjects(r.router).length === 0, 10_000).catch(() => undefined);
  expect(strayObjects(r.router)).toEqual([]);
}

const allVia = (ns: Netns, gw: string) => (): boolean => {
  const m = via(ns);
  return nets.every((n) => m.get(n) === gw);
};

afterEach(async () => {
  for (const r of rigs.splice(0)) {
    await r.kernel.shutdown().catch(() => undefined);
    r.watch.close();
    r.tracker.close();
    r.router.destroy();
    r.peer.destroy();
  }
});

kernelDescribe.each(['off', 'on'] as const)('next-hop tracking (kernel, nexthop objects %s)', (objects) => {
  jest.setTimeout(60_000);
  const a = new RouteSource('upstream-a', 100);
  const b = new RouteSource('upstream-b', 90);
  const c = new RouteSource('upstream-c', 80);

  it('moves every route to the backup when the primary link loses carrier, and back at once when it returns', async () => {
    const r = await rig(objects);
    announce(r.table, a, nets.map((n) => `${n} via 192.0.2.2`));
    announce(r.table, b, nets.map((n) => `${n} via 198.51.100.2`));
    await r.kernel.start();
    expect(allVia(r.router, '192.0.2.2')()).toBe(true);

    r.peer.ip('link', 'set', 'p0', 'down'); // carrier loss on the router's up0
    await until(allVia(r.router, '198.51.100.2'), 10_000);
    const set = r.table.routes(parsePrefix(nets[0]!));
    expect(set.map((x) => x.src.name)).toEqual(['upstream-b', 'upstream-a']);
    expect(r.tracker.why(set[1]!.attrs.nexthops!)).toBe('next hop via 192.0.2.2: dev up0 has no carrier');
    expect(r.kernel.counts().failed).toBe(0);

    r.peer.ip('link', 'set', 'p0', 'up');
    await until(allVia(r.router, '192.0.2.2'), 10_000);
    // The kernel holds them before their answers are read: wait for those too.
    await until(() => r.kernel.counts().installed === N, 10_000);
    expect(r.kernel.counts()).toMatchObject({ failed: 0, pending: 0 });
    await objectsTidy(r, objects);
  });

  it('with three sources the third takes over when two links fail, and each returns in preference order', async () => {
    const r = await rig(objects);
    announce(r.table, c, nets.map((n) => `${n} via 203.0.113.2`));
    announce(r.table, a, nets.map((n) => `${n} via 192.0.2.2`));
    announce(r.table, b, nets.map((n) => `${n} via 198.51.100.2`));
    await r.kernel.start();
    expect(allVia(r.router, '192.0.2.2')()).toBe(true);
    r.peer.ip('link', 'set', 'p0', 'down');
    r.peer.ip('link', 'set', 'p1', 'down');
    await until(allVia(r.router, '203.0.113.2'), 10_000);
    r.peer.ip('link', 'set', 'p1', 'up');
    await until(allVia(r.router, '198.51.100.2'), 10_000);
    r.peer.ip('link', 'set', 'p0', 'up');
    await until(allVia(r.router, '192.0.2.2'), 10_000);
    // Admin down on the router's own side works the same way (the kernel drops the connected prefix too).
    r.router.ip('link', 'set', 'up0', 'down');
    await until(allVia(r.router, '198.51.100.2'), 10_000);
    r.router.ip('link', 'set', 'up0', 'up');
    await until(allVia(r.router, '192.0.2.2'), 10_000);
    expect(r.kernel.counts().failed).toBe(0);
    await objectsTidy(r, objects);
  });

  it('an ECMP primary losing one member keeps forwarding over the other, then takes the member back', async () => {
    const r = await rig(objects);
    announce(r.table, a, nets.map((n) => `${n} nexthop via 192.0.2.2 nexthop via 198.51.100.2`));
    announce(r.table, c, nets.map((n) => `${n} via 203.0.113.2`));
    await r.kernel.start();
    expect(allVia(r.router, '192.0.2.2+198.51.100.2')()).toBe(true);
    r.peer.ip('link', 'set', 'p0', 'down');
    await until(allVia(r.router, '198.51.100.2'), 10_000); // still the primary, one member fewer
    expect(r.table.bestRoute(parsePrefix(nets[0]!))?.src).toBe(a);
    r.peer.ip('link', 'set', 'p1', 'down');
    await until(allVia(r.router, '203.0.113.2'), 10_000); // no member left: the backup
    r.peer.ip('link', 'set', 'p0', 'up');
    r.peer.ip('link', 'set', 'p1', 'up');
    await until(allVia(r.router, '192.0.2.2+198.51.100.2'), 10_000);
    expect(r.kernel.counts().failed).toBe(0);
    await objectsTidy(r, objects);
  });

  it('a flapping link is damped: the routes stay on the backup instead of following every flap', async () => {
    // The penalty rules are the defaults'. The damping's clock stands still while the link flaps, so no
    // penalty decays however slowly a loaded machine runs the flaps; it jumps ahead afterwards, and the
    // hold's own timer (real time: at most max_hold) then finds the hold over.
    const damping: DampingSettings = { penalty: 1000, suppress: 2500, reuse: 1000, halfLifeMs: 1500, maxHoldMs: 4000 };
    let clock = 1_000_000;
    const r = await rig(objects, damping, false, () => clock);
    announce(r.table, a, nets.map((n) => `${n} via 192.0.2.2`));
    announce(r.table, b, nets.map((n) => `${n} via 198.51.100.2`));
    await r.kernel.start();
    const mon = new RouteWatcher(r.router);
    await mon.ready();
    const carrier = (up: boolean) => (): boolean => r.tracker.report().some((h) => h.hop === 'via 192.0.2.2' && (up ? h.reason === undefined || h.reason.startsWith('flapping') : h.reason?.includes('no carrier') === true));
    const FLAPS = 8;
    for (let i = 0; i < FLAPS; i++) {
      r.peer.ip('link', 'set', 'p0', 'down');
      await until(carrier(false), 5000, 5);
      await until(allVia(r.router, '198.51.100.2'), 10_000);
      r.peer.ip('link', 'set', 'p0', 'up');
      await until(carrier(true), 5000, 5);
      if (i < 2) await until(allVia(r.router, '192.0.2.2'), 10_000); // the first two flaps are followed
    }
    // Held after the third failure: still on the backup, and show routes would say why.
    expect(allVia(r.router, '198.51.100.2')()).toBe(true);
    const hop = r.tracker.report().find((h) => h.hop === 'via 192.0.2.2')!;
    expect(hop).toMatchObject({ usable: false, flaps: FLAPS });
    expect(hop.reason).toMatch(/^flapping \(8 failures\), held down for \d+ s more$/);
    // Released by the damping's own timer once the penalty decayed: back on the primary.
    clock += 60_000;
    await until(allVia(r.router, '192.0.2.2'), 15_000);
    const ours = (): number => mon.lines().filter((l) => /^(Deleted )?10\.2[01]\./.test(l)).length;
    // `ip monitor` may print behind the kernel on a loaded machine: give it time to show what was done.
    await until(() => ours() >= 6 * N, 10_000).catch(() => undefined);
    const lines = await mon.stop();
    const changes = lines.filter((l) => /^(Deleted )?10\.2[01]\./.test(l)).length;
    // Followed: 2 flaps x 2 moves, then 1 move to the backup and 1 back at the end (6 per net); undamped it is 16.
    expect({ changes, sample: lines.slice(0, 3) }).toEqual({ changes: 6 * N, sample: expect.any(Array) });
    expect(r.kernel.counts().failed).toBe(0);
    await objectsTidy(r, objects);
  });

  it('with neighbours followed, a gateway whose neighbour entry failed is not used', async () => {
    const r = await rig(objects, NO_DAMPING, true);
    announce(r.table, a, nets.map((n) => `${n} via 192.0.2.2`));
    announce(r.table, b, nets.map((n) => `${n} via 198.51.100.2`));
    await r.kernel.start();
    expect(allVia(r.router, '192.0.2.2')()).toBe(true);
    // What the kernel records when a known neighbour stops answering ARP (set by hand: the test sends no
    // traffic). From a valid state, as in life: the kernel notifies no entry created failed by a user.
    r.router.ip('neigh', 'replace', '192.0.2.2', 'dev', 'up0', 'lladdr', '02:00:00:00:00:02', 'nud', 'stale');
    r.router.ip('neigh', 'replace', '192.0.2.2', 'dev', 'up0', 'nud', 'failed');
    await until(allVia(r.router, '198.51.100.2'), 10_000);
    expect(r.tracker.why(r.table.routes(parsePrefix(nets[0]!))[1]!.attrs.nexthops!)).toBe('next hop via 192.0.2.2: neighbour 192.0.2.2 on dev up0 failed');
    r.router.ip('neigh', 'replace', '192.0.2.2', 'dev', 'up0', 'lladdr', '02:00:00:00:00:02', 'nud', 'stale');
    await until(allVia(r.router, '192.0.2.2'), 10_000);
    r.router.ip('neigh', 'replace', '192.0.2.2', 'dev', 'up0', 'nud', 'failed');
    await until(allVia(r.router, '198.51.100.2'), 10_000);
    // A failed entry found by a dump counts too (a resync after lost notifications).
    r.watch.close();
    r.watch = await NextHopWatch.open({ tracker: r.tracker, netns: r.router.path, neighbours: true });
    expect(allVia(r.router, '198.51.100.2')()).toBe(true);
    r.router.ip('neigh', 'del', '192.0.2.2', 'dev', 'up0');
    await until(allVia(r.router, '192.0.2.2'), 10_000);
    await objectsTidy(r, objects);
  });

  it('IPv6: carrier loss and admin down move the routes to the backup, and back at once when the link returns', async () => {
    // IPv6 tells of the routes the kernel flushes, and admin down takes the link's addresses: the sync
    // repairs or re-converts the primary's routes before the tracker moves them, and those refusals
    // (EHOSTUNREACH) answer a route the nets no longer want: they must not hold the backup back.
    const r = await rig(objects);
    r.kernel = kernelProtocol(r.router, r.table, { backoff: MINUTE_BACKOFF, nexthopObjects: objects, family: 6 });
    for (const [dev, pdev, k] of [['up0', 'p0', 1], ['up1', 'p1', 2]] as const) {
      r.router.ip('addr', 'add', `2001:db8:${k}::1/64`, 'dev', dev, 'nodad');
      r.peer.ip('addr', 'add', `2001:db8:${k}::2/64`, 'dev', pdev, 'nodad');
    }
    const nets6 = nets.slice(0, 50).map((_, i) => `2001:db8:100:${(i + 1).toString(16)}::/64`);
    announce(r.table, a, nets6.map((n) => `${n} via 2001:db8:1::2`));
    announce(r.table, b, nets6.map((n) => `${n} via 2001:db8:2::2`));
    await until(() => r.tracker.report().some((h) => h.hop === 'via 2001:db8:1::2' && h.reason === undefined), 5000);
    await r.kernel.start();
    const via6 = (gw: string) => (): boolean => {
      const objs = new Map(r.router.ipJson<IpNexthop[]>('nexthop', 'show').map((o) => [o.id, o]));
      const m = new Map(r.router.ipJson<Array<{ dst: string; nhid?: number; gateway?: string }>>('-6', 'route', 'show', 'proto', '144').map((x) => [x.dst, x.nhid !== undefined ? objs.get(x.nhid)?.gateway : x.gateway]));
      return nets6.every((n) => m.get(n) === gw);
    };
    await until(via6('2001:db8:1::2'), 10_000);
    r.peer.ip('link', 'set', 'p0', 'down');
    await until(via6('2001:db8:2::2'), 10_000);
    r.peer.ip('link', 'set', 'p0', 'up');
    await until(via6('2001:db8:1::2'), 10_000);
    // Admin down removes the router's IPv6 addresses on the link too (no keep_addr_on_down): they come back with it.
    r.router.ip('link', 'set', 'up0', 'down');
    await until(via6('2001:db8:2::2'), 10_000);
    r.router.ip('link', 'set', 'up0', 'up');
    r.router.ip('addr', 'replace', '2001:db8:1::1/64', 'dev', 'up0', 'nodad');
    await until(via6('2001:db8:1::2'), 10_000);
    await until(() => r.kernel.counts().installed === nets6.length, 10_000);
    expect(r.kernel.counts()).toMatchObject({ failed: 0, pending: 0 });
  });

  it('a route whose only next hop fails leaves the kernel and returns without a backoff wait', async () => {
    const r = await rig(objects);
    announce(r.table, a, nets.map((n) => `${n} via 192.0.2.2`));
    await r.kernel.start();
    r.peer.ip('link', 'set', 'p0', 'down');
    await until(() => via(r.router).size === 0, 10_000);
    // With objects the kernel flushed them before the sync heard of it: wait for the sync to withdraw them too.
    await until(() => r.kernel.counts().installed === 0 && r.kernel.counts().pending === 0, 10_000);
    expect(r.kernel.counts()).toMatchObject({ failed: 0, installed: 0 });
    r.peer.ip('link', 'set', 'p0', 'up');
    await until(allVia(r.router, '192.0.2.2'), 10_000);
    await until(() => r.kernel.counts().installed === N, 10_000);
    await objectsTidy(r, objects);
  });
});

/** Our routes (on an object or not, written without the id) and our objects (without ids), sorted. */
function kernelState(ns: Netns): { routes: string[]; objects: string[] } {
  const routes = ns.ip('-4', 'route', 'show', 'proto', '144').split('\n').map((l) => dropNhid(l.trim()).replace(/ proto \S+/, '')).filter(Boolean).sort();
  const objects = ns.ip('nexthop', 'show', 'proto', '144').split('\n').map((l) => l.trim().replace(/^id \d+ /, '').replace(/ (scope \S+|proto \S+)/g, '')).filter(Boolean).sort();
  return { routes, objects };
}

kernelDescribe.each(['off', 'auto'] as const)('next-hop tracking (daemon, nexthop_objects: %s)', (objects) => {
  jest.setTimeout(60_000);
  let router: Netns | undefined;
  let peer: Netns | undefined;
  let d: KrtsyncDaemon | undefined;
  afterEach(async () => {
    await d?.dispose();
    router?.destroy();
    peer?.destroy();
  });

  it('nexthop_tracking in the config: the backup is installed on carrier loss, show routes says why the primary is not used, a restart mid-failover changes nothing', async () => {
    router = createNetns('krt-nhd', { bare: true });
    peer = createNetns('krt-nhq', { bare: true });
    linkNetns(router, 'up0', '192.0.2.1/24', peer, 'p0', '192.0.2.2/24');
    linkNetns(router, 'up1', '198.51.100.1/24', peer, 'p1', '198.51.100.2/24');
    d = new KrtsyncDaemon(router, 'krt-nhd');
    d.writeConfig(`nexthop_tracking: true
protocols:
  - { name: primary, type: static, preference: 200, routes: ["203.0.113.0/24 via 192.0.2.2", "10.30.0.0/16 via 192.0.2.2"] }
  - { name: backup, type: static, preference: 100, routes: ["203.0.113.0/24 via 198.51.100.2"] }
  - { name: kernel1, type: kernel, family: ipv4, nexthop_objects: ${objects} }
`);
    await d.startReady();
    const gw = (): string | undefined => router!.ipJson<Array<{ dst: string; gateway?: string }>>('-4', 'route', 'show', 'proto', '144').find((r) => r.dst === '203.0.113.0/24')?.gateway;
    expect(gw()).toBe('192.0.2.2');
    const failedAt = Date.now();
    peer.ip('link', 'set', 'p0', 'down');
    await untilWhat('the backup route in the kernel', () => gw() === '198.51.100.2');
    // The only route of 10.30.0.0/16 is not eligible: not in the kernel, and shown with the reason.
    await untilWhat('10.30.0.0/16 gone', () => !router!.ip('-4', 'route', 'show', 'proto', '144').includes('10.30.0.0/16'));
    const shown = JSON.parse(d.cli(['show', 'routes', '--json', '--all']).out) as Array<Record<string, unknown>>;
    expect(shown.filter((r) => r.prefix === '203.0.113.0/24')).toEqual([
      expect.objectContaining({ source: 'backup', best: true, reason: 'next hop' }),
      expect.objectContaining({ source: 'primary', best: false, eligible: false, reason: 'next hop', unusable: 'next hop via 192.0.2.2: dev up0 has no carrier' }),
    ]);
    expect(shown.filter((r) => r.prefix === '10.30.0.0/16')).toEqual([expect.objectContaining({ source: 'primary', best: false, eligible: false })]);
    const human = d.cli(['show', 'routes', '203.0.113.0/24', '--all']).out;
    expect(human).toMatch(/not used: next hop via 192\.0\.2\.2: dev up0 has no carrier/);
    // The tracker's own view, through the control socket: each next hop, its device and state, why, its
    // damping (one failure so far: penalty near 1000, not held) and the routes through it.
    const hops = JSON.parse(d.cli(['show', 'nexthops', '--json']).out) as Array<Record<string, unknown>>;
    expect(hops).toEqual([
      expect.objectContaining({ hop: 'via 192.0.2.2', dev: 'up0', state: 'down', usable: false, reason: 'dev up0 has no carrier', flaps: 1, routes: 2 }),
      expect.objectContaining({ hop: 'via 198.51.100.2', dev: 'up1', state: 'usable', usable: true, flaps: 0, penalty: 0, routes: 1 }),
    ]);
    // The penalty has decayed (half-life 15 s) for no longer than since the link went down: a bound
    // from the time that really passed, not a guess of how fast a loaded machine gets here.
    const decayed = 1000 * Math.pow(0.5, (Date.now() - failedAt) / 15_000);
    expect(hops[0]!.penalty).toBeGreaterThanOrEqual(Math.floor(decayed) - 1);
    expect(hops[0]!.penalty).toBeLessThanOrEqual(1000);
    expect(d.cli(['show', 'nexthops']).out).toMatch(/^via 192\.0\.2\.2 +up0 +down +2 +1 +\d+ +dev up0 has no carrier$/m);
    expect(JSON.parse(d.cli(['show', 'nexthops', '--json', '--table', 'master4']).out)).toEqual(hops.map((h) => ({ ...h, penalty: expect.any(Number) })));
    const noTable = d.cli(['show', 'nexthops', '--table', 'nosuch']);
    expect({ code: noTable.code, err: noTable.err }).toEqual({ code: 1, err: expect.stringContaining('no table named "nosuch"') });

    // A crash and restart in the middle of the failover: the restart judges the routes with the kernel's
    // facts before its first sync, so it finds the kernel as it wants it (no flap, no stale primary).
    const before = kernelState(router);
    if (objects === 'auto') expect(before.objects).toEqual(['via 198.51.100.2 dev up1']); // the primary's went with its carrier
    await d.stop('SIGKILL');
    let mon = new RouteWatcher(router, ['route', 'nexthop']);
    await mon.ready();
    await d.startReady();
    expect((await mon.stop()).filter((l) => !/^(local|broadcast|multicast) /.test(l))).toEqual([]);
    expect(kernelState(router)).toEqual(before);
    peer.ip('link', 'set', 'p0', 'up');
    await untilWhat('the primary back', () => gw() === '192.0.2.2');
    await untilWhat('10.30.0.0/16 back', () => kernelState(router!).routes.includes('10.30.0.0/16 via 192.0.2.2 dev up0'));
    // The backup's object, which nothing uses now, goes (the sync deletes unused objects every 2 s at most).
    const primaryOnly = { routes: ['10.30.0.0/16 via 192.0.2.2 dev up0', '203.0.113.0/24 via 192.0.2.2 dev up0'], objects: objects === 'auto' ? ['via 192.0.2.2 dev up0'] : [] };
    await untilWhat('the primary alone in the kernel', () => JSON.stringify(kernelState(router!)) === JSON.stringify(primaryOnly)).catch(() => undefined);
    expect(kernelState(router)).toEqual(primaryOnly);

    // Killed while the carrier is lost, started after it came back: the restart moves the routes back
    // onto the primary (in place: replaced, never deleted) and leaves no object of the backup behind.
    peer.ip('link', 'set', 'p0', 'down');
    await untilWhat('the backup route in the kernel', () => gw() === '198.51.100.2');
    await d.stop('SIGKILL');
    peer.ip('link', 'set', 'p0', 'up');
    mon = new RouteWatcher(router, ['route']);
    await mon.ready();
    await d.startReady();
    await untilWhat('the primary alone in the kernel', () => JSON.stringify(kernelState(router!)) === JSON.stringify(primaryOnly)).catch(() => undefined);
    expect(kernelState(router)).toEqual(primaryOnly);
    expect((await mon.stop()).filter((l) => /^Deleted (203\.0\.113|10\.30)\./.test(l))).toEqual([]);
    expect(await d.stop()).toBe(0);
    expect(kernelState(router)).toEqual({ routes: [], objects: [] });
  });
});
