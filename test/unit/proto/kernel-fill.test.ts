/**
 * The kernel protocol started beside a source that fills the table (a routes
 * file's load: Table.beginFill, KernelProtocol.startBeside), against the fake
 * kernel: on a cold start its first feed follows the fill, nothing goes out
 * before the input is known good, early adds go out during the rest of the
 * load, and it is up only after the load's end; on a restart (the kernel holds
 * routes of ours) its first dump waits for the load, so it changes nothing the
 * file brings last; a load that fails stops the start with nothing sent.
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

/** A kernel protocol started beside a fill of a new table that the caller announces into, checks and loads. */
function beside(kernel: FakeKernel): { table: Table; endFill: () => void; checked: ReturnType<typeof deferred>; loaded: ReturnType<typeof deferred>; p: KernelProtocol; started: Promise<void> } {
  const table = new Table({ name: 'master4' });
  const endFill = table.beginFill();
  const checked = deferred();
  const loaded = deferred();
  const p = protocol(kernel, table);
  p.startBeside(loaded.promise, checked.promise);
  return { table, endFill, checked, loaded, p, started: p.start() };
}

describe('a kernel protocol started beside a filling table', () => {
  it('on a cold start, sends nothing before the input is checked, adds during the rest of the load, and is up only after it', async () => {
    const kernel = new FakeKernel();
    const src = new RouteSource('static1', 200);
    const { table, endFill, checked, loaded, p, started } = beside(kernel);
    let up = false;
    void started.then(() => (up = true));
    announce(table, src, lines(0, 300));
    await tick(20);
    expect(kernel.ourChanges(0)).toEqual([]);
    checked.resolve();
    announce(table, src, lines(300, 600));
    await until(() => kernel.ourChanges(0).length > 0);
    announce(table, src, lines(600, 1000));
    endFill();
    await tick(20);
    expect(up).toBe(false); // the fill is over, the load not yet
    loaded.resolve();
    await started;
    const changes = kernel.ourChanges(0).filter((c) => !c.startsWith('add nexthop')); // the object the routes use
    expect(changes).toHaveLength(1000);
    expect(changes.every((c) => c.startsWith('add '))).toBe(true);
    await p.shutdown();
    expect(kernel.lines({ protocol: PROTO })).toEqual([]);
  });

  it('on a restart, dumps the kernel only after the load, and prunes nothing the file brings last', async () => {
    const kernel = new FakeKernel();
    // A restart: the kernel holds a route of ours for the net the file brings last, and a stale one.
    const first = new Table({ name: 'master4' });
    const src = new RouteSource('static1', 200);
    announce(first, src, [line(999), line(2000)]);
    const before0 = protocol(kernel, first);
    await before0.start();
    before0.crashForTesting();
    const before = kernel.log.length;
    const dumps = kernel.dumps;

    const { table, endFill, checked, loaded, p, started } = beside(kernel);
    announce(table, src, lines(0, 600));
    checked.resolve();
    announce(table, src, lines(600, 1000));
    endFill();
    await tick(20);
    // Input checked, the fill over, the load not yet: no dump taken, nothing sent.
    expect(kernel.dumps).toBe(dumps);
    expect(kernel.ourChanges(before)).toEqual([]);
    loaded.resolve();
    await started;
    expect(kernel.lines({ protocol: PROTO })).toHaveLength(1000);
    // Every route added once, the one the kernel held untouched, the stale one deleted.
    const changes = kernel.ourChanges(before);
    expect(changes).toHaveLength(1000);
    expect(changes.filter((c) => c.startsWith('add '))).toHaveLength(999);
    expect(changes.some((c) => c.includes('10.103.231.0/24'))).toBe(false);
    expect(changes.filter((c) => !c.startsWith('add ')).map((c) => c.includes('10.107.208.0/24'))).toEqual([true]);
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

  it('on a restart, a shutdown while the first dump waits for the load does not wait for it: every route of ours goes', async () => {
    const kernel = new FakeKernel();
    const first = new Table({ name: 'master4' });
    const src = new RouteSource('static1', 200);
    announce(first, src, lines(0, 300));
    const before0 = protocol(kernel, first);
    await before0.start();
    before0.crashForTesting();
    const dumps = kernel.dumps;
    const before = kernel.log.length;

    const { table, checked, p, started } = beside(kernel);
    announce(table, src, lines(0, 100)); // the load goes on, and never ends here
    checked.resolve();
    await tick(20);
    await p.shutdown();
    await started; // stopped, not failed
    expect(p.state).toBe('down');
    expect(kernel.dumps).toBeGreaterThan(dumps); // the withdrawal's final dump, not a first sync
    expect(kernel.lines({ protocol: PROTO })).toEqual([]);
    expect(kernel.ourChanges(before).filter((c) => c.startsWith('add '))).toEqual([]); // no first sync went out
  });

  it('on a cold start, a shutdown during the first feed does not wait for the fill: the early adds are withdrawn', async () => {
    const kernel = new FakeKernel();
    const src = new RouteSource('static1', 200);
    const { table, checked, p, started } = beside(kernel);
    checked.resolve();
    announce(table, src, lines(0, 300));
    await until(() => kernel.lines({ protocol: PROTO }).length > 0);
    await p.shutdown(); // the fill is not over
    await started;
    expect(p.state).toBe('down');
    expect(kernel.lines({ protocol: PROTO })).toEqual([]);
  });
});
