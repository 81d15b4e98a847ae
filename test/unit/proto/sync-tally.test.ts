/**
 * The route store's tally keeps the per-state counts that counts() and the
 * metrics read instead of walking every route: after any sequence of state
 * changes, each followed by track(), it must equal the walk (walkCounts).
 */
import { Prefix } from '../../../src/lib/addr';
import { parseRouteLine } from '../../../src/config/route-syntax';
import { KernelRoutes } from '../../../src/proto/kernel/kernel-routes';
import { RouteStore } from '../../../src/proto/kernel/route-store';
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
