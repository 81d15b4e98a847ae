/**
 * What a link that went took from the kernel, told from our books
 * (src/proto/kernel/link-flush.ts), and a re-read of our objects that does
 * not judge the ones we changed after its dump began (nexthop-objects.ts).
 * The sync's use of both is tested against the fake kernel
 * (kernel-failover.test.ts, device-scan.test.ts) and Linux
 * (test/integration/kernel-failover.test.ts).
 */
import { parseAddr } from '../../../src/lib/addr';
import type { NexthopMessage } from '../../../src/netlink/nexthop-codec';
import { flushedWith } from '../../../src/proto/kernel/link-flush';
import { NexthopObjects } from '../../../src/proto/kernel/nexthop-objects';
import { newObject, type NhObject } from '../../../src/proto/kernel/nh-object';

const hop = (id: number, oif: number, state: NhObject['state'] = 'live'): NhObject => newObject(id, `h${id}`, { id, family: 4, protocol: 144, scope: 0, flags: 0, oif, gateway: parseAddr(`192.0.2.${id}`) }, undefined, state);
const group = (id: number, members: NhObject[], state: NhObject['state'] = 'live'): NhObject =>
  newObject(id, `g${id}`, { id, family: undefined, protocol: 144, scope: 0, flags: 0, group: members.map((m) => ({ id: m.id, weight: 1 })) }, members, state);

describe('flushedWith', () => {
  it('names the hops on the device, the groups left with no member, and the groups that lost only some', () => {
    const a = hop(1, 2);
    const b = hop(2, 3);
    const c = hop(3, 2);
    const onlyDead = group(10, [a, c]);
    const mixed = group(11, [a, b]);
    const alive = group(12, [b]);
    const { gone, shrunk } = flushedWith([a, b, c, onlyDead, mixed, alive], 2);
    expect([...gone].map((o) => o.id).sort((x, y) => x - y)).toEqual([1, 3, 10]);
    expect([...shrunk].map((o) => o.id)).toEqual([11]);
  });

  it('leaves out what the kernel does not hold as far as we know (not made yet, failed)', () => {
    const a = hop(1, 2, 'new');
    const b = hop(2, 2, 'failed');
    const g = group(10, [a, b]);
    const { gone, shrunk } = flushedWith([a, b, g], 2);
    expect(gone.size + shrunk.size).toBe(0);
  });
});

describe('NexthopObjects.resync', () => {
  const target = { family: 4 as const, table: 254, protocol: 144 };
  const io = { changeNexthop: async (): Promise<void> => undefined };

  function madeOne(): { nx: NexthopObjects; obj: NhObject; msg: NexthopMessage } {
    const nx = new NexthopObjects(target, { deviceFor: () => 2 });
    nx.enabled = true;
    const found = nx.forRoute({ family: 4, table: 254, protocol: 144, type: 1, scope: 0, tos: 0, flags: 0, dst: undefined as never, dstLen: 24, gateway: parseAddr('192.0.2.2'), oif: 2 } as never)!;
    nx.ref(found.obj);
    return { nx, obj: found.obj, msg: found.obj.msg };
  }

  it('does not take a dump begun before we made an object as news of its absence', async () => {
    const { nx, obj } = madeOne();
    const since = nx.changeCount; // the dump begins
    expect(await nx.ensure(obj, io, Date.now())).toBe(true); // our add is answered before the dump is
    nx.resync([], false, since);
    expect(obj.state).toBe('live');
  });

  it('takes a dump begun after our add: an object missing from it is made again', async () => {
    const { nx, obj } = madeOne();
    await nx.ensure(obj, io, Date.now());
    nx.resync([], false, nx.changeCount);
    expect(obj.state).toBe('new');
  });
});
