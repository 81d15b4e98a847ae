/**
 * Per-route sync status as the CLI lists it (`krtsync show kernel`): state,
 * source, the kernel's error (errno, name, extended-ack text) and the next
 * retry. The kernel sync's route store (route-store.ts) lists them; this
 * module only says what they are, and imports nothing of the sync.
 */

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

export interface SyncCounts {
  installed: number;
  pending: number;
  failed: number;
  withdrawing: number;
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
