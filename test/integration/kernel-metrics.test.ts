/**
 * What the kernel sync tells its metrics sink (sync-metrics.ts), against the
 * real kernel in a throwaway namespace: operations by kind and errno, the
 * latency of table changes after the first sync (and none for the first
 * sync), repairs, foreign changes, resyncs by reason, overflows, scans, the
 * shutdown's deletes; and the per-state tally (counts(), what a scrape reads)
 * equal to a walk of every net and to iproute2 after random churn.
 */
import type { KernelOpCmd } from '../../src/proto/kernel/sync-metrics';
import type { KernelSyncMetrics, ScanReasonLabel } from '../../src/proto/kernel/sync-metrics';
import { prng } from '../helpers/daemon-fixture';
import { announce, kernelProtocol, newTable, ourRoutes, RouteSource, runBatch, until, withdraw } from '../helpers/kernel-fixture';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

class RecordingSink implements KernelSyncMetrics {
  readonly answers = new Map<string, number>();
  readonly latencies: Array<{ op: KernelOpCmd; seconds: number; n: number }> = [];
  readonly repairs = { deleted: 0, changed: 0 };
  foreign = 0;
  overflows = 0;
  readonly resyncs = new Map<ScanReasonLabel, number>();
  retries = 0;
  readonly scans: number[] = [];
  scanFailures = 0;
  readonly firstSyncs: number[] = [];

  answered(op: KernelOpCmd, result: string, n: number): void {
    this.answers.set(`${op} ${result}`, (this.answers.get(`${op} ${result}`) ?? 0) + n);
  }
  latency(op: KernelOpCmd, seconds: number, n: number): void {
    this.latencies.push({ op, seconds, n });
  }
  repaired(what: 'deleted' | 'changed'): void {
    this.repairs[what]++;
  }
  foreignChange(): void {
    this.foreign++;
  }
  overflow(): void {
    this.overflows++;
  }
  resync(reason: ScanReasonLabel): void {
    this.resyncs.set(reason, (this.resyncs.get(reason) ?? 0) + 1);
  }
  dumpRetried(n: number): void {
    this.retries += n;
  }
  scanned(seconds: number): void {
    this.scans.push(seconds);
  }
  scanFailed(): void {
    this.scanFailures++;
  }
  firstSync(seconds: number): void {
    this.firstSyncs.push(seconds);
  }
  timed(op: KernelOpCmd): number {
    return this.latencies.filter((l) => l.op === op).reduce((n, l) => n + l.n, 0);
  }
}

kernelDescribe('kernel sync metrics', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtm')));
  afterEach(() => ns.destroy());

  it('counts operations by kind and errno, and times table changes only after the first sync', async () => {
    const table = newTable();
    const src = new RouteSource('static1', 200);
    announce(table, src, ['10.9.0.0/24 via 192.0.2.2', '10.9.1.0/24 via 192.0.2.2', '10.9.2.0/24 via 203.0.113.9']);
    const sink = new RecordingSink();
    const p = kernelProtocol(ns, table, { metrics: () => sink, backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } });
    await p.start();
    const sync = p.sync(4)!;
    expect(Object.fromEntries(sink.answers)).toEqual({ 'add ok': 2, 'add ENETUNREACH': 1 });
    expect(sink.firstSyncs).toHaveLength(1);
    expect(sink.latencies).toEqual([]); // the first sync has no table change to measure from
    expect(sync.counts()).toEqual({ installed: 2, pending: 0, failed: 1, withdrawing: 0 });
    expect(new Map(sync.failedByErrno())).toEqual(new Map([['ENETUNREACH', 1]]));

    const t0 = Date.now();
    announce(table, src, ['10.9.0.0/24 via 198.51.100.2', '10.9.3.0/24 via 192.0.2.2']);
    withdraw(table, src, ['10.9.1.0/24 via 192.0.2.2']);
    await until(() => ourRoutes(ns).length === 2 && ourRoutes(ns).some((r) => r.gateway === '198.51.100.2'), 3000);
    await sync.settled();
    const elapsed = (Date.now() - t0) / 1000;
    expect(Object.fromEntries(sink.answers)).toEqual({ 'add ok': 3, 'add ENETUNREACH': 1, 'replace ok': 1, 'delete ok': 1 });
    expect([sink.timed('add'), sink.timed('replace'), sink.timed('delete')]).toEqual([1, 1, 1]);
    for (const l of sink.latencies) expect(l.seconds).toBeLessThanOrEqual(elapsed);
    expect(sync.counts()).toEqual(sync.walkCounts());
    expect(sync.counts()).toEqual({ installed: 2, pending: 0, failed: 1, withdrawing: 0 });

    await p.shutdown();
    // The shutdown's deletes are answered operations too. Our two routes are on nexthop objects (the default): they
    // go with their objects, with no delete of their own; the failed one's delete found nothing (ok).
    expect(sink.answers.get('delete ok')).toBe(1 + 1);
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('counts every route in the shutdown deletes when routes carry their next hops (nexthop objects off)', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.9.0.0/24 via 192.0.2.2', '10.9.1.0/24 via 192.0.2.2']);
    const sink = new RecordingSink();
    const p = kernelProtocol(ns, table, { metrics: () => sink, nexthopObjects: 'off' });
    await p.start();
    await p.shutdown();
    expect(sink.answers.get('delete ok')).toBe(2);
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('counts repairs by kind, foreign changes, and resyncs by reason', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.9.0.0/24 via 192.0.2.2', '10.9.1.0/24 via 192.0.2.2']);
    const sink = new RecordingSink();
    const p = kernelProtocol(ns, table, { metrics: () => sink });
    await p.start();
    ns.ip('route', 'del', '10.9.0.0/24', 'proto', '144');
    await until(() => sink.repairs.deleted === 1 && ourRoutes(ns).length === 2, 2000);
    ns.ip('route', 'replace', '10.9.1.0/24', 'via', '198.51.100.2', 'proto', '144');
    await until(() => sink.repairs.changed === 1 && ourRoutes(ns).every((r) => r.gateway === '192.0.2.2'), 2000);
    ns.ip('route', 'add', '198.51.100.128/25', 'via', '192.0.2.9', 'proto', 'static');
    ns.ip('route', 'del', '198.51.100.128/25', 'proto', 'static');
    await until(() => sink.foreign >= 2, 2000);
    ns.ip('link', 'set', 'veth1', 'down');
    await until(() => (sink.resyncs.get('link') ?? 0) >= 1 && sink.scans.length >= 1, 2000);
    await p.sync(4)!.scan('asked by a test');
    expect(sink.resyncs.get('other')).toBe(1);
    expect(sink.scans.every((s) => s >= 0 && s < 5)).toBe(true);
    expect(sink.scanFailures).toBe(0);
    await p.shutdown();
  });

  it('counts an overflow of the notification socket and the resync it causes', async () => {
    const table = newTable();
    announce(table, new RouteSource('static1', 200), ['10.9.0.0/24 via 192.0.2.2']);
    const sink = new RecordingSink();
    const p = kernelProtocol(ns, table, { metrics: () => sink, monitorRcvbuf: 4096 });
    await p.start();
    const churn: string[] = [];
    for (let i = 0; i < 3000; i++) churn.push(`route add 10.7.${i >> 8}.${i & 255}/32 via 192.0.2.2 proto static`);
    ns.ipBatch(churn); // this process is blocked meanwhile: nobody reads, the small buffer overflows
    await until(() => sink.overflows >= 1 && (sink.resyncs.get('overflow') ?? 0) >= 1, 3000);
    await p.shutdown();
  });

  it('keeps its per-state tally equal to a walk of every net and to the kernel through random churn', async () => {
    const rand = prng(2121);
    const table = newTable();
    const src = new RouteSource('static1', 200);
    const nets = Array.from({ length: 400 }, (_, i) => `10.11.${i >> 8}.${i & 255}/32`);
    const gateways = ['192.0.2.2', '198.51.100.2', '203.0.113.9' /* unreachable: refused */];
    const p = kernelProtocol(ns, table, { metrics: () => new RecordingSink(), backoff: { baseMs: 50, maxMs: 200, jitter: 0 } });
    announce(table, src, nets.slice(0, 200).map((n) => `${n} via 192.0.2.2`));
    await p.start();
    const sync = p.sync(4)!;
    // The test's own model of what is wanted: net -> gateway (absent: withdrawn).
    const want = new Map(nets.slice(0, 200).map((n) => [n, '192.0.2.2']));
    let foreign: Promise<void> = Promise.resolve();
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 40; k++) {
        const n = nets[Math.floor(rand() * nets.length)]!;
        if (rand() < 0.3) {
          withdraw(table, src, [`${n} via 192.0.2.2`]);
          want.delete(n);
        } else {
          const gw = gateways[Math.floor(rand() * gateways.length)]!;
          announce(table, src, [`${n} via ${gw}`]);
          want.set(n, gw);
        }
      }
      // Someone else deletes some of ours meanwhile.
      const dels = nets.filter(() => rand() < 0.02).map((n) => `route del ${n} proto 144`);
      foreign = foreign.then(() => runBatch(ns, dels));
      await new Promise((r) => setTimeout(r, 20));
      expect(sync.counts()).toEqual(sync.walkCounts());
    }
    await foreign;
    // Settled: every net wanted through a reachable gateway is installed with it; the others keep failing
    // (a refused replace leaves the old route in the kernel, so the kernel is compared net by net).
    const reachable = [...want].filter(([, gw]) => gw !== '203.0.113.9');
    const installedRight = (): number => {
      const k = new Map(ourRoutes(ns).map((r) => [`${r.dst}/32`.replace('/32/32', '/32'), r.gateway]));
      return reachable.filter(([n, gw]) => k.get(n) === gw).length;
    };
    const expected = { installed: reachable.length, pending: 0, failed: want.size - reachable.length, withdrawing: 0 };
    await until(() => JSON.stringify(sync.counts()) === JSON.stringify(expected) && installedRight() === reachable.length, 5000).catch((e: Error) => {
      throw new Error(`${e.message}: counts ${JSON.stringify(sync.counts())}, expected ${JSON.stringify(expected)}, right in the kernel ${installedRight()}`);
    });
    expect(sync.counts()).toEqual(sync.walkCounts());
    expect(new Map(sync.failedByErrno())).toEqual(expected.failed ? new Map([['ENETUNREACH', expected.failed]]) : new Map());
    await p.shutdown();
    expect(ourRoutes(ns)).toHaveLength(0);
  });
});
