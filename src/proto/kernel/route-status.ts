/**
 * Per-route sync status as the CLI lists it (`krtsync show kernel`): state,
 * source, the kernel's error (errno, name, extended-ack text) and the next
 * retry. Built from the kernel sync's NetEntry bookkeeping (net-entry.ts).
 */
import type { Prefix } from '../../lib/addr';
import type { NetEntry } from './net-entry';

export type RouteSyncState = 'installed' | 'pending' | 'failed' | 'withdrawing';

export interface RouteError {
  /** Positive errno, or 0 when the failure is not the kernel's (e.g. unknown device). */
  errno: number;
  errnoName: string;
  /** The kernel's extended-ack text, when it sent one. */
  extAck?: string;
  message: string;
}

/** One line of `krtsync show kernel`: what the protocol knows about one net. */
export interface RouteSyncStatus {
  net: string;
  state: RouteSyncState;
  source?: string;
  /** The wanted route's attributes, in ip-route words. */
  route?: string;
  error?: RouteError;
  attempts: number;
  /** When the next retry is due (ms since the epoch), for failed routes. */
  retryAt?: number;
}

export function entryStatus(e: NetEntry): RouteSyncStatus {
  const s: RouteSyncStatus = { net: e.net.toString(), state: e.state, attempts: e.attempts };
  if (e.sourceName !== undefined) s.source = e.sourceName;
  if (e.attrs !== undefined) s.route = e.attrs.toString();
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

export function listStatus(entries: Iterable<NetEntry>, prefix?: Prefix): RouteSyncStatus[] {
  const out: RouteSyncStatus[] = [];
  for (const e of entries) if (e.listed && (!prefix || prefix.contains(e.net))) out.push(entryStatus(e));
  return out;
}

/**
 * The per-state counts of a sync's listed entries, kept as states change
 * rather than counted by walking every net (a metrics scrape, STATUS= and
 * `show status` read it). track() puts an entry where its state says and is
 * idempotent, so a change path calls it once after all its writes; an
 * entry remembers where it is counted (NetEntry.countedAs), so leaving a
 * bucket never needs the old state. Failed entries are also counted by
 * errno name. countStates() (the walk) stays as the check tests compare
 * against.
 */
export class SyncTally {
  private readonly c: SyncCounts = { installed: 0, pending: 0, failed: 0, withdrawing: 0 };
  private readonly errnos = new Map<string, number>();

  /** Counts `e` where its state (and, when failed, its errno) says; a dropped or unlisted entry is not counted. */
  track(e: NetEntry): void {
    const state = e.dropped || !e.listed ? undefined : e.state;
    const errno = state === 'failed' ? ((e.error ?? e.wantError)?.errnoName ?? 'unknown') : undefined;
    const was = e.countedAs;
    if (was === state && e.countedErrno === errno) return;
    if (was !== undefined) {
      this.c[was]--;
      if (was === 'failed') this.bump(e.countedErrno ?? 'unknown', -1);
    }
    if (state !== undefined) {
      this.c[state]++;
      if (errno !== undefined) this.bump(errno, 1);
    }
    e.setCounted(state, errno);
  }

  counts(): SyncCounts {
    return { ...this.c };
  }

  /** Failed entries by errno name (only names with at least one). */
  failedByErrno(): ReadonlyMap<string, number> {
    return this.errnos;
  }

  private bump(errno: string, d: number): void {
    const n = (this.errnos.get(errno) ?? 0) + d;
    if (n === 0) this.errnos.delete(errno);
    else this.errnos.set(errno, n);
  }
}

/** The counts by walking every entry (what SyncTally keeps without walking; tests compare the two). */
export function countStates(entries: Iterable<NetEntry>): SyncCounts {
  const c: SyncCounts = { installed: 0, pending: 0, failed: 0, withdrawing: 0 };
  for (const e of entries) if (e.listed) c[e.state]++;
  return c;
}

/** The counts of several syncs (families, instances) added up. */
export function sumCounts(parts: Iterable<SyncCounts>): SyncCounts {
  const c: SyncCounts = { installed: 0, pending: 0, failed: 0, withdrawing: 0 };
  for (const s of parts) {
    c.installed += s.installed;
    c.pending += s.pending;
    c.failed += s.failed;
    c.withdrawing += s.withdrawing;
  }
  return c;
}

export function countLine(c: SyncCounts): string {
  return `${c.installed} installed, ${c.pending} pending, ${c.failed} failed, ${c.withdrawing} withdrawing`;
}
