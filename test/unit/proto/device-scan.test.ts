/**
 * Device scans against the fake kernel: a link going down (or an address
 * going) costs a dump of the routes through that device, not of the table;
 * a link coming up, or one nothing of ours goes through, costs no dump. The
 * real kernel's RTA_OIF filter is checked in test/integration/kernel-repair.test.ts.
 */
import { KernelProtocol } from '../../../src/proto/kernel/kernel-protocol';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger, until } from '../../helpers/kernel-fixture';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each(['off', 'on'] as const)('device scans (fake kernel, nexthop objects %s)', (nexthopObjects) => {
  function setup(): { kernel: FakeKernel; table: Table; p: KernelProtocol } {
    const kernel = new FakeKernel([
      { name: 'veth0', connected: ['192.0.2.0/24'] },
      { name: 'veth1', connected: ['198.51.100.0/24'] },
      { name: 'veth2', connected: ['203.0.113.0/24'] },
    ]);
    const table = new Table({ name: 'master4' });
    const p = new KernelProtocol({ name: 'kernel1', table, family: 4, scanIntervalMs: 0, kernelIo: kernel.provider, log: memoryLogger(), nexthopObjects, backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } });
    const src = new RouteSource('static1', 200);
    const lines: string[] = [];
    for (let i = 0; i < 40; i++) lines.push(`10.20.${i}.0/24 via 192.0.2.2`, `10.21.${i}.0/24 via 198.51.100.2`);
    lines.push('10.22.0.0/24 nexthop via 192.0.2.2 nexthop via 198.51.100.2');
    announce(table, src, lines);
    return { kernel, table, p };
  }

  it('a link going down dumps only the routes through it, and finds those the kernel dropped silently', async () => {
    const { kernel, p } = setup();
    await p.start();
    const dumpsBefore = kernel.dumpLog.length;
    kernel.setLink('veth1', false); // the kernel drops routes through veth1 (and its objects) without a word
    // Without objects the kernel drops a multipath route with a member through it too; with them, the group
    // loses the member and is made whole again, which waits for veth1 like the routes through it.
    await until(() => p.counts().failed === 41, 2000);
    await tick(300);
    const dumps = kernel.dumpLog.slice(dumpsBefore);
    // Without objects: one dump, filtered by veth1's index, that found nothing left of ours through it, no
    // whole-table dump. With them: none at all, the link event told from our books what the kernel deleted.
    expect(dumps).toEqual(nexthopObjects === 'off' ? [{ oif: 3, routes: 0 }] : []);
    expect(p.counts()).toMatchObject({ installed: 40, failed: 41 });
    const up = kernel.dumpLog.length;
    kernel.setLink('veth1', true); // a link coming up drops nothing: the failed routes are retried, no dump
    await until(() => p.counts().installed === 81, 2000);
    await tick(300);
    expect(kernel.dumpLog.slice(up)).toEqual([]);
    await p.shutdown();
  });

  it('a link nothing of ours goes through costs no dump', async () => {
    const { kernel, p } = setup();
    await p.start();
    const before = kernel.dumpLog.length;
    kernel.setLink('veth2', false);
    await tick(400);
    expect(kernel.dumpLog.slice(before)).toEqual([]);
    expect(p.counts()).toMatchObject({ installed: 81, failed: 0 });
    await p.shutdown();
  });
});
