/**
 * SyncTally keeps the per-state counts that counts() and the metrics read
 * instead of walking every net: after any sequence of state changes, each
 * followed by track(), it must equal the walk (countStates).
 */
import { Prefix } from '../../../src/lib/addr';
import type { RouteMessage } from '../../../src/netlink/route-codec';
import { NetEntry } from '../../../src/proto/kernel/net-entry';
import { countStates, SyncTally, type RouteError, type RouteSyncState } from '../../../src/proto/kernel/route-status';
import { prng } from '../../helpers/daemon-fixture';

const WANT = { family: 4 } as unknown as RouteMessage;
const err = (errnoName: string): RouteError => ({ errno: 1, errnoName, message: errnoName });

describe('SyncTally', () => {
  it('counts only listed entries, moves them between states, and forgets dropped ones', () => {
    const t = new SyncTally();
    const e = new NetEntry(Prefix.v4(10 << 24, 24));
    t.track(e);
    expect(t.counts()).toEqual({ installed: 0, pending: 0, failed: 0, withdrawing: 0 }); // nothing wanted: not listed
    e.want = WANT;
    t.track(e);
    t.track(e); // idempotent
    expect(t.counts()).toMatchObject({ pending: 1 });
    e.markFailed(err('ENETUNREACH'), 1);
    t.track(e);
    expect(t.counts()).toMatchObject({ pending: 0, failed: 1 });
    expect([...t.failedByErrno()]).toEqual([['ENETUNREACH', 1]]);
    e.markFailed(err('EEXIST'), 2); // a new reason: moves between errnos
    t.track(e);
    expect([...t.failedByErrno()]).toEqual([['EEXIST', 1]]);
    e.markInstalled();
    t.track(e);
    expect(t.counts()).toMatchObject({ installed: 1, failed: 0 });
    expect(t.failedByErrno().size).toBe(0);
    e.want = undefined;
    e.state = 'withdrawing'; // listed while withdrawing, though nothing is wanted
    t.track(e);
    expect(t.counts()).toMatchObject({ installed: 0, withdrawing: 1 });
    e.dropped = true;
    t.track(e);
    expect(t.counts()).toEqual({ installed: 0, pending: 0, failed: 0, withdrawing: 0 });
  });

  it('equals the walk after thousands of random changes', () => {
    const rand = prng(21);
    const t = new SyncTally();
    const es = Array.from({ length: 200 }, (_, i) => new NetEntry(Prefix.v4((10 << 24) | (i << 8), 24)));
    const states: RouteSyncState[] = ['pending', 'installed', 'failed', 'withdrawing'];
    const errnos = ['ENETUNREACH', 'EEXIST', 'EINVAL'];
    for (let step = 0; step < 20_000; step++) {
      const e = es[Math.floor(rand() * es.length)]!;
      const r = rand();
      if (r < 0.2) e.want = rand() < 0.7 ? WANT : undefined;
      else if (r < 0.3) e.wantError = rand() < 0.5 ? err(errnos[Math.floor(rand() * 3)]!) : undefined;
      else if (r < 0.5) e.markFailed(err(errnos[Math.floor(rand() * 3)]!), 0);
      else if (r < 0.6) e.markInstalled();
      else e.state = states[Math.floor(rand() * 4)]!;
      t.track(e);
      if (step % 1000 === 0) expect(t.counts()).toEqual(countStates(es));
    }
    expect(t.counts()).toEqual(countStates(es));
    const byErrno = new Map<string, number>();
    for (const e of es) {
      if (!e.listed || e.state !== 'failed') continue;
      const name = (e.error ?? e.wantError)?.errnoName ?? 'unknown';
      byErrno.set(name, (byErrno.get(name) ?? 0) + 1);
    }
    expect(new Map(t.failedByErrno())).toEqual(byErrno);
  });
});
