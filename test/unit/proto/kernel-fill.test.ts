/**
 * The kernel protocol started beside a source that fills the table (a routes
 * file's load: Table.beginFill, KernelProtocol.startBeside), against the fake
 * kernel: its first feed follows the fill; nothing goes out before the input
 * is known good, early adds go out during the rest of the load, nothing is
 * pruned before the load's end (a restart changes nothing the file brings
 * last), and a load that fails stops the start with nothing sent.
 */
import { KernelProtocol, KernelStartError } from '../../../src/proto/kernel/kernel-protocol';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger, until } from '../../helpers/kernel-fixture';

const PROTO = 144;
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));
const line = (i: number): string => `10.${100 + (i >> 8)}.${i & 255}.0/24 via 192.0.2.2`;
const lines = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, k) => line(from + k));

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function protocol(kernel: FakeKernel, table: Table): KernelProtocol {
  return new KernelProtocol({ name: 'kernel1', table, family: 4, scanIntervalMs: 0, kernelIo: kernel.provider, log: memoryLogger() });
}

describe('a kernel protocol started beside a filling table', () => {
  it('sends nothing before the input is checked, adds during the rest of the load, and prunes only after it', async () => {
    const kernel = new FakeKernel();
    // A restart: the kernel holds a route of ours for the net the file brings last.
    const first = new Table({ name: 'master4' });
    const src = new RouteSource('static1', 200);
    announce(first, src, [line(999)]);
    const before0 = protocol(kernel, first);
    await before0.start();
    before0.crashForTesting();
    const before = kernel.log.length;

    const table = new Table({ name: 'master4' });
    const endFill = table.beginFill();
    const checked = deferred();
    const loaded = deferred();
    const p = protocol(kernel, table);
    p.startBeside(loaded.promise, checked.promise);
    const started = p.start();
    let up = false;
    void started.then(() => (up = true));
    announce(table, src, lines(0, 300));
    await tick(20);
    expect(kernel.ourChanges(before)).toEqual([]);
    checked.resolve();
    announce(table, src, lines(300, 600));
    await until(() => kernel.ourChanges(before).length > 0);
    const early = kernel.ourChanges(before).length;
    expect(early).toBeGreaterThan(0);
    announce(table, src, lines(600, 1000)); // the last one is the net the kernel holds already
    endFill();
    await tick(20);
    expect(up).toBe(false); // the fill is over, the load not yet
    loaded.resolve();
    await started;
    expect(kernel.lines({ protocol: PROTO })).toHaveLength(1000);
    // Every route added once, the one the kernel held untouched.
    const changes = kernel.ourChanges(before);
    expect(changes).toHaveLength(999);
    expect(changes.every((c) => c.startsWith('add '))).toBe(true);
    expect(changes.some((c) => c.includes('10.103.231.0/24'))).toBe(false);
    await p.shutdown();
    expect(kernel.lines({ protocol: PROTO })).toEqual([]);
  });

  it('stops the start with nothing sent when the load fails, even after the feed has taken routes', async () => {
    const kernel = new FakeKernel();
    const table = new Table({ name: 'master4' });
    const src = new RouteSource('static1', 200);
    const endFill = table.beginFill();
    const loaded = deferred();
    const p = protocol(kernel, table);
    p.startBeside(loaded.promise); // checked only at the load's end (a FIFO)
    const started = p.start();
    announce(table, src, lines(0, 500));
    await tick(20);
    // The file's last line is bad: the source takes its routes back and the fill ends.
    table.flush(src);
    endFill();
    loaded.reject(new Error('routes.txt:501:1: "nonsense": not an IPv4 or IPv6 prefix'));
    await expect(started).rejects.toThrow(KernelStartError);
    await expect(started).rejects.toThrow(/a source failed to load: routes.txt:501:1/);
    expect(kernel.log.filter((c) => c.ours)).toEqual([]);
    expect(p.state).toBe('down');
    await p.shutdown();
    expect(kernel.log.filter((c) => c.ours)).toEqual([]);
  });
});
