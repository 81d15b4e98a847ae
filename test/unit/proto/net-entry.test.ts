/**
 * NetEntry keeps its flags and state in one integer and its rarely used
 * fields in a side object: every field must still read back what was written,
 * independently of the others.
 */
import { Prefix, parseAddr } from '../../../src/lib/addr';
import type { RouteMessage } from '../../../src/netlink/route-codec';
import { NetEntry } from '../../../src/proto/kernel/net-entry';
import type { RouteSyncState } from '../../../src/proto/kernel/route-status';

const net = Prefix.v4((192 << 24) | (2 << 8), 24);

describe('NetEntry fields', () => {
  it('starts pending with every flag off and every rare field at its default', () => {
    const e = new NetEntry(net);
    expect([e.state, e.recheck, e.dropped, e.queued, e.uncertain]).toEqual(['pending', false, false, false, false]);
    expect([e.set, e.wantError, e.error, e.attempts, e.retryAt, e.repairStreak, e.lastRepairAt, e.lastSentAt]).toEqual([undefined, undefined, undefined, 0, 0, 0, 0, 0]);
  });

  it('keeps each flag and the state apart from the others', () => {
    const flags = ['recheck', 'dropped', 'queued', 'uncertain'] as const;
    const states: RouteSyncState[] = ['pending', 'installed', 'failed', 'withdrawing'];
    for (const state of states) {
      for (let mask = 0; mask < 1 << flags.length; mask++) {
        const e = new NetEntry(net);
        e.state = state;
        flags.forEach((f, i) => (e[f] = (mask & (1 << i)) !== 0));
        expect(e.state).toBe(state);
        flags.forEach((f, i) => expect(e[f]).toBe((mask & (1 << i)) !== 0));
        e.state = 'installed';
        flags.forEach((f, i) => expect(e[f]).toBe((mask & (1 << i)) !== 0));
      }
    }
  });

  it('keeps the net, the operations in flight, the flags and the state apart, at every IPv4 length', () => {
    for (let len = 0; len <= 32; len++) {
      const p = Prefix.v4(-1, len); // every address bit the length allows set
      for (const e of [new NetEntry(p), new NetEntry(p.w0, len)]) {
        e.state = 'withdrawing';
        e.recheck = true;
        e.uncertain = true;
        for (const n of [1, 2, 3, 1000, 0]) {
          e.inflight = n;
          expect(e.inflight).toBe(n);
          expect(e.net.equals(p)).toBe(true);
          expect([e.v4Word, e.v4Len]).toEqual([p.w0 | 0, len]);
          expect([e.state, e.recheck, e.dropped, e.queued, e.uncertain]).toEqual(['withdrawing', true, false, false, true]);
        }
        e.inflight++;
        e.queued = true;
        e.state = 'installed';
        expect([e.inflight, e.state, e.queued, e.net.len]).toEqual([1, 'installed', true, len]);
      }
    }
    const v6 = new Prefix(6, 48, 0x20010db8, 0x12340000);
    const e = new NetEntry(v6);
    e.inflight = 2;
    expect([e.net, e.v4Word, e.inflight]).toEqual([v6, undefined, 2]);
  });

  it('keeps the tally bucket it is counted in apart from the state, the flags and the operations in flight', () => {
    const e = new NetEntry(Prefix.v4(-1, 32));
    for (const counted of [undefined, 'pending', 'installed', 'failed', 'withdrawing'] as const) {
      e.setCounted(counted, counted === 'failed' ? 'EEXIST' : undefined);
      e.inflight = 65535;
      e.state = 'withdrawing';
      e.uncertain = true;
      expect([e.countedAs, e.countedErrno, e.inflight, e.state, e.uncertain, e.v4Len]).toEqual([counted, counted === 'failed' ? 'EEXIST' : undefined, 65535, 'withdrawing', true, 32]);
      e.inflight = 0;
      expect(e.countedAs).toBe(counted);
    }
  });

  it('keeps the echoes it expects, oldest first, without a side object until there is one', () => {
    const e = new NetEntry(net);
    expect(e.echoes).toEqual([]);
    expect(e.takeEcho('new')).toBe(false);
    e.expectEcho('new');
    e.expectEcho('del');
    expect(e.echoes).toEqual(['new', 'del']);
    expect(e.idleOnWire).toBe(false);
    expect(e.takeEcho('del')).toBe(false); // not the oldest
    expect(e.takeEcho('new')).toBe(true);
    e.dropEcho('del');
    expect(e.echoes).toEqual([]);
    expect(e.idleOnWire).toBe(true);
  });

  it('reads back the rare fields, and resets them', () => {
    const e = new NetEntry(net);
    const err = { errno: 101, errnoName: 'ENETUNREACH', message: 'Network is unreachable' };
    e.error = err;
    e.wantError = err;
    e.attempts = 3;
    e.retryAt = 1_700_000_000_123;
    e.repairStreak = 2;
    e.lastRepairAt = 1_700_000_000_456;
    e.lastSentAt = 1_700_000_000_789;
    e.set = { metric: 5 };
    expect([e.error, e.wantError, e.attempts, e.retryAt, e.repairStreak, e.lastRepairAt, e.lastSentAt, e.set]).toEqual([err, err, 3, 1_700_000_000_123, 2, 1_700_000_000_456, 1_700_000_000_789, { metric: 5 }]);
    e.error = undefined;
    e.wantError = undefined;
    e.attempts = 0;
    e.retryAt = 0;
    e.set = undefined;
    expect([e.error, e.wantError, e.attempts, e.retryAt, e.set, e.repairStreak]).toEqual([undefined, undefined, 0, 0, undefined, 2]);
  });
});

describe('NetEntry have', () => {
  const route = (gw: string, priority?: number): RouteMessage => ({
    family: 4, dst: net, tos: 0, table: 254, protocol: 144, scope: 0, type: 1, flags: 0, gateway: parseAddr(gw), ...(priority !== undefined ? { priority } : {}),
  });

  it('holds the wanted route itself once the kernel has exactly it, and keeps it when want moves on', () => {
    const e = new NetEntry(net);
    const a = route('192.0.2.2');
    e.want = a;
    e.applyHave(route('192.0.2.2'), false); // an equal route from the kernel: kept as want itself
    expect(e.haveIsWant).toBe(true);
    expect([e.haveCount, e.haveFirst]).toEqual([1, a]);
    expect(e.have).toEqual([a]);
    expect(e.have[0]).toBe(a);
    const b = route('192.0.2.3');
    e.want = b; // the kernel still holds a
    expect(e.haveIsWant).toBe(false);
    expect(e.have[0]).toBe(a);
    e.applyHave(b, false); // replaced in place (same metric)
    expect(e.haveIsWant).toBe(true);
    expect(e.have).toEqual([b]);
    e.applyHave(route('192.0.2.9', 5), false); // another of ours at another metric
    expect(e.haveCount).toBe(2);
    expect(e.haveIsWant).toBe(false);
    e.removeHave(4, 5);
    expect([e.haveCount, e.haveFirst]).toEqual([1, b]);
    e.removeHave(4, undefined); // a wildcard delete takes the first
    expect([e.haveCount, e.haveFirst, e.have]).toEqual([0, undefined, []]);
  });

  it('shares want only when told the kernel holds it, and a dump replaces the view', () => {
    const e = new NetEntry(net);
    const a = route('192.0.2.2');
    e.want = a;
    const dumped = route('192.0.2.2');
    e.addHave(dumped);
    expect(e.have[0]).toBe(dumped);
    e.shareWant();
    expect(e.haveIsWant).toBe(true);
    e.have = [];
    e.addHave(route('192.0.2.3'));
    expect(e.haveIsWant).toBe(false);
    expect(e.haveFirst!.gateway!.toString()).toBe('192.0.2.3');
  });
});
