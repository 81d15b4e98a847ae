/**
 * One scan of a KernelSync (scan-scheduler.ts decides when): wait until no
 * change of ours is out, read our table (the whole of it, or only the routes
 * through the devices a link change named: device-scan.ts), compare every
 * attribute with what we want and send the differences.
 *
 * Phases: idle -> scan-settle -> scan-dump -> pruning -> idle. A shutdown
 * that begins meanwhile owns the sync: the scan stops at its next step. A
 * dump that fails leaves the kernel as it was and asks for another scan.
 * A device scan reads only routes of ours not on our nexthop objects: what
 * the kernel took on those the link event told from our books already
 * (link-flush.ts; when it could not, it asked for the whole table). Backup
 * routes (failover: backup_routes) are asked about too: one not on an object
 * through the device makes it a whole-table scan.
 */
import type { DumpedRoutes } from '../../netlink/route-dump';
import { debugOn } from '../logger';
import { dropMissing, findHeldThrough, type DeviceScanRequest, type HeldThrough } from './device-scan';
import type { EchoMatcher } from './echo-matcher';
import type { KernelIo } from './kernel-io';
import type { KernelRoutes } from './kernel-routes';
import type { ConnectedPrefixes } from './nexthop-objects';
import { countLine, type SyncCounts } from './route-status';
import type { RouteStore } from './route-store';
import { applyDump, dumpOurs, type SyncDumpContext } from './sync-dump';
import { SCAN_REASONS, scanReasonLabel } from './sync-metrics';
import type { SyncSender } from './sync-sender';
import type { SyncCore } from './sync-core';
import { PHASE } from './sync-state';

export interface SyncScanContext extends SyncCore {
  readonly connected: ConnectedPrefixes;
  readonly dumps: SyncDumpContext;
  /** failover: backup_routes: the backup routes (sync-backup-routes.ts). */
  readonly backup: { readonly store: RouteStore; readonly routes: KernelRoutes; readonly sender: SyncSender } | undefined;
  readonly deviceScans: DeviceScanRequest;
  io(): KernelIo;
  echoes(): EchoMatcher | undefined;
  settled(): Promise<void>;
  /** Rereads our nexthop objects (sync-nexthops.ts). */
  rereadNexthops(): Promise<unknown>;
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
  const held = asked.full || reason !== SCAN_REASONS.link ? 'full' : heldThrough(c, asked.devices);
  let dumped: DumpedRoutes | DumpedRoutes[] | undefined;
  try {
    if (held === 'full') {
      c.stats.dumps++;
      dumped = await dumpOurs(c.dumps);
    } else if (held.ids.length === 0) dumped = []; // no net holds a route through them: nothing to dump
    else {
      c.stats.dumps += asked.devices.size;
      dumped = await Promise.all([...asked.devices].map(async (oif) => (await c.io().dumpTable(false, undefined, oif)).ours));
    }
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
  c.backup?.sender.queueAll(false);
  if (lost !== undefined && debugOn(c.log)) c.log.debug(`device scan of ifindex ${[...asked.devices].join(', ')}: ${held !== 'full' ? held.ids.length : 0} nets through them, ${lost.length} lost`);
  c.kickAll();
  await c.settled();
  if (closing()) return;
  c.sm.go('idle');
  c.metrics.scanned((Date.now() - t0) / 1000);
  if (debugOn(c.log)) c.log.debug(`scan (${reason}) done: ${countLine(c.counts())}`);
  if (!dumped) c.requestScan(SCAN_REASONS.retry, 1000);
}

/** The nets whose routes through `devices` a device scan must look for, or 'full' (device-scan.ts). */
function heldThrough(c: SyncScanContext, devices: ReadonlySet<number>): HeldThrough | 'full' {
  const held = findHeldThrough(c.store, c.routes, c.connected, devices);
  if (held === 'full' || c.backup === undefined) return held;
  const backups = findHeldThrough(c.backup.store, c.backup.routes, c.connected, devices);
  return backups === 'full' || backups.ids.length > 0 ? 'full' : held;
}
