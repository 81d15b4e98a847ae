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
import type { Prefix } from '../../lib/addr';
import type { RouteAttrs } from '../../route';
import type { RouteMessage } from '../../netlink/route-codec';
import type { KernelAttrs } from '../kernel-attrs';
import { effectivePriority, sameKernelRoute } from './normalize';
import type { RouteError, RouteSyncState } from './route-status';

/** Shared by every entry with no echo expected (never mutated: echoes are replaced, not pushed to). */
const NO_ECHOES: readonly ('new' | 'del')[] = Object.freeze([]);
/** Shared by every entry the kernel holds nothing of (frozen: only non-empty arrays are ever written, by applyHave). */
export const NO_HAVE = Object.freeze([]) as unknown as RouteMessage[];
/** The one-echo lists, shared the same way (nearly every change expects exactly one). */
const ONE_ECHO: Readonly<Record<'new' | 'del', readonly ('new' | 'del')[]>> = { new: Object.freeze(['new' as const]), del: Object.freeze(['del' as const]) };

export class NetEntry {
  want: RouteMessage | undefined = undefined;
  /** What want was built from, to rebuild it when links change. */
  attrs: RouteAttrs | undefined = undefined;
  set: KernelAttrs | undefined = undefined;
  sourceName: string | undefined = undefined;
  wantError: RouteError | undefined = undefined;
  have: RouteMessage[] = NO_HAVE;
  inflight = 0;
  echoes: readonly ('new' | 'del')[] = NO_ECHOES;
  lastSentAt = 0;
  /** Something changed while operations were out: plan again once they settle. */
  recheck = false;
  state: RouteSyncState = 'pending';
  error: RouteError | undefined = undefined;
  attempts = 0;
  retryAt = 0;
  repairStreak = 0;
  lastRepairAt = 0;
  /** Dropped from the sync's entries (a set may still hold it: skip it there). */
  dropped = false;
  /** In the sync's dirty queue (entry-queue.ts). */
  queued = false;
  /** Someone else's change arrived while ours was in flight, with our own notifications filtered out. */
  uncertain = false;

  constructor(readonly net: Prefix) {}

  get idleOnWire(): boolean {
    return this.inflight === 0 && this.echoes.length === 0;
  }

  get empty(): boolean {
    return this.want === undefined && this.wantError === undefined && this.have.length === 0 && this.idleOnWire;
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
   * Arrays are replaced, never grown: a pushed-to empty array keeps room for 17.
   */
  applyHave(r: RouteMessage, deleted: boolean): void {
    if (deleted) {
      this.removeHave(r.family, r.priority);
      return;
    }
    const prio = effectivePriority(r);
    const i = this.have.findIndex((h) => effectivePriority(h) === prio);
    const held = this.want !== undefined && r !== this.want && sameKernelRoute(this.want, r) ? this.want : r;
    if (i >= 0) this.have[i] = held;
    else this.have = this.have.length === 0 ? [held] : [...this.have, held];
  }

  /** Our route with `priority` (as the kernel reported it, undefined: none) was deleted. */
  removeHave(family: 4 | 6, priority: number | undefined): void {
    if (priority === undefined && family === 4) {
      this.have = this.have.length <= 1 ? NO_HAVE : this.have.slice(1); // a wildcard delete took the first
      return;
    }
    const prio = effectivePriority({ family, priority });
    const i = this.have.findIndex((h) => effectivePriority(h) === prio);
    if (i >= 0) this.have = this.have.length === 1 ? NO_HAVE : this.have.filter((_, j) => j !== i);
  }

  /** A route of ours the kernel listed (a dump). */
  addHave(r: RouteMessage): void {
    this.have = this.have.length === 0 ? [r] : [...this.have, r];
  }

  /** The kernel holds exactly what we want: keep `want` as its view (see applyHave). */
  shareWant(): void {
    if (this.want !== undefined && this.have.length === 1 && this.have[0] !== this.want) this.have = [this.want];
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
