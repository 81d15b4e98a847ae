/**
 * Kernel protocol repair paths against the real kernel: someone deletes or
 * changes our routes, links go down and up, the kernel rejects a route, and
 * the notification socket overflows.
 */
import { execFileSync } from 'node:child_process';
import { parsePrefix } from '../../src/lib/addr';
import { opDst, type RoutePipeline } from '../../src/netlink/pipeline';
import type { KernelIoProvider } from '../../src/proto/kernel/kernel-io';
import { openNetlinkKernelIo } from '../../src/proto/kernel/netlink-io';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { announce, kernelProtocol, memoryLogger, newTable, ourRoutes, quiesced, routeLines, RouteSource, runBatch, until } from '../helpers/kernel-fixture';

kernelDescribe('kernel protocol repair', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtr')));
  afterEach(() => ns.destroy());

  it('puts back a route of ours that someone deleted, within a second', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.3.0.0/24 via 192.0.2.2', '10.3.1.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table);
    await p.start();
    ns.ip('route', 'del', '10.3.0.0/24', 'proto', '144');
    const ms = await until(() => ourRoutes(ns).length === 2, 1000);
    expect(ms).toBeLessThan(1000);
    expect(p.sync(4)!.stats.repairs).toBe(1);
    await p.shutdown();
  });

  it('puts back a route of ours that someone changed, within a second', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.3.0.0/24 via 192.0.2.2 mtu 1400']);
    const p = kernelProtocol(ns, table);
    await p.start();
    const before = routeLines(ns);
    ns.ip('route', 'replace', '10.3.0.0/24', 'via', '198.51.100.2', 'proto', '144');
    await until(() => routeLines(ns).join() === before.join(), 1000);
    await p.shutdown();
  });

  it('removes a route someone added with our protocol number', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.3.0.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table);
    await p.start();
    ns.ip('route', 'add', '10.3.9.0/24', 'via', '192.0.2.2', 'proto', '144');
    await until(() => ourRoutes(ns).length === 1, 1000);
    await p.shutdown();
  });

  it('does not fight in a hot loop when someone keeps deleting a route', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.3.0.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table);
    await p.start();
    const t0 = Date.now();
    // 30 deletes over ~1.5 s: without a bound this would be 30 repairs.
    while (Date.now() - t0 < 1500) {
      try {
        ns.ip('route', 'del', '10.3.0.0/24', 'proto', '144');
      } catch {
        /* not there right now */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(p.sync(4)!.stats.repairs).toBeLessThan(10);
    // It still converges once the other side stops.
    await until(() => ourRoutes(ns).length === 1, 3000);
    await p.shutdown();
  });

  // The peer of veth1 is veth0: veth1 down takes veth0's carrier. A route that carries its next hop
  // survives that (the kernel marks it linkdown); a nexthop object does not: the kernel deletes the
  // objects on a device that loses carrier, and the routes on them, and refuses new ones until it
  // is back (ENETDOWN, "Carrier for nexthop device is down").
  it.each([
    ['off', ['10.4.2.0/24']],
    ['auto', []],
  ] as const)('reinstalls routes through a link that went down and came back (nexthop objects %s)', async (nexthopObjects, survivors) => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.4.0.0/24 via 198.51.100.2', '10.4.1.0/24 dev veth1', '10.4.2.0/24 via 192.0.2.2']);
    const log = memoryLogger();
    const p = kernelProtocol(ns, table, { backoff: { baseMs: 200, maxMs: 2000, jitter: 0 }, log, nexthopObjects });
    await p.start();
    expect(ourRoutes(ns)).toHaveLength(3);
    ns.ip('link', 'set', 'veth1', 'down');
    // The kernel drops the routes through veth1 without a notification; we notice through the link.
    await until(() => p.counts().failed === 3 - survivors.length, 2000);
    expect(ourRoutes(ns).map((r) => r.dst)).toEqual(survivors);
    const msgs = log.entries.map((e) => e.msg);
    if (nexthopObjects === 'off') {
      // Found by a dump of the routes through the devices that went down (the kernel filters by RTA_OIF), not of the table.
      const scans = msgs.filter((m) => m.startsWith('device scan of ifindex'));
      expect(scans.length).toBeGreaterThan(0);
      for (const m of scans) expect(m).toMatch(/^device scan of ifindex [\d, ]+: \d+ nets through them, \d+ lost$/);
    } else {
      // On objects: the link events tell from our books which objects the kernel deleted, and the routes on them.
      const told = msgs.filter((m) => /^link \d+ went with \d+ nexthop objects of ours/.test(m));
      expect(told.join('\n')).toMatch(/: [123] routes on them planned again$/m);
    }
    ns.ip('link', 'set', 'veth1', 'up');
    await until(() => ourRoutes(ns).length === 3, 3000);
    await until(() => p.counts().installed === 3, 2000);
    await p.shutdown();
  });

  it('a refusal the kernel made before a link came back, read after the link-up, is retried at once (a minute of backoff configured)', async () => {
    // The real netlink I/O, with one hook: right after the pipeline hands the batch to its sender thread, the JS
    // thread is blocked until the kernel's answer waits in the pipeline socket (ss: its Recv-Q), then the link is
    // set up. The kernel refused the route (veth1 down); the pipeline reads the notifications before the answers,
    // so the sync hears the link-up (and resets its backoffs) before it reads the refusal.
    let armed = false;
    let hookFailed: Error | undefined;
    const linkUpOnceAnswered = (port: number): void => {
      // ss prints a port id past 2^31 as a negative number: either form is matched.
      const waitThenUp = `i=0; until ss -f netlink -an | awk -v a="0:${port}" -v b="0:${port | 0}" '($4 == a || $4 == b) && $2 > 0 { f = 1 } END { exit !f }'; do i=$((i+1)); [ $i -gt 2000 ] && exit 1; done; ip link set veth1 up`;
      try {
        execFileSync('ip', ['netns', 'exec', ns.name, 'sh', '-c', waitThenUp], { stdio: 'pipe' });
      } catch (e) {
        hookFailed = e as Error;
      }
    };
    const kernelIo: KernelIoProvider = async (opts, events) => {
      const opened = await openNetlinkKernelIo(opts, events);
      const io = opened.io;
      const pipeline = (io as unknown as { pipeline: RoutePipeline }).pipeline;
      const submit = io.submit.bind(io);
      io.submit = (ops) => {
        const answer = submit(ops);
        if (armed && Array.from({ length: ops.length }, (_, i) => opDst(ops.op(i)).toString()).includes('10.4.0.0/24')) {
          armed = false;
          // Right after the pipeline's own microtask, which hands the batch to its sender thread (a later turn
          // of the event loop may already have read the answer).
          queueMicrotask(() => {
            if (pipeline.outstanding === 0) hookFailed = new Error('the batch was answered before the hook ran');
            else linkUpOnceAnswered(pipeline.socket.portId);
          });
        }
        return answer;
      };
      return opened;
    };
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, ['10.4.2.0/24 via 192.0.2.2']);
    const p = kernelProtocol(ns, table, { backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 }, nexthopObjects: 'off', kernelIo });
    await p.start();
    const sync = p.sync(4)!;
    const veth1 = ns.ifindex('veth1');
    ns.ip('link', 'set', 'veth1', 'down');
    await until(() => sync.links.get(veth1)?.usable === false, 2000);
    const failed = sync.stats.failed;
    armed = true;
    announce(table, src, ['10.4.0.0/24 via 198.51.100.2']);
    await until(() => sync.stats.failed > failed || hookFailed !== undefined, 2000);
    expect(hookFailed).toBeUndefined();
    expect(sync.stats.failed).toBe(failed + 1); // refused once (ENETUNREACH: veth1 was down), read after the link-up
    // The kernel shows the retried route before its answer is read: wait for both.
    await until(() => ourRoutes(ns).length === 2 && p.counts().installed === 2, 2000);
    expect(p.counts()).toMatchObject({ installed: 2, failed: 0 });
    await p.shutdown();
  });

  it('reinstalls routes after an address is removed and added back', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.4.0.0/24 via 198.51.100.2']);
    const p = kernelProtocol(ns, table, { backoff: { baseMs: 200, maxMs: 2000, jitter: 0 } });
    await p.start();
    ns.ip('addr', 'del', '198.51.100.1/24', 'dev', 'veth1');
    await until(() => ourRoutes(ns).length === 0 && p.counts().failed === 1, 2000);
    ns.ip('addr', 'add', '198.51.100.1/24', 'dev', 'veth1');
    await until(() => ourRoutes(ns).length === 1, 2000);
    await p.shutdown();
  });

  it('reports a route the kernel rejects with its reason, retries it, and installs the others', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.5.0.0/24 via 203.0.113.9', '10.5.1.0/24 via 192.0.2.2', '10.5.2.0/24 via 198.51.100.2']);
    const log = memoryLogger();
    const p = kernelProtocol(ns, table, { backoff: { baseMs: 100, maxMs: 400, jitter: 0 }, log });
    await p.start();
    expect(ourRoutes(ns).map((r) => r.dst).sort()).toEqual(['10.5.1.0/24', '10.5.2.0/24']);
    const [bad] = p.status(parsePrefix('10.5.0.0/24'));
    expect(bad).toMatchObject({ state: 'failed', error: { errnoName: 'ENETUNREACH' } });
    expect(bad!.error!.extAck).toMatch(/gateway|nexthop/i);
    expect(bad!.retryAt).toBeGreaterThan(Date.now() - 1000);
    await until(() => p.status(parsePrefix('10.5.0.0/24'))[0]!.attempts >= 3, 3000);
    // The log says it once with the reason, then holds repeats back.
    const warns = log.entries.filter((e) => e.level === 'warn' && e.msg.includes('10.5.0.0/24'));
    expect(warns.length).toBe(1);
    expect(warns[0]!.fields).toMatchObject({ prefix: '10.5.0.0/24', errno: 'ENETUNREACH' });
    // Once the gateway becomes reachable, the retry succeeds.
    ns.ip('addr', 'add', '203.0.113.1/24', 'dev', 'veth1');
    await until(() => ourRoutes(ns).length === 3, 3000);
    await p.shutdown();
  });

  it('resyncs after the notification socket overflows and ends exactly in sync', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    const lines = Array.from({ length: 500 }, (_, i) => `10.6.${i >> 8}.${i & 255}/32 via 192.0.2.2`);
    announce(table, src, lines);
    const log = memoryLogger();
    const p = kernelProtocol(ns, table, { monitorRcvbuf: 4096, log });
    await p.start();
    const sync = p.sync(4)!;
    // Another process churns foreign routes while our routes are being deleted behind our back.
    const churn: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2000; i++) churn.push(`route add 10.7.${i >> 8}.${i & 255}/32 via 192.0.2.2 proto static`);
      for (let i = 0; i < 2000; i++) churn.push(`route del 10.7.${i >> 8}.${i & 255}/32 proto static`);
    }
    for (let i = 0; i < 100; i++) churn.push(`route del 10.6.0.${i}/32 proto 144`);
    // Run while this process (and so the sync) is blocked: nobody reads, the small buffer overflows
    // for certain (run beside it, a fast enough reader on an idle machine could keep up).
    ns.ipBatch(churn);
    await until(() => sync.stats.overflows > 0, 3000);
    await until(() => ourRoutes(ns).length === 500 && sync.state === 'idle', 5000);
    expect(routeLines(ns)).toHaveLength(500);
    expect(log.entries.filter((e) => e.msg.includes('overflow')).length).toBeGreaterThanOrEqual(1);
    await p.shutdown();
    expect(ourRoutes(ns)).toHaveLength(0);
  });

  it('converges when someone else rewrites its routes while its own changes to them are in flight', async () => {
    // Our own notifications are filtered out; a foreign change that crosses one of ours is settled by a scan.
    const table = newTable();
    const src = new RouteSource('static1', 200);
    const nets = Array.from({ length: 3000 }, (_, i) => `10.8.${i >> 8}.${i & 255}/32`);
    announce(table, src, nets.map((n) => `${n} via 192.0.2.2`));
    const p = kernelProtocol(ns, table);
    await p.start();
    const sync = p.sync(4)!;
    // Another process rewrites every one of them (with our protocol number) while we move them all to .3.
    const foreign = runBatch(ns, [...nets.map((n) => `route replace ${n} via 198.51.100.2 proto 144`), ...nets.slice(0, 1000).map((n) => `route del ${n} proto 144`)]);
    announce(table, src, nets.map((n) => `${n} via 192.0.2.3`));
    await foreign;
    await until(() => {
      const rs = ourRoutes(ns);
      return rs.length === 3000 && rs.every((r) => r.gateway === '192.0.2.3');
    }, 15_000);
    // The kernel can hold our last change before its answer has been read (the sender runs on its own thread),
    // and the crossing asked for a scan that may not have begun.
    await until(() => sync.counts().installed === 3000, 5000);
    await quiesced(sync);
    expect(sync.counts()).toEqual({ installed: 3000, pending: 0, failed: 0, withdrawing: 0 });
    await p.shutdown();
    expect(ourRoutes(ns)).toHaveLength(0);
  });
});
