/**
 * Reading our kernel table into a sync's route store (route-store.ts): the
 * first scan streams its dump straight into the routes' state (no list of a
 * million routes on the side), a later scan's dump replaces our view of the
 * kernel at once (applyDump). Routes of one shape share one RouteMessage in
 * a dump, so each shape is interned once (KernelRoutes.seen), not each route.
 *
 * A dump the kernel interrupts is retried by the I/O; one that keeps being
 * interrupted during the first scan waits for a quiet moment and starts the
 * state over. Foreign routes go to onForeignDump (learn) when it is set.
 * With backup routes (sync-backup-routes.ts), ours at the backup metric go
 * into the backup store instead.
 */
import { DumpInterruptedError } from '../../netlink/client';
import type { RouteMessage } from '../../netlink/route-codec';
import type { DumpedRouteFn, DumpedRoutes } from '../../netlink/route-dump';
import type { RateLimitedLog } from '../logger';
import type { KernelTarget } from './convert';
import type { EchoMatcher } from './echo-matcher';
import type { DumpSink, KernelIo } from './kernel-io';
import type { KernelRoutes } from './kernel-routes';
import type { RouteStore } from './route-store';
import type { KernelSyncMetrics } from './sync-metrics';

export interface SyncDumpContext {
  readonly store: RouteStore;
  readonly routes: KernelRoutes;
  readonly target: KernelTarget;
  readonly metrics: KernelSyncMetrics;
  readonly limited: RateLimitedLog;
  io(): KernelIo;
  /** Every dump also takes foreign routes and hands over the complete list (learn). */
  readonly onForeignDump?: (routes: readonly RouteMessage[]) => void;
  /** failover: backup_routes: where ours at the backup metric go. */
  readonly backups?: { readonly store: RouteStore; readonly routes: KernelRoutes; isBackup(route: RouteMessage): boolean } | undefined;
}

/** Forgets what the kernel holds, in both stores. */
function clearHaves(c: SyncDumpContext): void {
  c.store.forEach((id) => c.store.clearHave(id));
  const b = c.backups;
  b?.store.forEach((id) => b.store.clearHave(id));
}

/**
 * Takes a dump's routes of ours into the route store (a backup route into the backup store). A
 * dump's routes are a handful of shared shapes: one KernelRoute each, compared with what we want
 * once per pair.
 */
function haveTaker(c: SyncDumpContext): DumpedRouteFn {
  let lastRoute: RouteMessage | undefined;
  let lastRid = 0;
  let store = c.store;
  return (family, len, w0, w1, w2, w3, route) => {
    if (route !== lastRoute) {
      lastRoute = route;
      const b = c.backups;
      const backup = b !== undefined && b.isBackup(route);
      store = backup ? b.store : c.store;
      lastRid = (backup ? b.routes : c.routes).seen(route);
    }
    store.addHave(family === 4 ? store.nets.insert4(w0, len) : store.nets.insert6(w0, w1, w2, w3, len), lastRid);
  };
}

/** Our routes in our table (to `sink` as they come, if given); the dump's troubles are counted and logged. */
export async function dumpOurs(c: SyncDumpContext, sink?: DumpSink): Promise<DumpedRoutes> {
  const dump = await c.io().dumpTable(c.onForeignDump !== undefined, sink);
  if (dump.retries > 0) c.metrics.dumpRetried(dump.retries);
  if (dump.retries > 0) c.limited.write('warn', 'dump-intr', `dump interrupted ${dump.retries} times (table busy); retried`, { table: c.target.table });
  for (const m of dump.undecodable) c.limited.write('warn', 'dump-decode', `undecodable route in dump: ${m}`);
  c.onForeignDump?.(dump.foreign);
  return dump.ours;
}

/**
 * The first scan's dump, straight into the store (nothing is known yet); retried after 200 ms
 * while the table keeps interrupting it, until `closing()`. Returns how many routes of ours it held.
 */
export async function firstDump(c: SyncDumpContext, closing: () => boolean): Promise<number> {
  let count = 0;
  const take = haveTaker(c);
  const sink: DumpSink = {
    route: (family, len, w0, w1, w2, w3, route) => {
      take(family, len, w0, w1, w2, w3, route);
      count++;
    },
    restart: () => {
      clearHaves(c);
      count = 0;
    },
  };
  for (let done = false; !done; ) {
    try {
      await dumpOurs(c, sink);
      done = true;
    } catch (err) {
      // A table that keeps changing interrupts dumps: the first sync waits for a quiet moment.
      if (!(err instanceof DumpInterruptedError)) throw err;
      sink.restart();
      c.limited.write('warn', 'first-scan', `first scan: ${err.message}; trying again`, { table: c.target.table });
      await new Promise((r) => setTimeout(r, 200));
    }
    if (closing()) break;
  }
  return count;
}

/** Our view of the kernel becomes the dump; echoes still expected are forgotten (the dump shows their effect). */
export function applyDump(c: SyncDumpContext, dumped: DumpedRoutes, echoes: EchoMatcher | undefined): void {
  const store = c.store;
  store.reserve(Math.max(store.size, dumped.length)); // usually the same nets
  clearHaves(c);
  echoes?.clear();
  dumped.forEach(haveTaker(c));
}
