/**
 * The route store's tally keeps the per-state counts that counts() and the
 * metrics read instead of walking every route: after any sequence of state
 * changes, each followed by track(), it must equal the walk (walkCounts).
 */
import { Prefix } from '../../../src/lib/addr';
import { parseRouteLine } from '../../../src/config/route-syntax';
import { KernelRoutes } from '../../../src/proto/kernel/kernel-routes';
import { RECHECK, RouteStore, UNCERTAIN } from '../../../src/proto/kernel/route-store';
import type { RouteError, RouteSyncState } from '../../../src/proto/kernel/route-status';
import { prng } from '../../helpers/daemon-fixture';

const T4 = { family: 4 as const, table: 254, protocol: 144 };
const err = (errnoName: string): RouteError => ({ errno: 1, errnoName, message: errnoName });

function store(): { s: RouteStore; want: number; unknownDev: number } {
  const routes = new KernelRoutes(T4, { indexOf: () => undefined });
  const s = new RouteStore(4, routes);
  const want = routes.wanted(parseRouteLine('10.0.0.0/24 via 192.0.2.2').attrs, undefined, 'static1');
  const unknownDev = routes.wanted(parseRouteLine('10.0.0.0/24 dev veth9').attrs, undefined, 'static1');
  routes.ref(want);
  routes.ref(unknownDev); // kept alive whoever wants them
  return { s, want, unknownDev };
}

describe('route store tally', () => {
  it('counts only listed routes, moves them between states, and forgets dropped ones', () => {
    const { s, want } = store();
    const id = s.idOf(Prefix.v4(10 << 24, 24));
    s.track(id);
    expect(s.counts()).toEqual({ installed: 0, pending: 0, failed: 0, withdrawing: 0 }); // nothing wanted: not listed
    s.setWant(id, want);
    s.track(id);
    s.track(id); // idempotent
    expect(s.counts()).toMatchObject({ pending: 1 });
    s.extraOf(id).error = err('ENETUNREACH');
    s.setState(id, 'failed');
    s.track(id);
    expect(s.counts()).toMatchObject({ pending: 0, failed: 1 });
    expect([...s.failedByErrno()]).toEqual([['ENETUNREACH', 1]]);
    s.extraOf(id).error = err('EEXIST'); // a new reason: moves between errnos
    s.track(id);
    expect([...s.failedByErrno()]).toEqual([['EEXIST', 1]]);
    s.clearFailure(id);
    s.setState(id, 'installed');
    s.track(id);
    expect(s.counts()).toMatchObject({ installed: 1, failed: 0 });
    expect(s.failedByErrno().size).toBe(0);
    s.setWant(id, 0);
    s.setState(id, 'withdrawing'); // listed while withdrawing, though nothing is wanted
    s.track(id);
    expect(s.counts()).toMatchObject({ installed: 0, withdrawing: 1 });
    s.drop(id);
    expect(s.counts()).toEqual({ installed: 0, pending: 0, failed: 0, withdrawing: 0 });
  });

  it('equals the walk after thousands of random changes, ids reused included', () => {
    const rand = prng(21);
    const { s, want, unknownDev } = store();
    const nets = Array.from({ length: 200 }, (_, i) => Prefix.v4((10 << 24) | (i << 8), 24));
    const states: RouteSyncState[] = ['pending', 'installed', 'failed', 'withdrawing'];
    const errnos = ['ENETUNREACH', 'EEXIST', 'EINVAL'];
    for (let step = 0; step < 20_000; step++) {
      const id = s.idOf(nets[Math.floor(rand() * nets.length)]!);
      const r = rand();
      if (r < 0.05) {
        s.drop(id);
        continue;
      }
      if (r < 0.25) s.setWant(id, rand() < 0.6 ? want : rand() < 0.5 ? unknownDev : 0);
      else if (r < 0.45) {
        s.extraOf(id).error = err(errnos[Math.floor(rand() * 3)]!);
        s.setState(id, 'failed');
      } else if (r < 0.55) {
        s.clearFailure(id);
        s.setState(id, 'installed');
      } else s.setState(id, states[Math.floor(rand() * 4)]!);
      s.track(id);
      if (step % 1000 === 0) expect(s.counts()).toEqual(s.walkCounts());
    }
    expect(s.counts()).toEqual(s.walkCounts());
    const byErrno = new Map<string, number>();
    s.forEach((id) => {
      if (!s.listed(id) || s.state(id) !== 'failed') return;
      const e = s.extra(id)?.error ?? (s.want[id] === unknownDev ? { errnoName: 'ENODEV' } : undefined);
      const name = e?.errnoName ?? 'unknown';
      byErrno.set(name, (byErrno.get(name) ?? 0) + 1);
    });
    expect(new Map(s.failedByErrno())).toEqual(byErrno);
  });
});

describe('route store settleTaken (the answer path of a first sync)', () => {
  /** A route as the sender leaves it with its one change out: wanted, pending, counted, one in flight. */
  function sent(s: RouteStore, net: Prefix, rid: number): number {
    const id = s.idOf(net);
    s.setWant(id, rid);
    s.setState(id, 'pending');
    s.track(id);
    s.addInflight(id, 1);
    return id;
  }

  it('settles an add or an in-place replace as the general path would: held, installed, counted, nothing out', () => {
    const { s, want } = store();
    const routes = s.routes;
    const id = sent(s, Prefix.v4(10 << 24, 24), want);
    const refs = routes.get(want).refs;
    expect(s.settleTaken(id, want)).toBe(true);
    expect(s.have[id]).toBe(want);
    expect(routes.get(want).refs).toBe(refs + 1); // the held route's own reference
    expect(s.state(id)).toBe('installed');
    expect(s.inflight(id)).toBe(0);
    expect(s.counts()).toEqual({ installed: 1, pending: 0, failed: 0, withdrawing: 0 });
    expect(s.counts()).toEqual(s.walkCounts());
    expect(s.plan(id, { n: 0, cmds: [], ids: [] })).toBe(0);

    // A replace at the same metric: the old route is let go.
    const other = routes.wanted(parseRouteLine('10.0.0.0/24 via 192.0.2.3').attrs, undefined, 'static1');
    s.setWant(id, other);
    s.setState(id, 'pending');
    s.track(id);
    s.addInflight(id, 1);
    const wantRefs = routes.get(want).refs;
    expect(s.settleTaken(id, other)).toBe(true);
    expect(s.have[id]).toBe(other);
    expect(routes.get(want).refs).toBe(wantRefs - 1);
    expect(s.counts()).toEqual(s.walkCounts());
  });

  it('leaves every other case to the general path, untouched', () => {
    const { s, want } = store();
    const other = s.routes.wanted(parseRouteLine('10.0.0.0/24 via 192.0.2.3').attrs, undefined, 'static1');
    s.routes.ref(other);
    const cases: Array<[string, (id: number) => void, number?]> = [
      ['recheck flagged', (id) => s.setFlag(id, RECHECK, true)],
      ['crossed by a notification', (id) => s.setFlag(id, UNCERTAIN, true)],
      ['two changes out', (id) => s.addInflight(id, 1)],
      ['the net wants another route now', () => undefined, other],
      ['a side record (a failure, a repair streak)', (id) => (s.extraOf(id).repairStreak = 1)],
      ['counted as failed', (id) => {
        s.setState(id, 'failed');
        s.track(id);
      }],
      ['two routes of ours held', (id) => {
        s.addHave(id, s.routes.seen({ ...s.routes.get(want).route!, priority: 5 }));
        s.addHave(id, s.routes.seen({ ...s.routes.get(want).route!, priority: 7 }));
      }],
    ];
    let i = 1;
    for (const [what, spoil, answered] of cases) {
      const id = sent(s, Prefix.v4((10 << 24) | (i++ << 8), 24), want);
      spoil(id);
      const before = { have: s.have[id], bits: s.bits[id], counts: s.counts() };
      expect([what, s.settleTaken(id, answered ?? want)]).toEqual([what, false]);
      expect({ have: s.have[id], bits: s.bits[id], counts: s.counts() }).toEqual(before);
    }
  });
});
