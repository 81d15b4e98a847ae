/**
 * The kernel sync's phases: one explicit machine (BIRD's krt states), where
 * the phase alone says what the sync may do. An impossible transition is a
 * bug and throws.
 *
 *   init -> first-dump -> first-feed -> pruning ---------> idle
 *                                    -> holding -> pruning -> idle
 *   idle -> scan-settle -> scan-dump -> pruning -> idle
 *   any of them -> closing -> down
 *
 * - init: sockets open, notifications buffered, nothing sent.
 * - first-dump: our routes in the kernel table are being dumped.
 * - first-feed: the export feed is read; only early adds go out (a net that
 *   wants a route and holds nothing of ours needs an add whatever the rest of
 *   the feed holds), and only with our own notifications filtered.
 * - pruning: every difference is sent (first sync, a scan's findings, the
 *   end of a graceful-restart hold), then the sync settles.
 * - holding: graceful restart: like idle, but routes of ours nothing wants
 *   stay until the hold ends; no scans meanwhile (a scan's prune would delete
 *   them), they wait for the hold's end.
 * - idle: in sync; exports and repairs flow as they come; scans may start.
 * - scan-settle: a scan waits for changes in flight; nothing new is sent.
 * - scan-dump: the table is being dumped; notifications are buffered.
 * - closing: shutdown (withdraw or persist) or destroy; down: done.
 */
import { StateMachine } from '../protocol';

export type SyncState = 'init' | 'first-dump' | 'first-feed' | 'pruning' | 'holding' | 'idle' | 'scan-settle' | 'scan-dump' | 'closing' | 'down';

const LIVE: readonly SyncState[] = ['init', 'first-dump', 'first-feed', 'pruning', 'holding', 'idle', 'scan-settle', 'scan-dump'];

export const SYNC_TRANSITIONS: Readonly<Record<SyncState, readonly SyncState[]>> = {
  init: ['first-dump', 'closing'],
  'first-dump': ['first-feed', 'closing'],
  'first-feed': ['pruning', 'holding', 'closing'],
  pruning: ['idle', 'closing'],
  holding: ['pruning', 'closing'],
  idle: ['scan-settle', 'closing'],
  'scan-settle': ['scan-dump', 'closing'],
  'scan-dump': ['pruning', 'closing'],
  closing: ['down'],
  down: [],
};

/** What each phase allows: the one place the sync asks. */
export const PHASE = {
  /** Any planned change may be sent (deletes of unwanted routes only where `deletes`). */
  sends: (s: SyncState): boolean => s === 'pruning' || s === 'holding' || s === 'idle',
  /** Routes of ours nothing wants may be deleted. */
  deletes: (s: SyncState): boolean => s === 'pruning' || s === 'idle',
  /** Only early adds go out (with our own notifications filtered). */
  earlyAdds: (s: SyncState): boolean => s === 'first-feed',
  /** Notifications wait until the dump is applied. */
  buffers: (s: SyncState): boolean => s === 'init' || s === 'first-dump' || s === 'first-feed' || s === 'scan-dump',
  /** A scan may begin. */
  scans: (s: SyncState): boolean => s === 'idle',
  /** Shutting down or down: nothing but the shutdown's own work. */
  closing: (s: SyncState): boolean => s === 'closing' || s === 'down',
  live: (s: SyncState): boolean => LIVE.includes(s),
} as const;

export function syncStateMachine(what: string, onChange?: (from: SyncState, to: SyncState) => void): StateMachine<SyncState> {
  return new StateMachine<SyncState>(what, 'init', SYNC_TRANSITIONS, onChange);
}
