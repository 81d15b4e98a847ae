/**
 * Small parts of the kernel protocol: merge_paths, backoff, the token bucket,
 * rate-limited logging, the sync-state machine, table names and protocol
 * numbers, the channel.
 */
import fc from 'fast-check';
import { parseRouteLine } from '../../../src/config/route-syntax';
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import { backoffDelay, TokenBucket } from '../../../src/lib/backoff';
import { BgpAttrs, BgpNeighbor, BgpPath, orderRoutes, Route, RouteAttrs, RouteSource } from '../../../src/route';
import { ExportChannel } from '../../../src/proto/channel';
import { parseExportFilter } from '../../../src/proto/filter';
import { mergePaths } from '../../../src/proto/merge-paths';
import { RateLimitedLog, type Logger } from '../../../src/proto/logger';
import { checkProtocolNumber, DEFAULT_KERNEL_PROTOCOL, parseRtTables, resolveKernelTable } from '../../../src/proto/kernel/options';
import { PHASE, SYNC_TRANSITIONS, syncStateMachine, type SyncState } from '../../../src/proto/kernel/sync-state';
import { KernelLearn } from '../../../src/proto/kernel/learn';
import { toKernelRoute } from '../../../src/proto/kernel/convert';

const a = new RouteSource('a', 100);
const b = new RouteSource('b', 100);
const c = new RouteSource('c', 100);
const low = new RouteSource('low', 50);
function route(line: string, src: RouteSource): Route {
  return new Route(src, parseRouteLine(line).attrs);
}

describe('merge_paths', () => {
  it('joins the next hops of equal-preference routes, best first, and stops at another preference', () => {
    const attrs = mergePaths([route('10.0.0.0/24 via 192.0.2.2 mtu 1400', a), route('10.0.0.0/24 via 192.0.2.3', b), route('10.0.0.0/24 via 192.0.2.4', low)], { limit: 8 })!;
    expect(attrs.toString()).toBe('via 192.0.2.2, via 192.0.2.3 mtu 1400');
  });

  it('caps the hops at the limit and drops duplicates', () => {
    const routes = [route('10.0.0.0/24 via 192.0.2.2', a), route('10.0.0.0/24 via 192.0.2.2', b), route('10.0.0.0/24 via 192.0.2.3', c)];
    expect(mergePaths(routes, { limit: 8 })!.nexthops!.hops).toHaveLength(2);
    expect(mergePaths(routes, { limit: 1 })!).toBe(routes[0]!.attrs);
  });

  it('merges BGP routes equal down to the router id (multipath), not those the decision process tells apart earlier', () => {
    const bgp = (gw: string, as: number, path: number[], med?: number): Route => {
      const neighbor = BgpNeighbor.of({ address: parseAddr(gw), as, localAs: 65000 });
      const attrs = RouteAttrs.of({ nexthops: [{ gateway: parseAddr(gw) }], bgp: BgpAttrs.of(BgpPath.of({ asPath: path, ...(med !== undefined ? { med } : {}) }), neighbor) });
      return new Route(new RouteSource(`bgp/x/${gw}`, 100), attrs);
    };
    const chain = orderRoutes([bgp('192.0.2.3', 65003, [65003], 50), bgp('192.0.2.2', 65002, [65002], 10), bgp('192.0.2.4', 65004, [65004, 1]), bgp('192.0.2.5', 65000, [65005])]);
    const merged = mergePaths(chain, { limit: 8 })!;
    // Two eBGP paths of length 1 from two ASes (MED not compared): one ECMP route; the longer path and the iBGP one stay out.
    expect(merged.toString()).toBe('via 192.0.2.2, via 192.0.2.3');
    expect(merged.bgp).toBe(chain[0]!.attrs.bgp);
    expect(mergePaths([bgp('192.0.2.2', 65002, [65002]), route('10.0.0.0/24 via 192.0.2.9', b)], { limit: 8 })!.toString()).toBe('via 192.0.2.2');
  });

  it('does not merge into a blackhole, and skips non-unicast peers', () => {
    expect(mergePaths([route('blackhole 10.0.0.0/24', a), route('10.0.0.0/24 via 192.0.2.3', b)], { limit: 8 })!.type).toBe('blackhole');
    expect(mergePaths([route('10.0.0.0/24 via 192.0.2.3', a), route('blackhole 10.0.0.0/24', b)], { limit: 8 })!.toString()).toBe('via 192.0.2.3');
  });

  it('through the channel: filter first, then merge the accepted routes', () => {
    const ch = new ExportChannel({ mergePaths: { limit: 4 }, filter: parseExportFilter([{ match: { source: 'b' }, action: 'reject' }]) });
    const out = ch.exportNet(parsePrefix('10.0.0.0/24'), [route('10.0.0.0/24 via 192.0.2.2', a), route('10.0.0.0/24 via 192.0.2.3', b), route('10.0.0.0/24 via 192.0.2.4', c)])!;
    expect(out.attrs.toString()).toBe('via 192.0.2.2, via 192.0.2.4');
    expect(out.source).toBe(a);
    expect(ch.counters).toEqual({ accepted: 2, rejected: 1 });
  });

  it('the channel never exports its own learn source', () => {
    const ch = new ExportChannel({ ignoreSource: a });
    expect(ch.exportNet(parsePrefix('10.0.0.0/24'), [route('10.0.0.0/24 via 192.0.2.2', a)])).toBeUndefined();
  });
});

describe('backoff', () => {
  it('doubles from the base up to the cap', () => {
    const p = { baseMs: 100, maxMs: 1000, jitter: 0 };
    expect([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(p, n))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('jitter only shortens, by at most its fraction', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 0.999, noNaN: true }), (n, r) => {
        const p = { baseMs: 1000, maxMs: 300_000, jitter: 0.2 };
        const d = backoffDelay(p, n, () => r);
        const full = Math.min(300_000, 1000 * 2 ** Math.min(n - 1, 40));
        return d <= full && d >= full * 0.8 - 1;
      }),
    );
  });
});

describe('token bucket', () => {
  it('allows a burst, then the rate', () => {
    let now = 0;
    const tb = new TokenBucket(3, 2, () => now);
    expect([tb.take(), tb.take(), tb.take(), tb.take()]).toEqual([true, true, true, false]);
    expect(tb.waitMs()).toBe(500);
    now = 500;
    expect([tb.take(), tb.take()]).toEqual([true, false]);
    now = 100_000;
    expect([tb.take(3), tb.take()]).toEqual([true, false]);
  });
});

describe('rate-limited log', () => {
  it('writes the first of a kind, counts the rest, and reports the count with the next', () => {
    const lines: string[] = [];
    const log: Logger = { error: () => undefined, warn: (m) => lines.push(m), info: () => undefined, debug: () => undefined };
    let now = 0;
    const rl = new RateLimitedLog(log, 1000, () => now);
    expect(rl.write('warn', 'EEXIST', 'route refused')).toBe(true);
    for (let i = 0; i < 5; i++) rl.write('warn', 'EEXIST', 'route refused');
    rl.write('warn', 'ENETUNREACH', 'other kind');
    now = 1500;
    rl.write('warn', 'EEXIST', 'route refused');
    expect(lines).toEqual(['route refused', 'other kind', 'route refused (5 similar messages suppressed)']);
  });

  it('writes up to `burst` entries of a kind an interval before counting', () => {
    const lines: string[] = [];
    const log: Logger = { error: () => undefined, warn: () => undefined, info: (m) => lines.push(m), debug: () => undefined };
    let now = 0;
    const rl = new RateLimitedLog(log, 1000, () => now, 3);
    const written = Array.from({ length: 10 }, (_, i) => rl.write('info', 'connect', `client ${i} connected`));
    expect(written).toEqual([true, true, true, false, false, false, false, false, false, false]);
    now = 1001;
    rl.write('info', 'connect', 'client 10 connected');
    expect(lines).toEqual(['client 0 connected', 'client 1 connected', 'client 2 connected', 'client 10 connected (7 similar messages suppressed)']);
  });

  it('reports the count at the end of the interval when the repeats simply stop', async () => {
    const lines: string[] = [];
    const log: Logger = { error: () => undefined, warn: (m) => lines.push(m), info: () => undefined, debug: () => undefined };
    const rl = new RateLimitedLog(log, 50);
    rl.write('warn', 'repair-loop', 'route 10.0.0.0/24 keeps being changed; next repair in 500 ms');
    rl.write('warn', 'repair-loop', 'route 10.0.0.0/24 keeps being changed; next repair in 1000 ms');
    rl.write('warn', 'repair-loop', 'route 10.0.0.0/24 keeps being changed; next repair in 2000 ms');
    expect(lines).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 120));
    expect(lines).toEqual([
      'route 10.0.0.0/24 keeps being changed; next repair in 500 ms',
      'route 10.0.0.0/24 keeps being changed; next repair in 2000 ms (2 similar messages suppressed)',
    ]);
  });
});

describe('sync state machine', () => {
  it('follows the first sync, a scan, and a graceful-restart hold to its end', () => {
    const sm = syncStateMachine('t');
    for (const s of ['first-dump', 'first-feed', 'pruning', 'idle', 'scan-settle', 'scan-dump', 'pruning', 'idle', 'closing', 'down'] as const) sm.go(s);
    expect(sm.state).toBe('down');
    const gr = syncStateMachine('t');
    for (const s of ['first-dump', 'first-feed', 'holding', 'pruning', 'idle'] as const) gr.go(s);
    expect(gr.state).toBe('idle');
  });

  it.each([
    ['init', 'idle'],
    ['idle', 'pruning'],
    ['first-dump', 'scan-dump'],
    ['holding', 'scan-settle'],
    ['closing', 'idle'],
  ] as const)('fails loudly on %s -> %s', (from, to) => {
    const sm = syncStateMachine('t');
    const path = {
      init: [],
      idle: ['first-dump', 'first-feed', 'pruning', 'idle'],
      'first-dump': ['first-dump'],
      holding: ['first-dump', 'first-feed', 'holding'],
      closing: ['closing'],
    }[from] as Parameters<typeof sm.go>[0][];
    for (const s of path) sm.go(s);
    expect(() => sm.go(to)).toThrow(/impossible transition/);
  });

  it('says in one table what each phase allows', () => {
    const all = Object.keys(SYNC_TRANSITIONS) as SyncState[];
    expect(all.filter(PHASE.sends)).toEqual(['pruning', 'holding', 'idle']);
    expect(all.filter(PHASE.deletes)).toEqual(['pruning', 'idle']);
    expect(all.filter(PHASE.buffers)).toEqual(['init', 'first-dump', 'first-feed', 'scan-dump']);
    expect(all.filter(PHASE.scans)).toEqual(['idle']);
    // Every live phase can reach closing; closing only goes down.
    for (const s of all.filter(PHASE.live)) expect(SYNC_TRANSITIONS[s]).toContain('closing');
    expect(SYNC_TRANSITIONS.closing).toEqual(['down']);
  });
});

describe('kernel options', () => {
  const files = {
    read: (p: string) =>
      ({
        '/etc/iproute2/rt_tables': '# comment\n255 local\n254 main\n100 transit\n',
        '/etc/iproute2/rt_tables.d/vrf.conf': '0x1000 vrf-blue # hex\n',
      })[p],
    list: (d: string) => (d === '/etc/iproute2/rt_tables.d' ? ['vrf.conf', 'ignored.txt'] : []),
  };

  it('resolves table names like iproute2, and numbers up to 2^32-1', () => {
    expect(resolveKernelTable('main', files)).toBe(254);
    expect(resolveKernelTable('transit', files)).toBe(100);
    expect(resolveKernelTable('vrf-blue', files)).toBe(0x1000);
    expect(resolveKernelTable(4294967295, files)).toBe(4294967295);
    expect(resolveKernelTable('1000', files)).toBe(1000);
  });

  it('refuses unknown names, the local table and ids out of range', () => {
    expect(() => resolveKernelTable('nosuch', files)).toThrow(/"nosuch": no such name/);
    expect(() => resolveKernelTable('local', files)).toThrow(/belongs to the kernel/);
    expect(() => resolveKernelTable(2 ** 32, files)).toThrow(/1\.\.4294967295/);
  });

  it('parses rt_tables text', () => {
    expect([...parseRtTables('1 a\n  2\tb  # x\n#3 c\nbad line\n')]).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('uses a protocol number nobody else does, and refuses theirs', () => {
    expect(checkProtocolNumber(DEFAULT_KERNEL_PROTOCOL)).toBe(144);
    for (const n of [2, 4, 12, 16, 42, 99, 186, 192, 198]) expect(() => checkProtocolNumber(n)).toThrow(/belongs to/);
    expect(() => checkProtocolNumber(256)).toThrow(/1\.\.255/);
  });
});

describe('learn', () => {
  function fakeTable() {
    const routes = new Map<string, string>();
    return {
      routes,
      announce: (net: import('../../../src/lib/addr').Prefix, _src: RouteSource, attrs: import('../../../src/route').RouteAttrs) => void routes.set(net.toString(), attrs.toString()),
      withdraw: (net: import('../../../src/lib/addr').Prefix) => void routes.delete(net.toString()),
      refreshBegin: () => undefined,
      refreshEnd: () => 0,
    };
  }
  const target = { family: 4 as const, table: 254, protocol: 4 };
  const links = { indexOf: (n: string) => (n === 'veth0' ? 3 : undefined) };
  const msg = (line: string, metric?: number, protocol = 4) => {
    const { net, attrs } = parseRouteLine(line);
    return { ...toKernelRoute(net, attrs, metric === undefined ? undefined : { metric }, target, links), protocol };
  };

  it('announces the lowest-metric foreign route per net and follows deletes', () => {
    const t = fakeTable();
    const learn = new KernelLearn(t, new RouteSource('k-learn', 10), () => undefined);
    learn.onRoute(msg('10.0.0.0/24 via 192.0.2.2', 20), false);
    learn.onRoute(msg('10.0.0.0/24 via 192.0.2.3', 10), false);
    learn.onRoute(msg('10.0.1.0/24 dev veth0', undefined, 2), false); // proto kernel: not learned
    expect([...t.routes]).toEqual([['10.0.0.0/24', 'via 192.0.2.3 metric 10']]);
    learn.onRoute(msg('10.0.0.0/24 via 192.0.2.3', 10), true);
    expect([...t.routes]).toEqual([['10.0.0.0/24', 'via 192.0.2.2 metric 20']]);
  });

  it('resyncs from a full dump: what vanished unnoticed is withdrawn', () => {
    const t = fakeTable();
    const learn = new KernelLearn(t, new RouteSource('k-learn', 10), () => undefined);
    learn.onRoute(msg('10.0.0.0/24 via 192.0.2.2'), false);
    learn.onRoute(msg('10.0.1.0/24 via 192.0.2.2'), false);
    learn.resync(4, [msg('10.0.1.0/24 via 192.0.2.9'), msg('10.0.2.0/24 via 192.0.2.2')]);
    expect([...t.routes].sort()).toEqual([
      ['10.0.1.0/24', 'via 192.0.2.9'],
      ['10.0.2.0/24', 'via 192.0.2.2'],
    ]);
  });
});
