/**
 * The failover benchmark's instrument, run small (2,000 nets, short timeout
 * and quiet period): it must measure a failover where one happens, and give
 * every figure of every phase, for krtsync and BIRD 2 alike. Which daemon is
 * faster is the benchmark's business, not this test's (figures are in
 * docs/benchmarks.md); what is checked here is that the measure is taken:
 * the primary source withdrawn moves every net for both daemons, BIRD moves
 * on carrier loss (its direct eBGP session checks the link), the FIB mirror
 * agrees with a fresh dump after every phase, and the run leaves no
 * namespace behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { kernelDescribe } from '../helpers/netns';

const N = 2000;
// Long enough for BIRD's sessions to come back after the source failure (connect delay up to 5 s).
const TIMEOUT_S = 10;

interface PhaseRecord {
  tool: string;
  failure: string;
  phase: string;
  forwarding_s: number | null;
  fib: { via1: number; via2: number; both: number; none: number; other: number };
  probes?: { destinations: number; moved: number; moved_s: number | null; sent: number; lost: number; baseline: { sent: number; via_expected: number } };
  settled_s?: number | null;
  kernel_changes?: number;
  cpu_s: number;
  timeout_s?: number;
  fib_check?: unknown;
  monitor_overflows?: number;
  rss_mb?: number;
}

function runBench(args: string[]): Promise<{ code: number | null; out: string; err: string; pid: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(__dirname, '..', '..', 'scripts', 'bench', 'failover.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += String(c)));
    child.stderr.on('data', (c) => (err += String(c)));
    child.on('exit', (code) => resolve({ code, out, err, pid: child.pid! }));
  });
}

kernelDescribe('bench:failover, run small', () => {
  let records: PhaseRecord[] = [];
  let output = '';
  let pid = 0;

  beforeAll(async () => {
    // The bench installs BIRD 2 itself when it is missing (scripts/debian-package.js).
    const r = await runBench(['--routes', String(N), '--timeout', String(TIMEOUT_S), '--quiet', '0.3', '--only', 'krtsync,bird', '--failure', 'source,carrier']);
    if (r.code !== 0) throw new Error(`bench:failover exited ${r.code}: ${r.err.slice(-3000)}`);
    output = r.out;
    pid = r.pid;
    records = r.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as PhaseRecord);
  }, 240_000);

  const phase = (tool: string, failure: string, kind: string): PhaseRecord => {
    const r = records.find((x) => x.tool === tool && x.failure === failure && x.phase === kind);
    if (!r) throw new Error(`no record for ${tool} ${failure} ${kind}`);
    return r;
  };

  /** Every figure of a failure or recovery is there, and the FIB mirror agreed with the dump taken after it. */
  const complete = (r: PhaseRecord): void => {
    expect(r.forwarding_s === null || r.forwarding_s >= 0).toBe(true);
    expect(r.fib.via1 + r.fib.via2 + r.fib.both + r.fib.none + r.fib.other).toBe(N);
    expect(r.probes!.destinations).toBeGreaterThan(0);
    expect(r.probes!.sent).toBeGreaterThan(0);
    expect(r.probes!.baseline.sent).toBeGreaterThan(0);
    expect(r.settled_s === null || r.settled_s! >= 0).toBe(true);
    expect(r.kernel_changes).toBeGreaterThanOrEqual(0);
    expect(r.cpu_s).toBeGreaterThanOrEqual(0);
    expect(r.timeout_s).toBe(TIMEOUT_S);
    expect(r.fib_check).toBe('dump agrees');
    expect(r.monitor_overflows).toBe(0);
  };

  /** Every net and every probed destination moved to uplink `link`, and the daemon settled. */
  const moved = (r: PhaseRecord, link: 1 | 2): void => {
    complete(r);
    expect(r.forwarding_s).not.toBeNull();
    expect(link === 1 ? r.fib.via1 : r.fib.via2).toBe(N);
    expect(r.probes!.moved).toBe(r.probes!.destinations);
    expect(r.probes!.moved_s).not.toBeNull();
    expect(r.settled_s).not.toBeNull();
    expect(r.kernel_changes).toBeGreaterThanOrEqual(N);
  };

  it.each(['krtsync', 'bird'])('%s: loads both sources onto the primary, then fails over to the backup when the primary source is withdrawn, and back', (tool) => {
    expect(phase(tool, 'load', 'both sources').fib.via1).toBe(N);
    const fail = phase(tool, 'source', 'failure');
    moved(fail, 2);
    // Before the failure every probe went through the primary.
    expect(fail.probes!.baseline.via_expected).toBe(fail.probes!.baseline.sent);
    moved(phase(tool, 'source', 'recovery'), 1);
  });

  it('bird: fails over when the primary link loses carrier (its session checks the link)', () => {
    moved(phase('bird', 'carrier', 'failure'), 2);
  });

  it('krtsync: the carrier failure and its recovery are measured, converged or not (then "> timeout" with how far it got)', () => {
    for (const kind of ['failure', 'recovery']) {
      const r = phase('krtsync', 'carrier', kind);
      complete(r);
      if (r.forwarding_s === null) expect(output).toContain(`> ${TIMEOUT_S} s (`);
    }
  });

  it('prints a table per failure with both daemons side by side, and their peak RSS', () => {
    for (const f of ['source', 'carrier']) expect(output).toContain(`| ${f}, 2,000 IPv4 nets | krtsync | bird | BIRD 2 ÷ krtsync |`);
    for (const tool of ['krtsync', 'bird']) expect(phase(tool, 'all', 'peak rss').rss_mb).toBeGreaterThan(0);
  });

  it('leaves no namespace behind', () => {
    const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
    expect(left).not.toMatch(new RegExp(`krtfo-.*-${pid}\\b`));
  });
});
