/**
 * Per-net sync bookkeeping of the kernel protocol, and the status view the
 * CLI lists.
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

export type RouteSyncState = 'installed' | 'pending' | 'failed' | 'withdrawing';

export interface RouteError {
  /** Positive errno, or 0 when the failure is not the kernel's (e.g. unknown device). */
  errno: number;
  errnoName: string;
  /** The kernel's extended-ack text, when it sent one. */
  extAck?: string;
  message: string;
}

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
}

/** One line of `krtsync show kernel`: what the protocol knows about one net. */
export interface RouteSyncStatus {
  net: string;
  state: RouteSyncState;
  source?: string;
  /** The wanted route, in ip-route words (as the kernel would show it). */
  error?: RouteError;
  attempts: number;
  /** When the next retry is due (ms since the epoch), for failed routes. */
  retryAt?: number;
}

export function entryStatus(e: NetEntry): RouteSyncStatus {
  const s: RouteSyncStatus = { net: e.net.toString(), state: e.state, attempts: e.attempts };
  if (e.sourceName !== undefined) s.source = e.sourceName;
  const err = e.error ?? e.wantError;
  if (err) s.error = err;
  if (e.state === 'failed' && e.retryAt > 0) s.retryAt = e.retryAt;
  return s;
}

export interface SyncCounts {
  installed: number;
  pending: number;
  failed: number;
  withdrawing: number;
}
