/**
 * The test helper RouteWatcher (test/helpers/kernel-fixture.ts) is the
 * oracle of many "nothing changed" assertions: it must see a change made
 * right before stop(), with no sleep, and leave none of its markers behind.
 */
import { RouteWatcher } from '../helpers/kernel-fixture';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

kernelDescribe('RouteWatcher (test helper)', () => {
  let ns: Netns;
  beforeEach(() => (ns = createNetns('krtrw')));
  afterEach(() => {
    RouteWatcher.stopAll();
    ns.destroy();
  });

  it('prints a change made right before stop() and nothing of its own, for routes and nexthop objects, every time', async () => {
    for (let i = 0; i < 10; i++) {
      const nexthops = i % 2 === 1;
      const w = new RouteWatcher(ns, nexthops ? ['nexthop'] : ['route', 'nexthop']);
      await w.ready();
      if (nexthops) ns.ip('nexthop', 'add', 'id', String(100 + i), 'via', '192.0.2.2', 'dev', 'veth0');
      else ns.ip('route', 'add', `10.77.${i}.0/24`, 'via', '192.0.2.2');
      const lines = (await w.stop()).map((l) => l.trim());
      expect(lines).toEqual([nexthops ? `id ${100 + i} via 192.0.2.2 dev veth0 scope link` : `10.77.${i}.0/24 via 192.0.2.2 dev veth0`]);
    }
    expect(ns.ip('route', 'show', 'table', '4242')).toBe('');
    expect(ns.ipJson<Array<{ id: number }>>('nexthop', 'show').map((o) => o.id)).toEqual([101, 103, 105, 107, 109]);
  });
});
