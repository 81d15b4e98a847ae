/**
 * The kernel protocol's export memo (src/proto/kernel/export-memo.ts): a
 * decision kept per chain content, emptied when the filter or the next-hop
 * tracker's verdicts change, and never used for a filter that matches
 * prefixes. The memo alone, then through the kernel protocol against the
 * fake kernel (what is installed per net must be what deciding per net
 * gives).
 */
import { parsePrefix } from '../../../src/lib/addr';
import { parseExportFilter } from '../../../src/proto/filter';
import { ExportMemo, type ExportDecision } from '../../../src/proto/kernel/export-memo';
import { KernelProtocol } from '../../../src/proto/kernel/kernel-protocol';
import { parseRouteLine } from '../../../src/config/route-syntax';
import { Route, RouteSource, type RouteAttrs } from '../../../src/route';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger, trackedTable, until } from '../../helpers/kernel-fixture';

const a = new RouteSource('a', 200);
const b = new RouteSource('b', 100);
const routeOf = (src: RouteSource, line: string): Route => new Route(src, parseRouteLine(line).attrs);
const decision = (attrs: RouteAttrs | undefined, source = 'a'): ExportDecision => ({ attrs, set: undefined, source, backup: undefined, held: undefined, accepted: 1, rejected: 0 });
const ACCEPT = parseExportFilter(undefined);

describe('ExportMemo', () => {
  const ra = routeOf(a, '10.0.0.0/24 via 192.0.2.2');
  const rb = routeOf(b, '10.0.0.0/24 via 198.51.100.2');

  it('answers a chain of the same Route objects, whatever array holds them, and only that chain', () => {
    const m = new ExportMemo();
    const d = decision(ra.attrs);
    expect(m.get([ra, rb], ACCEPT, 0)).toBeUndefined();
    m.set([ra, rb], d);
    expect(m.get([ra, rb], ACCEPT, 0)).toBe(d);
    expect(m.get([ra], ACCEPT, 0)).toBeUndefined(); // a prefix of the chain is another chain
    expect(m.get([rb, ra], ACCEPT, 0)).toBeUndefined(); // the order is part of the key
    expect(m.get([ra, rb, routeOf(b, '10.0.0.0/24 via 203.0.113.2')], ACCEPT, 0)).toBeUndefined();
    expect(m.hits).toBe(1);
    expect(m.misses).toBe(4);
  });

  it('misses on a changed route: the new Route object, even with the same content', () => {
    const m = new ExportMemo();
    m.set([ra, rb], decision(ra.attrs));
    expect(m.get([ra, routeOf(b, '10.0.0.0/24 via 198.51.100.2')], ACCEPT, 0)).toBeUndefined();
    expect(m.get([routeOf(a, '10.0.0.0/24 via 192.0.2.9'), rb], ACCEPT, 0)).toBeUndefined();
  });

  it('empties itself when the filter or the tracker verdicts move', () => {
    const m = new ExportMemo();
    expect(m.get([ra], ACCEPT, 0)).toBeUndefined();
    m.set([ra], decision(ra.attrs));
    expect(m.get([ra], ACCEPT, 3)).toBeUndefined(); // a verdict changed since
    expect(m.entries).toBe(0);
    m.set([ra], decision(ra.attrs));
    expect(m.get([ra], ACCEPT, 3)).toBeDefined();
    expect(m.get([ra], parseExportFilter([{ match: { source: 'a' }, action: 'accept' }]), 3)).toBeUndefined(); // a new filter: reconfigured
    expect(m.entries).toBe(0);
  });

  it('holds at most its limit of chains', () => {
    const m = new ExportMemo(2);
    const r = [0, 1, 2].map((i) => routeOf(a, `10.0.${i}.0/24 via 192.0.2.2`));
    for (const x of r) {
      m.get([x], ACCEPT, 0);
      m.set([x], decision(x.attrs));
    }
    expect(m.entries).toBe(1); // the third started it over
    expect(m.get([r[2]!], ACCEPT, 0)).toBeDefined();
    expect(m.get([r[0]!], ACCEPT, 0)).toBeUndefined();
  });
});

describe('kernel protocol export memo (fake kernel)', () => {
  const nets = (n: number): string[] => Array.from({ length: n }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
  const ours = (k: FakeKernel): string[] => k.lines({ family: 4, protocol: 144 });

  function setup(filter?: unknown, failover: 'off' | 'backup_routes' = 'off') {
    const kernel = new FakeKernel([
      { name: 'veth0', connected: ['192.0.2.0/24'] },
      { name: 'veth1', connected: ['198.51.100.0/24'] },
    ]);
    const { table, carrier } = trackedTable(['192.0.2.0/24', '198.51.100.0/24']);
    const filterOpt = filter !== undefined ? { filter: parseExportFilter(filter) } : {};
    const p = new KernelProtocol({ name: 'kernel1', table, family: 4, scanIntervalMs: 0, kernelIo: kernel.provider, log: memoryLogger(), failover, ...filterOpt });
    return { kernel, table, p, carrier };
  }

  it('decides the nets of one shared chain once, and still counts every net', async () => {
    const s = setup();
    const list = nets(100);
    announce(s.table, a, list.map((n) => `${n} via 192.0.2.2`));
    await s.p.start();
    expect(ours(s.kernel)).toHaveLength(100);
    expect(s.p.exportMemoStats()).toEqual({ hits: 99, misses: 1 });
    expect(s.p.channel.counters.accepted).toBe(100);
    await s.p.shutdown();
  });

  it('a route changed on one net gives that net its new want, the others keep theirs', async () => {
    const s = setup();
    const list = nets(10);
    announce(s.table, a, list.map((n) => `${n} via 192.0.2.2`));
    await s.p.start();
    announce(s.table, a, [`${list[3]} via 192.0.2.7`]);
    await until(() => ours(s.kernel).includes('10.0.3.0/24 via 192.0.2.7 dev veth0 proto 144'));
    expect(ours(s.kernel).filter((l) => l.includes('via 192.0.2.2'))).toHaveLength(9);
    await s.p.shutdown();
  });

  it('a filter that matches prefixes is run per net, never answered from the memo', async () => {
    // Reject one /16, set a metric on another: a memo keyed by chain would give every net the first net's verdict.
    const s = setup([
      { match: { net: '10.0.0.0/16+' }, action: 'reject' },
      { match: { net: '10.1.0.0/16+' }, set: { metric: 7 }, action: 'accept' },
    ]);
    const list = nets(512);
    announce(s.table, a, list.map((n) => `${n} via 192.0.2.2`));
    await s.p.start();
    const lines = ours(s.kernel);
    expect(lines).toHaveLength(256);
    expect(lines.every((l) => l.startsWith('10.1.') && l.includes('metric 7'))).toBe(true);
    expect(s.p.exportMemoStats()).toEqual({ hits: 0, misses: 0 });
    expect(s.p.channel.counters).toEqual({ accepted: 256, rejected: 256 });
    await s.p.shutdown();
  });

  it('a filter without prefixes is memoized, and its settings reach every net', async () => {
    const s = setup([{ match: { source: 'a' }, set: { metric: 9 }, action: 'accept' }], 'off');
    announce(s.table, a, nets(20).map((n) => `${n} via 192.0.2.2`));
    await s.p.start();
    expect(ours(s.kernel).every((l) => l.includes('metric 9'))).toBe(true);
    expect(s.p.exportMemoStats().hits).toBe(19);
    await s.p.shutdown();
  });

  it('a carrier loss and its recovery change the verdicts: every net moves to the backup and back', async () => {
    const s = setup(undefined, 'backup_routes');
    const list = nets(50);
    announce(s.table, a, list.map((n) => `${n} via 192.0.2.2`));
    announce(s.table, b, list.map((n) => `${n} via 198.51.100.2`));
    await s.p.start();
    const wantOf = (n: string): string | undefined => s.p.status(parsePrefix(n))[0]?.source;
    expect(list.every((n) => wantOf(n) === 'a')).toBe(true);
    const before = s.p.exportMemoStats().misses;
    s.carrier(2, false);
    await until(() => list.every((n) => wantOf(n) === 'b'));
    expect(s.p.exportMemoStats().misses).toBeGreaterThan(before); // decided again under the new verdicts
    s.carrier(2, true);
    await until(() => list.every((n) => wantOf(n) === 'a'));
    await s.p.shutdown();
  });
});
