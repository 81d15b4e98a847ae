import { Table } from '../../../src/table/table';
import type { ExportItem } from '../../../src/table/items';
import { Puller, turns } from './puller';
import { ReaderView, expectedView } from './reader-view';
import { p, sources, via } from './fixtures';

const nets = (n: number, fmt = (i: number) => `10.${i >> 8}.${i & 255}.0/24`) => Array.from({ length: n }, (_, i) => p(fmt(i)));

describe('export requests', () => {
  it('feeds every net, says ready, then sends updates', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const all = nets(10);
    for (const n of all) t.announce(n, stat, via('192.0.2.1'));
    const req = t.best.subscribe({ name: 'r', batchSize: 4 });
    expect(req.state).toBe('down');
    const view = new ReaderView('best');
    const reader = new Puller(req);
    const batches = await reader.drain(view);
    expect(batches.map((b) => b.length)).toEqual([4, 4, 3]);
    expect(view.kinds).toEqual([...Array(10).fill('feed'), 'ready']);
    expect(req.state).toBe('ready');

    t.announce(all[3]!, stat, via('192.0.2.2'));
    expect(await reader.poll()).toMatchObject([{ kind: 'update', net: all[3], old: { attrs: via('192.0.2.1') }, new: { attrs: via('192.0.2.2') } }]);
    expect(view.errors).toEqual([]);
  });

  it('does not journal while nobody reads, and starts only on the first pull', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const req = t.best.subscribe({ name: 'r' });
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    expect(t.best.journal.length).toBe(0);
    const reader = new Puller(req);
    expect(await reader.poll()).toMatchObject([{ kind: 'feed', net: p('10.0.0.0/8') }, { kind: 'ready' }]);
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.2'));
    expect(t.best.journal.length).toBe(1);
  });

  it('squashes consecutive updates of a net the reader has not taken yet', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const reader = new Puller(t.best.subscribe({ name: 'r' }));
    await reader.drain();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    t.announce(p('10.1.0.0/16'), stat, via('192.0.2.1'));
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.2'));
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.3'));
    t.announce(p('10.2.0.0/16'), stat, via('192.0.2.1'));
    t.withdraw(p('10.2.0.0/16'), stat); // appears and goes: nothing to say
    const batch = (await reader.poll()) as readonly ExportItem[];
    expect(batch).toMatchObject([
      { kind: 'update', net: p('10.0.0.0/8'), old: undefined, new: { attrs: via('192.0.2.3') }, seq: 4 },
      { kind: 'update', net: p('10.1.0.0/16'), old: undefined, new: { attrs: via('192.0.2.1') }, seq: 2 },
    ]);
    expect(batch).toHaveLength(2);
  });

  it('squashes the all exporter per source, keeping each source`s changes', async () => {
    const t = new Table({ name: 'main' });
    const { stat, kern } = sources();
    const view = new ReaderView('all');
    const reader = new Puller(t.all.subscribe({ name: 'r' }));
    await reader.drain(view);
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    t.announce(p('10.0.0.0/8'), kern, via('192.0.2.9'));
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.2'));
    t.withdraw(p('10.0.0.0/8'), kern);
    t.announce(p('10.0.0.0/8'), kern, via('192.0.2.8'));
    const batch = (await reader.poll()) as readonly ExportItem[];
    view.apply(batch);
    expect(batch).toMatchObject([
      { kind: 'update', old: undefined, new: { src: stat, attrs: via('192.0.2.2') } },
      { kind: 'update', old: undefined, new: { src: kern, attrs: via('192.0.2.8') } },
    ]);
    expect(view.errors).toEqual([]);
  });

  it('brings a net`s feed forward when a change reaches it before the walk does, and never feeds it twice', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const all = nets(6);
    for (const n of all) t.announce(n, stat, via('192.0.2.1'));
    const view = new ReaderView('best');
    const reader = new Puller(t.best.subscribe({ name: 'r', batchSize: 2 }));
    view.apply((await reader.poll()) as readonly ExportItem[]); // fed nets 0 and 1
    t.announce(all[4]!, stat, via('192.0.2.2')); // not fed yet
    t.announce(all[0]!, stat, via('192.0.2.2')); // already fed
    t.withdraw(all[5]!, stat); // not fed yet, and now gone
    await reader.drain(view);
    const fedNets = view.kinds.filter((k) => k === 'feed').length;
    expect(fedNets).toBe(5); // 0..4 once each; 5 disappeared before it was fed
    expect(view.updates).toBe(1); // only net 0's change is an update
    expect(view.errors).toEqual([]);
    expect(view.text()).toEqual(expectedView(t, all, 'best'));
  });

  it('takes up to 16 batches in one run when behind in the journal, and one batch when not', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const all = nets(100);
    const view = new ReaderView('best');
    const reader = new Puller(t.best.subscribe({ name: 'r', batchSize: 4 }));
    await reader.drain(view); // empty table: ready at once
    for (const n of all) t.announce(n, stat, via('192.0.2.1')); // 100 changes in one turn
    const batches = await reader.drain(view);
    expect(batches.map((b) => b.length)).toEqual([64, 36]); // not 25 batches of 4, one per turn
    expect(t.best.journal.length).toBe(0);
    for (const n of all.slice(0, 3)) t.announce(n, stat, via('192.0.2.2')); // within a batch
    expect((await reader.drain(view)).map((b) => b.length)).toEqual([3]);
    for (const n of all.slice(0, 5)) t.announce(n, stat, via('192.0.2.3')); // one more than a batch
    expect((await reader.drain(view)).map((b) => b.length)).toEqual([5]);
    expect(view.errors).toEqual([]);
    expect(view.text()).toEqual(expectedView(t, all, 'best'));
  });

  it('trims the journal once every reader has passed, and keeps it for the slowest', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const fast = new Puller(t.best.subscribe({ name: 'fast' }));
    const slow = new Puller(t.best.subscribe({ name: 'slow' }));
    await fast.drain();
    await slow.drain();
    t.announce(p('192.0.2.0/24'), stat, via('192.0.2.1'));
    expect(await slow.poll()).toHaveLength(1); // slow now holds this batch and does not ask for more
    for (const n of nets(5)) t.announce(n, stat, via('192.0.2.1'));
    await fast.drain();
    expect(t.best.journal.length).toBe(5);
    await slow.drain();
    expect(t.best.journal.length).toBe(0);
    expect(t.best.journal.pendingNets).toBe(0);
  });

  it('stops holding the journal when a reader unsubscribes', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    const req = t.best.subscribe({ name: 'r' });
    const reader = new Puller(req);
    await reader.drain();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    expect(t.best.journal.length).toBe(1);
    req.close();
    expect(t.best.journal.length).toBe(0);
    expect(req.state).toBe('closed');
    expect(await reader.poll()).toBe('done');
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.2'));
    expect(t.best.journal.length).toBe(0);
  });

  it('unsubscribes when the consumer breaks out of its for-await loop', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    const req = t.best.subscribe({ name: 'r' });
    for await (const batch of req) {
      expect(batch[0]?.kind).toBe('feed');
      break;
    }
    expect(req.state).toBe('closed');
    expect(t.best.readers).toEqual([]);
  });

  it('drops a reader that fell behind to a full refeed, and it ends exactly in sync', async () => {
    const t = new Table({ name: 'main', maxBehind: 5 });
    const { stat } = sources();
    const all = nets(12);
    for (const n of all.slice(0, 8)) t.announce(n, stat, via('192.0.2.1'));
    const view = new ReaderView('best');
    const req = t.best.subscribe({ name: 'slow' });
    const reader = new Puller(req);
    await reader.drain(view);
    expect(view.nets.size).toBe(8);

    // The reader does not read while 9 changes land: more than maxBehind.
    for (const n of all.slice(0, 3)) t.withdraw(n, stat); // gone: the refeed must say so
    for (const n of all.slice(8)) t.announce(n, stat, via('192.0.2.1'));
    t.announce(all[5]!, stat, via('192.0.2.7'));
    t.announce(all[6]!, stat, via('192.0.2.7'));
    expect(req.refeeds).toBe(1);
    expect(req.state).toBe('feeding');
    expect(t.best.journal.length).toBeLessThanOrEqual(5); // the journal did not grow without bound

    await reader.drain(view);
    expect(view.kinds).toContain('refeed');
    expect(view.kinds.at(-1)).toBe('ready');
    expect(req.state).toBe('ready');
    expect(view.errors).toEqual([]);
    expect(view.text()).toEqual(expectedView(t, all, 'best'));
  });

  it('takes a new bound in place (journal_limit on reload): from the next write on', async () => {
    const t = new Table({ name: 'main', maxBehind: 1000 });
    const { stat } = sources();
    const all = nets(12);
    const req = t.best.subscribe({ name: 'slow' });
    const reader = new Puller(req);
    await reader.drain();
    for (const n of all.slice(0, 6)) t.announce(n, stat, via('192.0.2.1'));
    expect(req.refeeds).toBe(0);
    t.setMaxBehind(5);
    for (const n of all.slice(6)) t.announce(n, stat, via('192.0.2.1'));
    expect(req.refeeds).toBe(1);
    t.setMaxBehind(undefined); // auto: 100,000 or the table's size
    expect(t.best.maxBehind).toBe(100_000);
  });

  it('refeeds on request', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    const req = t.best.subscribe({ name: 'r' });
    const reader = new Puller(req);
    await reader.drain();
    req.refeed('kernel table flushed');
    expect(await reader.poll()).toMatchObject([{ kind: 'refeed', reason: 'kernel table flushed' }, { kind: 'feed' }, { kind: 'ready' }]);
  });

  it('filters nets with a prefilter, in the feed and in updates', async () => {
    const t = new Table({ name: 'main' });
    const { stat } = sources();
    t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
    t.announce(p('2001:db8::/32'), stat, via('2001:db8::1'));
    const view = new ReaderView('best');
    const reader = new Puller(t.best.subscribe({ name: 'kernel6', prefilter: { kind: 'prefix', prefix: p('::/0') } }));
    await reader.drain(view);
    t.announce(p('10.1.0.0/16'), stat, via('192.0.2.1'));
    t.announce(p('2001:db8:1::/48'), stat, via('2001:db8::1'));
    await reader.drain(view);
    expect([...view.text().keys()]).toEqual(['2001:db8::/32', '2001:db8:1::/48']);
  });

  describe('stop and recovery', () => {
    it('gives every reader one stop item and ends its walk; the reader resubscribes to the replacement', async () => {
      const old = new Table({ name: 'main' });
      const { stat } = sources();
      old.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
      const view = new ReaderView('best');
      const req = old.best.subscribe({ name: 'kernel4' });
      const reader = new Puller(req);
      await reader.drain(view);
      old.announce(p('10.1.0.0/16'), stat, via('192.0.2.1')); // pending, never delivered: the table is going away
      old.stop('table main removed by reconfiguration');
      expect(await reader.poll()).toEqual([{ kind: 'stop', reason: 'table main removed by reconfiguration' }]);
      expect(await reader.poll()).toBe('done');
      expect(req.state).toBe('stopped');
      expect(old.best.journal.length).toBe(0);

      const replacement = new Table({ name: 'main' });
      replacement.announce(p('10.2.0.0/16'), stat, via('192.0.2.1'));
      const fresh = new ReaderView('best');
      await new Puller(replacement.best.subscribe({ name: 'kernel4' })).drain(fresh);
      expect(fresh.kinds).toEqual(['feed', 'ready']);
      expect(fresh.text()).toEqual(expectedView(replacement, [p('10.2.0.0/16')], 'best'));
    });

    it('stops a reader that is in the middle of its feed', async () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      for (const n of nets(10)) t.announce(n, stat, via('192.0.2.1'));
      const reader = new Puller(t.best.subscribe({ name: 'r', batchSize: 3 }));
      await reader.poll();
      t.best.stop('gone');
      expect(await reader.poll()).toEqual([{ kind: 'stop', reason: 'gone' }]);
      expect(await reader.poll()).toBe('done');
    });

    it('answers a subscription to a stopped exporter with a stop item', async () => {
      const t = new Table({ name: 'main' });
      t.stop('gone');
      const reader = new Puller(t.all.subscribe({ name: 'late' }));
      expect(await reader.poll()).toEqual([{ kind: 'stop', reason: 'gone' }]);
      expect(await reader.poll()).toBe('done');
    });
  });

  describe('waking readers', () => {
    it('picks up a write that lands while the reader is processing a batch, with no further write', async () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      const req = t.best.subscribe({ name: 'r' });
      const got: string[] = [];
      let first = true;
      const loop = (async () => {
        for await (const batch of req) {
          for (const item of batch) if (item.kind === 'update') got.push(item.net.toString());
          if (first) {
            first = false;
            // The reader's run is in progress (it holds this batch) when the write lands.
            await turns(2);
            t.announce(p('10.1.0.0/16'), stat, via('192.0.2.1'));
            await turns(2);
          }
          if (got.length === 1) break;
        }
      })();
      await loop;
      expect(got).toEqual(['10.1.0.0/16']);
    });

    it('waits the settle delay after a write, so a burst arrives as one batch', async () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      const reader = new Puller(t.best.subscribe({ name: 'r', settleMs: 40 }));
      await reader.drain();
      const t0 = Date.now();
      t.announce(p('10.0.0.0/8'), stat, via('192.0.2.1'));
      setTimeout(() => t.announce(p('10.1.0.0/16'), stat, via('192.0.2.1')), 10);
      setTimeout(() => t.announce(p('10.2.0.0/16'), stat, via('192.0.2.1')), 20);
      let batch: Awaited<ReturnType<typeof reader.poll>> = 'idle';
      while (batch === 'idle') batch = await reader.poll(1);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(35);
      expect(batch).toHaveLength(3);
    });

    it('lets writers run between the batches of a big feed', async () => {
      const t = new Table({ name: 'main' });
      const { stat } = sources();
      const all = nets(5000, (i) => `10.${i >> 8}.${i & 255}.0/24`);
      for (const n of all) t.announce(n, stat, via('192.0.2.1'));
      const view = new ReaderView('best');
      const req = t.best.subscribe({ name: 'r', batchSize: 100 });
      let writes = 0;
      const writer = setInterval(() => {
        t.announce(all[(writes * 37) % all.length]!, stat, via(`192.0.2.${(writes % 200) + 2}`));
        writes++;
      }, 0);
      for await (const batch of req) {
        view.apply(batch);
        if (batch.at(-1)?.kind === 'ready') break;
      }
      clearInterval(writer);
      expect(writes).toBeGreaterThan(0);
      expect(view.errors).toEqual([]);
      expect(view.text()).toEqual(expectedView(t, all, 'best'));
    });
  });
});
