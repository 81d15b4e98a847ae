/**
 * Property: over random interleavings of announces, withdraws, refresh
 * cycles, readers subscribing at random times and reading at random paces
 * (slow readers fall behind the bound and are refed; some take their feeds
 * as runs of words, FeedRun), feeders, and an
 * exporter stop with recovery on a replacement table:
 *  - every reader's final view equals the table (best route, or all routes);
 *  - every update's old is what the reader held (so no change is missed or
 *    seen twice, across the feed/journal boundary too) and seqs per net only
 *    increase;
 *  - every reader ends ready, and the journal ends empty once all have caught up;
 *  - feeders walk strictly in prefix order and end.
 * The table tracks next hops: links going down and up make routes through
 * them ineligible and eligible again at random points, which moves best
 * routes without any write by a source. A source fills the table at random
 * points (Table.beginFill ... its end): a reader in a feed follows the fill
 * and is not ready while one is open.
 */
import fc from 'fast-check';
import { comparePrefix, parseAddr, parsePrefix, type Prefix } from '../../../src/lib/addr';
import { RouteAttrs } from '../../../src/route/attrs';
import { RouteSource } from '../../../src/route/source';
import type { ExportRequest } from '../../../src/table/export-request';
import { NO_DAMPING } from '../../../src/table/nexthop-damping';
import { NextHopTracker } from '../../../src/table/nexthop-tracker';
import type { Prefilter } from '../../../src/table/prefilter';
import { Table } from '../../../src/table/table';
import { Puller } from './puller';
import { ReaderView, expectedView } from './reader-view';
import { p, via } from './fixtures';

const NETS = [
  '0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.0/24', '10.1.3.0/24', '10.2.0.0/16',
  '192.0.2.0/24', '192.0.2.128/25', '2001:db8::/32', '2001:db8:1::/48', '::/0',
].map(p);
const SOURCES = [new RouteSource('static', 200), new RouteSource('api', 100), new RouteSource('stream', 100)];
const ATTRS = [
  via('192.0.2.1'),
  via('192.0.2.2'),
  via('192.0.2.2', { metric: 7 }),
  RouteAttrs.of({ type: 'blackhole' }),
  RouteAttrs.of({ nexthops: [{ gateway: parseAddr('192.0.2.1') }, { gateway: parseAddr('192.0.2.2') }] }),
];
const PREFILTERS: (Prefilter | undefined)[] = [
  undefined,
  { kind: 'prefix', prefix: p('10.0.0.0/8') },
  { kind: 'set', set: ['0.0.0.0/0{16,24}', '2001:db8::/32+'] },
  { kind: 'predicate', test: (n) => n.family === 6 },
  { kind: 'family', family: 4 },
  { kind: 'family', family: 6 },
];

type Op =
  | { op: 'announce'; net: number; src: number; attrs: number }
  | { op: 'withdraw'; net: number; src: number }
  | { op: 'refresh'; src: number; keep: boolean[] }
  | { op: 'subscribe'; mode: 'best' | 'all'; batchSize: number; settleMs: number; prefilter: number; feedRuns: boolean }
  | { op: 'read'; reader: number; batches: number }
  | { op: 'feeder'; mode: 'best' | 'all'; prefilter: number }
  | { op: 'turn' }
  | { op: 'link'; index: number; carrier: boolean }
  | { op: 'stop' }
  | { op: 'fill' };

const subscribeArb = fc.record({
  op: fc.constant('subscribe' as const),
  mode: fc.constantFrom('best' as const, 'all' as const),
  batchSize: fc.integer({ min: 1, max: 6 }),
  settleMs: fc.constantFrom(0, 0, 0, 1),
  prefilter: fc.constantFrom(0, 0, 1, 2, 3),
  feedRuns: fc.boolean(),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('announce' as const), net: fc.nat(NETS.length - 1), src: fc.nat(2), attrs: fc.nat(ATTRS.length - 1) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('withdraw' as const), net: fc.nat(NETS.length - 1), src: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('refresh' as const), src: fc.nat(2), keep: fc.array(fc.boolean(), { minLength: NETS.length, maxLength: NETS.length }) }) },
  { weight: 1, arbitrary: subscribeArb },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('read' as const), reader: fc.nat(7), batches: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('feeder' as const), mode: fc.constantFrom('best' as const, 'all' as const), prefilter: fc.nat(PREFILTERS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('turn' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('link' as const), index: fc.integer({ min: 1, max: 2 }), carrier: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('stop' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('fill' as const) }) },
);

interface Reader {
  mode: 'best' | 'all';
  spec: Extract<Op, { op: 'subscribe' }>;
  req: ExportRequest;
  puller: Puller<import('../../../src/table/items').ExportItem>;
  view: ReaderView;
  stops: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function play(early: Extract<Op, { op: 'subscribe' }>[], ops: Op[], maxBehind: number): Promise<void> {
  // 192.0.2.1 is on link 1, 192.0.2.2 on link 2.
  const tracker = new NextHopTracker({ damping: NO_DAMPING });
  const links = [1, 2].map((index) => ({ index, name: `veth${index}`, up: true, carrier: true }));
  tracker.resync(links, [
    { prefix: parsePrefix('192.0.2.1/32'), ifindex: 1 },
    { prefix: parsePrefix('192.0.2.2/32'), ifindex: 2 },
  ]);
  tracker.flush();
  let table = new Table({ name: 'main', maxBehind, nexthops: tracker });
  let stopped = false;
  /** The end of the fill in progress, if one is, and the requests that were ready when it began. */
  let fillEnd: (() => void) | undefined;
  let readyBeforeFill = new Set<ExportRequest>();
  const readers: Reader[] = [];
  const feeders: { puller: Puller<import('../../../src/table/items').FeederItem>; seen: Prefix[] }[] = [];

  const subscribe = (spec: Extract<Op, { op: 'subscribe' }>): Reader => {
    const req = table[spec.mode].subscribe({ name: `r${readers.length}`, batchSize: spec.batchSize, settleMs: spec.settleMs, prefilter: PREFILTERS[spec.prefilter], feedRuns: spec.feedRuns });
    return { mode: spec.mode, spec, req, puller: new Puller(req), view: new ReaderView(spec.mode), stops: 0 };
  };
  const netsFor = (r: Reader) => NETS.filter((n) => r.spec.prefilter === 0 || matchesPrefilter(r.spec.prefilter, n));

  // A reader that got stop recovers: it resubscribes to the (replacement) table with a fresh view.
  const read = async (r: Reader, batches: number): Promise<void> => {
    for (let i = 0; i < batches; i++) {
      const b = await r.puller.poll();
      if (b === 'idle') return;
      if (b === 'done') {
        expect(r.view.stopped).toBeDefined();
        r.stops++;
        const again = subscribe(r.spec);
        Object.assign(r, { req: again.req, puller: again.puller, view: again.view });
        continue;
      }
      r.view.apply(b);
    }
  };

  for (const o of [...early, ...ops]) {
    switch (o.op) {
      case 'announce':
        table.announce(NETS[o.net]!, SOURCES[o.src]!, ATTRS[o.attrs]!);
        break;
      case 'withdraw':
        table.withdraw(NETS[o.net]!, SOURCES[o.src]!);
        break;
      case 'refresh': {
        const src = SOURCES[o.src]!;
        table.refreshBegin(src);
        NETS.forEach((net, i) => {
          const mine = table.routes(net).find((r) => r.src === src);
          if (mine && o.keep[i]) table.announce(net, src, mine.attrs);
        });
        table.refreshEnd(src);
        break;
      }
      case 'subscribe':
        if (readers.length < 8) readers.push(subscribe(o));
        break;
      case 'read': {
        const r = readers[o.reader % Math.max(1, readers.length)];
        if (r) await read(r, o.batches);
        break;
      }
      case 'feeder':
        feeders.push({ puller: new Puller(table[o.mode].feed({ prefilter: PREFILTERS[o.prefilter], batchSize: 2 })), seen: [] });
        await feeders.at(-1)!.puller.poll();
        break;
      case 'turn':
        await sleep(1);
        break;
      case 'link':
        tracker.setLink({ ...links[o.index - 1]!, carrier: o.carrier });
        tracker.flush();
        break;
      case 'stop': {
        if (stopped) break;
        stopped = true;
        const old = table;
        old.stop('replaced');
        fillEnd?.();
        fillEnd = undefined;
        table = new Table({ name: 'main', maxBehind, nexthops: tracker });
        for (const net of NETS) for (const r of old.routes(net)) table.announce(net, r.src, r.attrs);
        break;
      }
      case 'fill':
        if (fillEnd === undefined) {
          fillEnd = table.beginFill();
          readyBeforeFill = new Set(readers.filter((r) => r.req.state === 'ready').map((r) => r.req));
        } else {
          fillEnd();
          fillEnd = undefined;
        }
        break;
    }
    if (fillEnd !== undefined) for (const r of readers) if (r.req.state === 'ready' && !readyBeforeFill.has(r.req)) r.view.errors.push('ready while a fill is open');
  }
  fillEnd?.();

  // Everyone catches up (sleeping for settle delays), then the views must match the table.
  for (let round = 0; round < 3; round++) {
    await sleep(3);
    for (const r of readers) await read(r, 1000);
  }
  for (const r of readers) {
    expect(r.view.errors).toEqual([]);
    expect(r.view.text()).toEqual(expectedView(table, netsFor(r), r.mode));
    expect(r.req.state).toBe('ready');
  }
  for (const exporter of [table.best, table.all]) {
    expect(exporter.journal.length).toBe(0);
    expect(exporter.journal.pendingNets).toBe(0);
  }
  for (const f of feeders) {
    for (const b of await f.puller.drain()) for (const item of b) if (item.kind === 'feed') f.seen.push(item.net);
    expect(f.puller.done).toBe(true);
    for (let i = 1; i < f.seen.length; i++) expect(comparePrefix(f.seen[i - 1]!, f.seen[i]!)).toBeLessThan(0);
  }
}

function matchesPrefilter(i: number, n: Prefix): boolean {
  const pf = PREFILTERS[i]!;
  switch (pf.kind) {
    case 'prefix':
      return pf.prefix.contains(n);
    case 'set':
      return (n.family === 4 && n.len >= 16 && n.len <= 24) || p('2001:db8::/32').contains(n);
    case 'predicate':
      return pf.test(n);
    case 'family':
      return n.family === pf.family;
  }
}

describe('export contract under random interleavings', () => {
  it('keeps every reader exactly in sync, each change once and in order per net', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(subscribeArb, { minLength: 1, maxLength: 3 }),
        fc.array(opArb, { minLength: 10, maxLength: 80, size: 'medium' }),
        fc.constantFrom(2, 4, 16, 100_000),
        play,
      ),
      { numRuns: 150 },
    );
  });
});
