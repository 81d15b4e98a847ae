/**
 * RouteStore: the kernel sync's state per route, as columns indexed by a
 * dense route id (one per net the sync wants or holds), not an object per
 * route.
 *
 * Per id, in typed arrays (outside V8's heap, never walked by the GC):
 *  - the net (NetIndex: address words and length, and the hash to find it);
 *  - want: the KernelRoute id we want (0: nothing);
 *  - have: the KernelRoute id of our route the kernel holds (0: none;
 *    MANY: several, at different metrics, listed in a side map);
 *  - bits: the status (pending, installed, failed, withdrawing), the flags
 *    below, and the count of changes in flight.
 * 21 bytes an IPv4 route, 33 an IPv6 one. What few routes ever need (a
 * refusal with its errno and text, retry timing, repair streaks) lives in a
 * side map. A route the kernel holds exactly as wanted has have === want.
 *
 * Every want/have change goes through here, which keeps the KernelRoutes
 * reference counts right. An id with nothing wanted, nothing held and
 * nothing in flight is dropped (drop()), and its id reused.
 *
 * The per-state counts (a metrics scrape, STATUS= and `show status` read
 * them) are a tally kept as states change, not a walk of every route:
 * track(id) puts a route where its state says and is idempotent, so a
 * change path calls it once after all its writes; a route remembers where it
 * is counted (three bits), so leaving a bucket never needs the old state.
 * Failed routes are also counted by errno name. walkCounts() is the check.
 */
import { NetIndex } from '../../lib/net-index';
import { grownTo } from '../../lib/net-list';
import type { Prefix } from '../../lib/addr';
import type { KernelRoutes } from './kernel-routes';
import { inKernel } from './nh-object';
import type { RouteError, RouteSyncState, RouteSyncStatus, SyncCounts } from './route-status';

export const STATES: readonly RouteSyncState[] = ['pending', 'installed', 'failed', 'withdrawing'];
/** A state's index in STATES (its bits), without a search per write. */
const STATE_BITS: Readonly<Record<RouteSyncState, number>> = { pending: 0, installed: 1, failed: 2, withdrawing: 3 };
const STATE_MASK = 3;
/** In the dirty queue (dirty-queue.ts). */
export const QUEUED = 4;
/** Something changed while changes were out: plan again once they settle. */
export const RECHECK = 8;
/** Someone else's change arrived while ours was in flight (own notifications filtered): which came last is unknown. */
export const UNCERTAIN = 16;
/** Seen by the refeed in progress (KernelSync.refeedEnd withdraws the rest). */
export const SEEN = 32;
/** Bits 6-8: the state the route is counted under in the tally (0: none, else 1 + its index in STATES). */
const COUNTED_SHIFT = 6;
const COUNTED_MASK = 7 << COUNTED_SHIFT;
/** Bits 9-15: changes in flight. */
const INFLIGHT_SHIFT = 9;
const INFLIGHT_ONE = 1 << INFLIGHT_SHIFT;
const INFLIGHT_MASK = 127 << INFLIGHT_SHIFT;
/** counted as pending (1 + 0), and in state pending: what a route with its one change out looks like. */
const PENDING_COUNTED = (1 << COUNTED_SHIFT) | STATE_BITS.pending;
/** The counted code of a failed route (1 + its index in STATES). */
const FAILED_COUNTED = STATE_BITS.failed + 1;
/** counted as installed, and installed. */
const INSTALLED_COUNTED = (2 << COUNTED_SHIFT) | STATE_BITS.installed;
/** Changes of one route in flight at most (the sender plans the rest after these are answered). */
export const MAX_INFLIGHT = 127;
/** have[] value: several routes of ours, in `many`. */
export const MANY = 0xffffffff;

/** What few routes need. */
export interface RouteExtra {
  error: RouteError | undefined;
  attempts: number;
  retryAt: number;
  repairStreak: number;
  lastRepairAt: number;
}

/** Planned changes of one net: command and KernelRoute id (the wanted one, or the held one to delete). */
export interface PlanOut {
  n: number;
  readonly cmds: ('add' | 'replace' | 'delete')[];
  readonly ids: number[];
}

export class RouteStore {
  readonly nets: NetIndex;
  want: Uint32Array;
  have: Uint32Array;
  bits: Uint16Array;
  private readonly many = new Map<number, number[]>();
  private readonly extras = new Map<number, RouteExtra>();
  /** Routes counted per state, by the state's index in STATES. */
  private readonly tally = [0, 0, 0, 0];
  /** Failed routes by errno name, and the name each failed route is counted under. */
  private readonly errnos = new Map<string, number>();
  private readonly countedErrno = new Map<number, string>();

  constructor(
    family: 4 | 6,
    readonly routes: KernelRoutes,
  ) {
    this.nets = new NetIndex(family);
    const cap = this.nets.capacity;
    this.want = new Uint32Array(cap);
    this.have = new Uint32Array(cap);
    this.bits = new Uint16Array(cap);
    this.nets.onGrow = (c) => {
      this.want = grownTo(this.want, c);
      this.have = grownTo(this.have, c);
      this.bits = grownTo(this.bits, c);
    };
  }

  get size(): number {
    return this.nets.size;
  }

  /** Room for `n` routes at once (a first sync knows how many are coming: no doubling copies on the way). */
  reserve(n: number): void {
    this.nets.reserve(n);
  }

  /** The id of `net`, made if new. */
  idOf(net: Prefix): number {
    return this.nets.insert(net);
  }

  // ---------------------------------------------------------------- what we want

  setWant(id: number, rid: number): void {
    const old = this.want[id]!;
    if (old === rid) return;
    this.routes.ref(rid);
    this.want[id] = rid;
    this.routes.unref(old);
  }

  // ---------------------------------------------------------------- what the kernel holds

  haveCount(id: number): number {
    const h = this.have[id]!;
    return h === 0 ? 0 : h === MANY ? this.many.get(id)!.length : 1;
  }

  /** The routes of ours the kernel holds (a new array: for planning and the few). */
  haves(id: number): number[] {
    const h = this.have[id]!;
    return h === 0 ? [] : h === MANY ? this.many.get(id)!.slice() : [h];
  }

  /** The first route of ours held (0: none). */
  haveFirst(id: number): number {
    const h = this.have[id]!;
    return h === MANY ? this.many.get(id)![0]! : h;
  }

  /** The kernel now holds `rid` at its metric (replacing ours there, if any). */
  putHave(id: number, rid: number): void {
    const prio = this.routes.get(rid).priority;
    const list = this.haves(id);
    const i = list.findIndex((x) => this.routes.get(x).priority === prio);
    if (i >= 0 && list[i] === rid) return;
    this.routes.ref(rid);
    if (i >= 0) {
      this.routes.unref(list[i]!);
      list[i] = rid;
    } else list.push(rid);
    this.setHaves(id, list);
  }

  /**
   * Our route at metric `prio` is gone. A deleted route's notification names the route that went,
   * metric included (an IPv4 route at metric 0 simply carries none): never "the first" one held,
   * which may be another route of ours, say a stray at another metric still to be deleted.
   */
  removeHave(id: number, prio: number): void {
    const h = this.have[id]!;
    if (h !== MANY) {
      // One route or none (nearly always): no list made. A link's flush drops a million of them at once.
      if (h === 0 || this.routes.get(h).priority !== prio) return;
      this.routes.unref(h);
      this.have[id] = 0;
      return;
    }
    const list = this.haves(id);
    const i = list.findIndex((x) => this.routes.get(x).priority === prio);
    if (i < 0) return;
    this.routes.unref(list[i]!);
    list.splice(i, 1);
    this.setHaves(id, list);
  }

  /** A route of ours a dump listed (the view was cleared first). */
  addHave(id: number, rid: number): void {
    this.routes.ref(rid);
    if (this.have[id] === 0) {
      this.have[id] = rid;
      return;
    }
    const list = this.haves(id);
    list.push(rid);
    this.setHaves(id, list);
  }

  clearHave(id: number): void {
    for (const x of this.haves(id)) this.routes.unref(x);
    this.have[id] = 0;
    this.many.delete(id);
  }

  private setHaves(id: number, list: number[]): void {
    if (list.length <= 1) {
      this.have[id] = list[0] ?? 0;
      this.many.delete(id);
    } else {
      this.have[id] = MANY;
      this.many.set(id, list);
    }
  }

  // ---------------------------------------------------------------- planning

  /**
   * The changes that make the kernel hold what `id` wants (docs/kernel.md, "Reconcile"): none when
   * it does; an add (never a replace: a foreign route at the metric must not be overwritten) when
   * nothing of ours is at the wanted metric; a replace in place when ours there differs; then a
   * delete of every other route of ours (make before break). A want that cannot be expressed plans
   * nothing. Equal in canonical form counts as equal, and the held route becomes the wanted one.
   */
  plan(id: number, out: PlanOut): number {
    out.n = 0;
    const w = this.want[id]!;
    const h = this.have[id]!;
    if (w !== 0 && w === h) return 0;
    const routes = this.routes;
    const want = w === 0 ? undefined : routes.get(w);
    if (want?.error !== undefined) return 0;
    if (want !== undefined && h !== MANY && (h === 0 || routes.get(h).priority === want.priority)) {
      // One route or none: the common case, without a list.
      if (h === 0) push(out, 'add', w);
      else if (!routes.same(w, h)) push(out, 'replace', w);
      else this.putHave(id, w); // equal as installed: hold the wanted one itself
      return out.n;
    }
    let kept = 0;
    const list = this.haves(id);
    if (want !== undefined) {
      kept = list.find((x) => routes.get(x).priority === want.priority) ?? 0;
      if (kept === 0) push(out, 'add', w);
      else if (!routes.same(w, kept)) push(out, 'replace', w);
    }
    for (const x of list) if (x !== kept) push(out, 'delete', x);
    if (kept !== 0 && out.n === list.length - 1 && routes.same(w, kept)) this.putHave(id, w);
    return out.n;
  }

  /**
   * Whether a net's want moving from `before` to `rid` changes only our bookkeeping, not the route the
   * kernel gets (a net staying on an object next-hop tracking holds, its best's source now the
   * backup's), while the kernel holds that route or a change of ours out or queued installs it: then
   * nothing needs planning. Asked before the want changes (`before` may go with it). Not for a failed
   * net, nor one whose object is still to be made or replaced (planning its nets does that).
   */
  sameForKernel(id: number, before: number, rid: number): boolean {
    if (before === 0 || rid === 0 || before === rid || this.state(id) === 'failed') return false;
    const r = this.routes.get(rid);
    if (r.error !== undefined || (r.nh !== undefined && !inKernel(r.nh))) return false;
    return (this.have[id] === before || this.inflight(id) > 0 || this.flag(id, QUEUED)) && this.routes.same(rid, before);
  }

  // ---------------------------------------------------------------- status and flags

  state(id: number): RouteSyncState {
    return STATES[this.bits[id]! & STATE_MASK]!;
  }

  setState(id: number, s: RouteSyncState): void {
    this.bits[id] = (this.bits[id]! & ~STATE_MASK) | STATE_BITS[s];
  }

  flag(id: number, bit: number): boolean {
    return (this.bits[id]! & bit) !== 0;
  }

  setFlag(id: number, bit: number, on: boolean): void {
    this.bits[id] = on ? this.bits[id]! | bit : this.bits[id]! & ~bit;
  }

  inflight(id: number): number {
    return this.bits[id]! >>> INFLIGHT_SHIFT;
  }

  addInflight(id: number, delta: number): void {
    this.bits[id] = this.bits[id]! + delta * INFLIGHT_ONE;
  }

  /** Shown in status and counts: wanted (or failing to be), or kept by graceful restart. */
  listed(id: number): boolean {
    return this.want[id] !== 0 || (this.bits[id]! & STATE_MASK) === 3;
  }

  // ---------------------------------------------------------------- the rare fields

  extra(id: number): RouteExtra | undefined {
    return this.extras.get(id);
  }

  /** The route's side record, made on first use. */
  extraOf(id: number): RouteExtra {
    let x = this.extras.get(id);
    if (x === undefined) {
      x = { error: undefined, attempts: 0, retryAt: 0, repairStreak: 0, lastRepairAt: 0 };
      this.extras.set(id, x);
    }
    return x;
  }

  retryAt(id: number): number {
    if (this.extras.size === 0) return 0; // nearly always: no hash probe per route of a first sync
    return this.extras.get(id)?.retryAt ?? 0;
  }

  /** A new want, or the kernel took it: no failure, no wait. Repair timing stays. */
  clearFailure(id: number): void {
    if (this.extras.size === 0) return;
    const x = this.extras.get(id);
    if (x === undefined) return;
    x.error = undefined;
    x.attempts = 0;
    x.retryAt = 0;
    if (x.repairStreak === 0) this.extras.delete(id);
  }

  // ---------------------------------------------------------------- the tally

  /** The error a failed route is counted under: the kernel's refusal, or why its want cannot be expressed. */
  private errorOf(id: number): RouteError | undefined {
    const w = this.want[id]!;
    return this.extras.get(id)?.error ?? (w === 0 ? undefined : this.routes.get(w).error);
  }

  /** Counts the route where its state (and, failed, its errno) says now; an unlisted one is not counted. */
  track(id: number): void {
    const b = this.bits[id]!;
    const counted = (b & COUNTED_MASK) >> COUNTED_SHIFT;
    const now = (b & STATE_MASK) + 1;
    if (now !== FAILED_COUNTED && counted !== FAILED_COUNTED && this.want[id] !== 0) {
      // Wanted (so listed), neither counted nor now failed: no errno to look at, and the tally by index
      // (a first sync tracks each of a million routes twice).
      if (counted === now) return;
      if (counted !== 0) this.tally[counted - 1]!--;
      this.tally[now - 1]!++;
      this.bits[id] = (b & ~COUNTED_MASK) | (now << COUNTED_SHIFT);
      return;
    }
    const state = this.listed(id) ? this.state(id) : undefined;
    const errno = state === 'failed' ? (this.errorOf(id)?.errnoName ?? 'unknown') : undefined;
    this.count(id, state, errno);
  }

  private count(id: number, state: RouteSyncState | undefined, errno: string | undefined): void {
    const c = (this.bits[id]! & COUNTED_MASK) >> COUNTED_SHIFT;
    const was = c === 0 ? undefined : STATES[c - 1]!;
    // Only a route counted as failed is counted under an errno: no hash probe for the others.
    const wasErrno = was === 'failed' ? this.countedErrno.get(id) : undefined;
    if (was === state && wasErrno === errno) return;
    if (was !== undefined) {
      this.tally[STATE_BITS[was]]!--;
      if (was === 'failed') this.bump(wasErrno ?? 'unknown', -1);
    }
    if (state !== undefined) {
      this.tally[STATE_BITS[state]]!++;
      if (errno !== undefined) this.bump(errno, 1);
    }
    if (errno !== undefined) this.countedErrno.set(id, errno);
    else if (wasErrno !== undefined) this.countedErrno.delete(id);
    const k = state === undefined ? 0 : STATE_BITS[state] + 1;
    this.bits[id] = (this.bits[id]! & ~COUNTED_MASK) | (k << COUNTED_SHIFT);
  }

  private bump(errno: string, d: number): void {
    const n = (this.errnos.get(errno) ?? 0) + d;
    if (n === 0) this.errnos.delete(errno);
    else this.errnos.set(errno, n);
  }

  /**
   * The kernel took an add or an in-place replace of `rid`, the wanted route, in the common case:
   * it was the route's one change out, nothing flagged it meanwhile, it held nothing or one route at
   * `rid`'s metric, no side record, counted as pending. Then the answer settles here in a few writes
   * (held, installed, counted, one change fewer out), exactly what the general path ends with
   * (putHave, then afterSettle's plan finding nothing); false, and nothing done, otherwise.
   */
  settleTaken(id: number, rid: number): boolean {
    const b = this.bits[id]!;
    if ((b & (INFLIGHT_MASK | RECHECK | UNCERTAIN | COUNTED_MASK | STATE_MASK)) !== (INFLIGHT_ONE | PENDING_COUNTED)) return false;
    if (this.want[id] !== rid || (this.extras.size > 0 && this.extras.has(id))) return false;
    const h = this.have[id]!;
    if (h !== 0 && (h === MANY || this.routes.get(h).priority !== this.routes.get(rid).priority)) return false;
    this.routes.ref(rid);
    this.have[id] = rid;
    this.routes.unref(h);
    this.bits[id] = ((b - INFLIGHT_ONE) & ~(COUNTED_MASK | STATE_MASK)) | INSTALLED_COUNTED;
    this.tally[STATE_BITS.pending]!--;
    this.tally[STATE_BITS.installed]!++;
    return true;
  }

  /** Nothing wanted, held or in flight: the id goes (and may be reused). */
  drop(id: number): void {
    this.count(id, undefined, undefined);
    this.setWant(id, 0);
    this.clearHave(id);
    this.extras.delete(id);
    this.bits[id] = 0;
    this.nets.remove(id);
  }

  /** Calls fn for every id in use. */
  forEach(fn: (id: number) => void): void {
    this.nets.forEach(fn);
  }

  // ---------------------------------------------------------------- what the CLI shows

  /** One line of `krtsync show kernel`. */
  statusOf(id: number): RouteSyncStatus {
    const x = this.extras.get(id);
    const s: RouteSyncStatus = { net: this.nets.prefix(id).toString(), state: this.state(id), attempts: x?.attempts ?? 0 };
    const w = this.want[id]!;
    const key = w === 0 ? undefined : this.routes.get(w).key;
    if (key?.source !== undefined) s.source = key.source;
    if (key !== undefined) s.route = key.attrs.toString();
    const err = x?.error ?? (w === 0 ? undefined : this.routes.get(w).error);
    if (err) s.error = err;
    if (s.state === 'failed' && (x?.retryAt ?? 0) > 0) s.retryAt = x!.retryAt;
    return s;
  }

  /** Status of the nets inside `prefix` (itself included), or of all. */
  status(prefix?: Prefix): RouteSyncStatus[] {
    const out: RouteSyncStatus[] = [];
    this.forEach((id) => {
      if (this.listed(id) && (prefix === undefined || prefix.contains(this.nets.prefix(id)))) out.push(this.statusOf(id));
    });
    return out;
  }

  /** Per-state counts, from the tally (no walk). */
  counts(): SyncCounts {
    const t = this.tally;
    return { installed: t[STATE_BITS.installed]!, pending: t[STATE_BITS.pending]!, failed: t[STATE_BITS.failed]!, withdrawing: t[STATE_BITS.withdrawing]! };
  }

  /** Failed routes by errno name (only names with at least one). */
  failedByErrno(): ReadonlyMap<string, number> {
    return this.errnos;
  }

  /** The counts by walking every route: what counts() must always equal (for tests). */
  walkCounts(): SyncCounts {
    const c: SyncCounts = { installed: 0, pending: 0, failed: 0, withdrawing: 0 };
    this.forEach((id) => {
      if (this.listed(id)) c[this.state(id)]++;
    });
    return c;
  }
}

function push(out: PlanOut, cmd: 'add' | 'replace' | 'delete', id: number): void {
  out.cmds[out.n] = cmd;
  out.ids[out.n++] = id;
}
