/**
 * The sender keeps the kernel fed (src/proto/kernel/sync-sender.ts, FEED_AHEAD): a flush lets other work
 * on the JS thread in (the next turn of the event loop) only once the kernel has FEED_AHEAD changes ahead
 * of it, not after every batch; otherwise a slice of other work longer than a batch's kernel time (a
 * failover's re-export, a feed's lines) would leave the kernel idle for the rest of the turn. Against the
 * fake kernel, whose answers come a turn after each submission.
 */
import { KernelProtocol } from '../../../src/proto/kernel/kernel-protocol';
import { FEED_AHEAD } from '../../../src/proto/kernel/sync-sender';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger } from '../../helpers/kernel-fixture';

const BATCH = 4096;
const line = (i: number): string => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32 via 192.0.2.2`;

describe('the sender feeds the kernel ahead', () => {
  it('submits FEED_AHEAD changes before it lets other work in, not one batch a turn; every route goes in', async () => {
    const kernel = new FakeKernel();
    const table = new Table({ name: 'master4' });
    const p = new KernelProtocol({ name: 'kernel1', table, family: 4, scanIntervalMs: 0, kernelIo: kernel.provider, log: memoryLogger(), batchSize: BATCH });
    await p.start();
    const sync = p.sync(4)!;
    await sync.settled();
    const n = 3 * FEED_AHEAD;
    const before = kernel.batches;
    announce(table, new RouteSource('static1', 200), Array.from({ length: n }, (_, i) => line(i)));
    // Other work: one step a turn, as a re-export slice is. What the kernel had been given each time it ran.
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      const step = (): void => {
        seen.push(kernel.batches - before);
        if (kernel.batches - before >= n / BATCH) resolve();
        else setImmediate(step);
      };
      setImmediate(step);
    });
    const firstRun = seen.find((b) => b > 0)!;
    expect(firstRun).toBe(FEED_AHEAD / BATCH); // not one batch a turn
    await sync.settled();
    expect(p.counts()).toMatchObject({ installed: n, pending: 0, failed: 0 });
    await p.shutdown();
  });
});
