import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseAddr } from '../../../src/lib/addr';
import { RouteAttrs } from '../../../src/route/attrs';
import { BgpAttrs, BgpNeighbor, BgpPath, type BgpPathSpec } from '../../../src/route/bgp';
import { orderRoutes } from '../../../src/route/decision';
import { RouteSource } from '../../../src/route/source';
import type { NetLog } from '../../../src/table/net-log';
import { NetStore } from '../../../src/table/net-store';
import { Table } from '../../../src/table/table';
import { Puller } from './puller';
import { ReaderView } from './reader-view';
import { p, sources, via } from './fixtures';

describe('table', () => {
  it('keeps one route per source per net, best first by preference', () => {
    const t = new Table({ name: 'main' });
    const { stat, api, kern } = sources();
    t.announce(p('10.0.0.0/8'), kern, via('192.0.2.3'));
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    t.announce(p('10.0.0.0/8'), api, via('192.0.2.2'));
    t.announce(p('10.0.0.0/8'), api, via('192.0.2.4')); // replaces api's route
    expect(t.routes(p('10.0.0.0/8')).map((r) => r.src.name)).toEqual(['static', 'api', 'kernel-learn']);
    expect(t.bestRoute(p('10.0.0.0/8'))?.attrs).toBe(via('192.0.2.1'));
    expect(t.routes(p('10.0.0.0/8'))[1]!.attrs).toBe(via('192.0.2.4'));
    expect(t.routeTotal).toBe(3);
    expect(t.netCount).toBe(1);
  });

  it('watchFlush: told synchronously before a flush withdraws anything, not for a source with no routes; unsubscribes', () => {
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    t.announce(p('10.0.0.0/8'), api, via('192.0.2.2'));
    t.announce(p('10.1.0.0/16'), stat, via('192.0.2.1'));
    const seen: string[] = [];
    const stop = t.watchFlush((src) => seen.push(`${src.name} ${t.routesOfSource(src)} ${t.bestRoute(p('10.0.0.0/8'))!.src.name}`));
    expect(t.flush(stat)).toBe(2);
    expect(seen).toEqual(['static 2 static']); // before: every route still there, still best
    expect(t.flush(stat)).toBe(0);
    expect(seen).toHaveLength(1);
    stop();
    t.flush(api);
    expect(seen).toHaveLength(1);
  });

  it('holds one Route per source and attribute set, shared by every net that has it', () => {
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    for (const n of ['10.0.0.0/8', '10.1.0.0/16', '2001:db8::/32']) t.announce(p(n), stat, via('192.0.2.1'));
    t.announce(p('10.1.0.0/16'), api, via('192.0.2.1'));
    const shared = t.bestRoute(p('10.0.0.0/8'))!;
    expect(t.bestRoute(p('10.1.0.0/16'))).toBe(shared);
    expect(t.bestRoute(p('2001:db8::/32'))).toBe(shared);
    expect(t.routes(p('10.1.0.0/16'))[1]).not.toBe(shared); // another source: its own Route
    t.announce(p('10.1.0.0/16'), stat, via('192.0.2.2'));
    expect(t.bestRoute(p('10.1.0.0/16'))).not.toBe(shared);
    expect(t.bestRoute(p('10.0.0.0/8'))).toBe(shared); // the other nets keep theirs
    t.announce(p('10.1.0.0/16'), stat, via('192.0.2.1'));
    expect(t.bestRoute(p('10.1.0.0/16'))).toBe(shared);
  });

  it('shares a two-route chain between nets with the same two routes, and changes one net alone', () => {
    const t = new Table({ name: 'main' });
    const { stat, api, kern } = sources();
    const nets = ['10.0.0.0/8', '10.1.0.0/16', '10.2.0.0/16'];
    for (const n of nets) t.announce(p(n), stat, via('192.0.2.1'));
    for (const n of nets) t.announce(p(n), api, via('192.0.2.2'));
    const chain = t.routes(p('10.0.0.0/8'));
    expect(chain.map((r) => r.src.name)).toEqual(['static', 'api']);
    expect(t.routes(p('10.1.0.0/16'))).toBe(chain);
    expect(Object.isFrozen(chain)).toBe(true);
    t.announce(p('10.1.0.0/16'), api, via('192.0.2.3'));
    t.announce(p('10.2.0.0/16'), kern, via('192.0.2.4'));
    expect(t.routes(p('10.0.0.0/8'))).toBe(chain);
    expect(chain.map((r) => r.attrs)).toEqual([via('192.0.2.1'), via('192.0.2.2')]);
    expect(t.routes(p('10.1.0.0/16')).map((r) => r.attrs)).toEqual([via('192.0.2.1'), via('192.0.2.3')]);
    expect(t.routes(p('10.2.0.0/16'))).toHaveLength(3);
    t.withdraw(p('10.2.0.0/16'), kern);
    expect(t.routes(p('10.2.0.0/16'))).toBe(chain); // back to the same pair
  });

  it('lets a shared Route go once no net holds it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const ref = ((): WeakRef<object> => {
      const attrs = RouteAttrs.of({ type: 'blackhole', metric: 4242 }); // held by nothing but the route
      t.announce(p('10.0.0.0/8'), stat, attrs);
      t.announce(p('10.1.0.0/16'), stat, attrs);
      return new WeakRef(t.bestRoute(p('10.0.0.0/8'))!);
    })();
    t.withdraw(p('10.0.0.0/8'), stat);
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(ref.deref()).toBeDefined(); // 10.1.0.0/16 still has it
    t.withdraw(p('10.1.0.0/16'), stat);
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(ref.deref()).toBeUndefined();
  });

  it('discard: readers are stopped and every route is forgotten at once', async () => {
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    t.announce(p('2001:db8::/32'), api, via('2001:db8::1'));
    const it = t.best.subscribe({ name: 'r' });
    t.discard('stopping');
    const items: string[] = [];
    for await (const batch of it) for (const item of batch) items.push(item.kind);
    expect(items).toContain('stop');
    expect(t.routeTotal).toBe(0);
    expect(t.netCount).toBe(0);
    expect(t.routesOfSource(stat)).toBe(0);
    t.refreshBegin(stat);
    expect(t.refreshEnd(stat)).toBe(0);
  });

  it('forEachNet lists every net of a family that has routes, once', () => {
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    t.announce(p('10.0.0.0/8'), api, via('192.0.2.2'));
    t.announce(p('192.0.2.128/25'), stat, via('192.0.2.1'));
    t.announce(p('198.51.100.0/24'), stat, via('192.0.2.1'));
    t.withdraw(p('198.51.100.0/24'), stat);
    t.announce(p('2001:db8::/32'), api, via('2001:db8::1'));
    const v4: string[] = [];
    const v6: string[] = [];
    t.forEachNet(4, (w, len) => v4.push(`${w}/${len}`), (n) => v6.push(n.toString()));
    expect(v4.sort()).toEqual([`${p('10.0.0.0/8').w0}/8`, `${p('192.0.2.128/25').w0}/25`].sort());
    expect(v6).toEqual([]);
    t.forEachNet(6, () => v4.push('?'), (n) => v6.push(n.toString()));
    expect(v6).toEqual(['2001:db8::/32']);
    expect(v4).toHaveLength(2);
  });

  it('breaks preference ties by source name, then by creation order', () => {
    const t = new Table({ name: 'main' });
    const b1 = new RouteSource('b', 100);
    const a = new RouteSource('a', 100);
    const b2 = new RouteSource('b', 100);
    for (const s of [b2, b1, a]) t.announce(p('10.0.0.0/8'), s, via('192.0.2.1'));
    expect(t.routes(p('10.0.0.0/8')).map((r) => r.src)).toEqual([a, b1, b2]);
    t.withdraw(p('10.0.0.0/8'), a);
    expect(t.bestRoute(p('10.0.0.0/8'))?.src).toBe(b1);
  });

  it('withdraws a route and forgets an empty net', () => {
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    t.announce(p('2001:db8::/32'), stat, via('2001:db8::1'));
    t.withdraw(p('2001:db8::/32'), api); // api has none: nothing happens
    expect(t.routes(p('2001:db8::/32'))).toHaveLength(1);
    t.withdraw(p('2001:db8::/32'), stat);
    expect(t.routes(p('2001:db8::/32'))).toEqual([]);
    expect(t.netCount).toBe(0);
    expect(t.routeTotal).toBe(0);
  });

  it('writes no journal item when a route is re-announced identical', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    const reader = new Puller(t.all.subscribe({ name: 'r' }));
    await reader.drain();
    const before = t.all.journal.end;
    t.announce(p('10.0.0.0/8'), stat, RouteAttrs.of({ nexthops: [{ gateway: via('192.0.2.1').nexthops!.hops[0]!.gateway! }] }));
    expect(t.all.journal.end).toBe(before);
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1', { metric: 5 }));
    expect(t.all.journal.end).toBe(before + 1);
    expect(await reader.poll()).not.toBe('idle');
  });

  it('records a best change only when the best route changes', async () => {
    const t = new Table({ name: 'main' });
    const { stat, kern } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    const best = new Puller(t.best.subscribe({ name: 'best' }));
    const all = new Puller(t.all.subscribe({ name: 'all' }));
    await best.drain();
    await all.drain();
    t.announce(p('10.0.0.0/8'), kern, via('192.0.2.9')); // worse: not the best
    expect(await best.poll()).toBe('idle');
    expect(await all.poll()).toMatchObject([{ kind: 'update', old: undefined, new: { src: kern } }]);
    t.withdraw(p('10.0.0.0/8'), stat); // kernel-learn becomes best
    expect(await best.poll()).toMatchObject([{ kind: 'update', old: { src: stat }, new: { src: kern } }]);
  });

  describe('sources', () => {
    it('forgets a source once its last route goes, and one whose refresh cycle ended empty', () => {
      const t = new Table({ name: 'main' });
      const gone = new RouteSource('stream/c1', 100);
      t.announce(p('10.0.0.0/8'), gone, via('192.0.2.1'));
      t.announce(p('10.1.0.0/16'), gone, via('192.0.2.1'));
      expect(t.sourceCount).toBe(1);
      t.withdraw(p('10.0.0.0/8'), gone);
      expect(t.sourceCount).toBe(1);
      t.withdraw(p('10.1.0.0/16'), gone);
      expect(t.sourceCount).toBe(0);
      const cycled = new RouteSource('stream/c2', 100);
      t.refreshBegin(cycled); // no routes: the cycle alone keeps its state until it ends
      expect(t.sourceCount).toBe(1);
      expect(t.refreshEnd(cycled)).toBe(0);
      expect(t.sourceCount).toBe(0);
      for (let i = 0; i < 1000; i++) {
        const s = new RouteSource(`stream/anon-${i}`, 100);
        t.announce(p('10.2.0.0/16'), s, via('192.0.2.1'));
        expect(t.flush(s)).toBe(1);
      }
      expect(t.sourceCount).toBe(0);
      expect(t.netCount).toBe(0);
    });

    it('flushes and ends the refresh of an indexed source through its own nets, not a walk of the table', () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      const peer = new RouteSource('stream/exa/192.0.2.9', 100, { indexed: true });
      for (let i = 0; i < 100; i++) t.announce(p(`10.${i}.0.0/16`), stat, via('192.0.2.1'));
      for (const n of ['10.1.0.0/16', '10.2.0.0/16', '2001:db8::/32', '2001:db8:1::/48']) t.announce(p(n), peer, via('192.0.2.9'));
      t.withdraw(p('10.2.0.0/16'), peer);
      const walk = jest.spyOn(NetStore.prototype, 'forEachEntry');
      try {
        t.refreshBegin(peer);
        t.announce(p('2001:db8::/32'), peer, via('192.0.2.9'));
        expect(t.refreshEnd(peer)).toBe(2);
        expect(t.routes(p('2001:db8:1::/48'))).toHaveLength(0);
        expect(t.routes(p('10.1.0.0/16')).map((r) => r.src)).toEqual([stat]);
        expect(t.flush(peer)).toBe(1);
        expect(walk).not.toHaveBeenCalled();
        expect(t.routesOfSource(peer)).toBe(0);
        expect(t.flush(stat)).toBe(100); // not indexed: a walk
        expect(walk).toHaveBeenCalledTimes(1);
      } finally {
        walk.mockRestore();
      }
      expect(t.routeTotal).toBe(0);
      expect(t.sourceCount).toBe(0);
    });

    it('keeps an indexed source\'s log within a small factor of its routes under churn', () => {
      const t = new Table({ name: 'main' });
      const peer = new RouteSource('stream/exa/192.0.2.9', 100, { indexed: true });
      const log = (): number => (t as unknown as { sources: Map<RouteSource, { nets: NetLog }> }).sources.get(peer)!.nets.size;
      t.announce(p('10.255.0.0/16'), peer, via('192.0.2.9'));
      for (let round = 0; round < 50; round++) {
        for (let i = 0; i < 1000; i++) t.announce(p(`10.${i >> 8}.${i & 255}.0/24`), peer, via('192.0.2.9'));
        for (let i = 0; i < 1000; i++) t.withdraw(p(`10.${i >> 8}.${i & 255}.0/24`), peer);
        t.announce(p(`2001:db8:${round}::/48`), peer, via('192.0.2.9'));
        t.withdraw(p(`2001:db8:${round}::/48`), peer);
      }
      expect(t.routesOfSource(peer)).toBe(1);
      expect(log()).toBeLessThan(2 * 1000 + 1024 + 1);
      expect(t.flush(peer)).toBe(1);
    });

    it('orders BGP routes by the decision process, and records a new best when removing another route changes it', async () => {
      const t = new Table({ name: 'main' });
      const bgp = (addr: string, as: number, rid: number, path: BgpPathSpec): { src: RouteSource; attrs: RouteAttrs } => ({
        src: new RouteSource(`stream/exa/${addr}`, 100),
        attrs: via(addr, { bgp: BgpAttrs.of(BgpPath.of(path), BgpNeighbor.of({ address: parseAddr(addr), as, localAs: 65000, routerId: rid })) }),
      });
      const x1 = bgp('192.0.2.1', 65010, 3, { asPath: [65010], med: 0 });
      const x2 = bgp('192.0.2.2', 65010, 1, { asPath: [65010], med: 10 });
      const y = bgp('192.0.2.3', 65020, 2, { asPath: [65020] });
      const net = p('10.0.0.0/8');
      for (const r of [x2, y, x1]) t.announce(net, r.src, r.attrs);
      expect(t.routes(net).map((r) => r.src)).toEqual([y.src, x1.src, x2.src]);
      expect(orderRoutes(t.routes(net))).toEqual(t.routes(net));
      const best = new Puller(t.best.subscribe({ name: 'best' }));
      await best.drain();
      t.withdraw(net, x1.src); // x2 is now its AS's best and beats y on router id
      expect(await best.poll()).toMatchObject([{ kind: 'update', old: { src: y.src }, new: { src: x2.src } }]);
    });
  });

  describe('refresh cycle', () => {
    it('prunes the routes a source did not re-announce', async () => {
      const t = new Table({ name: 'main' });
      const { stat, kern } = sources();
      for (const n of ['10.0.0.0/8', '10.1.0.0/16', '10.2.0.0/16']) t.announce(p(n), stat, via('192.0.2.1'));
      t.announce(p('10.2.0.0/16'), kern, via('192.0.2.9'));
      const view = new ReaderView('best');
      const reader = new Puller(t.best.subscribe({ name: 'r' }));
      await reader.drain(view);
      const seqBefore = t.best.journal.end;

      t.refreshBegin(stat);
      t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1')); // identical: no journal item
      t.announce(p('10.1.0.0/16'), stat, via('192.0.2.2')); // changed
      expect(t.best.journal.end).toBe(seqBefore + 1);
      expect(t.refreshEnd(stat)).toBe(1); // 10.2.0.0/16 was not re-announced

      expect(t.routes(p('10.0.0.0/8'))).toHaveLength(1);
      expect(t.bestRoute(p('10.1.0.0/16'))?.attrs).toBe(via('192.0.2.2'));
      expect(t.bestRoute(p('10.2.0.0/16'))?.src).toBe(kern); // other sources untouched
      await reader.drain(view);
      expect(view.errors).toEqual([]);
      expect(view.text().get('10.2.0.0/16')).toBe('kernel-learn:via 192.0.2.9');
    });

    it('leaves routes alone outside a cycle, and a second refreshEnd does nothing', () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
      expect(t.refreshEnd(stat)).toBe(0);
      t.refreshBegin(stat);
      expect(t.refreshEnd(stat)).toBe(1);
      expect(t.refreshEnd(stat)).toBe(0);
      expect(t.routesOfSource(stat)).toBe(0);
    });

    it('starts over when a cycle begins again before it ended', () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      for (const n of ['10.0.0.0/8', '10.1.0.0/16']) t.announce(p(n), stat, via('192.0.2.1'));
      t.refreshBegin(stat);
      t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
      t.refreshBegin(stat); // the renewal above belongs to the cycle given up
      t.announce(p('10.1.0.0/16'), stat, via('192.0.2.1'));
      expect(t.refreshEnd(stat)).toBe(1);
      expect(t.routes(p('10.0.0.0/8'))).toHaveLength(0);
      expect(t.routes(p('10.1.0.0/16'))).toHaveLength(1);
    });

    it('keeps routes announced during the cycle, even new ones', () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      t.refreshBegin(stat);
      t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
      expect(t.refreshEnd(stat)).toBe(0);
      expect(t.routesOfSource(stat)).toBe(1);
    });
  });
});
