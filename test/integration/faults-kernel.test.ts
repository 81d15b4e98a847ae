/**
 * The kernel pushing back, as the whole daemon sees it: routes the kernel
 * refuses (unreachable gateway, missing device, a foreign route in the way),
 * a link flapping, another process deleting our route in a loop.
 *
 * Promises checked: a refused route is isolated (every other route is
 * installed), reported with its errno and the kernel's text (`show kernel
 * --failed`, the log), retried with backoff and not in a loop, and installed
 * once the cause goes away; a flapping link costs only the routes through
 * it, and they come back; a route deleted in a loop is repaired at a bounded
 * rate with log lines rate-limited and counted; foreign routes never change.
 */
import { spawn } from 'node:child_process';
import { createNetns, kernelDescribe, OUR_PROTO_SHOWN, type Netns } from '../helpers/netns';
import { foreign, KrtsyncDaemon, ours, sleep, until } from '../helpers/daemon-fixture';
import { RouteWatcher } from '../helpers/kernel-fixture';

kernelDescribe('the kernel pushing back (whole daemon)', () => {
  let ns: Netns;
  let d: KrtsyncDaemon;
  let foreignBefore: string[];

  /**
   * Foreign routes we compare: all but those the test itself changes (10.4.0.0/24, the new device and
   * address) and the kernel's own on veth1, which it drops when the link flaps (IPv6 addresses go with it).
   */
  const foreignKept = (): string[] => foreign(ns).filter((l) => !/^10\.4\.0\.0\/24|krt-new|203\.0\.113\.|veth1/.test(l));

  /** `ip monitor route` in the namespace (RouteWatcher: ready and stop wait for its markers); stop() gives the lines seen, continuation lines left out. */
  function monitor(): { ready: Promise<void>; stop: () => Promise<string[]> } {
    const w = new RouteWatcher(ns);
    return { ready: w.ready(), stop: async () => (await w.stop()).filter((l) => !l.startsWith('\t')) };
  }

  beforeAll(async () => {
    ns = createNetns('krt-push');
    // A foreign route at the very net and metric we want for 10.4.0.0/24: our add gets EEXIST.
    ns.ipBatch(['route add 10.4.0.0/24 via 192.0.2.9 proto static', 'route add 10.9.0.0/24 via 192.0.2.9 proto static metric 5']);
    ns.exec('sysctl', ['-q', '-w', 'net.ipv6.route.max_size=16']); // this namespace only
    foreignBefore = foreignKept();
    d = new KrtsyncDaemon(ns, 'krt-push');
    const v6 = Array.from({ length: 64 }, (_, i) => `      - 2001:db8:50:${i.toString(16)}::/64 via 2001:db8:1::2`).join('\n');
    // Next-hop tracking off: this is the kernel pushing back on routes sent whatever their next hop's state
    // (with tracking, routes through a dead link or an uncovered gateway are not sent: nexthop-tracking.test.ts).
    d.writeConfig(`nexthop_tracking: false
protocols:
  - name: static1
    type: static
    routes:
      - 10.1.0.0/24 via 192.0.2.2
      - 10.2.0.0/24 via 203.0.113.9
      - 10.3.0.0/24 dev krt-new0
      - 10.4.0.0/24 via 192.0.2.2
      - 10.5.0.0/24 via 198.51.100.2
      - 10.5.1.0/24 dev veth1
      - 10.6.0.0/24 via 192.0.2.2
${v6}
  - name: kernel1
    type: kernel
`);
    await d.startReady();
  });

  afterAll(async () => {
    RouteWatcher.stopAll();
    await d?.dispose();
    ns?.destroy();
  });

  it('isolates routes the kernel refuses, reports each with its errno and text, and installs the rest', () => {
    expect(ours(ns)).toEqual(['10.1.0.0/24 via 192.0.2.2 dev veth0', '10.5.0.0/24 via 198.51.100.2 dev veth1', '10.5.1.0/24 dev veth1 scope link', '10.6.0.0/24 via 192.0.2.2 dev veth0']);
    const failed = d.kernelStatus(true).map((s) => `${s.net} ${s.state} ${s.error?.errnoName}`);
    expect(failed.sort()).toEqual(['10.2.0.0/24 failed ENETUNREACH', '10.3.0.0/24 failed ENODEV', '10.4.0.0/24 failed EEXIST']);
    expect(d.log).toMatch(/kernel refused add 10\.2\.0\.0\/24: ENETUNREACH \(Nexthop has invalid gateway\)/);
    expect(d.log).toMatch(/10\.3\.0\.0\/24.*ENODEV/);
    expect(d.cli(['show', 'status']).out).toMatch(/, 3 failed/);
    // The foreign route that is in the way is left exactly as it was.
    expect(ns.ip('route', 'show', '10.4.0.0/24').trim()).toBe('10.4.0.0/24 via 192.0.2.9 dev veth0 proto static');
  });

  it('does not count net.ipv6.route.max_size against routes: the kernel takes all 64 IPv6 routes at max_size 16', () => {
    // Since Linux 6.3 the sysctl bounds the dst cache only; the FIB takes every route (there is no limit to hit).
    expect(ns.exec('sysctl', ['-n', 'net.ipv6.route.max_size']).trim()).toBe('16');
    expect(ours(ns, '-6')).toHaveLength(64);
  });

  it('retries refused routes with backoff, not in a loop', async () => {
    // The kernel's refusals; an unknown device is not sent at all until a link appears.
    const attempts = (): number[] => d.kernelStatus(true).filter((s) => s.error!.errno > 0).map((s) => s.attempts);
    const first = attempts();
    await sleep(3000);
    const later = attempts();
    expect(later).toHaveLength(2);
    // 1 s doubling (jitter shortens by at most 20 %): at most 3 more tries in 3 s per route, never hundreds.
    for (let i = 0; i < later.length; i++) expect(later[i]! - first[i]!).toBeLessThanOrEqual(3);
    // And they are retried: each gets another try (the next one may be 4 s away by now).
    await until('another try of each refused route', () => attempts().every((a, i) => a > first[i]!), 15000, 200);
    for (const s of d.kernelStatus(true)) if (s.error!.errno > 0) expect(s.retryAt).toBeGreaterThan(Date.now() - 1000);
  });

  it('installs each refused route once its cause goes away: the gateway, the device, the foreign route', async () => {
    ns.ip('addr', 'add', '203.0.113.1/24', 'dev', 'veth1');
    ns.ipBatch(['link add krt-new0 type veth peer name krt-new1', 'link set krt-new0 up', 'link set krt-new1 up']);
    ns.ip('route', 'del', '10.4.0.0/24', 'via', '192.0.2.9', 'proto', 'static');
    await until('every route installed', () => ours(ns).length === 7 && d.kernelStatus(true).length === 0, 10000);
    expect(ours(ns)).toContain('10.2.0.0/24 via 203.0.113.9 dev veth1');
    expect(ours(ns)).toContain('10.3.0.0/24 dev krt-new0 scope link');
    expect(ours(ns)).toContain('10.4.0.0/24 via 192.0.2.2 dev veth0');
  });

  it('survives a link flapping 20 times: routes through it (and its peer) come back, routes elsewhere are never touched', async () => {
    const want = ours(ns);
    const m = monitor();
    await m.ready;
    await new Promise<void>((resolve, reject) => {
      const flap = spawn('ip', ['netns', 'exec', ns.name, 'sh', '-c', 'for i in $(seq 20); do ip link set veth1 down; sleep 0.03; ip link set veth1 up; sleep 0.03; done']);
      flap.on('error', reject);
      flap.on('exit', () => resolve());
    });
    await until('routes through veth1 back after the flapping', () => ours(ns).join('\n') === want.join('\n') && d.kernelStatus(true).length === 0, 15000);
    const seen = await m.stop();
    // Everything the monitor saw concerns the flapping pair (the kernel's own drops, our re-adds); krt-new0's route was left
    // alone. veth0 is veth1's peer: it loses carrier with it, and the kernel deletes the nexthop objects on a device
    // without carrier, and the routes on them (routes that carry their next hop survive that, marked linkdown).
    const ourChanges = seen.filter((l) => OUR_PROTO_SHOWN.test(l));
    expect(ourChanges.length).toBeGreaterThan(0);
    expect(ourChanges.filter((l) => !/veth[01]/.test(l))).toEqual([]);
    expect(ours(ns)).toEqual(want);
  });

  it('repairs a route another process deletes in a loop at a bounded rate, with rate-limited log lines that say how many', async () => {
    const m = monitor();
    await m.ready;
    const logBefore = d.log.length;
    // 3 s of deleting 10.6.0.0/24 every 20 ms: unbounded, that would be about 150 repairs.
    await new Promise<void>((resolve, reject) => {
      const loop = spawn('ip', ['netns', 'exec', ns.name, 'sh', '-c', 'end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; do ip route del 10.6.0.0/24 proto 144 2>/dev/null; sleep 0.02; done']);
      loop.on('error', reject);
      loop.on('exit', () => resolve());
    });
    const deletesSeen = (await m.stop()).filter((l) => l.startsWith('Deleted 10.6.0.0/24'));
    const readds = (await Promise.resolve(deletesSeen)).length;
    repairStats.deletes = readds;
    // Each delete the loop managed is of a route we had put back: that is the repair count (2 at once, then 0.5 s doubling).
    expect(readds).toBeGreaterThanOrEqual(2);
    expect(readds).toBeLessThanOrEqual(8);
    // It is back once the other side stops.
    await until('10.6.0.0/24 repaired', () => ours(ns).includes('10.6.0.0/24 via 192.0.2.2 dev veth0'), 70000);
    // The log: a few lines, not one per repair, and the held-back repeats are counted.
    await until('the count of suppressed repair lines', () => /similar messages suppressed/.test(d.log.slice(logBefore)), 15000);
    const lines = d.log.slice(logBefore).split('\n').filter((l) => l.includes('10.6.0.0/24'));
    repairStats.logLines = lines.length;
    expect(lines.length).toBeLessThanOrEqual(6);
    expect(lines.join('\n')).toMatch(/keeps being changed by someone else; next repair in \d+ ms/);
  });

  it('never changed a foreign route', () => {
    expect(foreignKept()).toEqual(foreignBefore);
  });
});

const repairStats = { deletes: 0, logLines: 0 };
afterAll(() => {
  if (process.env.KRTSYNC_REPORT) process.stdout.write(`delete loop: ${repairStats.deletes} repairs in 3 s, ${repairStats.logLines} log lines\n`);
});
