/**
 * Per-net sync bookkeeping of the kernel protocol (route-status.ts turns it
 * into what the CLI lists).
 *
 * A NetEntry exists for every net we want in the kernel or hold there:
 *  - want: the RouteMessage we want (undefined: nothing); wantError when the
 *    route cannot be expressed right now (unknown device);
 *  - have: the routes of ours the kernel holds for the net as last seen (a
 *    dump, a notification, or an ack), usually zero or one;
 *  - inflight / echoes: operations sent and not yet acked, and the
 *    notifications our own acked operations will still cause ('new' / 'del'),
 *    oldest first. While either is non-empty the entry is not re-planned, so
 *    an echo of our own change is never mistaken for someone else's.
 *  - failure bookkeeping for retries with backoff, and repair streaks for
 *    the rate bound on repairs.
 * An entry with nothing wanted and nothing held is dropped.
 */
import { Prefix } from '../../lib/addr';
import type { RouteAttrs } from '../../route';
import type { RouteMessage } from '../../netlink/route-codec';
import type { KernelAttrs } from '../kernel-attrs';
import type { KernelTarget } from './convert';
import { effectivePriority, sameKernelRoute } from './normalize';
import { planNet, type KernelOp } from './reconcile';
import type { RouteError, RouteSyncState } from './route-status';

/** Shared by every entry with no echo expected (never mutated: echoes are replaced, not pushed to). */
const NO_ECHOES: readonly ('new' | 'del')[] = Object.freeze([]);
/** Shared by every entry the kernel holds nothing of (frozen: only non-empty arrays are ever written, by applyHave). */
export const NO_HAVE = Object.freeze([]) as unknown as RouteMessage[];
/** The one-echo lists, shared the same way (nearly every change expects exactly one). */
const ONE_ECHO: Readonly<Record<'new' | 'del', readonly ('new' | 'del')[]>> = { new: Object.freeze(['new' as const]), del: Object.freeze(['del' as const]) };

/** What few entries ever need: a failure, a filter's settings, repair and echo timing. */
class NetEntryExtra {
  set: KernelAttrs | undefined = undefined;
  wantError: RouteError | undefined = undefined;
  error: RouteError | undefined = undefined;
  attempts = 0;
  retryAt = 0;
  repairStreak = 0;
  lastRepairAt = 0;
  lastSentAt = 0;
  echoes: readonly ('new' | 'del')[] = NO_ECHOES;
  /** The errno name a failed entry is counted under in its SyncTally. */
  countedErrno: string | undefined = undefined;
}

const STATES: readonly RouteSyncState[] = ['pending', 'installed', 'failed', 'withdrawing'];
const STATE_MASK = 3;
const RECHECK = 4;
const DROPPED = 8;
const QUEUED = 16;
const UNCERTAIN = 32;
/** Bits 6-11: an IPv4 net's prefix length. */
const LEN_SHIFT = 6;
/** Bits 12-14: the SyncTally bucket the entry is counted in (0: none, else 1 + its index in STATES). */
const COUNTED_SHIFT = 12;
const COUNTED_MASK = 7 << COUNTED_SHIFT;
/** Bits 15 and up: operations in flight. */
const INFLIGHT_SHIFT = 15;
const INFLIGHT_ONE = 1 << INFLIGHT_SHIFT;

/**
 * One per net, so a million of them on a full table: the fields nearly every
 * entry uses are its own (7 slots, 80 bytes), the flags, the state, an IPv4
 * net's length, the tally bucket it is counted in (SyncTally) and the
 * operations in flight share one small integer, the
 * rest (echoes expected included: only without the kernel's notification
 * filter) lives in a NetEntryExtra made on the first write of something other
 * than its default, and an IPv4 net is kept as its word, not as a Prefix
 * (before: 176 bytes and a 68-byte Prefix, then 104).
 */
export class NetEntry {
  private w: RouteMessage | undefined = undefined;
  /** What want was built from, to rebuild it when links change. */
  attrs: RouteAttrs | undefined = undefined;
  sourceName: string | undefined = undefined;
  /** The routes of ours the kernel holds: the route itself when there is one (no array per net), else an array. */
  private h: RouteMessage | RouteMessage[] = NO_HAVE;
  private bits = 0;
  private x: NetEntryExtra | undefined = undefined;
  /** IPv4: the net's address word (its length is in bits); IPv6: the Prefix. No Prefix is kept for an IPv4 net (72 bytes). */
  private readonly n: number | Prefix;

  /** The net as a Prefix, or an IPv4 net as its address word (already masked) and `len`. */
  constructor(net: Prefix | number, len = 0) {
    if (typeof net === 'number') {
      this.n = net | 0;
      this.bits = len << LEN_SHIFT;
    } else if (net.family === 4) {
      this.n = net.w0 | 0;
      this.bits = net.len << LEN_SHIFT;
    } else {
      this.n = net;
    }
  }

  /** The net; for IPv4 a new Prefix on each call (hot paths use v4Word). */
  get net(): Prefix {
    const n = this.n;
    return typeof n === 'number' ? new Prefix(4, (this.bits >> LEN_SHIFT) & 63, n) : n;
  }

  /** The IPv4 net's address word, undefined for IPv6: no Prefix built. */
  get v4Word(): number | undefined {
    const n = this.n;
    return typeof n === 'number' ? n : undefined;
  }

  /** The IPv4 net's prefix length (0 for IPv6: use `net`). */
  get v4Len(): number {
    return (this.bits >> LEN_SHIFT) & 63;
  }

  /** Operations of ours for this net sent and not yet answered. */
  get inflight(): number {
    return this.bits >>> INFLIGHT_SHIFT;
  }
  set inflight(v: number) {
    this.bits = (this.bits & (INFLIGHT_ONE - 1)) | (v << INFLIGHT_SHIFT);
  }

  /** The notifications our own answered operations will still cause, oldest first (only matched without the kernel's filter). */
  get echoes(): readonly ('new' | 'del')[] {
    return this.x?.echoes ?? NO_ECHOES;
  }
  private set echoes(v: readonly ('new' | 'del')[]) {
    if (v.length !== 0 || this.x !== undefined) this.extra().echoes = v;
  }

  /** The route we want in the kernel (undefined: none); often shared by every net with the same attributes, so its dst may be another net's: use `net`. */
  get want(): RouteMessage | undefined {
    return this.w;
  }
  set want(v: RouteMessage | undefined) {
    this.w = v;
  }

  /** The routes of ours the kernel holds for the net, as last seen. A copy when there is one: change it with the methods below. */
  get have(): RouteMessage[] {
    const h = this.h;
    return Array.isArray(h) ? h : [h];
  }
  set have(v: RouteMessage[]) {
    this.h = v.length === 1 ? v[0]! : v;
  }

  /** have.length, without building an array. */
  get haveCount(): number {
    const h = this.h;
    return Array.isArray(h) ? h.length : 1;
  }

  /** have[0], without building an array. */
  get haveFirst(): RouteMessage | undefined {
    const h = this.h;
    return Array.isArray(h) ? h[0] : h;
  }

  /** The kernel holds exactly what we want, as `want` itself (see applyHave): nothing to plan. */
  get haveIsWant(): boolean {
    return this.w !== undefined && this.h === this.w;
  }

  /** The operations that make the kernel hold what we want for this net (none when it does). */
  plan(target: KernelTarget): KernelOp[] {
    if (this.haveIsWant) return [];
    // The one route held equals the wanted one (a restart: nearly every net): planNet's answer too,
    // without the array and the Prefix it would need.
    const h = this.h;
    const w = this.w;
    if (w !== undefined && !Array.isArray(h) && effectivePriority(h) === effectivePriority(w) && sameKernelRoute(w, h)) return [];
    return planNet(w, this.have, target, this.net);
  }

  private extra(): NetEntryExtra {
    return (this.x ??= new NetEntryExtra());
  }

  private flag(bit: number, on: boolean): void {
    this.bits = on ? this.bits | bit : this.bits & ~bit;
  }

  get state(): RouteSyncState {
    return STATES[this.bits & STATE_MASK]!;
  }
  set state(v: RouteSyncState) {
    this.bits = (this.bits & ~STATE_MASK) | STATES.indexOf(v);
  }

  /** The state this entry is counted under in its sync's SyncTally (undefined: not counted); only SyncTally writes it. */
  get countedAs(): RouteSyncState | undefined {
    const c = (this.bits & COUNTED_MASK) >> COUNTED_SHIFT;
    return c === 0 ? undefined : STATES[c - 1];
  }
  /** The errno name a failed entry is counted under (see countedAs). */
  get countedErrno(): string | undefined {
    return this.x?.countedErrno;
  }
  setCounted(state: RouteSyncState | undefined, errno: string | undefined): void {
    const c = state === undefined ? 0 : STATES.indexOf(state) + 1;
    this.bits = (this.bits & ~COUNTED_MASK) | (c << COUNTED_SHIFT);
    if (errno !== undefined || this.x !== undefined) this.extra().countedErrno = errno;
  }

  /** Something changed while operations were out: plan again once they settle. */
  get recheck(): boolean {
    return (this.bits & RECHECK) !== 0;
  }
  set recheck(v: boolean) {
    this.flag(RECHECK, v);
  }

  /** Dropped from the sync's entries (a set may still hold it: skip it there). */
  get dropped(): boolean {
    return (this.bits & DROPPED) !== 0;
  }
  set dropped(v: boolean) {
    this.flag(DROPPED, v);
  }

  /** In the sync's dirty queue (entry-queue.ts). */
  get queued(): boolean {
    return (this.bits & QUEUED) !== 0;
  }
  set queued(v: boolean) {
    this.flag(QUEUED, v);
  }

  /** Someone else's change arrived while ours was in flight, with our own notifications filtered out. */
  get uncertain(): boolean {
    return (this.bits & UNCERTAIN) !== 0;
  }
  set uncertain(v: boolean) {
    this.flag(UNCERTAIN, v);
  }

  /** The export filter's kernel settings for this net. */
  get set(): KernelAttrs | undefined {
    return this.x?.set;
  }
  set set(v: KernelAttrs | undefined) {
    if (v !== undefined || this.x !== undefined) this.extra().set = v;
  }

  get wantError(): RouteError | undefined {
    return this.x?.wantError;
  }
  set wantError(v: RouteError | undefined) {
    if (v !== undefined || this.x !== undefined) this.extra().wantError = v;
  }

  get error(): RouteError | undefined {
    return this.x?.error;
  }
  set error(v: RouteError | undefined) {
    if (v !== undefined || this.x !== undefined) this.extra().error = v;
  }

  get attempts(): number {
    return this.x?.attempts ?? 0;
  }
  set attempts(v: number) {
    if (v !== 0 || this.x !== undefined) this.extra().attempts = v;
  }

  get retryAt(): number {
    return this.x?.retryAt ?? 0;
  }
  set retryAt(v: number) {
    if (v !== 0 || this.x !== undefined) this.extra().retryAt = v;
  }

  get repairStreak(): number {
    return this.x?.repairStreak ?? 0;
  }
  set repairStreak(v: number) {
    if (v !== 0 || this.x !== undefined) this.extra().repairStreak = v;
  }

  get lastRepairAt(): number {
    return this.x?.lastRepairAt ?? 0;
  }
  set lastRepairAt(v: number) {
    if (v !== 0 || this.x !== undefined) this.extra().lastRepairAt = v;
  }

  /** When the last change went out (Date.now()), for the echo wait; only set while echoes are matched. */
  get lastSentAt(): number {
    return this.x?.lastSentAt ?? 0;
  }
  set lastSentAt(v: number) {
    if (v !== 0 || this.x !== undefined) this.extra().lastSentAt = v;
  }

  get idleOnWire(): boolean {
    return this.inflight === 0 && this.echoes.length === 0;
  }

  get empty(): boolean {
    return this.w === undefined && this.wantError === undefined && this.haveCount === 0 && this.idleOnWire;
  }

  /** Counted in status and counts: wanted (or failing to be), or being withdrawn. */
  get listed(): boolean {
    return this.want !== undefined || this.wantError !== undefined || this.state === 'withdrawing';
  }

  /**
   * Our view of the kernel after `r` was added or replaced (deleted false), or deleted.
   * A route the kernel holds exactly as we want it (canonical form) is kept as
   * `want` itself: the decoded notification or dump entry would otherwise stay
   * alive per net (a million of them after a full sync), and every decision
   * (planNet, priorities) comes out the same for either.
   * One route is held as itself, more in an array replaced, never grown (a pushed-to empty array
   * keeps room for 17).
   */
  applyHave(r: RouteMessage, deleted: boolean): void {
    if (deleted) {
      this.removeHave(r.family, r.priority);
      return;
    }
    const held = this.w !== undefined && r !== this.w && sameKernelRoute(this.w, r) ? this.w : r;
    const h = this.h;
    if (!Array.isArray(h)) {
      // One route held (nearly always): replaced in place at the same metric, else a second one.
      this.h = effectivePriority(h) === effectivePriority(r) ? held : [h, held];
      return;
    }
    const prio = effectivePriority(r);
    const i = h.findIndex((x) => effectivePriority(x) === prio);
    if (i >= 0) this.h = h.map((x, j) => (j === i ? held : x));
    else this.h = h.length === 0 ? held : [...h, held];
  }

  /** Our route with `priority` (as the kernel reported it, undefined: none) was deleted. */
  removeHave(family: 4 | 6, priority: number | undefined): void {
    const have = this.have;
    let i = 0; // a wildcard IPv4 delete (no priority) took the first
    if (priority !== undefined || family !== 4) {
      const prio = effectivePriority({ family, priority });
      i = have.findIndex((x) => effectivePriority(x) === prio);
    }
    if (i < 0 || have.length === 0) return;
    this.have = have.length === 1 ? NO_HAVE : have.filter((_, j) => j !== i);
  }

  /** A route of ours the kernel listed (a dump). */
  addHave(r: RouteMessage): void {
    this.h = this.haveCount === 0 ? r : [...this.have, r];
  }

  /** The kernel holds exactly what we want (the caller checked): keep `want` as its view, not a route of its own. */
  shareWant(): void {
    if (this.w !== undefined && this.haveCount === 1) this.h = this.w;
  }

  /** An operation of ours went out: its notification (`new` or `del`) is expected, after any before it. */
  expectEcho(kind: 'new' | 'del'): void {
    this.echoes = this.echoes.length === 0 ? ONE_ECHO[kind] : [...this.echoes, kind];
  }

  /** A notification of `kind` arrived: true when it is the echo of our oldest change (and consumes it). */
  takeEcho(kind: 'new' | 'del'): boolean {
    if (this.echoes[0] !== kind) return false;
    this.echoes = this.echoes.length === 1 ? NO_ECHOES : this.echoes.slice(1);
    return true;
  }

  /** Forget the echoes still expected (a dump shows their effect, or they never came). */
  clearEchoes(): void {
    this.echoes = NO_ECHOES;
  }

  /** A change of ours failed or changed nothing: the notification it would have caused never comes. */
  dropEcho(kind: 'new' | 'del'): void {
    const i = this.echoes.lastIndexOf(kind);
    if (i >= 0) this.echoes = this.echoes.filter((_, j) => j !== i);
  }

  /** The kernel accepted our add or replace. */
  markInstalled(): void {
    this.state = 'installed';
    this.error = undefined;
    this.attempts = 0;
    this.retryAt = 0;
  }

  /** The kernel (or conversion) refused; the next try is due at retryAt. */
  markFailed(error: RouteError, retryAt: number): void {
    this.error = error;
    this.state = 'failed';
    this.attempts++;
    this.retryAt = retryAt;
  }
}
