/**
 * ReExport (src/proto/kernel/reexport.ts): the nets of a next-hop change
 * exported again in slices across turns of the event loop, counted as
 * pending meanwhile; anything but a loss drains the queue at once; clear()
 * stops it.
 */
import { parseAddr, parsePrefix, type Prefix } from '../../../src/lib/addr';
import { NextHopSet } from '../../../src/route/nexthop';
import type { NextHopChange } from '../../../src/table';
import { ReExport } from '../../../src/proto/kernel/reexport';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(nets: string[], slice: number) {
  const set = NextHopSet.of([{ gateway: parseAddr('192.0.2.2') }]);
  const table = { forEachNetUsing: (s: NextHopSet, fn: (net: Prefix) => void) => (s === set ? nets.map((n) => parsePrefix(n)).forEach(fn) : undefined) };
  const exported: string[] = [];
  let retried = 0;
  const r = new ReExport(table, (net) => exported.push(net.toString()), () => retried++, slice);
  const change = (eligible: boolean): NextHopChange => ({ set, wasEligible: !eligible, eligible, gained: eligible });
  return { r, exported, change, retried: () => retried };
}

const list = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.0.${i}.0/24`);

describe('ReExport', () => {
  it('a loss: the first slice now, the rest one slice a turn, counted as pending until exported', async () => {
    const nets = [...list(10), '2001:db8::/48'];
    const { r, exported, change } = setup(nets, 4);
    r.changed([change(false)], true, () => true, true);
    expect(exported).toEqual(nets.slice(0, 4));
    expect(r.pending).toBe(7);
    await turn();
    expect(exported).toEqual(nets.slice(0, 8));
    expect(r.pending).toBe(3);
    await turn();
    expect(exported).toEqual(nets); // IPv6 after IPv4, each once
    expect(r.pending).toBe(0);
  });

  it('a return drains what waits and its own nets at once, then retries what the kernel refused once', async () => {
    const { r, exported, change, retried } = setup(list(10), 4);
    r.changed([change(false)], true, () => true, true);
    r.changed([change(true)], true, () => true, true);
    expect(exported).toHaveLength(20);
    expect(r.pending).toBe(0);
    expect(retried()).toBe(1);
    await turn();
    expect(exported).toHaveLength(20);
  });

  it('without slicing (no failover) a loss is exported at once; nets not wanted are skipped', () => {
    const { r, exported, change } = setup(list(10), 4);
    r.changed([change(false)], true, (net) => net.toString() !== '10.0.3.0/24', false);
    expect(exported).toHaveLength(9);
    expect(r.pending).toBe(0);
  });

  it('clear() drops what waits: nothing is exported after it', async () => {
    const { r, exported, change } = setup(list(10), 4);
    r.changed([change(false)], true, () => true, true);
    r.clear();
    expect(r.pending).toBe(0);
    await turn();
    await turn();
    expect(exported).toHaveLength(4);
  });
});
