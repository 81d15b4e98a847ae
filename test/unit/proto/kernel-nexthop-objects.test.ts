/**
 * Routes on kernel nexthop objects (src/proto/kernel/nexthop-objects.ts)
 * against the fake kernel (test/helpers/fake-kernel.ts, fake-nexthops.ts).
 * test/integration/kernel-nexthops.test.ts checks the same against Linux.
 */
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import * as C from '../../../src/netlink/constants';
import type { NexthopMessage } from '../../../src/netlink/nexthop-codec';
import type { RouteMessage } from '../../../src/netlink/route-codec';
import { KernelProtocol, type KernelProtocolOptions } from '../../../src/proto/kernel/kernel-protocol';
import { idRange } from '../../../src/proto/kernel/nexthop-objects';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger, until, withdraw } from '../../helpers/kernel-fixture';

const PROTO = 144;
const RANGE = idRange({ protocol: PROTO, family: 4, table: 254 });

function setup(extra: Partial<KernelProtocolOptions> = {}, kernel = new FakeKernel(), table = new Table({ name: 'master4' })) {
  const src = new RouteSource('static1', 200);
  const options: KernelProtocolOptions = { name: 'kernel1', table, family: 4, scanIntervalMs: 0, kernelIo: kernel.provider, log: memoryLogger(), ...extra };
  return { kernel, table, src, options, p: new KernelProtocol(options) };
}

const ourRoutes = (k: FakeKernel): RouteMessage[] => k.all().filter((r) => r.protocol === PROTO && r.table === 254);
const route = (k: FakeKernel, dst: string): RouteMessage | undefined => ourRoutes(k).find((r) => r.dst.toString() === dst);
const objects = (k: FakeKernel): NexthopMessage[] => [...k.nexthops.objects.values()];
const objectOf = (k: FakeKernel, dst: string): NexthopMessage | undefined => k.nexthops.objects.get(route(k, dst)?.nhId ?? -1);
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

const KINDS = [
  '10.5.0.0/24 via 192.0.2.2', // gateway: the device from the connected prefix
  '10.5.1.0/24 via 192.0.2.2 dev veth0', // the same next hop: the same object
  '10.5.2.0/24 dev veth1', // a device alone
  '10.5.3.0/24 via 203.0.113.1 dev veth1 onlink',
  '10.5.4.0/24 nexthop via 192.0.2.2 weight 1 nexthop via 198.51.100.2 weight 3', // ECMP: a group
  '10.5.6.0/24 via inet6 2001:db8:1::1 dev veth0', // RTA_VIA: an IPv6 object for an IPv4 route
  'blackhole 10.5.5.0/24', // no next hop: a route type, no object
  '10.5.7.0/24 via 192.0.2.2 realm 5', // the kernel drops a realm on routes with an object: sent as it is
];

describe('routes on nexthop objects (fake kernel)', () => {
  it('puts every kind of next hop on an object of ours, shared by content, and a restart changes nothing', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, KINDS);
    await p.start();
    expect(p.counts()).toEqual({ installed: 8, pending: 0, failed: 0, withdrawing: 0 });
    const gw = objectOf(kernel, '10.5.0.0/24')!;
    expect(gw).toMatchObject({ family: 4, protocol: PROTO, oif: 2, gateway: parseAddr('192.0.2.2'), flags: 0 });
    expect(route(kernel, '10.5.1.0/24')!.nhId).toBe(gw.id);
    expect(objectOf(kernel, '10.5.2.0/24')).toMatchObject({ family: 4, oif: 3 });
    expect(objectOf(kernel, '10.5.2.0/24')!.gateway).toBeUndefined();
    expect(objectOf(kernel, '10.5.3.0/24')).toMatchObject({ oif: 3, gateway: parseAddr('203.0.113.1'), flags: C.RTNH_F_ONLINK });
    const group = objectOf(kernel, '10.5.4.0/24')!;
    expect(group.group).toHaveLength(2);
    expect(group.group).toContainEqual({ id: gw.id, weight: 1 });
    expect(kernel.nexthops.objects.get(group.group!.find((g) => g.weight === 3)!.id)).toMatchObject({ oif: 3, gateway: parseAddr('198.51.100.2') });
    expect(objectOf(kernel, '10.5.6.0/24')).toMatchObject({ family: 6, oif: 2, gateway: parseAddr('2001:db8:1::1') });
    expect(route(kernel, '10.5.5.0/24')).toMatchObject({ type: C.RTN_BLACKHOLE });
    expect(route(kernel, '10.5.5.0/24')!.nhId).toBeUndefined();
    expect(route(kernel, '10.5.7.0/24')).toMatchObject({ flow: 5, gateway: parseAddr('192.0.2.2') });
    expect(route(kernel, '10.5.7.0/24')!.nhId).toBeUndefined();
    // 6 objects (192.0.2.2@veth0 once), ours by protocol number and range.
    expect(objects(kernel)).toHaveLength(6);
    for (const o of objects(kernel)) {
      expect(o.protocol).toBe(PROTO);
      expect(o.id).toBeGreaterThanOrEqual(RANGE.first);
      expect(o.id).toBeLessThanOrEqual(RANGE.last);
    }
    expect(p.sync(4)!.nexthops.list().map((o) => o.refs).reduce((a, b) => a + b)).toBeGreaterThan(0);

    p.crashForTesting();
    const before = kernel.log.length;
    const again = setup({}, kernel, table).p;
    await again.start();
    await tick(20);
    expect(kernel.ourChanges(before)).toEqual([]);
    expect(again.sync(4)!.nexthops.stats.adopted).toBe(6);
    expect(again.counts().installed).toBe(8);
    const mark = kernel.log.length;
    await again.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel)).toEqual([]);
    // Shutdown deletes the objects first: the six routes on them go with them; the two others are deleted.
    const changes = kernel.ourChanges(mark);
    expect(changes.filter((c) => c.startsWith('delete nexthop'))).toHaveLength(6);
    expect(changes.filter((c) => c.startsWith('del ')).sort()).toEqual(['del 10.5.7.0/24 via 192.0.2.2 dev veth0 proto 144', 'del blackhole 10.5.5.0/24 proto 144']);
  });

  it('an object goes after its last route; a new next hop gets a new object first', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.6.0.0/24 via 192.0.2.2', '10.6.1.0/24 via 192.0.2.2']);
    await p.start();
    const first = route(kernel, '10.6.0.0/24')!.nhId!;
    const mark = kernel.log.length;
    announce(table, src, ['10.6.0.0/24 via 192.0.2.3', '10.6.1.0/24 via 192.0.2.3']);
    await until(() => !kernel.nexthops.objects.has(first), 3000);
    const changes = kernel.ourChanges(mark);
    expect(changes[0]).toMatch(/^add nexthop \d+$/);
    expect(changes.filter((c) => c.startsWith('replace 10.6.'))).toHaveLength(2);
    expect(changes.at(-1)).toBe(`delete nexthop ${first}`);
    expect(objects(kernel)).toHaveLength(1);
    await p.shutdown();
  });

  it('skips ids in use by someone else', async () => {
    const { kernel, table, src, p } = setup();
    kernel.foreignNexthop('add', { id: RANGE.first, oif: 2, gateway: parseAddr('192.0.2.9') });
    kernel.foreignNexthop('add', { id: RANGE.first + 1, oif: 2, gateway: parseAddr('192.0.2.8'), protocol: PROTO }); // ours, left by an earlier run: adopted, unused, deleted
    announce(table, src, ['10.7.0.0/24 via 192.0.2.2']);
    await p.start();
    expect(route(kernel, '10.7.0.0/24')!.nhId).toBe(RANGE.first + 2);
    expect(kernel.nexthops.objects.get(RANGE.first)!.protocol).toBe(C.RTPROT_STATIC); // someone else's: untouched
    await until(() => !kernel.nexthops.objects.has(RANGE.first + 1)); // one of ours that nothing uses: deleted after the first sync
    await p.shutdown();
    expect([...kernel.nexthops.objects.keys()]).toEqual([RANGE.first]);
  });

  it('an id someone takes behind our back is never overwritten: the routes go onto a new object with a free id', async () => {
    const { kernel, table, src, p } = setup();
    await p.start();
    // Someone makes an object at the first id of our range without our knowing (no notification reaches us).
    kernel.nexthops.objects.set(RANGE.first, { id: RANGE.first, family: 4, protocol: C.RTPROT_STATIC, scope: 0, flags: 0, oif: 3, gateway: parseAddr('198.51.100.9') });
    announce(table, src, ['10.7.5.0/24 via 192.0.2.2', '10.7.6.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2']);
    await until(() => p.counts().installed === 2, 3000);
    expect(kernel.nexthops.objects.get(RANGE.first)).toMatchObject({ protocol: C.RTPROT_STATIC, gateway: parseAddr('198.51.100.9') });
    const id = route(kernel, '10.7.5.0/24')!.nhId!;
    expect(id).not.toBe(RANGE.first);
    expect(kernel.nexthops.objects.get(id)).toMatchObject({ protocol: PROTO, gateway: parseAddr('192.0.2.2') });
    expect(objectOf(kernel, '10.7.6.0/24')!.group!.map((g) => g.id)).toContain(id);
    await p.shutdown();
    expect([...kernel.nexthops.objects.keys()]).toEqual([RANGE.first]);
  });

  it('turning the option off and on replaces routes in place: no route deleted or added', async () => {
    const { kernel, table, src, p, options } = setup();
    announce(table, src, KINDS);
    await p.start();
    const mark = kernel.log.length;
    expect(p.reconfigure({ ...options, nexthopObjects: 'off' })).toBe(true);
    await until(() => objects(kernel).length === 0, 3000);
    await p.sync(4)!.settled();
    let changes = kernel.ourChanges(mark);
    expect(changes.filter((c) => c.startsWith('replace '))).toHaveLength(6); // the six on objects
    expect(changes.filter((c) => /^(add|del) 10/.test(c))).toEqual([]);
    expect(ourRoutes(kernel).filter((r) => r.nhId !== undefined)).toEqual([]);
    expect(route(kernel, '10.5.0.0/24')).toMatchObject({ gateway: parseAddr('192.0.2.2') });

    const mark2 = kernel.log.length;
    expect(p.reconfigure({ ...options, nexthopObjects: 'auto' })).toBe(true);
    await until(() => ourRoutes(kernel).filter((r) => r.nhId !== undefined).length === 6, 3000);
    changes = kernel.ourChanges(mark2);
    expect(changes.filter((c) => /^(add|del) 10/.test(c))).toEqual([]);
    expect(changes.filter((c) => c.startsWith('add nexthop'))).toHaveLength(6);
    await p.shutdown();
  });

  it('a link that goes down takes its objects and their routes silently; a scan puts them back when it comes up', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.8.0.0/24 via 198.51.100.2', '10.8.1.0/24 via 192.0.2.2', '10.8.2.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2']);
    await p.start();
    kernel.setLink('veth1', false);
    // The kernel flushed the veth1 object and the routes on it, and the group lost a member.
    expect(route(kernel, '10.8.0.0/24')).toBeUndefined();
    await until(() => p.status().some((s) => s.state === 'failed'), 3000);
    expect(route(kernel, '10.8.1.0/24')).toBeDefined();
    kernel.setLink('veth1', true);
    await until(() => p.counts().installed === 3 && route(kernel, '10.8.0.0/24') !== undefined, 5000);
    expect(objectOf(kernel, '10.8.0.0/24')).toMatchObject({ oif: 3, gateway: parseAddr('198.51.100.2') });
    expect(objectOf(kernel, '10.8.2.0/24')!.group).toHaveLength(2);
    await p.shutdown();
  });

  it('a group whose replace failed for a member on a dead link is still in the kernel: the link of its last member takes it, and its route', async () => {
    const { kernel, table, src, p } = setup({ backoff: { baseMs: 200, maxMs: 2000, jitter: 0 } });
    announce(table, src, ['10.8.0.0/24 via 198.51.100.2', '10.8.2.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2']);
    await p.start();
    kernel.setLink('veth1', false);
    // The group kept its veth0 member and its route; made whole again, it is refused (its veth1 member cannot be made).
    await until(() => p.counts().failed === 2, 3000);
    expect(route(kernel, '10.8.2.0/24')).toBeDefined();
    kernel.setLink('veth0', false); // its last member in the kernel: the kernel deletes the group, and the route on it
    expect(route(kernel, '10.8.2.0/24')).toBeUndefined();
    await tick(50);
    expect(p.counts()).toMatchObject({ installed: 0, failed: 2 });
    kernel.setLink('veth0', true);
    kernel.setLink('veth1', true);
    await until(() => p.counts().installed === 2 && ourRoutes(kernel).length === 2, 3000);
    expect(objectOf(kernel, '10.8.2.0/24')!.group).toHaveLength(2);
    await p.shutdown();
  });

  /**
   * An object for 10.24.1.0/24's next hop, refused while veth1 was down, its answer read only after the
   * link-up. `noAddress`: veth1 comes back without its address, so the retry is refused too (ENETUNREACH).
   */
  const objectRefusedBeforeLinkUp = async (noAddress: boolean) => {
    const s = setup({ backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } });
    announce(s.table, s.src, ['10.24.0.0/24 via 192.0.2.2']);
    await s.p.start();
    const sync = s.p.sync(4)!;
    s.kernel.setLink('veth1', false);
    await until(() => sync.links.get(3)?.usable === false);
    const release = s.kernel.holdAnswers();
    announce(s.table, s.src, ['10.24.1.0/24 via 198.51.100.2']);
    await until(() => s.kernel.answersWaiting > 0); // the object's add refused (veth1 down), not read yet
    const link = s.kernel.links.get(3)!;
    const connected = link.connected;
    if (noAddress) link.connected = [];
    s.kernel.setLink('veth1', true);
    s.kernel.deliverAll(); // the link-up, and its reset of every backoff, reach the sync before the answer
    release();
    await until(() => sync.nexthops.stats.failed >= 1);
    return { ...s, sync, giveAddressBack: () => (link.connected = connected) };
  };

  it('an object refused before a link came back, the refusal read after, is made again at once: neither it nor its route backs off', async () => {
    const { kernel, p } = await objectRefusedBeforeLinkUp(false);
    await until(() => route(kernel, '10.24.1.0/24') !== undefined, 2000);
    expect(objectOf(kernel, '10.24.1.0/24')).toMatchObject({ oif: 3, gateway: parseAddr('198.51.100.2') });
    expect(p.counts()).toMatchObject({ installed: 2, failed: 0 });
    await p.shutdown();
  });

  it('an object refused again after the link came back backs off, and so does its route', async () => {
    const { p, sync, giveAddressBack } = await objectRefusedBeforeLinkUp(true);
    await until(() => sync.nexthops.stats.failed === 2 && p.counts().failed === 1);
    const [o] = sync.nexthops.list().filter((x) => x.state === 'failed');
    expect(o).toMatchObject({ attempts: 1, error: { errnoName: 'ENETUNREACH' } });
    expect(p.status(parsePrefix('10.24.1.0/24'))[0]).toMatchObject({ state: 'failed', attempts: 1 });
    await tick(300);
    expect(sync.nexthops.stats.failed).toBe(2); // no third try
    giveAddressBack();
    await p.shutdown();
  });

  it('repairs a foreign delete of our object (and the routes the kernel took with it)', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.9.0.0/24 via 192.0.2.2', '10.9.1.0/24 via 192.0.2.2']);
    await p.start();
    const id = route(kernel, '10.9.0.0/24')!.nhId!;
    kernel.foreignNexthop('delete', { id });
    expect(ourRoutes(kernel)).toEqual([]);
    await until(() => ourRoutes(kernel).length === 2 && kernel.nexthops.objects.has(id), 3000);
    expect(route(kernel, '10.9.1.0/24')!.nhId).toBe(id);
    // A foreign change of its content is put back too.
    kernel.foreignNexthop('replace', { id, oif: 3, gateway: parseAddr('198.51.100.7'), protocol: PROTO });
    await until(() => kernel.nexthops.objects.get(id)?.oif === 2, 3000);
    expect(p.sync(4)!.nexthops.stats.repaired).toBeGreaterThanOrEqual(2);
    await p.shutdown();
  });

  it.each([
    ['the object kept', false],
    ['the object gone too', true],
  ])('routes the kernel deletes on its own with no link going down (%s) are put back at once, not at the periodic scan', async (_, objectToo) => {
    const { kernel, table, src, p } = setup({ scanIntervalMs: 60_000 });
    const nets = ['10.9.0.0/24', '10.9.1.0/24', '10.9.2.0/24'];
    announce(table, src, [...nets.map((n) => `${n} via 192.0.2.2`), '10.9.9.0/24 via 198.51.100.2']);
    await p.start();
    const sync = p.sync(4)!;
    const { repairs, sent, scans } = sync.stats;
    const id = route(kernel, '10.9.0.0/24')!.nhId!;
    expect(kernel.kernelDeletes((r) => r.nhId === id, objectToo ? [id] : [])).toBe(3);
    await until(() => ourRoutes(kernel).length === 4 && p.counts().installed === 4, 3000);
    await sync.settled();
    expect(route(kernel, '10.9.2.0/24')!.nhId).toBe(id);
    expect(sync.stats.repairs - repairs).toBe(3);
    expect(sync.stats.sent - sent).toBe(3); // one add each: never one naming an object the kernel no longer had
    // A scan only when the objects' re-read found one of ours missing (the other family's routes on it went silently).
    await tick(300);
    expect(sync.stats.scans - scans).toBe(objectToo ? 1 : 0);
    await p.shutdown();
  });

  it('never deletes an object a foreign route uses', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.10.0.0/24 via 192.0.2.2']);
    await p.start();
    const id = route(kernel, '10.10.0.0/24')!.nhId!;
    kernel.foreignAdd({ dst: '10.11.0.0/24', nhid: id, protocol: C.RTPROT_STATIC });
    withdraw(table, src, ['10.10.0.0/24 via 192.0.2.2']);
    await until(() => route(kernel, '10.10.0.0/24') === undefined, 3000);
    await tick(2500); // the collector runs at most every 2 s
    expect(kernel.nexthops.objects.has(id)).toBe(true);
    expect(p.sync(4)!.nexthops.stats.keptForForeign).toBeGreaterThan(0);
    await p.shutdown();
    expect(kernel.nexthops.objects.has(id)).toBe(true);
    expect(kernel.all().find((r) => r.dst.toString() === '10.11.0.0/24')).toBeDefined();
  });

  it('knows foreign routes on our objects from notifications, of either family, added and removed after start: no dump of every route', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.14.0.0/24 via 192.0.2.2', '10.14.1.0/24 via 198.51.100.2', '10.14.2.0/24 via inet6 2001:db8:1::1 dev veth0']);
    await p.start();
    const a = route(kernel, '10.14.0.0/24')!.nhId!;
    const b = route(kernel, '10.14.1.0/24')!.nhId!;
    const v6 = route(kernel, '10.14.2.0/24')!.nhId!;
    kernel.foreignAdd({ dst: '10.15.0.0/24', nhid: a, table: 300 });
    kernel.foreignAdd({ dst: '2001:db8:15::/48', nhid: v6 }); // an IPv6 route on the IPv6 object of our IPv4 route
    kernel.foreignAdd({ dst: '10.15.1.0/24', nhid: b });
    kernel.foreignDelete({ dst: '10.15.1.0/24', nhid: b }); // removed again: b may go
    await tick(10);
    await p.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel).map((o) => o.id).sort()).toEqual([a, v6].sort());
    expect(kernel.all().map((r) => r.dst.toString()).sort()).toEqual(['10.15.0.0/24', '2001:db8:15::/48']);
    expect(kernel.usersDumps).toBe(0);
  });

  it('keeps the members of a group a foreign route uses: deleting one would take it out of that group', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.22.0.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2']);
    await p.start();
    const group = route(kernel, '10.22.0.0/24')!.nhId!;
    kernel.foreignAdd({ dst: '10.23.0.0/24', nhid: group });
    await tick(10);
    await p.shutdown();
    expect(ourRoutes(kernel)).toEqual([]);
    expect(objects(kernel)).toHaveLength(3);
    expect(kernel.nexthops.objects.get(group)!.group).toHaveLength(2);
    expect(kernel.all().map((r) => r.dst.toString())).toEqual(['10.23.0.0/24']);
  });

  it('a foreign route moved off our object by a replace frees it', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.16.0.0/24 via 192.0.2.2']);
    await p.start();
    const a = route(kernel, '10.16.0.0/24')!.nhId!;
    kernel.foreignAdd({ dst: '10.17.0.0/24', nhid: a });
    kernel.foreignReplace({ dst: '10.17.0.0/24', gateway: '192.0.2.7' });
    await tick(10);
    await p.shutdown();
    expect(objects(kernel)).toEqual([]);
    expect(kernel.usersDumps).toBe(0);
  });

  it('a foreign route put on our object just before the shutdown is heard before the object would go', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.18.0.0/24 via 192.0.2.2']);
    await p.start();
    const a = route(kernel, '10.18.0.0/24')!.nhId!;
    kernel.foreignAdd({ dst: '10.19.0.0/24', nhid: a }); // its notification is still queued when the shutdown begins
    await p.shutdown();
    expect(objects(kernel).map((o) => o.id)).toEqual([a]);
    expect(kernel.all().map((r) => r.dst.toString())).toEqual(['10.19.0.0/24']);
  });

  it('after a restart, foreign routes already on adopted objects are counted from one dump; a lost notification counts again', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.20.0.0/24 via 192.0.2.2', '10.20.1.0/24 via 198.51.100.2']);
    await p.start();
    const a = route(kernel, '10.20.0.0/24')!.nhId!;
    const b = route(kernel, '10.20.1.0/24')!.nhId!;
    kernel.foreignAdd({ dst: '10.21.0.0/24', nhid: a, table: 300 });
    p.crashForTesting();
    const again = setup({}, kernel, table).p;
    await again.start();
    await until(() => kernel.usersDumps === 1, 2000);
    // Lost notifications: what they said is not known; the next delete counts again first.
    kernel.overflow(() => kernel.foreignAdd({ dst: '10.21.1.0/24', nhid: b }));
    await tick(10);
    await again.shutdown();
    expect(kernel.usersDumps).toBe(2);
    expect(objects(kernel).map((o) => o.id).sort()).toEqual([a, b].sort());
  });

  it('persist leaves routes and objects; the next start adopts both and changes nothing', async () => {
    const { kernel, table, src, p } = setup({ persist: true });
    announce(table, src, ['10.12.0.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2']);
    await p.start();
    await p.shutdown();
    expect(objects(kernel)).toHaveLength(3);
    const mark = kernel.log.length;
    const again = setup({}, kernel, table).p;
    await again.start();
    await tick(20);
    expect(kernel.ourChanges(mark)).toEqual([]);
    await again.shutdown();
    expect(objects(kernel)).toEqual([]);
  });

  it('a kernel without nexthop objects: auto sends routes as they are; on refuses to start with a clear error', async () => {
    const kernel = new FakeKernel();
    kernel.nexthops.supported = false;
    const a = setup({}, kernel);
    announce(a.table, a.src, ['10.13.0.0/24 via 192.0.2.2']);
    await a.p.start();
    expect(route(kernel, '10.13.0.0/24')).toMatchObject({ gateway: parseAddr('192.0.2.2') });
    expect(route(kernel, '10.13.0.0/24')!.nhId).toBeUndefined();
    await a.p.shutdown();
    const b = setup({ nexthopObjects: 'on' }, kernel);
    await expect(b.p.start()).rejects.toThrow(/nexthop_objects: on, but the kernel has no nexthop objects/);
  });

  it('a gateway no connected prefix covers is sent as it is (the kernel then refuses or resolves it)', async () => {
    const { kernel, table, src, p } = setup();
    announce(table, src, ['10.14.0.0/24 via 203.0.113.77']);
    await p.start();
    expect(objects(kernel)).toEqual([]);
    expect(p.status()[0]).toMatchObject({ state: 'failed', error: expect.objectContaining({ errnoName: 'ENETUNREACH' }) });
    await p.shutdown();
  });
});
