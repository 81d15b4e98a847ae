/**
 * SyncCore: the fields of the kernel sync that its parts which plan routes
 * (the notices, the scans) read, in one place rather than a list per part.
 * Types only; the sync hands each part an object that has them.
 */
import type { Logger, RateLimitedLog } from '../logger';
import type { StateMachine } from '../protocol';
import type { KernelTarget } from './convert';
import type { KernelRoutes } from './kernel-routes';
import type { RouteStore } from './route-store';
import type { KernelSyncMetrics } from './sync-metrics';
import type { SyncSender, SyncStats } from './sync-sender';
import type { SyncState } from './sync-state';

/** What a part of the sync that plans routes shares with it (the notices, the scans): its books, sender, phase and logs. */
export interface SyncCore {
  readonly store: RouteStore;
  readonly routes: KernelRoutes;
  readonly sender: SyncSender;
  readonly sm: StateMachine<SyncState>;
  readonly stats: SyncStats;
  readonly metrics: KernelSyncMetrics;
  readonly log: Logger;
  readonly limited: RateLimitedLog;
  readonly target: KernelTarget;
}
