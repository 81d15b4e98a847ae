/** SyncBatch sends the shared wanted route with each entry's own net, and rebuilds ops only on demand. */
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import { encodeRouteRequest, type RouteMessage } from '../../../src/netlink/route-codec';
import { kernelDelete } from '../../../src/proto/kernel/convert';
import { NetEntry } from '../../../src/proto/kernel/net-entry';
import { SyncBatch } from '../../../src/proto/kernel/sync-batch';

const T4 = { family: 4 as const, table: 254, protocol: 144 };

describe('SyncBatch', () => {
  it('encodes each change as the route with its entry net, deletes as they are', () => {
    const shared: RouteMessage = { family: 4, dst: parsePrefix('10.0.0.0/24'), tos: 0, table: 254, protocol: 144, scope: 0, type: 1, flags: 0, gateway: parseAddr('192.0.2.2') };
    const a = new NetEntry(parsePrefix('10.1.0.0/24'));
    const b = new NetEntry(parsePrefix('10.2.0.0/24'));
    const del = kernelDelete(parsePrefix('10.3.0.0/24'), T4, 5);
    const batch = new SyncBatch();
    batch.push(a, { cmd: 'add', route: shared });
    batch.push(b, { cmd: 'replace', route: shared });
    batch.push(b, { cmd: 'delete', route: del });
    expect(batch.length).toBe(3);
    expect([batch.cmd(0), batch.cmd(1), batch.cmd(2)]).toEqual(['add', 'replace', 'delete']);
    const got = Buffer.alloc(256);
    const want = Buffer.alloc(256);
    const expected: Array<[RouteMessage, 'add' | 'replace' | 'delete']> = [
      [{ ...shared, dst: a.net }, 'add'],
      [{ ...shared, dst: b.net }, 'replace'],
      [del, 'delete'],
    ];
    expected.forEach(([route, cmd], i) => {
      const n = batch.encode(got, 0, 42, i);
      expect(n).toBe(encodeRouteRequest(want, 0, 42, cmd, route, false));
      expect(got.subarray(0, n).equals(want.subarray(0, n))).toBe(true);
    });
    expect(batch.op(0)).toEqual({ cmd: 'add', route: shared, dst: a.net });
    expect(batch.op(2)).toEqual({ cmd: 'delete', route: del });
    expect(batch.route(1)).toBe(shared);
  });
});
