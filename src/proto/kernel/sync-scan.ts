/**
 * One scan of a KernelSync (scan-scheduler.ts decides when): wait until no
 * change of ours is out, read our table (the whole of it, or only the routes
 * through the devices a link change named: device-scan.ts), compare every
 * attribute with what we want and send the differences.
 *
 * Phases: idle -> scan-settle -> scan-dump -> pruning -> idle. A shutdown
 * that begins meanwhile owns the sync: the scan stops at its next step. A
 * dump that fails leaves the kernel as it was and asks for another scan.
 * With failover a link change is a full scan: a forwarding object degraded
 * to its backup no longer names the dead device, and backup routes are not
 * in the primary store a device scan reads.
 */
import type { DumpedRoutes } from '../../netlink/route-dump';
import { debugOn, type Logger, type RateLimitedLog } from '../logger';
import type { StateMachine } from '../protocol';
import type { KernelTarget } from './convert';
import { dropMissing, findHeldThrough, type DeviceScanRequest } from './device-scan';
import type { EchoMatcher } from './echo-matcher';
import type { KernelIo } from './kernel-io';
import type { KernelRoutes } from './kernel-routes';
import type { ConnectedPrefixes } from './nexthop-objects';
import { countLine, type SyncCounts } from './route-status';
import type { RouteStore } from './route-store';
import { applyDump, dumpOurs, type SyncDumpContext } from './sync-dump';
import { SCAN_REASONS, scanReasonLabel, type KernelSyncMetrics } from './sync-metrics';
import type { SyncSender, SyncStats } from './sync-sender';
import { PHASE, type SyncState } from './sync-state';

export interface SyncScanContext {
  readonly sm: StateMachine<SyncState>;
  readonly stats: SyncStats;
  readonly metrics: KernelSyncMetrics;
  readonly log: Logger;
  readonly limited: RateLimitedLog;
  readonly target: KernelTarget;
  readonly store: RouteStore;
  readonly routes: KernelRoutes;
  readonly connected: ConnectedPrefixes;
  readonly dumps: SyncDumpContext;
  readonly sender: SyncSender;
  readonly backupSender: SyncSender | undefined;
  readonly deviceScans: DeviceScanRequest;
  io(): KernelIo;
  echoes(): EchoMatcher | undefined;
  settled(): Promise<void>;
  /** Rereads our nexthop objects (sync-nexthops.ts). */
  rereadNexthops(): Promise<void>;
  failoverActive(): boolean;
  /** Buffered notifications go to the store now (sync-notices.ts). */
  drainBuffered(): void;
  kickAll(): void;
  counts(): SyncCounts;
  requestScan(reason: string, delayMs: number): void;
}

/** Runs one scan for `reason`. */
export async function scanOnce(c: SyncScanContext, reason: string): Promise<void> {
  const asked = c.deviceScans.take();
  const closing = (): boolean => PHASE.closing(c.sm.state);
  c.sm.go('scan-settle');
  const t0 = Date.now();
  c.stats.scans++;
  if (reason !== SCAN_REASONS.periodic) {
    c.stats.resyncs++;
    c.metrics.resync(scanReasonLabel(reason));
  }
  await c.settled();
  if (closing()) return; // a shutdown began meanwhile: it owns the sync now
  c.sm.go('scan-dump');
  await c.rereadNexthops();
  if (closing()) return;
  const held = asked.full || reason !== SCAN_REASONS.link || c.failoverActive() ? 'full' : findHeldThrough(c.store, c.routes, c.connected, asked.devices);
  let dumped: DumpedRoutes | DumpedRoutes[] | undefined;
  try {
    if (held === 'full') dumped = await dumpOurs(c.dumps);
    else if (held.ids.length === 0) dumped = []; // no net holds a route through them: nothing to dump
    else dumped = await Promise.all([...asked.devices].map(async (oif) => (await c.io().dumpTable(false, undefined, oif)).ours));
  } catch (err) {
    c.metrics.scanFailed();
    c.limited.write('warn', 'scan-failed', `scan (${reason}) failed: ${(err as Error).message}; retrying`, { table: c.target.table });
  }
  if (closing()) return;
  const lost = held !== 'full' && Array.isArray(dumped) ? dropMissing(c.store, c.routes, held, dumped) : undefined;
  if (dumped && !Array.isArray(dumped)) applyDump(c.dumps, dumped, c.echoes());
  c.sm.go('pruning');
  c.drainBuffered();
  if (lost === undefined) c.sender.queueAll(false);
  else for (const id of lost) c.sender.dirty.add(id);
  c.backupSender?.queueAll(false);
  if (lost !== undefined && debugOn(c.log)) c.log.debug(`device scan of ifindex ${[...asked.devices].join(', ')}: ${held !== 'full' ? held.ids.length : 0} nets through them, ${lost.length} lost`);
  c.kickAll();
  await c.settled();
  if (closing()) return;
  c.sm.go('idle');
  c.metrics.scanned((Date.now() - t0) / 1000);
  if (debugOn(c.log)) c.log.debug(`scan (${reason}) done: ${countLine(c.counts())}`);
  if (!dumped) c.requestScan(SCAN_REASONS.retry, 1000);
}
