/**
 * KernelSync: keeps one kernel table (one family, one protocol number) equal
 * to what we want, and knows per net how that is going.
 *
 * It receives its kernel (kernel-io.ts: netlink, or a fake in unit tests).
 * The protocol says what is wanted (setWanted) and when to scan, prune and
 * withdraw; the sync's phase (sync-state.ts) says what may happen now; the
 * per-route state is columns indexed by route id (route-store.ts) naming
 * interned kernel routes (kernel-routes.ts), set from the wants
 * (sync-wants.ts) and read from the kernel's dumps (sync-dump.ts); the sender (sync-sender.ts) plans, sends and takes the
 * answers; notifications go to sync-notices.ts, nexthop objects to
 * sync-nexthops.ts, scans to sync-scan.ts; the kernel's events reach them
 * in the order sync-events.ts gives.
 *
 * Invariants:
 *  - only routes whose rtm_protocol is ours, in our table, are ever planned
 *    for change: everything else reaching it is passed to onForeignRoute;
 *  - with our own notifications filtered (KernelIo.ownEchoesFiltered), every
 *    notification is someone else's; one for a route with a change of ours in
 *    flight marks it uncertain (which came last is unknown) and a scan
 *    settles it after the answer. Without the filter, the echo fallback
 *    (echo-matcher.ts) tells our notifications from others';
 *  - a failed route waits for its retry time and never holds up other nets;
 *    repairs of one net back off too when someone keeps undoing them;
 *  - an overflow of the notification socket, or a dump that keeps being
 *    interrupted, leads to a fresh dump and reconcile (a resync).
 */
import type { Prefix } from '../../lib/addr';
import type { BackoffPolicy } from '../../lib/backoff';
import type { RouteMessage } from '../../netlink/route-codec';
import type { RouteAttrs } from '../../route';
import type { FeedRun } from '../../table';
import type { KernelAttrs } from '../kernel-attrs';
import { RateLimitedLog, type Logger } from '../logger';
import type { StateMachine } from '../protocol';
import type { KernelTarget } from './convert';
import { EchoMatcher } from './echo-matcher';
import type { ExportDecision } from './export-memo';
import type { KernelIo, KernelIoProvider } from './kernel-io';
import { firstDump, type SyncDumpContext } from './sync-dump';
import { KernelRoutes, type WantedBackup } from './kernel-routes';
import { ConnectedPrefixes, NexthopObjects, type NexthopMode } from './nexthop-objects';
import { DeviceScanRequest } from './device-scan';
import { scanOnce, type SyncScanContext } from './sync-scan';
import { SyncNexthops, type NexthopStatus } from './sync-nexthops';
import { SyncFailover, type FailoverMode } from './sync-failover';
import { BackupRoutes, DEFAULT_BACKUP_METRIC } from './sync-backup-routes';
import { LinkCache } from './link-cache';
import type { LinkFlushContext } from './link-flush';
import { openNetlinkKernelIo } from './netlink-io';
import { RouteStore } from './route-store';
import { countLine, type RouteSyncStatus, type SyncCounts } from './route-status';
import { ScanScheduler, type ScanTarget } from './scan-scheduler';
import { SyncNotices } from './sync-notices';
import { syncEvents } from './sync-events';
import type { SyncCore } from './sync-core';
import { SyncSender, type SyncStats } from './sync-sender';
import { NO_SYNC_METRICS, SCAN_REASONS, type KernelSyncMetrics } from './sync-metrics';
import { PHASE, syncStateMachine, type SyncState } from './sync-state';
import { SyncWants } from './sync-wants';
import { withdrawAll, type ForEachFed, type WithdrawResult } from './withdraw';

export interface KernelSyncOptions {
  name: string;
  target: KernelTarget;
  /** Network namespace (name or path) to work in; default: the process's own. */
  netns?: string;
  /** Periodic full scan; 0 disables. Default 60 s. */
  scanIntervalMs?: number;
  /** Operations per pipeline batch. Default 4096. */
  batchSize?: number;
  /** Retry policy for routes the kernel rejected. */
  backoff?: BackoffPolicy;
  /** Repairs of one net within this window count as a streak; from the third on, they back off. Default 10 s. */
  repairWindowMs?: number;
  /** Minimum time between two scans triggered by events. Default 250 ms. */
  minScanGapMs?: number;
  /** Notification socket receive buffer (bytes). */
  monitorRcvbuf?: number;
  /** Pipeline window (requests in flight). */
  pipelineWindow?: number;
  /** Have the kernel drop the notifications of our own changes (default true; KernelIo.ownEchoesFiltered). */
  filterOwnEchoes?: boolean;
  /** The kernel to sync with; default: the real one, through netlink (netlink-io.ts). */
  io?: KernelIoProvider;
  /** How often long work logs progress. Default 5 s. */
  progressEveryMs?: number;
  log: Logger;
  /** Where counters, durations and latencies go (sync-metrics.ts); default: nowhere. */
  metrics?: KernelSyncMetrics;
  /** Routes on kernel nexthop objects (sync-nexthops.ts): auto (default: where the kernel has them), on, off. */
  nexthopObjects?: NexthopMode;
  /** Next-hop tracking moves nets off a dead next hop (the table has a tracker): routes a link took wait for it (link-flush.ts). */
  nexthopTracking?: boolean;
  /** Prefix-independent failover (sync-failover.ts): routes on forwarding objects keyed by best and next-best; with backup_routes also a backup route per net (sync-backup-routes.ts). Default off. */
  failover?: FailoverMode;
  /** The metric of backup routes (failover: backup_routes); default DEFAULT_BACKUP_METRIC. */
  backupMetric?: number;
  /** Routes of other protocols in our table (dumps and notifications), for learn. */
  onForeignRoute?: (r: RouteMessage, deleted: boolean) => void;
  /** Every scan also dumps foreign routes and hands over the complete list (learn resyncs from it). */
  onForeignDump?: (routes: readonly RouteMessage[]) => void;
}

export class KernelSync implements ScanTarget {
  readonly links = new LinkCache();
  readonly sm: StateMachine<SyncState>;
  readonly routes: KernelRoutes;
  readonly store: RouteStore;
  readonly nexthops: NexthopObjects;
  private readonly connected = new ConnectedPrefixes();
  private readonly nh: SyncNexthops;
  readonly failover: SyncFailover;
  /** failover: backup_routes: each net's next-best at a worse metric (sync-backup-routes.ts). */
  readonly backups: BackupRoutes | undefined;
  /** Counters for status and tests. */
  readonly stats: SyncStats = { scans: 0, resyncs: 0, repairs: 0, sent: 0, failed: 0, overflows: 0, rawEchoes: 0, notifications: 0, crossed: 0, earlyAdds: 0, dumps: 0 };
  private readonly sender: SyncSender;
  private readonly log: Logger;
  private readonly limited: RateLimitedLog;
  private readonly target: KernelTarget;
  private io: KernelIo | undefined;
  private echoes: EchoMatcher | undefined;
  private readonly notices: SyncNotices;
  /** What the protocol wants, into the store (sync-wants.ts). */
  private readonly wants: SyncWants;
  private readonly metrics: KernelSyncMetrics;
  /** The first sync is over: table changes from here on are timed to their answer (sync-metrics.ts). */
  private steady = false;
  private openedAt = 0;
  private tick: NodeJS.Timeout | undefined;
  private readonly scans: ScanScheduler;
  /** What reading our table into the store needs (sync-dump.ts). */
  private readonly dumps: SyncDumpContext;
  /** What the next scan is asked: the whole table, or the routes through some devices (device-scan.ts). */
  private readonly deviceScans = new DeviceScanRequest();
  private readonly scanContext: SyncScanContext;
  /** What a link that went takes from the kernel, told from our books (link-flush.ts). */
  private readonly flushContext: LinkFlushContext;

  constructor(private readonly opts: KernelSyncOptions) {
    this.target = opts.target;
    this.metrics = opts.metrics ?? NO_SYNC_METRICS;
    this.log = opts.log;
    this.limited = new RateLimitedLog(opts.log);
    this.sm = syncStateMachine(`kernel ${opts.name}`, (from, to) => this.log.debug(`sync state ${from} -> ${to}`));
    this.scans = new ScanScheduler(this, opts.scanIntervalMs ?? 60_000, opts.minScanGapMs ?? 250);
    this.nexthops = new NexthopObjects(opts.target, this.connected);
    this.nexthops.forwarding.linkUsable = (i) => this.links.get(i)?.usable ?? true;
    this.routes = new KernelRoutes(opts.target, this.links, this.nexthops);
    this.store = new RouteStore(opts.target.family, this.routes);
    // What each sender shares with the sync (the primary routes', and with backup_routes the backup routes').
    const senderBase = { sm: this.sm, stats: this.stats, log: this.log, limited: this.limited, table: opts.target.table, protocol: opts.target.protocol, batchSize: opts.batchSize ?? 4096, backoff: opts.backoff, progressEveryMs: opts.progressEveryMs ?? 5000, metrics: this.metrics, onObjects: () => this.nexthops.enabled, io: () => this.io!, echoes: () => this.echoes, requestScan: (reason: string, delay: number) => this.requestScan(reason, delay) };
    const reconvertAll = (): void => {
      this.notices.moveWanted(this.routes.reconvert(true));
      this.backups?.reconvert(true);
    };
    this.sender = new SyncSender({ ...senderBase, store: this.store, routes: this.routes, reconvertAll });
    if (opts.failover === 'backup_routes') {
      this.backups = new BackupRoutes({ target: opts.target, links: this.links, nexthops: this.nexthops, metric: opts.backupMetric ?? DEFAULT_BACKUP_METRIC, sender: senderBase, primary: this.store });
    }
    // Learn takes a foreign route that names a nexthop object with the object's next hops (nexthop-view.ts).
    const learnRoute = opts.onForeignRoute;
    const learnDump = opts.onForeignDump;
    const expand = (r: RouteMessage): RouteMessage => this.nh.view.expand(r);
    // What the parts that plan routes (the notices, the scans) share with the sync (sync-core.ts).
    const core: SyncCore = { store: this.store, routes: this.routes, sender: this.sender, sm: this.sm, stats: this.stats, metrics: this.metrics, log: this.log, limited: this.limited, target: this.target };
    this.notices = new SyncNotices({
      ...core,
      links: this.links,
      opts: { ...(opts.repairWindowMs !== undefined ? { repairWindowMs: opts.repairWindowMs } : {}), ...(learnRoute ? { onForeignRoute: (r: RouteMessage, deleted: boolean) => learnRoute(expand(r), deleted) } : {}) },
      echoes: () => this.echoes,
      requestScan: (reason, delay) => this.requestScan(reason, delay),
      requestDeviceScan: (index) => this.requestDeviceScan(index),
      rereadNexthops: (afterDump) => this.nh.reread(afterDump),
      drainMonitor: () => this.io?.drainMonitor(),
      retryFailedNow: () => this.retryFailedNow(),
    });
    this.dumps = { store: this.store, routes: this.routes, target: opts.target, metrics: this.metrics, limited: this.limited, io: () => this.io!, ...(learnDump ? { onForeignDump: (routes: readonly RouteMessage[]) => learnDump(routes.map(expand)) } : {}), backups: this.backups };
    const { nexthops, routes, store, links, target, log, limited, connected } = this;
    const io = (): KernelIo => this.io!;
    const nhContext = { nexthops, routes, store, links, target, log, limited, connected, io, requestScan: (reason: string, delay: number) => this.requestScan(reason, delay), moveWanted: (moved: ReadonlyMap<number, number>) => this.notices.moveWanted(moved) };
    this.nh = new SyncNexthops(nhContext, opts.nexthopObjects ?? 'auto');
    this.failover = new SyncFailover({ nexthops, routes, target, log, limited, io, requestScan: (reason, delay) => this.requestScan(reason, delay), live: () => PHASE.live(this.state) && this.io !== undefined, drainMonitor: () => this.notices.drainInVerdict(this.io), backupCounts: () => this.backups?.store.counts() });
    this.failover.setMode(opts.failover ?? 'off');
    this.wants = new SyncWants({ store, routes, sender: this.sender, limited, target, nexthops, backups: this.backups, steady: () => this.steady });
    const backup = this.backups && { store: this.backups.store, routes: this.backups.routes, sender: this.backups.sender, parked: [] };
    this.flushContext = { primary: { store, routes, sender: this.sender, parked: [] }, backup, nexthops, failover: this.failover, log, target, requestScan: (reason, delay) => this.requestScan(reason, delay), usable: (i) => this.links.get(i)?.usable ?? true, tracking: opts.nexthopTracking === true };
    this.scanContext = { ...core, connected, dumps: this.dumps, deviceScans: this.deviceScans, io, backup, echoes: () => this.echoes, settled: () => this.settled(), rereadNexthops: () => this.nh.reread(), drainBuffered: () => this.notices.drainBuffered(), kickAll: () => this.kickAll(), counts: () => this.counts(), requestScan: (reason, delay) => this.requestScan(reason, delay) };
  }

  get state(): SyncState {
    return this.sm.state;
  }

  /** Resolves once no flush runs and no change of ours is out. */
  settled(): Promise<void> {
    if (this.backups !== undefined) return Promise.all([this.sender.settled(), this.backups.sender.settled()]).then(() => undefined);
    return this.sender.settled();
  }

  /** A scan is asked for and has not begun (a link change's timer runs, or it waits for the sync to be free). */
  get scanPending(): boolean {
    return this.scans.pending;
  }

  /** A scan may begin: the first sync (and a graceful-restart hold) is over and no other scan runs. */
  get canScan(): boolean {
    return PHASE.scans(this.sm.state);
  }

  // ------------------------------------------------------------ lifecycle

  /** Opens the kernel I/O (listening first, so no change after the dump is missed) and reads the links. */
  async open(): Promise<void> {
    this.openedAt = Date.now();
    const { io, links, addrs } = await (this.opts.io ?? openNetlinkKernelIo)(
      {
        target: this.target,
        ...(this.opts.netns !== undefined ? { netns: this.opts.netns } : {}),
        ...(this.opts.monitorRcvbuf ? { monitorRcvbuf: this.opts.monitorRcvbuf } : {}),
        ...(this.opts.pipelineWindow ? { pipelineWindow: this.opts.pipelineWindow } : {}),
        ...(this.opts.filterOwnEchoes !== undefined ? { filterOwnEchoes: this.opts.filterOwnEchoes } : {}),
      },
      syncEvents({ nh: this.nh, notices: this.notices, failover: this.failover, backups: this.backups, links: this.links, target: this.target, flush: this.flushContext, limited: this.limited, requestScan: (reason, delay) => this.requestScan(reason, delay) }),
    );
    this.io = io;
    if (!io.ownEchoesFiltered) {
      this.echoes = new EchoMatcher();
      if (this.opts.filterOwnEchoes !== false) this.log.warn('the kernel refused the notification filter; matching our own notifications instead (slower with large tables)');
    }
    for (const l of links) this.links.update(l, false);
    for (const a of addrs ?? []) this.nh.onAddr(a, false);
    await this.nh.open(io);
  }

  /** nexthop_objects changed (a reload): routes are replaced onto or off objects, in place. */
  setNexthopMode(mode: NexthopMode): void {
    this.nh.setMode(mode);
  }

  /** Our nexthop objects, with the nets on each (`show kernel --nexthops`). */
  nexthopStatus(): NexthopStatus[] {
    return this.nh.status();
  }

  /** Whether the kernel holds routes of ours (a restart) or none (a cold start), for the cost of one reply; after open(). */
  holdsOurs(): Promise<boolean> {
    if (this.io === undefined) return Promise.resolve(false);
    return this.io.holdsOurs();
  }

  /** init -> first-dump -> first-feed: our routes in the kernel; then only early adds go out until prune(). */
  async firstScan(): Promise<void> {
    this.sm.go('first-dump');
    const count = await firstDump(this.dumps, () => PHASE.closing(this.state));
    if (PHASE.closing(this.state)) return;
    this.log.info(`first scan: ${count} routes of ours in table ${this.target.table}`, { table: this.target.table });
    this.sm.go('first-feed');
  }

  /**
   * No early adds until `until` resolves (a source is still loading input not known to be good
   * yet: a bad line must stop the start before any kernel change); then they go. A rejection
   * keeps them held: the start fails and the sync is destroyed.
   */
  holdEarlyAdds(until: Promise<void>): void {
    const senders = [this.sender, this.backups?.sender].filter((s) => s !== undefined);
    for (const s of senders) s.earlyAddsHeld = true;
    until.then(
      () => {
        for (const s of senders) s.earlyAddsHeld = false;
        if (!PHASE.closing(this.state)) this.kickAll();
      },
      () => undefined,
    );
  }

  /**
   * first-feed -> pruning -> idle (or, with `keepStale`, -> holding: graceful restart keeps
   * routes of ours nothing wants until pruneStale()): sends every difference and waits for the
   * results.
   */
  async prune(keepStale = false): Promise<void> {
    // Someone else's change buffered while early adds went out is not ordered against them: a scan settles it.
    const crossed = this.stats.earlyAdds > 0 && this.notices.anyBuffered;
    this.sm.go(keepStale ? 'holding' : 'pruning');
    if (crossed) this.requestScan(SCAN_REASONS.first_feed, 100);
    this.notices.drainBuffered();
    this.sender.queueAll(true);
    this.backups?.sender.queueAll(true);
    const t0 = Date.now();
    this.kickAll();
    await this.settled();
    if (PHASE.closing(this.state)) return;
    if (!keepStale) this.sm.go('idle');
    this.steady = true;
    this.metrics.firstSync((Date.now() - this.openedAt) / 1000);
    this.log.info(`in sync: ${countLine(this.counts())} (${Date.now() - t0} ms)`, { table: this.target.table });
    this.nexthops.sweepUnused();
    void this.nh.counted().catch((err: Error) => this.limited.write('warn', 'nexthop-users', `counting foreign routes on our nexthop objects failed: ${err.message}`, { table: this.target.table }));
    void this.nh.collect(true);
    this.tick = setInterval(() => {
      this.sender.onTick(Date.now());
      this.backups?.onTick(Date.now());
      if (this.state === 'idle') void this.nh.collect();
    }, 250);
    this.tick.unref();
    this.scans.armPeriodic();
  }

  /** The graceful-restart hold is over: holding -> pruning -> idle, stale routes of ours go. */
  async pruneStale(): Promise<void> {
    if (this.state !== 'holding') return;
    this.sm.go('pruning');
    this.store.forEach((id) => {
      if (this.store.want[id] === 0 && this.store.haveCount(id) > 0) this.sender.dirty.add(id);
    });
    this.backups?.queueStale();
    this.kickAll();
    await this.settled();
    if (PHASE.closing(this.state)) return;
    this.sm.go('idle');
  }

  // ------------------------------------------------------------ what we want

  /**
   * The route we want for `net` (attrs undefined: none), with the export filter's settings; with
   * failover on, `backup` is the net's next-best route (its forwarding object is keyed by both), and
   * `held` a route ranked above the best that next-hop tracking holds unusable (sync-failover.ts).
   */
  setWanted(net: Prefix, attrs: RouteAttrs | undefined, set: KernelAttrs | undefined, sourceName?: string, backup?: WantedBackup, held?: WantedBackup): void {
    this.wants.set(net, attrs, set, sourceName, backup, held);
  }

  /** setWanted() for each net of a feed run, by its words; `decide` gives net i's want. */
  setWantedRun(run: FeedRun, decide: (run: FeedRun, i: number) => ExportDecision): void {
    this.wants.setRun(run, decide);
  }

  /**
   * A link or address came back, or a next hop became usable: routes the kernel refused (backup routes
   * too) are retried now, not at their backoff's time; so are those whose refusal is still out (a
   * sender resets even with no route failed yet).
   */
  retryFailedNow(): void {
    if (PHASE.closing(this.sm.state)) return;
    this.sender.retryFailedNow();
    this.backups?.sender.retryFailedNow();
  }

  /** A refeed begins: nets it does not list by refeedEnd() are no longer wanted. */
  refeedBegin(): void {
    this.wants.refeedBegin();
  }

  /** The refeed is complete: a wanted net it did not list has no route now. */
  refeedEnd(): void {
    this.wants.refeedEnd();
  }

  /** Room for `n` routes: the protocol knows the table's size before the first scan. */
  reserve(n: number): void {
    this.store.reserve(n);
  }

  // ------------------------------------------------------------ scans

  /** Changes the periodic scan interval (0: off); the next scan is timed from now. */
  setScanInterval(ms: number): void {
    this.scans.setInterval(ms, this.state !== 'init' && this.state !== 'first-dump' && this.state !== 'first-feed');
  }

  /** Asks for a scan (a dump compared with what we want) after `delayMs`; requests coalesce. */
  requestScan(reason: string, delayMs = 0): void {
    if (PHASE.closing(this.state)) return;
    this.deviceScans.full = true;
    this.scans.request(reason, delayMs);
  }

  /** Asks for a scan of the routes through a device that went down or away (device-scan.ts). */
  requestDeviceScan(index: number): void {
    if (PHASE.closing(this.state)) return;
    this.deviceScans.devices.add(index);
    this.scans.request(SCAN_REASONS.link, 100);
  }

  /** idle -> scan-settle -> scan-dump -> pruning -> idle: dump, compare every attribute, send the differences (sync-scan.ts). */
  scan(reason: string): Promise<void> {
    return scanOnce(this.scanContext, reason);
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Deletes every route of ours: one delete per net the sync holds or
   * wants, and per net of the table (`fed`), in batches, waiting for every
   * answer; then a final dump deletes whatever of ours is left. Ends down.
   */
  async withdrawAll(fed: ForEachFed): Promise<WithdrawResult> {
    // The monitor listens on until our objects are gone: a foreign route put on one meanwhile keeps it.
    this.beginShutdown(false);
    await this.settled();
    // Our objects first (unless a foreign route uses one): every route on one goes with it. The
    // kernel does that beside the withdrawal's walk, which waits for it before its final dump.
    const drop = await this.nh.dropAll();
    const dropped = drop.done.then(() => this.io?.closeMonitor());
    const result = await withdrawAll(
      {
        io: this.io!,
        target: this.target,
        log: this.log,
        limited: this.limited,
        batchSize: this.opts.batchSize ?? 4096,
        progressEveryMs: this.opts.progressEveryMs ?? 5000,
        metrics: this.metrics,
      },
      fed,
      this.store,
      drop.gone,
      dropped,
    );
    // The routes are gone: our objects go after them, unless a foreign route uses one.
    this.nexthops.retireAll();
    await this.nh.collect(true);
    await this.close();
    return result;
  }

  /** Leaves every route in place and closes (persist). */
  async leaveInPlace(): Promise<void> {
    this.beginShutdown();
    await this.settled();
    await this.close();
  }

  private beginShutdown(closeMonitor = true): void {
    if (PHASE.live(this.state)) this.sm.go('closing');
    this.stopTimers();
    if (closeMonitor) this.io?.closeMonitor();
  }

  private stopTimers(): void {
    clearInterval(this.tick);
    this.scans.close();
  }

  private kickAll(): void {
    this.sender.kick();
    this.backups?.sender.kick();
  }

  private async close(): Promise<void> {
    await this.io?.close();
    this.sender.close();
    this.backups?.sender.close();
    if (this.sm.can('down')) this.sm.go('down');
  }

  /** Drops everything at once without touching the kernel: what a crash leaves behind (tests), or a failed start. */
  destroy(): void {
    if (PHASE.live(this.state)) this.sm.go('closing');
    this.stopTimers();
    this.io?.destroy();
    this.sender.close();
    this.backups?.sender.close();
    if (this.sm.can('down')) this.sm.go('down');
  }

  // ------------------------------------------------------------ status

  /** Status of one net, of every net inside `prefix`, or of every net. */
  status(prefix?: Prefix): RouteSyncStatus[] {
    return this.store.status(prefix);
  }

  /** Per-state counts (a tally kept as states change: no walk). */
  counts(): SyncCounts {
    return this.store.counts();
  }

  /** Failed nets by errno name, now (kept as states change). */
  failedByErrno(): ReadonlyMap<string, number> {
    return this.store.failedByErrno();
  }

  /** The counts by walking every net: what counts() must always equal (for tests). */
  walkCounts(): SyncCounts {
    return this.store.walkCounts();
  }
}
