/**
 * A flapping stream source against the real kernel (docs/failover.md, "A
 * flapping source"), in a throwaway namespace: a BGP neighbour behind an
 * ExaBGP-format client is the primary of every net, a static-like source the
 * backup, and a kernel protocol with `failover: objects` installs them.
 * `ip monitor route` counts the kernel's route messages (ours: protocol 144),
 * `ip route get` and a dump of routes and objects say where each net
 * forwards. With damping, a neighbour that keeps going down and coming back
 * costs a bounded number of route messages: the first returns move every net
 * back (a route replace each), the later ones are suppressed (no kernel work,
 * the nets forward via the backup), and after the suppression the nets go
 * back once, with no wait beyond the damping's. Without damping every return
 * moves every net.
 */
import { parseConfig, type StreamProtocolConfig } from '../../src/config/config';
import type { Family } from '../../src/lib/addr';
import { StreamProtocol } from '../../src/proto/stream/stream';
import { TableSet } from '../../src/proto/table-set';
import { RouteSource } from '../../src/route';
import type { Table } from '../../src/table';
import { allVia, forwardsVia, routeLines } from '../helpers/failover-fixture';
import { announce, kernelProtocol, memoryLogger, newTable, ourRoutes, RouteWatcher, until } from '../helpers/kernel-fixture';
import { KrtsyncDaemon, until as untilDaemon } from '../helpers/daemon-fixture';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

const N = 1000;
const nets = Array.from({ length: N }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
const PRIMARY = '192.0.2.2';
const BACKUP = '198.51.100.2';

/** ExaBGP 4.2's JSON for the neighbour at PRIMARY (as in test/unit/proto/stream.test.ts). */
const header = (type: string): string => `{ "exabgp": "4.0.1", "type": "${type}", "neighbor": { "address": { "local": "192.0.2.1", "peer": "${PRIMARY}" }, "asn": { "local": 65000, "peer": 65001 } `;
const exa = {
  up: (): string => `${header('state')}, "state": "up" } }`,
  down: (): string => `${header('state')}, "state": "down", "reason": "flap" } }`,
  update: (list: readonly string[]): string =>
    `${header('update')}, "direction": "receive", "message": { "update": { "attribute": { "origin": "igp", "as-path": [ 65001 ] }, "announce": { "ipv4 unicast": { "${PRIMARY}": [ ${list.map((n) => `{ "nlri": "${n}" }`).join(', ')} ] } } } } } }`,
  eor: (): string => `${header('update')}, "direction": "receive", "message": { "eor": { "afi" : "ipv4", "safi" : "unicast" } } } }`,
};

/**
 * Damping whose penalty hardly decays while the test flaps (half_life 60 s), so the third return is suppressed
 * however slow the machine (three failures come to about 3000 >= suppress unless each flap takes over 15 s),
 * and the first two are not (two failures are at most 2000). The penalty is capped where it decays to reuse in
 * max_hold (2400 * 2^(5/60) = 2543), so a suppression ends 5 s after the last failure: the reuse is waited for
 * as an event, never raced by a read.
 */
const DAMPING = 'damping: { half_life: 60s, max_hold: 5s, penalty: 1000, suppress: 2500, reuse: 2400 }';
/**
 * The same, but a suppression lasts minutes (3000 decays to 2400 in 10 min * log2(1.25) = 3.2 min, 6000 in
 * 13 min): what `show` and the summary say of a suppressed source is read while it cannot have expired.
 */
const DAMPING_HELD = 'damping: { half_life: 10m, max_hold: 30m, penalty: 1000, suppress: 2500, reuse: 2400 }';

function streamConfig(damping: string): StreamProtocolConfig {
  const yaml = `protocols:\n  - name: bgp\n    type: stream\n    startup_wait: 0s\n    ${damping}\n`;
  return parseConfig('/x/k.yaml', yaml).protocols[0] as StreamProtocolConfig;
}

interface Flapped {
  /** Per return: whether it was suppressed. */
  suppressed: boolean[];
  /** The damping summary read right after the last return, in the same turn (no expiry can come between); undefined: no damping. */
  last: ReturnType<StreamProtocol['summary']>['damping'];
  /** Right after the last return was sent (its suppression, if any, was judged before: it ends at most max_hold after this). */
  lastReturn: number;
  /** The kernel protocol's route messages by then (the return before it settled; a suppressed one sends none). */
  sentAtLast: number;
  /** Route messages the kernel protocol sent while flapping (its pipeline's count, as kernel-failover.test.ts counts them). */
  sent: number;
  /**
   * Route lines `ip monitor route` printed meanwhile: our messages, and the notification the kernel sends
   * every listener for each route on an object we replace (docs/failover.md, "Our own notifications").
   */
  notified: number;
}

kernelDescribe('a flapping stream source (real kernel)', () => {
  let ns: Netns;
  beforeEach(() => {
    ns = createNetns('krtdamp');
  });
  afterEach(() => {
    RouteWatcher.stopAll();
    ns.destroy();
  });

  /** The primary neighbour at PRIMARY over a backup at BACKUP, every net in the kernel via the primary. */
  async function setUp(damping: string) {
    const table: Table = newTable('master4');
    announce(table, new RouteSource('backup', 50), nets.map((n) => `${n} via ${BACKUP}`));
    const log = memoryLogger();
    const stream = new StreamProtocol(streamConfig(damping), new TableSet('bgp', new Map<Family, Table>([[4, table]])), log);
    await stream.start();
    const kernel = kernelProtocol(ns, table, { failover: 'objects' });
    await kernel.start();
    const replies: unknown[] = [];
    const session = stream.connect('exabgp', 'exabgp', (m) => replies.push(m));
    let line = 0;
    const send = (...lines: string[]): void => lines.forEach((l) => session.onLine(l, ++line));
    send(exa.up(), exa.update(nets), exa.eor());
    await until(allVia(ns, '-4', N, PRIMARY), 15000);
    return { table, stream, kernel, log, send, replies };
  }

  /** Flaps the primary `times` times: down (every net forwards via the backup), then back with its routes. */
  async function flap(s: Awaited<ReturnType<typeof setUp>>, times: number): Promise<Flapped> {
    const watch = new RouteWatcher(ns, ['route']);
    await watch.ready();
    const sent0 = s.kernel.sync(4)!.stats.sent;
    const suppressed: boolean[] = [];
    let last: Flapped['last'] | undefined;
    let lastReturn = 0;
    let sentAtLast = 0;
    for (let i = 0; i < times; i++) {
      s.send(exa.down());
      // The failover's nexthop replace was written before the flush returned: the kernel forwards via the backup.
      expect(forwardsVia(ns, '10.1.2.1')).toBe(BACKUP);
      await s.kernel.sync(4)!.settled();
      s.send(exa.up(), exa.update(nets), exa.eor());
      last = s.stream.summary().damping;
      lastReturn = Date.now();
      sentAtLast = s.kernel.sync(4)!.stats.sent;
      const damped = (last?.suppressed ?? 0) > 0;
      suppressed.push(damped);
      if (damped) await s.kernel.sync(4)!.settled();
      else await until(allVia(ns, '-4', N, PRIMARY), 15000);
    }
    await s.kernel.sync(4)!.settled();
    return { suppressed, last, lastReturn, sentAtLast, sent: s.kernel.sync(4)!.stats.sent - sent0, notified: routeLines(await watch.stop()).length };
  }

  /** What a source flapped six times shows: the first two returns moved every net, the later ones were suppressed with no kernel work. */
  function flappedSix(f: Flapped, s: Awaited<ReturnType<typeof setUp>>): void {
    expect(s.replies).toEqual([]);
    // A first failure and a single return are never delayed; the third return, with the penalty at about 3000, is suppressed.
    expect(f.suppressed).toEqual([false, false, true, true, true, true]);
    // Each return that was not suppressed is a route replace per net; failures (one nexthop replace) and suppressed returns are none.
    expect(f.sent).toBe(2 * N);
    // What other listeners see: those replaces, and a notification per net for each failure that moved the nets off the primary.
    expect(f.notified).toBeLessThanOrEqual(2 * 2 * N + N);
    expect(f.last!.sources).toEqual([expect.objectContaining({ source: 'bgp/exabgp/192.0.2.2', state: 'suppressed', flaps: 6, routes: N })]);
    // Logged once per change of state, never per net.
    expect(s.log.entries.filter((e) => e.msg.includes('is flapping')).length).toBe(4);
  }

  it('damped: the first two returns move every net back, the later ones are suppressed with no kernel work; while suppressed the nets forward via the backup', async () => {
    const s = await setUp(DAMPING_HELD);
    const f = await flap(s, 6);
    flappedSix(f, s);
    // Suppressed for minutes: every net forwards via the backup, the primary's routes wait outside the table, shown as suppressed.
    expect(allVia(ns, '-4', N, BACKUP)()).toBe(true);
    expect(s.table.routeTotal).toBe(N);
    expect(s.stream.routeCount).toBe(N);
    const report = s.stream.summary().damping!;
    expect(report.sources).toEqual([expect.objectContaining({ source: 'bgp/exabgp/192.0.2.2', state: 'suppressed', flaps: 6, routes: N })]);
    expect(report.sources[0]!.suppressedUntil).toBe(f.last!.sources[0]!.suppressedUntil);
    expect(report.sources[0]!.suppressedUntil! - f.lastReturn).toBeGreaterThan(60_000);
    expect(s.log.entries.filter((e) => e.msg.includes('suppression over'))).toEqual([]);
    await s.stream.shutdown();
    await s.kernel.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('damped: reuse moves every net back once, a route replace each, as soon as the suppression ends (max_hold after the last failure)', async () => {
    const s = await setUp(DAMPING);
    const f = await flap(s, 6);
    // Only what cannot have changed by now is judged here: the reuse may come any time after max_hold.
    expect(f.suppressed).toEqual([false, false, true, true, true, true]);
    expect(f.last!.sources).toEqual([expect.objectContaining({ source: 'bgp/exabgp/192.0.2.2', state: 'suppressed', flaps: 6, routes: N })]);
    const until0 = f.last!.sources[0]!.suppressedUntil!;
    expect(until0).toBeGreaterThan(f.lastReturn);
    expect(until0 - f.lastReturn).toBeLessThanOrEqual(5000); // at most max_hold
    // The reuse, waited for as it happens (every net on the primary again): not before the suppression ended, and
    // one route replace per net since the last (suppressed) return.
    await until(allVia(ns, '-4', N, PRIMARY), until0 - Date.now() + 15000);
    expect(Date.now()).toBeGreaterThanOrEqual(until0);
    await s.kernel.sync(4)!.settled();
    expect(s.kernel.sync(4)!.stats.sent - f.sentAtLast).toBe(N);
    expect(forwardsVia(ns, '10.1.2.1')).toBe(PRIMARY);
    expect(s.log.entries.filter((e) => e.msg.includes('suppression over'))).toHaveLength(1);
    expect(s.stream.summary().damping!.suppressed).toBe(0);

    await s.stream.shutdown();
    await s.kernel.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('the daemon: `krtsync feed` of a flapping neighbour; show protocols, show routes --all and the journal say it is suppressed and until when, once; a suppression ends by itself', async () => {
    const d = new KrtsyncDaemon(ns, 'krt-damp');
    try {
      // bgp's suppression lasts minutes: what `show` says is read while it cannot have ended, however slow the
      // machine. bgp2, fed the same flaps, is suppressed for max_hold (5 s): its end is waited for as it happens.
      d.writeConfig(`log: { level: info }
protocols:
  - { name: backup, type: static, preference: 50, routes: [ "10.7.0.0/24 via ${BACKUP}", "10.7.1.0/24 via ${BACKUP}", "10.7.2.0/24 via ${BACKUP}", "10.7.3.0/24 via ${BACKUP}" ] }
  - { name: bgp, type: stream, grace: 60s, startup_wait: 0s, ${DAMPING_HELD} }
  - { name: bgp2, type: stream, grace: 60s, startup_wait: 0s, ${DAMPING} }
  - { name: kernel1, type: kernel, kernel_table: main, failover: objects }
`);
      await d.startReady();
      const neighbor = `"neighbor": {"address": "${PRIMARY}", "as": 65001}`;
      const flaps = (a: string, b: string): string => {
        const back = `{${neighbor}, "state": "up", "announce": ["${a} via ${PRIMARY}", "${b} via ${PRIMARY}"], "eor": true}`;
        const down = `{${neighbor}, "state": "down"}`;
        return [back, down, back, down, back, down, back].join('\n') + '\n';
      };
      expect(d.cli(['feed', '--client', 'exa'], flaps('10.7.0.0/24', '10.7.1.0/24'))).toMatchObject({ code: 0, err: '' });
      expect(d.cli(['feed', '--client', 'exa', '--protocol', 'bgp2'], flaps('10.7.2.0/24', '10.7.3.0/24'))).toMatchObject({ code: 0, err: '' });
      const protocols = JSON.parse(d.cli(['show', 'protocols', '--json']).out) as Array<{ name: string; routes: number; damping?: { suppressed: number; sources: Array<{ source: string; state: string; flaps: number; suppressedUntil: number; routes: number }> } }>;
      const bgp = protocols.find((p) => p.name === 'bgp')!;
      expect(bgp.damping).toMatchObject({ suppressed: 1, sources: [{ source: 'bgp/exa/192.0.2.2', state: 'suppressed', flaps: 3, routes: 2 }] });
      expect(bgp.routes).toBe(2);
      expect(d.cli(['show', 'protocols']).out).toMatch(/bgp\s+stream\s+up.*1 suppressed \(flapping\)/);
      const routes = JSON.parse(d.cli(['show', 'routes', '10.7.0.0/24', '--all', '--json']).out) as Array<Record<string, unknown>>;
      expect(routes).toEqual([
        expect.objectContaining({ source: 'backup', best: true, route: `via ${BACKUP}` }),
        expect.objectContaining({ source: 'bgp/exa/192.0.2.2', best: false, eligible: false, preference: 100, route: `via ${PRIMARY}`, suppressed: { until: new Date(bgp.damping!.sources[0]!.suppressedUntil).toISOString(), flaps: 3 }, unusable: expect.stringMatching(/^source flapping \(3 failures\), suppressed for \d+ s more, until /) }),
      ]);
      expect(d.cli(['show', 'routes', '10.7.0.0/24', '--all']).out).toMatch(/bgp\/exa\/192\.0\.2\.2 .*not used: source flapping \(3 failures\), suppressed for \d+ s more/);
      expect(forwardsVia(ns, '10.7.0.1')).toBe(BACKUP);
      // The daemon's stderr is read between our awaits (the CLI calls above block this thread).
      await untilDaemon('both suppressions in the log', () => /source bgp\/.* is flapping/.test(d.log) && /source bgp2\/.* is flapping/.test(d.log), 5000);
      expect(d.log.match(/source bgp\/exa\/192\.0\.2\.2 is flapping/g)).toHaveLength(1);
      expect(d.log.match(/source bgp2\/exa\/192\.0\.2\.2 is flapping/g)).toHaveLength(1);
      // bgp2's suppression ends by itself: its primary forwards again, logged once.
      await untilDaemon('the primary back after the suppression', () => forwardsVia(ns, '10.7.2.1') === PRIMARY && forwardsVia(ns, '10.7.3.1') === PRIMARY, 10000);
      await untilDaemon('the reuse in the log', () => /source bgp2\/.*suppression over/.test(d.log), 5000);
      expect(d.log.match(/suppression over/g)).toHaveLength(1);
      expect(JSON.parse(d.cli(['show', 'routes', '10.7.2.0/24', '--all', '--json']).out)).toEqual([expect.objectContaining({ source: 'bgp2/exa/192.0.2.2', best: true }), expect.objectContaining({ source: 'backup' })]);
      // bgp's is still on: its nets forward via the backup.
      expect(forwardsVia(ns, '10.7.0.1')).toBe(BACKUP);
      expect(await d.stop()).toBe(0);
    } finally {
      await d.dispose();
    }
  });

  it('undamped (damping: false): every return moves every net, a route replace each', async () => {
    const s = await setUp('damping: false');
    const f = await flap(s, 6);
    expect(f.suppressed).toEqual([false, false, false, false, false, false]);
    expect(f.sent).toBe(6 * N);
    expect(f.notified).toBeGreaterThanOrEqual(6 * N);
    await s.stream.shutdown();
    await s.kernel.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
  });
});
