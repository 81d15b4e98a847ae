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
 */
import { DumpInterruptedError } from '../../netlink/client';
import type { RouteMessage } from '../../netlink/route-codec';
import type { DumpedRoutes } from '../../netlink/route-dump';
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
  const { store, routes } = c;
  let count = 0;
  let lastRoute: RouteMessage | undefined;
  let lastRid = 0;
  const sink: DumpSink = {
    route: (family, len, w0, w1, w2, w3, route) => {
      if (route !== lastRoute) {
        lastRoute = route;
        lastRid = routes.seen(route);
      }
      store.addHave(family === 4 ? store.nets.insert4(w0, len) : store.nets.insert6(w0, w1, w2, w3, len), lastRid);
      count++;
    },
    restart: () => {
      store.forEach((id) => store.clearHave(id));
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
  const { store, routes } = c;
  store.reserve(Math.max(store.size, dumped.length)); // usually the same nets
  store.forEach((id) => store.clearHave(id));
  echoes?.clear();
  const nets = store.nets;
  let lastRoute: RouteMessage | undefined;
  let lastRid = 0;
  // A dump's routes are a handful of shared shapes: one KernelRoute each, compared with what we want once per pair.
  dumped.forEach((family, len, w0, w1, w2, w3, route) => {
    if (route !== lastRoute) {
      lastRoute = route;
      lastRid = routes.seen(route);
    }
    const id = family === 4 ? nets.insert4(w0, len) : nets.insert6(w0, w1, w2, w3, len);
    store.addHave(id, lastRid);
  });
}
