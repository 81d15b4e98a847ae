import { comparePrefix } from '../../../src/lib/addr';
import { PrefixSet } from '../../../src/lib/prefix-set';
import type { Prefilter } from '../../../src/table/prefilter';
import { Table } from '../../../src/table/table';
import type { FeederItem } from '../../../src/table/items';
import { Puller } from './puller';
import { p, sources, via } from './fixtures';

const NETS = [
  '0.0.0.0/0',
  '10.0.0.0/8',
  '10.1.0.0/16',
  '10.1.2.0/24',
  '10.1.2.128/25',
  '10.1.2.129/32',
  '10.200.0.0/16',
  '11.0.0.0/8',
  '192.0.2.0/24',
  '2001:db8::/32',
  '2001:db8:1::/48',
  '2001:db9::/32',
];

function table(): Table {
  const t = new Table({ name: 'main' });
  const { stat, kern } = sources();
  for (const n of NETS) t.announce(p(n), stat, via(n.includes(':') ? '2001:db8::1' : '192.0.2.1'));
  t.announce(p('10.1.0.0/16'), kern, via('192.0.2.9'));
  return t;
}

async function fedNets(t: Table, prefilter?: Prefilter, batchSize?: number): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of t.best.feed({ prefilter, batchSize })) {
    for (const item of batch) if (item.kind === 'feed') out.push(item.net.toString());
  }
  return out;
}

describe('feeders', () => {
  it('walks every net in order (IPv4 first, address, then length) and ends', async () => {
    const t = table();
    const sorted = NETS.map(p).sort(comparePrefix).map(String);
    expect(await fedNets(t, undefined, 5)).toEqual(sorted);
  });

  it('gives the best route for best, every route for all', async () => {
    const t = table();
    const batches: (readonly FeederItem[])[] = [];
    for await (const b of t.all.feed({ prefilter: { kind: 'prefix', prefix: p('10.1.0.0/16') } })) batches.push(b);
    const first = batches[0]![0]!;
    expect(first.kind === 'feed' && first.routes.map((r) => r.src.name)).toEqual(['static', 'kernel-learn']);
    for await (const b of t.best.feed({ prefilter: { kind: 'prefix', prefix: p('10.1.0.0/16') } })) {
      const item = b[0]!;
      expect(item.kind === 'feed' && item.routes.length).toBe(1);
      break;
    }
  });

  it('prefilters one prefix: the prefix and everything inside it', async () => {
    const t = table();
    expect(await fedNets(t, { kind: 'prefix', prefix: p('10.1.0.0/16') })).toEqual([
      '10.1.0.0/16',
      '10.1.2.0/24',
      '10.1.2.128/25',
      '10.1.2.129/32',
    ]);
    expect(await fedNets(t, { kind: 'prefix', prefix: p('10.1.2.128/25') })).toEqual(['10.1.2.128/25', '10.1.2.129/32']);
    expect(await fedNets(t, { kind: 'prefix', prefix: p('2001:db8::/32') })).toEqual(['2001:db8::/32', '2001:db8:1::/48']);
    expect(await fedNets(t, { kind: 'prefix', prefix: p('::/0') })).toHaveLength(3);
    expect(await fedNets(t, { kind: 'prefix', prefix: p('172.16.0.0/12') })).toEqual([]);
  });

  it('prefilters a prefix set with length ranges', async () => {
    const t = table();
    expect(await fedNets(t, { kind: 'set', set: ['10.0.0.0/8{16,24}'] })).toEqual(['10.1.0.0/16', '10.1.2.0/24', '10.200.0.0/16']);
    const set = new PrefixSet(['10.0.0.0/8{16,24}', '10.1.0.0/16+', '2001:db8::/32{48,48}']);
    expect(await fedNets(t, { kind: 'set', set })).toEqual([
      '10.1.0.0/16',
      '10.1.2.0/24',
      '10.1.2.128/25',
      '10.1.2.129/32',
      '10.200.0.0/16',
      '2001:db8:1::/48',
    ]);
  });

  it('prefilters with a predicate on the net', async () => {
    const t = table();
    expect(await fedNets(t, { kind: 'predicate', test: (net) => net.len === 8 })).toEqual(['10.0.0.0/8', '11.0.0.0/8']);
  });

  it('finds nets under a long prefix by lookup as well as by scan', async () => {
    const t = new Table({ name: 'big' });
    const { stat } = sources();
    for (let i = 0; i < 4096; i++) t.announce(p(`10.${i >> 8}.${i & 255}.0/24`), stat, via('192.0.2.1'));
    t.announce(p('10.3.4.16/28'), stat, via('192.0.2.1'));
    // 10.3.4.0/24: few candidate nets per length, looked up one by one.
    expect(await fedNets(t, { kind: 'prefix', prefix: p('10.3.4.0/24') })).toEqual(['10.3.4.0/24', '10.3.4.16/28']);
    // 10.0.0.0/12{24,24}: more candidates than nets, scanned.
    expect(await fedNets(t, { kind: 'set', set: ['10.0.0.0/12{24,24}'] })).toHaveLength(4096);
  });

  it('shows the table as it was when the feed started, whatever writers do during the walk', async () => {
    const t = table();
    const { stat } = sources();
    const reader = new Puller(t.best.feed({ batchSize: 2 }));
    const first = await reader.poll();
    expect(first).toHaveLength(2); // 0.0.0.0/0 and 10.0.0.0/8
    t.withdraw(p('10.1.2.0/24'), stat);
    t.announce(p('11.0.0.0/8'), stat, via('192.0.2.77'));
    t.announce(p('12.0.0.0/8'), stat, via('192.0.2.1'));
    const rest = (await reader.drain()).flat();
    const names = rest.map((i) => (i.kind === 'feed' ? i.net.toString() : i.kind));
    expect(names).toContain('10.1.2.0/24');
    expect(names).not.toContain('12.0.0.0/8');
    const eleven = rest.find((i) => i.kind === 'feed' && i.net.toString() === '11.0.0.0/8');
    expect(eleven?.kind === 'feed' && eleven.routes[0]!.attrs).toBe(via('192.0.2.1'));
    expect(await reader.poll()).toBe('done');
  });

  it('ends with a stop item when the exporter stops mid-walk', async () => {
    const t = table();
    const feeder = t.best.feed({ batchSize: 2 });
    const reader = new Puller(feeder);
    await reader.poll();
    t.stop('reconfigure');
    expect(await reader.poll()).toEqual([{ kind: 'stop', reason: 'reconfigure' }]);
    expect(await reader.poll()).toBe('done');
    expect(feeder.state).toBe('stopped');
    expect(feeder.stopReason).toBe('reconfigure');
  });

  it('does not hold up journal trimming', async () => {
    const t = table();
    const { stat } = sources();
    const req = new Puller(t.best.subscribe({ name: 'r' }));
    await req.drain();
    const feeder = new Puller(t.best.feed({ batchSize: 1 }));
    await feeder.poll();
    t.announce(p('13.0.0.0/8'), stat, via('192.0.2.1'));
    await req.drain();
    expect(t.best.journal.length).toBe(0);
    expect(t.best.readers).toHaveLength(2);
  });
});
