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
 * Damping that suppresses the third return when the failures come within about 2.5 s of each other, for at
 * most 5 s: half_life 10 s, reuse 2000 (the penalty ceiling is 2000 * 2^(5/10) = 2828, so a hold lasts 3.5-5 s).
 */
const DAMPING = 'damping: { half_life: 10s, max_hold: 5s, penalty: 1000, suppress: 2500, reuse: 2000 }';

function streamConfig(damping: string): StreamProtocolConfig {
  const yaml = `protocols:\n  - name: bgp\n    type: stream\n    startup_wait: 0s\n    ${damping}\n`;
  return parseConfig('/x/k.yaml', yaml).protocols[0] as StreamProtocolConfig;
}

interface Flapped {
  /** Per return: whether it was suppressed. */
  suppressed: boolean[];
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
    for (let i = 0; i < times; i++) {
      s.send(exa.down());
      // The failover's nexthop replace was written before the flush returned: the kernel forwards via the backup.
      expect(forwardsVia(ns, '10.1.2.1')).toBe(BACKUP);
      await s.kernel.sync(4)!.settled();
      s.send(exa.up(), exa.update(nets), exa.eor());
      const damped = (s.stream.summary().damping?.suppressed ?? 0) > 0;
      suppressed.push(damped);
      if (damped) await s.kernel.sync(4)!.settled();
      else await until(allVia(ns, '-4', N, PRIMARY), 15000);
    }
    await s.kernel.sync(4)!.settled();
    return { suppressed, sent: s.kernel.sync(4)!.stats.sent - sent0, notified: routeLines(await watch.stop()).length };
  }

  it('damped: the first two returns move every net back, the later ones are suppressed with no kernel work, and reuse moves them back once', async () => {
    const s = await setUp(DAMPING);
    const f = await flap(s, 6);
    expect(s.replies).toEqual([]);
    // A first failure and a single return are never delayed; the failures come fast enough that the third return is suppressed.
    expect(f.suppressed.slice(0, 2)).toEqual([false, false]);
    expect(f.suppressed.slice(3)).toEqual([true, true, true]);
    const moved = f.suppressed.filter((x) => !x).length;
    // Each return that was not suppressed is a route replace per net; failures (one nexthop replace) and suppressed returns are none.
    expect(f.sent).toBe(moved * N);
    // What other listeners see: those replaces, and a notification per net for each failure that moved the nets off the primary.
    expect(f.notified).toBeLessThanOrEqual(2 * moved * N + N);
    // While suppressed: every net forwards via the backup, the primary's routes wait outside the table, shown as suppressed.
    expect(allVia(ns, '-4', N, BACKUP)()).toBe(true);
    expect(s.table.routeTotal).toBe(N);
    expect(s.stream.routeCount).toBe(N);
    const report = s.stream.summary().damping!;
    expect(report.sources).toEqual([expect.objectContaining({ source: 'bgp/exabgp/192.0.2.2', state: 'suppressed', flaps: 6, routes: N })]);
    const until0 = report.sources[0]!.suppressedUntil!;
    expect(until0 - Date.now()).toBeLessThanOrEqual(5000);
    // Logged once per change of state, never per net.
    expect(s.log.entries.filter((e) => e.msg.includes('is flapping')).length).toBe(f.suppressed.filter(Boolean).length);

    // Reuse: every net back on the primary by one route replace each, as soon as the suppression ends.
    const sent = s.kernel.sync(4)!.stats.sent;
    await until(allVia(ns, '-4', N, PRIMARY), until0 - Date.now() + 5000);
    expect(Date.now()).toBeGreaterThanOrEqual(until0);
    await s.kernel.sync(4)!.settled();
    expect(s.kernel.sync(4)!.stats.sent - sent).toBe(N);
    expect(forwardsVia(ns, '10.1.2.1')).toBe(PRIMARY);
    expect(s.log.entries.filter((e) => e.msg.includes('suppression over'))).toHaveLength(1);
    expect(s.stream.summary().damping!.suppressed).toBe(0);

    await s.stream.shutdown();
    await s.kernel.shutdown();
    expect(ourRoutes(ns)).toEqual([]);
  });

  it('the daemon: `krtsync feed` of a flapping neighbour; show protocols, show routes --all and the journal say it is suppressed and until when, once', async () => {
    const d = new KrtsyncDaemon(ns, 'krt-damp');
    try {
      d.writeConfig(`log: { level: info }
protocols:
  - { name: backup, type: static, preference: 50, routes: [ "10.7.0.0/24 via ${BACKUP}", "10.7.1.0/24 via ${BACKUP}" ] }
  - { name: bgp, type: stream, grace: 60s, startup_wait: 0s, ${DAMPING} }
  - { name: kernel1, type: kernel, kernel_table: main, failover: objects }
`);
      await d.startReady();
      const neighbor = `"neighbor": {"address": "${PRIMARY}", "as": 65001}`;
      const back = `{${neighbor}, "state": "up", "announce": ["10.7.0.0/24 via ${PRIMARY}", "10.7.1.0/24 via ${PRIMARY}"], "eor": true}`;
      const down = `{${neighbor}, "state": "down"}`;
      expect(d.cli(['feed', '--client', 'exa'], [back, down, back, down, back, down, back].join('\n') + '\n')).toMatchObject({ code: 0, err: '' });
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
      await untilDaemon('the suppression in the log', () => /is flapping/.test(d.log), 5000);
      expect(d.log.match(/is flapping/g)).toHaveLength(1);
      // The suppression ends by itself: the primary forwards again, logged once.
      await untilDaemon('the primary back after the suppression', () => forwardsVia(ns, '10.7.0.1') === PRIMARY && forwardsVia(ns, '10.7.1.1') === PRIMARY, 10000);
      await untilDaemon('the reuse in the log', () => /suppression over/.test(d.log), 5000);
      expect(d.log.match(/suppression over/g)).toHaveLength(1);
      expect(JSON.parse(d.cli(['show', 'routes', '10.7.0.0/24', '--all', '--json']).out)).toEqual([expect.objectContaining({ source: 'bgp/exa/192.0.2.2', best: true }), expect.objectContaining({ source: 'backup' })]);
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
