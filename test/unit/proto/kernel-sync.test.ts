/**
 * The kernel protocol's sync against a fake kernel (test/helpers/fake-kernel.ts):
 * no root, no sockets. The same behaviours are checked against the real kernel
 * in test/integration/kernel*.test.ts, which stays the oracle.
 */
import { constants as osConstants } from 'node:os';
import { parsePrefix } from '../../../src/lib/addr';
import { backoffDelay } from '../../../src/lib/backoff';
import * as C from '../../../src/netlink/constants';
import { KernelProtocol, type KernelProtocolOptions } from '../../../src/proto/kernel/kernel-protocol';
import { RouteSource } from '../../../src/route';
import { Table } from '../../../src/table';
import { FakeKernel } from '../../helpers/fake-kernel';
import { announce, memoryLogger, until, withdraw } from '../../helpers/kernel-fixture';

const { ENETUNREACH, ENOMEM } = osConstants.errno;
const PROTO = 144;

interface Setup {
  kernel: FakeKernel;
  table: Table;
  src: RouteSource;
  p: KernelProtocol;
}

function setup(opts: Partial<KernelProtocolOptions> = {}, kernel = new FakeKernel(), table = new Table({ name: 'master4' })): Setup {
  const src = new RouteSource('static1', 200);
  const p = new KernelProtocol({ name: 'kernel1', table, family: 4, scanIntervalMs: 0, kernelIo: kernel.provider, log: memoryLogger(), ...opts });
  return { kernel, table, src, p };
}

const ours = (k: FakeKernel, family: 4 | 6 = 4): string[] => k.lines({ family, protocol: PROTO });
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each([true, false])('kernel sync against a fake kernel (own notifications filtered: %s)', (filterOwnEchoes) => {
  it('installs every wanted route on a cold start, and a restart changes nothing', async () => {
    // Raw echoes are matched on routes that carry their next hops: objects off here (on in the other case).
    const nexthopObjects = filterOwnEchoes ? 'auto' : 'off';
    const { kernel, table, src, p } = setup({ filterOwnEchoes, nexthopObjects });
    announce(table, src, ['10.1.0.0/24 via 192.0.2.2', '10.1.1.0/24 dev veth1', 'blackhole 10.1.2.0/24', '10.1.3.0/24 via 192.0.2.3 metric 20 mtu 1400']);
    await p.start();
    expect(ours(kernel)).toEqual([
      '10.1.0.0/24 via 192.0.2.2 dev veth0 proto 144',
      '10.1.1.0/24 dev veth1 proto 144',
      '10.1.3.0/24 via 192.0.2.3 dev veth0 proto 144 metric 20 mtu 1400',
      'blackhole 10.1.2.0/24 proto 144',
    ]);
    expect(p.counts()).toEqual({ installed: 4, pending: 0, failed: 0, withdrawing: 0 });
    // Without the kernel's filter our own notifications come back and are matched, most on the raw bytes.
    if (!filterOwnEchoes) expect(p.sync(4)!.stats.rawEchoes).toBeGreaterThan(0);
    p.crashForTesting();
    const before = kernel.log.length;
    const again = setup({ filterOwnEchoes, nexthopObjects }, kernel, table).p;
    await again.start();
    await tick(20);
    expect(kernel.ourChanges(before)).toEqual([]);
    expect(again.counts().installed).toBe(4);
    await again.shutdown();
    expect(ours(kernel)).toEqual([]);
  });

  it('first sync after a crash: keeps what is right, replaces what differs in place, deletes what is unwanted, adds what is missing', async () => {
    const s = setup({ filterOwnEchoes });
    announce(s.table, s.src, ['10.2.0.0/24 via 192.0.2.2', '10.2.1.0/24 via 192.0.2.2', '10.2.2.0/24 via 192.0.2.2']);
    await s.p.start();
    s.p.crashForTesting();
    withdraw(s.table, s.src, ['10.2.2.0/24 via 192.0.2.2']);
    announce(s.table, s.src, ['10.2.1.0/24 via 192.0.2.3', '10.2.3.0/24 via 192.0.2.2']);
    const before = s.kernel.log.length;
    const p2 = setup({ filterOwnEchoes }, s.kernel, s.table).p;
    await p2.start();
    expect(s.kernel.ourChanges(before).sort()).toEqual([
      'add 10.2.3.0/24 via 192.0.2.2 dev veth0 proto 144',
      expect.stringMatching(/^add nexthop \d+$/), // the new next hop's object (nexthop objects are on by default)
      'del 10.2.2.0/24 via 192.0.2.2 dev veth0 proto 144',
      'replace 10.2.1.0/24 via 192.0.2.3 dev veth0 proto 144',
    ]);
    await p2.shutdown();
  });

  it('repairs a route of ours someone deleted or changed, and removes one someone added with our number', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes });
    announce(table, src, ['10.3.0.0/24 via 192.0.2.2', '10.3.1.0/24 via 192.0.2.2']);
    await p.start();
    const want = ours(kernel);
    kernel.foreignDelete({ dst: '10.3.0.0/24', protocol: PROTO });
    kernel.foreignReplace({ dst: '10.3.1.0/24', gateway: '192.0.2.9', protocol: PROTO });
    kernel.foreignAdd({ dst: '10.3.9.0/24', gateway: '192.0.2.2', protocol: PROTO });
    await until(() => ours(kernel).join() === want.join(), 2000);
    expect(p.sync(4)!.stats.repairs).toBeGreaterThanOrEqual(2);
    await p.shutdown();
  });

  it('retries a route the kernel refuses with backoff, reports why, and installs it once the cause is gone', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes, backoff: { baseMs: 40, maxMs: 160, jitter: 0 } });
    let refuse = true;
    kernel.reject = (r, cmd) => (refuse && cmd !== 'delete' && r.dst.toString() === '10.4.1.0/24' ? { errno: ENETUNREACH, extAck: 'Nexthop has invalid gateway' } : undefined);
    announce(table, src, ['10.4.0.0/24 via 192.0.2.2', '10.4.1.0/24 via 192.0.2.2']);
    await p.start();
    expect(ours(kernel)).toEqual(['10.4.0.0/24 via 192.0.2.2 dev veth0 proto 144']);
    const [failed] = p.status(parsePrefix('10.4.1.0/24'));
    expect(failed).toMatchObject({ net: '10.4.1.0/24', state: 'failed', source: 'static1', error: { errnoName: 'ENETUNREACH', extAck: 'Nexthop has invalid gateway' } });
    expect(failed!.retryAt).toBeGreaterThan(Date.now() - 1000);
    await until(() => p.status(parsePrefix('10.4.1.0/24'))[0]!.attempts >= 3, 3000);
    refuse = false;
    await until(() => ours(kernel).length === 2, 3000);
    expect(p.status(parsePrefix('10.4.1.0/24'))[0]).toMatchObject({ state: 'installed', attempts: 0 });
    expect(p.status(parsePrefix('10.4.1.0/24'))[0]!.error).toBeUndefined();
    await p.shutdown();
  });

  it('backs off instead of a hot loop: each retry of a refused route waits out its growing backoff', async () => {
    const backoff = { baseMs: 20, maxMs: 80, jitter: 0 };
    const { kernel, table, src, p } = setup({ filterOwnEchoes, backoff });
    const net = parsePrefix('10.4.2.0/24');
    // Each try, with the retry time the sync had recorded for it when it went out (0 for the first).
    const tries: { at: number; due: number }[] = [];
    kernel.reject = (r, cmd) => {
      if (cmd === 'delete' || r.dst.toString() !== '10.4.2.0/24') return undefined;
      const store = p.sync(4)!.store;
      tries.push({ at: Date.now(), due: store.retryAt(store.idOf(net)) });
      return { errno: ENOMEM };
    };
    announce(table, src, ['10.4.2.0/24 via 192.0.2.2']);
    await p.start();
    // The tries themselves are the event waited for, not a span of wall-clock time: a late timer only delays them.
    await until(() => tries.length >= 5, 30_000);
    await p.shutdown();
    expect(tries[0]!.due).toBe(0);
    for (let n = 1; n < 5; n++) {
      const [prev, cur] = [tries[n - 1]!, tries[n]!];
      // The sync recorded the retry a full backoff (20, 40, 80, 80 ms) after the try before it...
      expect(cur.due - prev.at).toBeGreaterThanOrEqual(backoffDelay(backoff, n));
      // ...and did not try again before that time: a hot loop would retry at once.
      expect(cur.at).toBeGreaterThanOrEqual(cur.due);
    }
  });

  it('resyncs after the notification socket overflowed: what was lost is found by a dump', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes });
    announce(table, src, ['10.5.0.0/24 via 192.0.2.2', '10.5.1.0/24 via 192.0.2.2']);
    await p.start();
    kernel.overflow(() => {
      kernel.foreignDelete({ dst: '10.5.0.0/24', protocol: PROTO });
      kernel.foreignAdd({ dst: '10.5.7.0/24', gateway: '192.0.2.2', protocol: PROTO });
    });
    await until(() => ours(kernel).join() === '10.5.0.0/24 via 192.0.2.2 dev veth0 proto 144,10.5.1.0/24 via 192.0.2.2 dev veth0 proto 144', 2000);
    expect(p.sync(4)!.stats.overflows).toBe(1);
    expect(p.sync(4)!.stats.resyncs).toBeGreaterThanOrEqual(1);
    await p.shutdown();
  });

  it('a stray route of ours at another metric goes even when our own route at the net is deleted around an overflow (property seed -1402290995)', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes, backoff: { baseMs: 2, maxMs: 10, jitter: 0 } });
    announce(table, src, ['10.20.3.0/24 via 192.0.2.2', '10.20.0.0/24 via 192.0.2.2']);
    await p.start();
    kernel.foreignAdd({ dst: '10.20.3.0/24', gateway: '192.0.2.2', protocol: PROTO, metric: 7 });
    announce(table, src, ['10.20.3.0/24 via 192.0.2.2']);
    kernel.overflow(() => kernel.foreignDelete({ dst: '10.20.0.0/24', protocol: PROTO }));
    await tick(0);
    // Without a metric, the kernel deletes our route at metric 0 (the lowest): the stray at 7 stays. That
    // notification (no RTA_PRIORITY: metric 0) reaches the sync after the overflow's dump, which shows
    // only the stray; it must not take the stray out of the sync's view, or nothing ever deletes it.
    kernel.foreignDelete({ dst: '10.20.3.0/24', protocol: PROTO });
    announce(table, src, ['10.20.0.0/24 via 192.0.2.2']);
    const want = '10.20.0.0/24 via 192.0.2.2 dev veth0 proto 144,10.20.3.0/24 via 192.0.2.2 dev veth0 proto 144';
    await until(() => ours(kernel).join() === want, 2000).catch(() => undefined);
    expect(ours(kernel).join()).toBe(want);
    expect(p.sync(4)!.counts()).toEqual(p.sync(4)!.walkCounts());
    await p.shutdown();
    expect(ours(kernel)).toEqual([]);
  });

  it('does not touch a foreign route at our net and metric: ours fails with EEXIST, and goes in at once when it is gone', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes, backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } });
    kernel.foreignAdd({ dst: '10.6.0.0/24', gateway: '192.0.2.9' });
    kernel.foreignAdd({ dst: '10.6.1.0/24', gateway: '192.0.2.9', metric: 50 });
    announce(table, src, ['10.6.0.0/24 via 192.0.2.2', '10.6.1.0/24 via 192.0.2.2']);
    await p.start();
    expect(kernel.lines({ protocol: C.RTPROT_STATIC })).toEqual(['10.6.0.0/24 via 192.0.2.9 dev veth0 proto 4', '10.6.1.0/24 via 192.0.2.9 dev veth0 proto 4 metric 50']);
    expect(ours(kernel)).toEqual(['10.6.1.0/24 via 192.0.2.2 dev veth0 proto 144']);
    expect(p.status(parsePrefix('10.6.0.0/24'))[0]).toMatchObject({ state: 'failed', error: { errnoName: 'EEXIST' } });
    kernel.foreignDelete({ dst: '10.6.0.0/24', protocol: C.RTPROT_STATIC });
    await until(() => ours(kernel).length === 2, 2000);
    await p.shutdown();
    expect(kernel.lines({ protocol: C.RTPROT_STATIC })).toEqual(['10.6.1.0/24 via 192.0.2.9 dev veth0 proto 4 metric 50']);
  });

  it('graceful restart: stale routes of ours stay for the wait, the rest goes in at once', async () => {
    const s = setup({ filterOwnEchoes });
    announce(s.table, s.src, ['10.7.0.0/24 via 192.0.2.2', '10.7.1.0/24 via 192.0.2.2']);
    await s.p.start();
    s.p.crashForTesting();
    withdraw(s.table, s.src, ['10.7.1.0/24 via 192.0.2.2']);
    announce(s.table, s.src, ['10.7.2.0/24 via 192.0.2.2']);
    const p2 = setup({ filterOwnEchoes, gracefulRestartMs: 300 }, s.kernel, s.table).p;
    await p2.start();
    expect(ours(s.kernel)).toHaveLength(3);
    expect(p2.status(parsePrefix('10.7.1.0/24'))[0]).toMatchObject({ state: 'withdrawing' });
    await until(() => ours(s.kernel).length === 2, 3000);
    expect(ours(s.kernel)).toEqual(['10.7.0.0/24 via 192.0.2.2 dev veth0 proto 144', '10.7.2.0/24 via 192.0.2.2 dev veth0 proto 144']);
    await p2.shutdown();
  });

  it('withdraws every route of ours on shutdown, also ones it never knew, and keeps foreign ones; persist keeps ours', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes });
    kernel.foreignAdd({ dst: '10.8.9.0/24', gateway: '192.0.2.9' });
    announce(table, src, ['10.8.0.0/24 via 192.0.2.2', '10.8.1.0/24 dev veth1']);
    await p.start();
    kernel.overflow(() => kernel.foreignAdd({ dst: '10.8.5.0/24', gateway: '192.0.2.2', protocol: PROTO }));
    await p.shutdown();
    expect(ours(kernel)).toEqual([]);
    expect(kernel.lines()).toEqual(['10.8.9.0/24 via 192.0.2.9 dev veth0 proto 4']);

    const keep = setup({ filterOwnEchoes, persist: true }, kernel, table).p;
    await keep.start();
    await keep.shutdown();
    expect(ours(kernel)).toHaveLength(2);
  });

  it('scans: a periodic scan puts back what vanished without a notification, and fixes what changed', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes, scanIntervalMs: 100 });
    announce(table, src, ['10.9.0.0/24 via 192.0.2.2', '10.9.1.0/24 via 192.0.2.2']);
    await p.start();
    const want = ours(kernel);
    kernel.silentDelete((r) => r.dst.toString() === '10.9.0.0/24');
    await until(() => ours(kernel).join() === want.join(), 2000);
    expect(p.sync(4)!.stats.scans).toBeGreaterThanOrEqual(1);
    await p.shutdown();
  });

  it('a link going down fails the routes through it; they come back with the link', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes, backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } });
    announce(table, src, ['10.10.0.0/24 via 198.51.100.2', '10.10.1.0/24 dev veth1', '10.10.2.0/24 via 192.0.2.2']);
    await p.start();
    expect(ours(kernel)).toHaveLength(3);
    kernel.setLink('veth1', false);
    await until(() => p.counts().failed === 2, 2000);
    expect(ours(kernel)).toEqual(['10.10.2.0/24 via 192.0.2.2 dev veth0 proto 144']);
    kernel.setLink('veth1', true);
    await until(() => ours(kernel).length === 3, 2000);
    expect(p.counts()).toMatchObject({ installed: 3, failed: 0 });
    await p.shutdown();
  });

  /**
   * A change the kernel refused while veth1 was down, its answer read only after the link-up (the
   * pipeline reads the notifications before the answers): 10.15.1.0/24 was sent before the reset,
   * so its refusal predates it. `refuseAgain`: the cause outlives the link (a rule of the kernel).
   */
  const refusedBeforeLinkUp = async (refuseAgain: boolean) => {
    const s = setup({ filterOwnEchoes, nexthopObjects: 'off', backoff: { baseMs: 60_000, maxMs: 60_000, jitter: 0 } });
    const tries: number[] = [];
    s.kernel.reject = (r, cmd) => {
      if (cmd === 'delete' || r.dst.toString() !== '10.15.1.0/24') return undefined;
      tries.push(Date.now());
      return refuseAgain && tries.length > 1 ? { errno: ENETUNREACH, extAck: 'Nexthop has invalid gateway' } : undefined;
    };
    announce(s.table, s.src, ['10.15.0.0/24 via 192.0.2.2']);
    await s.p.start();
    s.kernel.setLink('veth1', false);
    await until(() => s.p.sync(4)!.links.get(3)?.usable === false);
    const failed = s.p.sync(4)!.stats.failed;
    const release = s.kernel.holdAnswers();
    announce(s.table, s.src, ['10.15.1.0/24 via 198.51.100.2']);
    await until(() => s.kernel.answersWaiting > 0); // refused (no link up covers the gateway), not read yet
    s.kernel.setLink('veth1', true);
    s.kernel.deliverAll(); // the sync hears the link come back, and resets every backoff, before the answer
    expect(s.p.sync(4)!.links.get(3)?.usable).toBe(true);
    release();
    await until(() => s.p.sync(4)!.stats.failed > failed);
    return { ...s, tries };
  };

  it('a refusal answering a change sent before a link came back is retried at once, not after a backoff', async () => {
    const { kernel, p, tries } = await refusedBeforeLinkUp(false);
    await until(() => ours(kernel).length === 2, 2000);
    expect(p.counts()).toMatchObject({ installed: 2, failed: 0 });
    expect(tries).toHaveLength(2); // refused once (veth1 down), then taken
    await p.shutdown();
  });

  it('that retry, sent after the link came back and refused too, waits out its backoff', async () => {
    const { p, tries } = await refusedBeforeLinkUp(true);
    await until(() => p.counts().failed === 1, 2000);
    const st = p.status(parsePrefix('10.15.1.0/24'))[0]!;
    expect(st).toMatchObject({ state: 'failed', attempts: 1, error: { errnoName: 'ENETUNREACH' } });
    expect(st.retryAt! - tries[1]!).toBeGreaterThanOrEqual(59_000);
    await tick(300);
    expect(tries).toHaveLength(2); // no third try: the backoff holds
    await p.shutdown();
  });

  it('a route naming a device that does not exist waits for it, and goes in when it appears', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes });
    announce(table, src, ['10.11.0.0/24 dev veth7', '10.11.1.0/24 via 192.0.2.2']);
    await p.start();
    expect(p.status(parsePrefix('10.11.0.0/24'))[0]).toMatchObject({ state: 'failed', error: { errnoName: 'ENODEV' } });
    kernel.addLink('veth7');
    await until(() => ours(kernel).length === 2, 2000);
    await p.shutdown();
  });

  it('retries an interrupted dump, and a scan that keeps failing is tried again later', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes });
    announce(table, src, ['10.12.0.0/24 via 192.0.2.2']);
    kernel.interruptDumps = 2;
    await p.start();
    expect(ours(kernel)).toHaveLength(1);
    kernel.interruptDumps = 7; // the first scan fails (6 tries), the retry gets through
    kernel.silentDelete(() => true);
    p.sync(4)!.requestScan('test');
    await until(() => ours(kernel).length === 1, 4000);
    await p.shutdown();
  });

  it('deletes hundreds of stray routes of ours on one net, more than one net may have in flight at once', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes });
    for (let m = 1; m <= 300; m++) kernel.foreignAdd({ dst: '10.14.0.0/24', gateway: '192.0.2.2', protocol: PROTO, metric: m });
    announce(table, src, ['10.14.0.0/24 via 192.0.2.3']);
    await p.start();
    await until(() => ours(kernel).length === 1, 3000);
    expect(ours(kernel)).toEqual(['10.14.0.0/24 via 192.0.2.3 dev veth0 proto 144']);
    expect(p.counts()).toEqual(p.sync(4)!.walkCounts());
    await p.shutdown();
  });

  it('follows the table: changes and withdrawals reach the kernel in order', async () => {
    const { kernel, table, src, p } = setup({ filterOwnEchoes });
    announce(table, src, ['10.13.0.0/24 via 192.0.2.2']);
    await p.start();
    for (let i = 0; i < 5; i++) announce(table, src, [`10.13.0.0/24 via 192.0.2.${3 + i}`]);
    announce(table, src, ['10.13.1.0/24 via 192.0.2.2']);
    await until(() => ours(kernel).join() === '10.13.0.0/24 via 192.0.2.7 dev veth0 proto 144,10.13.1.0/24 via 192.0.2.2 dev veth0 proto 144', 2000);
    withdraw(table, src, ['10.13.0.0/24 via 192.0.2.2']);
    await until(() => ours(kernel).length === 1, 2000);
    await p.shutdown();
  });

  it('IPv6 too: metric 1024 and preference medium added by the kernel are the same route, so a restart changes nothing', async () => {
    const kernel = new FakeKernel();
    const table = new Table({ name: 'master6' });
    const s = setup({ filterOwnEchoes, family: 6 }, kernel, table);
    announce(table, s.src, ['2001:db8:5::/48 via 2001:db8:1::2', '2001:db8:6::/48 via 2001:db8:1::2 metric 10', 'unreachable 2001:db8:7::/48']);
    await s.p.start();
    expect(ours(kernel, 6)).toEqual([
      '2001:db8:5::/48 via 2001:db8:1::2 dev veth0 proto 144 metric 1024',
      '2001:db8:6::/48 via 2001:db8:1::2 dev veth0 proto 144 metric 10',
      'unreachable 2001:db8:7::/48 proto 144 metric 1024',
    ]);
    s.p.crashForTesting();
    const before = kernel.log.length;
    const p2 = setup({ filterOwnEchoes, family: 6 }, kernel, table).p;
    await p2.start();
    await tick(20);
    expect(kernel.ourChanges(before)).toEqual([]);
    await p2.shutdown();
    expect(ours(kernel, 6)).toEqual([]);
  });
});
