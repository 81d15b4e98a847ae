/**
 * The kernel protocol with next-hop tracking, against the fake kernel: the
 * tracker is fed by hand (the netlink watch is tested against the real
 * kernel in test/integration/nexthop-tracking.test.ts).
 */
import { constants as osConstants } from 'node:os';
import { KernelProtocol } from '../../../src/proto/kernel/kernel-protocol';
import { RouteSource } from '../../../src/route';
import { NextHopTracker, Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger, trackedTable, until } from '../../helpers/kernel-fixture';

const { ENETUNREACH } = osConstants.errno;
const MINUTE_BACKOFF = { baseMs: 60_000, maxMs: 120_000, jitter: 0 };

/** The fake kernel's links as the tracker sees them: veth0 (2) 192.0.2.0/24, veth1 (3) 198.51.100.0/24, veth2 (4) 203.0.113.0/24. */
function setup(opts: { mergePaths?: boolean } = {}): { kernel: FakeKernel; tracker: NextHopTracker; table: Table; p: KernelProtocol; carrier(index: number, on: boolean): void } {
  const kernel = new FakeKernel([
    { name: 'veth0', connected: ['192.0.2.0/24'] },
    { name: 'veth1', connected: ['198.51.100.0/24'] },
    { name: 'veth2', connected: ['203.0.113.0/24'] },
  ]);
  const { tracker, table, carrier } = trackedTable(['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24']);
  const p = new KernelProtocol({
    name: 'kernel1',
    table,
    family: 4,
    scanIntervalMs: 0,
    kernelIo: kernel.provider,
    backoff: MINUTE_BACKOFF,
    log: memoryLogger(),
    ...(opts.mergePaths ? { mergePaths: { limit: 8 } } : {}),
  });
  return { kernel, tracker, table, p, carrier };
}

const ours = (k: FakeKernel): string[] => k.lines({ family: 4, protocol: 144 });

/** The kernel refuses our adds of `dst` (ENETUNREACH) until the returned function is called. */
function refuseUntil(k: FakeKernel, dst: string): () => void {
  let refuse = true;
  k.reject = (r, cmd) => (refuse && cmd !== 'delete' && r.dst.toString() === dst ? { errno: ENETUNREACH, extAck: 'Nexthop has invalid gateway' } : undefined);
  return () => (refuse = false);
}

describe('kernel protocol with next-hop tracking (fake kernel)', () => {
  const a = new RouteSource('upstream-a', 100);
  const b = new RouteSource('upstream-b', 90);

  it('installs a multipath route without its dead members, and with them again once they are back', async () => {
    const s = setup();
    announce(s.table, a, ['10.1.0.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2', '10.1.1.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2']);
    announce(s.table, b, ['10.1.0.0/24 via 203.0.113.2']);
    await s.p.start();
    const both = ['10.1.0.0/24 nexthop via 192.0.2.2 dev veth0 weight 1 nexthop via 198.51.100.2 dev veth1 weight 1 proto 144', '10.1.1.0/24 nexthop via 192.0.2.2 dev veth0 weight 1 nexthop via 198.51.100.2 dev veth1 weight 1 proto 144'];
    expect(ours(s.kernel)).toEqual(both);
    s.carrier(3, false);
    await until(() => ours(s.kernel)[0] === '10.1.0.0/24 via 192.0.2.2 dev veth0 proto 144');
    await until(() => ours(s.kernel)[1] === '10.1.1.0/24 via 192.0.2.2 dev veth0 proto 144');
    s.carrier(2, false); // no member left: the backup for the net that has one, nothing for the other
    await until(() => ours(s.kernel).join() === '10.1.0.0/24 via 203.0.113.2 dev veth2 proto 144');
    s.carrier(2, true);
    s.carrier(3, true);
    await until(() => ours(s.kernel).join() === both.join());
    expect(s.p.counts()).toMatchObject({ failed: 0, installed: 2 });
    await s.p.shutdown();
  });

  it('merge_paths takes hops only from eligible routes, and only their usable hops', async () => {
    const s = setup({ mergePaths: true });
    const c = new RouteSource('upstream-c', 100);
    announce(s.table, a, ['10.2.0.0/24 via 192.0.2.2']);
    announce(s.table, c, ['10.2.0.0/24 via 198.51.100.2']);
    await s.p.start();
    expect(ours(s.kernel)).toEqual(['10.2.0.0/24 nexthop via 192.0.2.2 dev veth0 weight 1 nexthop via 198.51.100.2 dev veth1 weight 1 proto 144']);
    s.carrier(2, false);
    await until(() => ours(s.kernel).join() === '10.2.0.0/24 via 198.51.100.2 dev veth1 proto 144');
    s.carrier(2, true);
    await until(() => ours(s.kernel).length === 1 && ours(s.kernel)[0]!.includes('nexthop via 192.0.2.2'));
    await s.p.shutdown();
  });

  it('retries a route the kernel refused as soon as a next hop becomes usable, not after its backoff', async () => {
    const s = setup();
    const accept = refuseUntil(s.kernel, '10.3.0.0/24');
    announce(s.table, a, ['10.3.0.0/24 via 192.0.2.2', '10.3.1.0/24 via 198.51.100.2']);
    await s.p.start();
    expect(s.p.counts()).toMatchObject({ failed: 1, installed: 1 });
    accept();
    await new Promise((r) => setTimeout(r, 300));
    expect(s.p.counts().failed).toBe(1); // waiting for its minute of backoff
    s.carrier(3, false);
    s.carrier(3, true); // a next hop came back: whatever the kernel refused may go in now
    await until(() => s.p.counts().failed === 0, 2000);
    expect(ours(s.kernel)).toContain('10.3.0.0/24 via 192.0.2.2 dev veth0 proto 144');
    await s.p.shutdown();
  });

  it('a refusal read after a next hop became usable, to a change sent before, is retried at once (no route failed when it did)', async () => {
    const s = setup();
    const accept = refuseUntil(s.kernel, '10.4.0.0/24');
    // 10.4.2.0/24: 192.0.2.2's object is in the kernel before the test's route needs it (the route's own answer is held).
    announce(s.table, a, ['10.4.1.0/24 via 198.51.100.2', '10.4.2.0/24 via 192.0.2.2']);
    await s.p.start();
    const release = s.kernel.holdAnswers();
    announce(s.table, a, ['10.4.0.0/24 via 192.0.2.2']);
    await until(() => s.kernel.answersWaiting > 0); // refused, not read yet: nothing has failed so far
    expect(s.p.counts().failed).toBe(0);
    accept();
    s.carrier(3, false);
    s.carrier(3, true); // a next hop came back: what the kernel refused before may go in now
    release();
    await until(() => s.p.sync(4)!.stats.failed === 1);
    await until(() => s.p.counts().failed === 0 && ours(s.kernel).includes('10.4.0.0/24 via 192.0.2.2 dev veth0 proto 144'), 2000);
    await s.p.shutdown();
  });
});
