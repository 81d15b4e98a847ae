/**
 * Parts of the kernel sync: the dirty queue of route ids, the echo fallback's
 * bookkeeping, and a batch of changes encoded from interned routes and the
 * nets' words.
 */
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import { parseRouteLine } from '../../../src/config/route-syntax';
import { encodeRouteRequest, type RouteMessage } from '../../../src/netlink/route-codec';
import { kernelDelete } from '../../../src/proto/kernel/convert';
import { DirtyQueue } from '../../../src/proto/kernel/dirty-queue';
import { EchoMatcher } from '../../../src/proto/kernel/echo-matcher';
import { KernelRoutes } from '../../../src/proto/kernel/kernel-routes';
import { RouteStore } from '../../../src/proto/kernel/route-store';
import { SyncBatch } from '../../../src/proto/kernel/sync-batch';

const T4 = { family: 4 as const, table: 254, protocol: 144 };
const links = { indexOf: (n: string) => ({ veth0: 3 })[n] };

function store(): RouteStore {
  return new RouteStore(4, new KernelRoutes(T4, links));
}

describe('DirtyQueue', () => {
  it('lists each route once, first in first out, and skips removed ones', () => {
    const s = store();
    const ids = [0, 1, 2, 3].map((i) => s.idOf(parsePrefix(`10.${i}.0.0/24`)));
    const q = new DirtyQueue(s);
    for (const id of [...ids, ids[1]!]) q.add(id);
    q.delete(ids[2]!);
    expect(q.size).toBe(3);
    expect([q.shift(), q.shift(), q.shift(), q.shift()]).toEqual([ids[0], ids[1], ids[3], -1]);
  });

  it('keeps its order when it makes room, with routes added while it is drained', () => {
    const s = store();
    const ids = Array.from({ length: 5000 }, (_, i) => s.idOf(parsePrefix(`10.${i >> 8}.${i & 255}.0/24`)));
    const q = new DirtyQueue(s);
    for (const id of ids) q.add(id);
    const out: number[] = [];
    for (let id = q.shift(); id >= 0; id = q.shift()) {
      out.push(id);
      if (out.length === 3000) for (const x of ids.slice(0, 2000)) q.add(x); // taken already: queued again at the end
    }
    expect(out).toEqual([...ids, ...ids.slice(0, 2000)]);
    q.add(ids[0]!);
    q.clear();
    expect([q.size, q.shift()]).toEqual([0, -1]);
  });
});

describe('EchoMatcher', () => {
  it('matches a notification of the same kind and metric, not only the oldest', () => {
    const m = new EchoMatcher();
    m.expect(1, 'new', 0, 100);
    m.expect(1, 'del', 7, 100);
    // The add failed; the delete's notification comes before its answer is known.
    expect(m.take(1, 'del', 0)).toBe(false);
    expect(m.take(1, 'del', 7)).toBe(true);
    m.drop(1, 'new', 0);
    expect(m.pending(1)).toBe(false);
  });

  it('gives up echoes that do not come: only for routes not in flight and not sent again', () => {
    const m = new EchoMatcher();
    for (const id of [1, 2, 3, 4]) m.expect(id, 'new', 0, 100);
    m.take(2, 'new', 0); // answered
    m.expect(3, 'new', 0, 7000); // sent again later
    const overdue: number[] = [];
    m.takeOverdue(6000, (id) => id === 4, (id) => overdue.push(id));
    expect(overdue).toEqual([1]);
    m.takeOverdue(12_000, () => false, (id) => overdue.push(id));
    expect(overdue).toEqual([1, 3, 4]);
    expect([1, 2, 3, 4].some((id) => m.pending(id))).toBe(false);
  });
});

describe('SyncBatch', () => {
  it('encodes each change from the interned route with its own net, deletes by metric, and holds the routes until released', () => {
    const s = store();
    const routes = s.routes;
    const a = s.idOf(parsePrefix('10.1.0.0/24'));
    const b = s.idOf(parsePrefix('10.2.0.0/24'));
    const w = routes.wanted(parseRouteLine('10.0.0.0/24 via 192.0.2.2').attrs, undefined, 'static1');
    const old = routes.seen({ family: 4, dst: parsePrefix('10.2.0.0/24'), tos: 0, table: 254, protocol: 144, scope: 0, type: 1, flags: 0, priority: 5, gateway: parseAddr('192.0.2.9') });
    const batch = new SyncBatch(s, routes, 2);
    batch.push(a, 'add', w);
    batch.push(b, 'replace', w);
    batch.push(b, 'delete', old); // past the capacity: it grows
    expect(batch.length).toBe(3);
    expect(routes.get(w).refs).toBe(2);
    const shared = routes.get(w).route!;
    const expected: Array<[RouteMessage, 'add' | 'replace' | 'delete']> = [
      [{ ...shared, dst: parsePrefix('10.1.0.0/24') }, 'add'],
      [{ ...shared, dst: parsePrefix('10.2.0.0/24') }, 'replace'],
      [kernelDelete(parsePrefix('10.2.0.0/24'), T4, 5), 'delete'],
    ];
    const got = Buffer.alloc(256);
    const want = Buffer.alloc(256);
    expected.forEach(([route, cmd], i) => {
      const n = batch.encode(got, 0, 42, i);
      expect(n).toBe(encodeRouteRequest(want, 0, 42, cmd, route, false));
      expect(got.subarray(0, n).equals(want.subarray(0, n))).toBe(true);
    });
    expect(batch.op(0)).toEqual({ cmd: 'add', route: shared, dst: parsePrefix('10.1.0.0/24') });
    expect(batch.op(2)).toEqual({ cmd: 'delete', route: kernelDelete(parsePrefix('10.2.0.0/24'), T4, 5) });
    batch.release();
    expect(routes.size).toBe(0);
  });
});

describe('DirtyQueue change times', () => {
  it('hands each route its first change time, 0 where none was given, across making room', () => {
    const s = store();
    const ids = Array.from({ length: 10_000 }, (_, i) => s.idOf(parsePrefix(`10.${i >> 8}.${i & 255}.0/24`)));
    const q = new DirtyQueue(s);
    // Runs: 0..2999 at t=0 (no time), 3000..5999 at 1000 + i/1000 (three runs), 6000.. with no time again.
    ids.forEach((id, i) => q.add(id, i < 3000 || i >= 6000 ? 0 : 1000 + Math.floor(i / 1000)));
    q.add(ids[3500]!, 99_999); // already queued: keeps its first time
    q.delete(ids[4000]!);
    const seen: Array<[number, number]> = [];
    for (let id = q.shift(); id >= 0; id = q.shift()) {
      seen.push([ids.indexOf(id), q.shiftedAt]);
      if (seen.length === 5000) for (let j = 0; j < 3000; j++) q.add(ids[j]!, 7); // while draining: room made again
    }
    expect(seen).toHaveLength(9999 + 3000);
    for (const [i, at] of seen.slice(0, 9999)) expect(at).toBe(i < 3000 || i >= 6000 ? 0 : 1000 + Math.floor(i / 1000));
    for (const [, at] of seen.slice(9999)) expect(at).toBe(7);
    expect(q.shiftedAt).toBe(0);
  });

  it('times a route added again after it was taken by its new change', () => {
    const s = store();
    const [a, b] = [s.idOf(parsePrefix('10.1.0.0/24')), s.idOf(parsePrefix('10.2.0.0/24'))];
    const q = new DirtyQueue(s);
    q.add(a, 5);
    expect([q.shift(), q.shiftedAt]).toEqual([a, 5]);
    q.add(b);
    q.add(a, 7);
    expect([q.shift(), q.shiftedAt]).toEqual([b, 0]);
    expect([q.shift(), q.shiftedAt]).toEqual([a, 7]);
  });
});
