/**
 * A reader in its first feed while a source fills the table (Table.beginFill):
 * the nets that come after its snapshot reach it as the walk's feeds, in
 * batches, each once, nothing of them journaled; it is ready only after the
 * fill's end, and the end alone wakes it.
 */
import { Table } from '../../../src/table/table';
import type { ExportItem } from '../../../src/table/items';
import { Puller, turns } from './puller';
import { ReaderView, expectedView } from './reader-view';
import { p, sources, via } from './fixtures';

const net = (i: number) => p(`10.${(i >> 8) & 255}.${i & 255}.0/24`);

describe('a first feed while the table fills', () => {
  it('gets every net exactly once, as feeds in batches, with no journal, and ready only after the fill', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const end = t.beginFill();
    const req = t.best.subscribe({ name: 'kernel', batchSize: 100 });
    const view = new ReaderView('best');
    const reader = new Puller(req);
    expect(await reader.poll()).toBe('idle'); // an empty table: nothing yet, and not ready
    expect(req.state).toBe('feeding');
    const batches: (readonly ExportItem[])[] = [];
    for (let chunk = 0; chunk < 4; chunk++) {
      for (let i = chunk * 250; i < (chunk + 1) * 250; i++) t.announce(net(i), stat, via('192.0.2.1'));
      // Written while every reader's feed still has the net ahead of it: the feed covers it.
      expect(t.best.journal.length).toBe(0);
      expect(t.all.journal.length).toBe(0);
      const got = await reader.drain(view);
      batches.push(...got);
      expect(req.state).toBe('feeding');
    }
    expect(batches.every((b) => b.length <= 100)).toBe(true);
    expect(batches.length).toBeGreaterThanOrEqual(10);
    expect(view.kinds.filter((k) => k === 'feed')).toHaveLength(1000);
    expect(view.kinds).not.toContain('ready');
    expect(view.errors).toEqual([]); // no net fed twice
    end();
    // The fill's end alone wakes the reader: no write follows.
    expect(await reader.poll()).toEqual([{ kind: 'ready' }]);
    expect(req.state).toBe('ready');
    t.announce(net(3), stat, via('192.0.2.2'));
    expect(await reader.poll()).toMatchObject([{ kind: 'update', net: net(3), old: { attrs: via('192.0.2.1') }, new: { attrs: via('192.0.2.2') } }]);
  });

  // The exporter asks whether a write is covered by each request's feed with the net's word and
  // length, not its key: IPv4 words with the top bit set are negative int32s, IPv6 nets go by key.
  it.each([
    ['IPv4 (words below 2^31)', net],
    ['IPv4 (words with the top bit set)', (i: number) => p(`203.${(i >> 8) & 255}.${i & 255}.0/24`)],
    ['IPv6', (i: number) => p(`2001:db8:${i.toString(16)}::/48`)],
  ])('sends changes of nets it has fed as updates and folds those of nets ahead into their feed: %s', async (_, net) => {
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    // Some nets before the subscription: the snapshot's; the rest come during the fill.
    for (let i = 0; i < 50; i++) t.announce(net(i), stat, via('192.0.2.1'));
    const end = t.beginFill();
    const view = new ReaderView('best');
    const reader = new Puller(t.best.subscribe({ name: 'kernel', batchSize: 16 }));
    const first = await reader.poll(); // started: its snapshot is the 50
    if (Array.isArray(first)) view.apply(first);
    for (let i = 50; i < 200; i++) t.announce(net(i), stat, via('192.0.2.1'));
    await reader.drain(view);
    // Fed already: updates. Ahead of the walk: folded into the feed when it gets there.
    t.announce(net(10), api, via('192.0.2.9'));
    t.announce(net(150), stat, via('192.0.2.2'));
    for (let i = 200; i < 300; i++) t.announce(net(i), stat, via('192.0.2.1'));
    t.announce(net(250), stat, via('192.0.2.3'));
    t.withdraw(net(20), stat);
    t.withdraw(net(260), stat); // came and went before the walk reached it: never seen
    // A snapshot net re-added under an id the tail has ahead (the index hands out the id freed
    // last, 260's): its change is journaled (the tail skips snapshot nets), not left to the feed.
    t.announce(net(20), stat, via('192.0.2.4'));
    await reader.drain(view);
    end();
    await reader.drain(view);
    expect(view.errors).toEqual([]);
    expect(view.readyCount).toBe(1);
    expect(view.kinds.filter((k) => k === 'feed').length).toBe(299);
    expect(view.nets.has(net(260).toString())).toBe(false);
    expect(view.text()).toEqual(expectedView(t, Array.from({ length: 300 }, (_, i) => net(i)), 'best'));
  });

  it('feeds a net its tail handed out once, even when it goes and comes back under an id the tail has ahead', async () => {
    // Found by the export property test (seed -392101414): 10.0.0.0/8 fed by the tail, withdrawn,
    // then announced again under a new id: the tail fed it a second time, with the journal's update between.
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    for (let i = 0; i < 4; i++) t.announce(net(i), stat, via('192.0.2.1'));
    const end = t.beginFill();
    const view = new ReaderView('best');
    const reader = new Puller(t.best.subscribe({ name: 'kernel', batchSize: 1 }));
    await reader.drain(view); // the snapshot's four
    t.announce(net(100), api, via('192.0.2.1')); // after the snapshot: the tail's
    await reader.drain(view);
    t.withdraw(net(100), api); // its id is freed: an update, the tail has passed it
    t.announce(net(101), stat, via('192.0.2.1')); // may take the freed id
    t.announce(net(100), stat, via('192.0.2.2')); // back, under an id the tail has ahead
    await reader.drain(view);
    end();
    await reader.drain(view);
    expect(view.errors).toEqual([]); // 10.0.100.0/24 not fed twice
    expect(view.readyCount).toBe(1);
    expect(view.text()).toEqual(expectedView(t, [0, 1, 2, 3, 100, 101].map(net), 'best'));
  });

  it('is woken by the fill`s end while it holds a batch (no lost wakeup)', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const end = t.beginFill();
    const req = t.best.subscribe({ name: 'kernel' });
    const kinds: string[] = [];
    let first = true;
    const loop = (async () => {
      for await (const batch of req) {
        for (const item of batch) kinds.push(item.kind);
        if (first) {
          first = false;
          // The reader's run is in progress (it holds this batch) when the fill ends.
          await turns(2);
          end();
          await turns(2);
        }
        if (kinds.includes('ready')) break;
      }
    })();
    await turns(2);
    t.announce(net(1), stat, via('192.0.2.1'));
    await loop;
    expect(kinds).toEqual(['feed', 'ready']);
  });

  it('follows the fill in each family its prefilter takes, and for the all exporter', async () => {
    const t = new Table({ name: 'main' });
    const { stat, api } = sources();
    t.announce(p('2001:db8::/48'), stat, via('192.0.2.1'));
    t.announce(net(0), stat, via('192.0.2.1'));
    const end = t.beginFill();
    const v4 = new ReaderView('all');
    const v6 = new ReaderView('all');
    const r4 = new Puller(t.all.subscribe({ name: 'k4', batchSize: 3, prefilter: { kind: 'family', family: 4 } }));
    const r6 = new Puller(t.all.subscribe({ name: 'k6', batchSize: 3, prefilter: { kind: 'family', family: 6 } }));
    for (const [r, v] of [[r4, v4], [r6, v6]] as const) {
      const b = await r.poll();
      if (Array.isArray(b)) v.apply(b);
    }
    const v6nets = Array.from({ length: 10 }, (_, i) => p(`2001:db8:${i + 1}::/48`));
    for (let i = 1; i < 10; i++) {
      t.announce(net(i), stat, via('192.0.2.1'));
      t.announce(net(i), api, via('192.0.2.2'));
      t.announce(v6nets[i]!, stat, via('192.0.2.1'));
    }
    end();
    await r4.drain(v4);
    await r6.drain(v6);
    expect(v4.errors).toEqual([]);
    expect(v6.errors).toEqual([]);
    expect(v4.text()).toEqual(expectedView(t, Array.from({ length: 10 }, (_, i) => net(i)), 'all'));
    expect(v6.text()).toEqual(expectedView(t, [p('2001:db8::/48'), ...v6nets], 'all'));
    expect(v4.readyCount + v6.readyCount).toBe(2);
  });
});
