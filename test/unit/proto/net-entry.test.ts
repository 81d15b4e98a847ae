/**
 * NetEntry keeps its flags and state in one integer and its rarely used
 * fields in a side object: every field must still read back what was written,
 * independently of the others.
 */
import { Prefix } from '../../../src/lib/addr';
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
