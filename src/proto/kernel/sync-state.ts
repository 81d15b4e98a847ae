/**
 * The kernel protocol's sync state, an explicit machine (BIRD's krt states):
 *
 *   init -> first-scan -> pruning -> idle <-> scanning -> pruning -> idle
 *
 * first-scan: the kernel table is being dumped and the export feed read;
 * nothing is sent. pruning: the differences found by a scan are being sent
 * (adds, replaces, deletes of stale routes). idle: in sync; exports and
 * repairs flow as they come. scanning: a periodic or triggered dump.
 * shutting-down and down end every path. Anything else is a bug and throws.
 */
import { StateMachine } from '../protocol';

export type SyncState = 'init' | 'first-scan' | 'pruning' | 'idle' | 'scanning' | 'shutting-down' | 'down';

export const SYNC_TRANSITIONS: Readonly<Record<SyncState, readonly SyncState[]>> = {
  init: ['first-scan', 'shutting-down'],
  'first-scan': ['pruning', 'shutting-down'],
  pruning: ['idle', 'shutting-down'],
  idle: ['scanning', 'shutting-down'],
  scanning: ['pruning', 'shutting-down'],
  'shutting-down': ['down'],
  down: [],
};

export function syncStateMachine(what: string, onChange?: (from: SyncState, to: SyncState) => void): StateMachine<SyncState> {
  return new StateMachine<SyncState>(what, 'init', SYNC_TRANSITIONS, onChange);
}
