/**
 * ForeignNexthopUsers: which of our nexthop objects routes of others use (a
 * foreign route: anything but our protocol in our table, in any table of
 * either family), kept as the kernel tells it, so that deleting our objects
 * (collect, shutdown) needs no dump of every route table.
 *
 * Sources: a dump of every route of both families (seed()); then route
 * notifications: our family's from every table, and those of the other
 * family that name an object in our id block (the monitor's kernel filter
 * lets only those through). Uses are kept per route (family, table, dst,
 * src, tos, metric), several at one key when routes are appended there, so
 * a replace or delete of a foreign route takes its use back.
 *
 * It errs on the safe side: a use it cannot see end stays recorded and
 * keeps its object (a foreign route replaced by one of ours, whose
 * notifications are filtered; routes the kernel flushes with a device; a
 * route of the other family moved off our object, which the filter drops).
 * A replace it cannot place (several routes at one key) makes it untrusted,
 * as does a lost notification (overflow) and objects of ours found at open
 * (routes on them may exist already): an untrusted count is seeded again
 * before anything is deleted. Seeding takes the notifications that arrive
 * during the dump again afterwards (a journal), so it loses none.
 */
import * as C from '../../netlink/constants';
import type { RouteMessage } from '../../netlink/route-codec';
import type { KernelTarget } from './convert';
import { effectivePriority } from './normalize';

/** Where a route sits in the kernel: routes at one key replace each other. */
function routeKey(r: RouteMessage): string {
  return `${r.family} ${r.table} ${r.dst.toString()} ${r.src?.toString() ?? ''} ${r.tos} ${effectivePriority(r)}`;
}

export class ForeignNexthopUsers {
  /** Route key -> the ids in our block its routes name (usually one route, one id). */
  private readonly byRoute = new Map<string, number[]>();
  /** Object id -> foreign routes on it. */
  private readonly counts = new Map<number, number>();
  /** Notifications taken while a seed's dump runs (replayed on top of it). */
  private journal: Array<[RouteMessage, boolean, number]> | undefined;
  private seeding: Promise<void> | undefined;
  /** Something made the count uncertain since the last seed began. */
  private unsettled = false;
  /** The count reflects what the kernel told us; false: seed() before deleting anything. */
  trusted = true;
  /** When the last seed ended (ms; at first, when counting began). */
  lastSeed = Date.now();

  constructor(
    private readonly target: Pick<KernelTarget, 'protocol' | 'table'>,
    private readonly inRange: (id: number) => boolean,
  ) {}

  /** Whether a foreign route uses object `id`, as far as the kernel has told us. */
  uses(id: number): boolean {
    return this.counts.has(id);
  }

  /** Foreign routes per object id (status, tests). */
  snapshot(): Map<number, number> {
    return new Map(this.counts);
  }

  /** Notifications were lost, or objects of ours predate us: seed again before deleting. */
  distrust(): void {
    this.trusted = false;
    this.unsettled = true;
  }

  /** A route notification (any table; `nlFlags`: the message's NLM_F_REPLACE / NLM_F_APPEND). */
  note(r: RouteMessage, deleted: boolean, nlFlags: number): void {
    this.journal?.push([r, deleted, nlFlags]);
    this.apply(r, deleted, nlFlags);
  }

  /** An object of ours is gone from the kernel (deleted, or flushed with its device): so are the routes on it. */
  objectGone(id: number): void {
    if (!this.counts.delete(id)) return;
    for (const [key, ids] of this.byRoute) {
      const rest = ids.filter((x) => x !== id);
      if (rest.length === 0) this.byRoute.delete(key);
      else this.byRoute.set(key, rest);
    }
  }

  /** Counts again from a dump of every route (`dump`: the foreign routes naming an id in our block); one at a time. */
  seed(dump: () => Promise<RouteMessage[]>): Promise<void> {
    this.seeding ??= this.runSeed(dump).finally(() => (this.seeding = undefined));
    return this.seeding;
  }

  private async runSeed(dump: () => Promise<RouteMessage[]>): Promise<void> {
    const journal: Array<[RouteMessage, boolean, number]> = (this.journal = []);
    this.unsettled = false; // anything during the dump that unsettles the count says so again
    let routes: RouteMessage[];
    try {
      routes = await dump();
    } finally {
      this.journal = undefined;
    }
    this.byRoute.clear();
    this.counts.clear();
    for (const r of routes) this.apply(r, false, C.NLM_F_APPEND);
    // Each change since the dump began, again: the dump shows some state after its start, the journal every change since.
    for (const [r, deleted, flags] of journal) this.apply(r, deleted, flags);
    this.trusted = !this.unsettled;
    this.lastSeed = Date.now();
  }

  private apply(r: RouteMessage, deleted: boolean, nlFlags: number): void {
    const nh = r.nhId;
    const t = this.target;
    const onOurs = nh !== undefined && this.inRange(nh) && !(r.protocol === t.protocol && r.table === t.table);
    if (!onOurs && this.byRoute.size === 0) return; // the common case: nothing recorded, nothing to record
    const key = routeKey(r);
    const ids = this.byRoute.get(key);
    if (deleted) {
      const i = ids === undefined || nh === undefined ? -1 : ids.indexOf(nh);
      if (i >= 0) this.take(key, ids!, i);
      return;
    }
    if (ids !== undefined && !(nlFlags & C.NLM_F_APPEND)) {
      // A replace (or a new route where one was recorded): the route there is this one now; with several
      // routes at the key, which one it replaced is unknown.
      if (ids.length > 1) this.distrust();
      else this.take(key, ids, 0);
    }
    if (!onOurs) return;
    const list = this.byRoute.get(key);
    if (list === undefined) this.byRoute.set(key, [nh]);
    else list.push(nh);
    this.counts.set(nh, (this.counts.get(nh) ?? 0) + 1);
  }

  private take(key: string, ids: number[], i: number): void {
    const id = ids[i]!;
    ids.splice(i, 1);
    if (ids.length === 0) this.byRoute.delete(key);
    const n = (this.counts.get(id) ?? 1) - 1;
    if (n > 0) this.counts.set(id, n);
    else this.counts.delete(id);
  }
}
