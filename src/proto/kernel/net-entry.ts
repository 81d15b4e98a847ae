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
import { effectivePriority } from './normalize';
import type { RouteError, RouteSyncState } from './route-status';

export class NetEntry {
  want: RouteMessage | undefined = undefined;
  /** What want was built from, to rebuild it when links change. */
  attrs: RouteAttrs | undefined = undefined;
  set: KernelAttrs | undefined = undefined;
  sourceName: string | undefined = undefined;
  wantError: RouteError | undefined = undefined;
  have: RouteMessage[] = [];
  inflight = 0;
  echoes: ('new' | 'del')[] = [];
  lastSentAt = 0;
  /** Something changed while operations were out: plan again once they settle. */
  recheck = false;
  state: RouteSyncState = 'pending';
  error: RouteError | undefined = undefined;
  attempts = 0;
  retryAt = 0;
  repairStreak = 0;
  lastRepairAt = 0;

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

  /** Our view of the kernel after `r` was added or replaced (deleted false), or deleted. */
  applyHave(r: RouteMessage, deleted: boolean): void {
    const prio = effectivePriority(r);
    const i = this.have.findIndex((h) => effectivePriority(h) === prio);
    if (deleted) {
      if (r.priority === undefined && r.family === 4) this.have = this.have.slice(1); // a wildcard delete took the first
      else if (i >= 0) this.have.splice(i, 1);
    } else if (i >= 0) this.have[i] = r;
    else this.have.push(r);
  }

  /** A notification of `kind` arrived: true when it is the echo of our oldest change (and consumes it). */
  takeEcho(kind: 'new' | 'del'): boolean {
    if (this.echoes[0] !== kind) return false;
    this.echoes.shift();
    return true;
  }

  /** A change of ours failed or changed nothing: the notification it would have caused never comes. */
  dropEcho(kind: 'new' | 'del'): void {
    const i = this.echoes.lastIndexOf(kind);
    if (i >= 0) this.echoes.splice(i, 1);
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
