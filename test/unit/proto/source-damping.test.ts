/**
 * Flap damping of stream sources (src/proto/stream/source-damping.ts): the
 * penalty arithmetic (RFC 2439's, shared with the next-hop tracker) and the
 * state machine (down, suppressed, reused) on a fake clock, with the timer
 * that ends a suppression driven by jest's fake timers.
 */
import { parsePrefix } from '../../../src/lib/addr';
import { nullLogger, type Logger } from '../../../src/proto/logger';
import { SourceDamping } from '../../../src/proto/stream/source-damping';
import type { StagedNets } from '../../../src/proto/stream/startup-hold';
import { RouteAttrs } from '../../../src/route';
import { DEFAULT_DAMPING } from '../../../src/table';

const attrs = RouteAttrs.of({ type: 'blackhole' });

function damping(log: Logger = nullLogger): { d: SourceDamping; reused: Array<[string, number]> } {
  const reused: Array<[string, number]> = [];
  const d = new SourceDamping(DEFAULT_DAMPING, { reuse: (name, staged: StagedNets) => reused.push([name, staged.size]) }, log, 'bgp', () => Date.now());
  return { d, reused };
}

describe('stream source flap damping', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('never delays a first or a second return; the third failure in quick succession suppresses the return', () => {
    const { d } = damping();
    expect(d.returned('bgp/x/192.0.2.2')).toBe(0); // no failure yet: nothing to judge
    d.failed('bgp/x/192.0.2.2');
    expect(d.returned('bgp/x/192.0.2.2')).toBe(0);
    jest.advanceTimersByTime(1000);
    d.failed('bgp/x/192.0.2.2');
    expect(d.returned('bgp/x/192.0.2.2')).toBe(0);
    expect(d.staged('bgp/x/192.0.2.2')).toBeUndefined();
    jest.advanceTimersByTime(1000);
    d.failed('bgp/x/192.0.2.2');
    const until = d.returned('bgp/x/192.0.2.2');
    // Penalty: 1000 * 2^(-2/15) + 1000 * 2^(-1/15) + 1000 = 2866.5; it decays to reuse (1000) in 15 s * log2(2.8665) = 22.8 s.
    expect(until - Date.now()).toBe(Math.ceil(15_000 * Math.log2((1000 * 2 ** (-2 / 15) + 1000 * 2 ** (-1 / 15) + 1000) / 1000)));
    expect(d.staged('bgp/x/192.0.2.2')).toBeDefined();
    expect(d.summary()).toMatchObject({ suppressed: 1, failures: 3, sources: [{ source: 'bgp/x/192.0.2.2', state: 'suppressed', flaps: 3, penalty: 2867, suppressedUntil: until, routes: 0 }] });
  });

  it('hands the staged routes to the table when the penalty has decayed to reuse, once, and logs each change of state once', () => {
    const lines: string[] = [];
    const { d, reused } = damping({ ...nullLogger, info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) });
    for (let i = 0; i < 3; i++) d.failed('s');
    const until = d.returned('s');
    d.staged('s')!.set(parsePrefix('10.0.0.0/24'), attrs);
    d.staged('s')!.set(parsePrefix('10.0.1.0/24'), attrs);
    jest.advanceTimersByTime(until - Date.now() - 1);
    expect(reused).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(reused).toEqual([['s', 2]]);
    expect(d.staged('s')).toBeUndefined();
    expect(d.summary()).toMatchObject({ suppressed: 0, sources: [{ source: 's', state: 'up', routes: 0 }] });
    // The penalty is at reuse now (1000): one more failure is 2000, below suppress: that return is at once.
    d.failed('s');
    expect(d.returned('s')).toBe(0);
    jest.advanceTimersByTime(120_000);
    expect(reused).toEqual([['s', 2]]);
    expect(lines).toEqual([
      expect.stringMatching(/^warn source s is flapping \(3 failures, penalty 3000\): its routes are suppressed for 24 s, until .*; its nets stay on their other routes$/),
      'info source s: suppression over (3 failures, penalty 1000): its 2 routes go into the table',
    ]);
  });

  it('a failure while suppressed drops what was staged, and the next return is held longer, never past max_hold', () => {
    const { d, reused } = damping();
    for (let i = 0; i < 3; i++) d.failed('s');
    const first = d.returned('s');
    d.staged('s')!.set(parsePrefix('10.0.0.0/24'), attrs);
    expect(d.failed('s')).toBe(1);
    expect(d.staged('s')).toBeUndefined();
    expect(d.summary().sources[0]).toMatchObject({ state: 'down', flaps: 4 });
    // Down: no timer hands anything over.
    jest.advanceTimersByTime(first - Date.now() + 1000);
    expect(reused).toEqual([]);
    for (let i = 0; i < 20; i++) d.failed('s');
    const capped = d.returned('s');
    expect(capped - Date.now()).toBe(DEFAULT_DAMPING.maxHoldMs);
    jest.advanceTimersByTime(DEFAULT_DAMPING.maxHoldMs);
    expect(reused).toEqual([['s', 0]]);
  });

  it('a refresh cycle drops what a suppressed source staged; releaseAll hands everything over (or drops it) and forgets', () => {
    const { d, reused } = damping();
    for (let i = 0; i < 3; i++) d.failed('a');
    d.returned('a');
    d.staged('a')!.set(parsePrefix('10.0.0.0/24'), attrs);
    expect(d.restage('a')).toBe(1);
    expect(d.staged('a')!.size).toBe(0);
    d.staged('a')!.set(parsePrefix('10.0.2.0/24'), attrs);
    const seen: string[] = [];
    d.forEachSuppressed(undefined, (r) => seen.push(`${r.source} ${r.net} ${r.flaps}`));
    d.forEachSuppressed(parsePrefix('10.0.2.0/24'), (r) => seen.push(`one ${r.net}`));
    d.forEachSuppressed(parsePrefix('10.0.3.0/24'), (r) => seen.push(`none ${r.net}`));
    expect(seen).toEqual(['a 10.0.2.0/24 3', 'one 10.0.2.0/24']);
    d.releaseAll(false);
    expect(reused).toEqual([['a', 1]]);
    expect(d.summary()).toEqual({ suppressed: 0, failures: 3, sources: [] });
    jest.advanceTimersByTime(120_000);
    expect(reused).toEqual([['a', 1]]);
  });

  it('forgets a source once its penalty has decayed below half of reuse: state grows with recent flappers only', () => {
    const { d } = damping();
    d.failed('old');
    jest.advanceTimersByTime(15_000); // 1000 -> 500: kept (not below half of reuse)
    d.failed('new');
    expect(d.summary().sources.map((r) => r.source)).toEqual(['old', 'new']);
    jest.advanceTimersByTime(1);
    d.failed('newer');
    expect(d.summary().sources.map((r) => r.source)).toEqual(['new', 'newer']);
    // A forgotten source that comes back is not judged: it failed long ago.
    expect(d.returned('old')).toBe(0);
  });

  it('remembers one failure for at least a half-life even when reuse is above the penalty (found against the kernel)', () => {
    const reused: string[] = [];
    const d = new SourceDamping({ ...DEFAULT_DAMPING, reuse: 2000, halfLifeMs: 10_000, maxHoldMs: 5000 }, { reuse: (name) => reused.push(name) }, nullLogger, 'bgp', () => Date.now());
    for (let i = 0; i < 3; i++) {
      d.failed('s');
      expect(d.summary().sources).toHaveLength(1);
      if (i < 2) expect(d.returned('s')).toBe(0);
      jest.advanceTimersByTime(1000);
    }
    expect(d.returned('s') - Date.now()).toBe(Math.ceil(10_000 * Math.log2((1000 * 2 ** -0.3 + 1000 * 2 ** -0.2 + 1000 * 2 ** -0.1) / 2000)));
  });
});
