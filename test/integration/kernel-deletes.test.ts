/**
 * Route deletes the kernel makes on its own (nlmsg_pid 0) of IPv6 routes of
 * ours on our nexthop objects, against the real kernel (docs/kernel.md,
 * "Repair"): where a link's flush or a foreign object delete accounts for
 * them, in either order, they cost nothing beyond what that plans; where
 * nothing does, they are put back at once, not at the periodic scan.
 */
import type { KernelIo } from '../../src/proto/kernel/kernel-io';
import type { KernelSync } from '../../src/proto/kernel/kernel-sync';
import { announce, kernelProtocol, memoryLogger, newTable, ourRoutes, RouteSource, until } from '../helpers/kernel-fixture';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

const NETS = Array.from({ length: 50 }, (_, i) => `2001:db8:1${(i >> 4).toString(16)}${(i & 15).toString(16)}::/48`);
const settleLines = (log: ReturnType<typeof memoryLogger>): string[] => log.entries.filter((e) => e.msg.includes('deleted by the kernel')).map((e) => e.msg);

kernelDescribe('route deletes the kernel makes on its own (real kernel)', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtd')));
  afterEach(() => ns.destroy());

  async function start(): Promise<{ p: ReturnType<typeof kernelProtocol>; sync: KernelSync; log: ReturnType<typeof memoryLogger> }> {
    const table = newTable('master6');
    announce(table, new RouteSource('static1', 200), NETS.map((n) => `${n} via 2001:db8:1::2`));
    const log = memoryLogger();
    // No periodic scan (the fixture's default): only an event can bring a route back.
    const p = kernelProtocol(ns, table, { family: 6, log, backoff: { baseMs: 100, maxMs: 400, jitter: 0 } });
    await p.start();
    expect(ourRoutes(ns, '-6')).toHaveLength(NETS.length);
    return { p, sync: p.sync(6)!, log };
  }

  it('puts back at once routes the kernel deleted with nothing of ours told: their object deleted unheard', async () => {
    const { p, sync, log } = await start();
    const { repairs } = sync.stats;
    const obj = sync.nexthops.list()[0]!;
    // The delete goes from the sync's own socket, whose notifications its monitor drops like all of its own: the
    // kernel deletes the object and tells of each route on it as its own doing (port 0), and nothing tells of a
    // cause. It stands for any path of the kernel's whose cause we do not hear.
    await (sync as unknown as { io: KernelIo }).io.changeNexthop('delete', obj.msg);
    expect(ourRoutes(ns, '-6')).toEqual([]);
    const ms = await until(() => ourRoutes(ns, '-6').length === NETS.length && p.counts().installed === NETS.length, 3000);
    expect(ms).toBeLessThan(3000);
    expect(sync.stats.repairs - repairs).toBe(NETS.length);
    expect(settleLines(log)).toEqual([`${NETS.length} routes of ours deleted by the kernel with no link of ours going down; putting them back`]);
    await p.shutdown();
    expect(ourRoutes(ns, '-6')).toEqual([]);
  });

  it("an admin down tells of its link before the kernel's deletes: they are the flush's, not repairs", async () => {
    ns.exec('sysctl', ['-q', '-w', 'net.ipv6.conf.veth0.keep_addr_on_down=1']); // the gateway stays covered
    const { p, sync, log } = await start();
    const { repairs } = sync.stats;
    ns.ip('link', 'set', 'veth0', 'down');
    await until(() => ourRoutes(ns, '-6').length === 0 && p.counts().failed === NETS.length, 3000);
    ns.ip('link', 'set', 'veth0', 'up');
    await until(() => ourRoutes(ns, '-6').length === NETS.length && p.counts().installed === NETS.length, 3000);
    expect(sync.stats.repairs - repairs).toBe(0);
    expect(settleLines(log)).toEqual([]);
    await p.shutdown();
  });

  it('a foreign delete of our object is told before its routes: its scan puts them back, no repair of each', async () => {
    const { p, sync, log } = await start();
    const { repairs } = sync.stats;
    ns.ip('nexthop', 'del', 'id', String(sync.nexthops.list()[0]!.id));
    expect(ourRoutes(ns, '-6')).toEqual([]);
    const ms = await until(() => ourRoutes(ns, '-6').length === NETS.length && p.counts().installed === NETS.length, 3000);
    expect(ms).toBeLessThan(1000);
    expect(sync.stats.repairs - repairs).toBe(0);
    expect(settleLines(log)).toEqual([]);
    await p.shutdown();
  });
});
