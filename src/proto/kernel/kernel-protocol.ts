/**
 * KernelProtocol: installs a table's best routes into one kernel table, for
 * IPv4, IPv6 or both (one KernelSync per family), and keeps them there.
 *
 * Hooks (STYLE.md): init() checks options; start() opens sockets, dumps the
 * kernel table, reads the export feed to `ready` without sending anything,
 * then reconciles (adds, in-place replaces, deletes of stale routes of ours)
 * and resolves once in sync; shutdown() withdraws every route of ours, or
 * leaves them with `persist` (begun during start, it stops the start at its
 * next wait and withdraws from there); reconfigure() applies what it can in
 * place.
 *
 * Steady state: one export request on the table (`best`, or `all` with
 * merge_paths) feeds the channel (filter), whose verdicts become wanted
 * routes in the syncs (export-walk.ts). Shutdown does not use the channel: a feeder on
 * `best` lists the nets, and each becomes a delete by net, table, protocol
 * and metric (the filter is not run again).
 *
 * Next-hop tracking (the table's tracker): the table already keeps routes
 * whose next hops cannot be used from being best; here a multipath route
 * loses its dead members before it goes into the kernel (the kernel keeps
 * forwarding to a member without carrier otherwise), the nets using a set
 * that lost or regained a member are exported again (found through the
 * table's next-hop index), and a next hop that becomes usable has routes
 * the kernel refused retried at once instead of after their backoff.
 */
import type { Family, Prefix } from '../../lib/addr';
import { RouteSource } from '../../route';
import type { NextHopChange } from '../../table';
import { ExportChannel } from '../channel';
import { ACCEPT_ALL, type ExportFilter } from '../filter';
import { nullLogger, withFields, type Logger } from '../logger';
import type { MergePathsOptions } from '../merge-paths';
import { PROTOCOL_TRANSITIONS, StateMachine, type Protocol, type ProtocolState } from '../protocol';
import type { ExportTable, SourceTable } from '../table-port';
import type { BackoffPolicy } from '../../lib/backoff';
import type { KernelIoProvider } from './kernel-io';
import { KernelLearn } from './learn';
import { DEFAULT_KERNEL_PROTOCOL, KernelOptionError, checkProtocolNumber, resolveKernelTable } from './options';
import type { NexthopMode } from './nexthop-objects';
import { nextHopsTurned, type FailoverMode } from './sync-failover';
import type { NexthopStatus } from './sync-nexthops';
import { KernelSync, type KernelSyncOptions } from './kernel-sync';
import { ExportWalk, KernelStartError } from './export-walk';
import { ReExport } from './reexport';
import { sumCounts, type RouteSyncStatus, type SyncCounts } from './route-status';
import type { KernelSyncMetrics } from './sync-metrics';

export { KernelStartError } from './export-walk';

export interface KernelProtocolOptions {
  name: string;
  /** The krtsync table whose best routes go into the kernel. */
  table: ExportTable;
  /** Kernel table: 'main' (default), a number up to 2^32-1, or a name from rt_tables. */
  kernelTable?: number | string;
  /** 4, 6 or 'both' (default). */
  family?: Family | 'both';
  /** rtm_protocol of our routes; default 144. */
  protocol?: number;
  /** A dedicated metric for every route of ours. */
  metric?: number;
  /** Leave our routes in the kernel on shutdown. */
  persist?: boolean;
  /** Keep stale routes of ours this long after the first feed before pruning them. */
  gracefulRestartMs?: number;
  /** Periodic scan interval; default 60 s, 0 disables. */
  scanIntervalMs?: number;
  filter?: ExportFilter;
  mergePaths?: MergePathsOptions;
  /** Import routes of other protocols in the kernel table into `learn.table`. */
  learn?: { table: SourceTable; preference?: number };
  backoff?: BackoffPolicy;
  /** Network namespace (name or /run/netns path) to work in. */
  netns?: string;
  batchSize?: number;
  monitorRcvbuf?: number;
  pipelineWindow?: number;
  /** Routes through kernel nexthop objects: auto (default: where the kernel has them), on, off. Changes in place. */
  nexthopObjects?: NexthopMode;
  /** Prefix-independent failover (docs/failover.md): off (default), objects, or backup_routes (objects, and a backup route per net). */
  failover?: FailoverMode;
  /** The metric of backup routes (failover: backup_routes). */
  backupMetric?: number;
  /** Have the kernel drop the notifications of our own changes (default true; tests turn it off to cover echo matching). */
  filterOwnEchoes?: boolean;
  /** The kernel to sync with: netlink by default; unit tests give a fake one. */
  kernelIo?: KernelIoProvider;
  /** The metrics sink of each family's sync (sync-metrics.ts); default: none. */
  metrics?: (family: Family, kernelTable: number) => KernelSyncMetrics;
  /** Nets a next-hop change exports again per turn of the event loop (reexport.ts); tests make it small. */
  reexportSlice?: number;
  log?: Logger;
}

/** What a start stopped by a shutdown ends with (never seen outside). */
const STOPPED = new KernelStartError('shut down during start');

/** The options each family's sync takes as they are: those given. */
const PASSED_ON = ['netns', 'scanIntervalMs', 'batchSize', 'backoff', 'monitorRcvbuf', 'pipelineWindow', 'filterOwnEchoes', 'nexthopObjects', 'failover', 'backupMetric'] as const;
function passedOn(o: KernelProtocolOptions): Partial<Pick<KernelSyncOptions, (typeof PASSED_ON)[number]>> {
  return Object.fromEntries(PASSED_ON.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));
}

export class KernelProtocol implements Protocol<KernelProtocolOptions> {
  readonly name: string;
  readonly channel: ExportChannel;
  readonly kernelTable: number;
  readonly protocolNumber: number;
  private readonly sm: StateMachine<ProtocolState>;
  private readonly syncs = new Map<Family, KernelSync>();
  private readonly log: Logger;
  private readonly learn: KernelLearn | undefined;
  /** Reads the export request into the syncs' wants (export-walk.ts). */
  private readonly walk: ExportWalk;
  /** Failover reads each net's whole chain (the `all` exporter) to know its next-best route (docs/failover.md); not with merge_paths. */
  private readonly chainsRead: boolean;
  private graceTimer: NodeJS.Timeout | undefined;
  private shutdownPromise: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  /** Rejects with STOPPED once a shutdown begins: the start stops at its next wait (stoppable()). */
  private readonly stopAsked: Promise<never>;
  private askStop: () => void = () => undefined;
  private options: KernelProtocolOptions;
  /** startBeside(): the sources' load, and the check of their input. */
  private sourcesIn: Promise<void> | undefined;
  private sourcesChecked: Promise<void> | undefined;
  private unsubscribeNextHops: (() => void) | undefined;
  private unwatchFlush: (() => void) | undefined;
  /** Nets of next-hop changes to export again, in slices (reexport.ts). */
  private readonly reexport: ReExport;

  constructor(options: KernelProtocolOptions) {
    this.options = options;
    this.name = options.name;
    this.kernelTable = resolveKernelTable(options.kernelTable ?? 'main');
    this.protocolNumber = checkProtocolNumber(options.protocol ?? DEFAULT_KERNEL_PROTOCOL);
    if (options.metric !== undefined && !(Number.isInteger(options.metric) && options.metric >= 0 && options.metric <= 0xffffffff)) {
      throw new KernelOptionError(`metric ${options.metric}: must be an integer 0..4294967295`);
    }
    this.log = withFields(options.log ?? nullLogger, { protocol: options.name, table: this.kernelTable });
    this.sm = new StateMachine(`protocol ${options.name}`, 'down', PROTOCOL_TRANSITIONS);
    if (options.learn) {
      const src = new RouteSource(`${options.name}-learn`, options.learn.preference ?? 10);
      this.learn = new KernelLearn(options.learn.table, src, (i) => this.firstSync()?.links.nameOf(i));
    }
    const chOpts: ConstructorParameters<typeof ExportChannel>[0] = {};
    if (options.filter) chOpts.filter = options.filter;
    if (options.mergePaths) chOpts.mergePaths = options.mergePaths;
    if (this.learn) chOpts.ignoreSource = this.learn.source;
    this.channel = new ExportChannel(chOpts);
    this.chainsRead = (options.failover ?? 'off') !== 'off' && !this.channel.mergePaths;
    this.walk = new ExportWalk({ name: options.name, table: options.table, channel: this.channel, syncs: this.syncs, chainsRead: this.chainsRead, log: this.log });
    const retry = (): void => {
      for (const sync of this.syncs.values()) sync.retryFailedNow();
    };
    this.reexport = new ReExport(options.table, (net) => this.walk.reexportNet(net), retry, options.reexportSlice);
    this.stopAsked = new Promise<never>((_, reject) => (this.askStop = () => reject(STOPPED)));
    this.stopAsked.catch(() => undefined);
  }

  get state(): ProtocolState {
    return this.sm.state;
  }

  /** The learn source (when learning), to tell its routes apart in the table. */
  get learnSource(): RouteSource | undefined {
    return this.learn?.source;
  }

  init(): void {
    const families: Family[] = this.options.family === undefined || this.options.family === 'both' ? [4, 6] : [this.options.family];
    for (const family of families) {
      const sync = new KernelSync({
        name: `${this.name}/ipv${family}`,
        target: { family, table: this.kernelTable, protocol: this.protocolNumber, ...(this.options.metric !== undefined ? { metric: this.options.metric } : {}) },
        ...passedOn(this.options),
        nexthopTracking: this.options.table.nexthops !== undefined,
        ...(this.options.kernelIo !== undefined ? { io: this.options.kernelIo } : {}),
        log: withFields(this.log, { family: `ipv${family}` }),
        ...(this.options.metrics ? { metrics: this.options.metrics(family, this.kernelTable) } : {}),
        ...(this.learn ? { onForeignRoute: (r, deleted) => this.learn!.onRoute(r, deleted), onForeignDump: (routes) => this.learn!.resync(family, routes) } : {}),
      });
      this.syncs.set(family, sync);
    }
  }

  /**
   * Sources are still filling the table (the daemon starts us beside a routes file's load): the
   * first feed follows the fill (Table.beginFill), no early add goes out before `checked`
   * resolves (the input is known good), nothing is pruned before `loaded` resolves, and start
   * fails with nothing changed in the kernel if either rejects. On a restart (the kernel holds
   * routes of ours) the first dump waits for `loaded` instead. Called before start().
   */
  startBeside(loaded: Promise<void>, checked: Promise<void> = loaded): void {
    this.sourcesIn = loaded;
    this.sourcesChecked = checked;
    // Handled where they are awaited (doStart); a rejection before that must not go unhandled.
    loaded.catch(() => undefined);
    checked.catch(() => undefined);
  }

  /** Dumps, reads the feed to `ready`, reconciles; resolves once the kernel is in sync. */
  start(): Promise<void> {
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.sm.go('starting');
    if (this.syncs.size === 0) this.init();
    try {
      for (const sync of this.syncs.values()) await sync.open();
      if (this.sourcesIn !== undefined) await this.stoppable(this.restartAfterSources());
      // A restart's dump and the first feed bring about as many nets as the table has: room for them at once.
      for (const [family, sync] of this.syncs) sync.reserve(this.options.table.sizeHint(family));
      // Dump before reading any export: nothing is sent until both the dump and the feed are in.
      if (this.sourcesChecked !== undefined) for (const sync of this.syncs.values()) sync.holdEarlyAdds(this.sourcesChecked);
      for (const sync of this.syncs.values()) await sync.firstScan();
      const unsubscribe = this.options.table.nexthops?.subscribe((changes) => this.onNextHops(changes));
      this.unsubscribeNextHops = () => {
        unsubscribe?.();
        this.reexport.clear();
      };
      // A source about to go as a whole, or a next-hop set judged unusable: forwarding moves off it first,
      // one message per next hop, before the table's per-net work (sync-failover.ts).
      if (this.chainsRead) {
        const unwatch = this.options.table.watchFlush((src) => this.onSourceFlush(src));
        const unfirst = this.options.table.nexthops?.subscribeFirst((changes) => this.beforeNextHops(changes));
        this.unwatchFlush = () => {
          unwatch();
          unfirst?.();
        };
      }
      await this.stoppable(this.walk.start());
      // A source that failed to load (a bad line) stops the start here, before any prune: nothing
      // has been sent (early adds wait for the check), so the kernel is as it was.
      if (this.sourcesIn !== undefined) await this.stoppable(this.sourcesLoaded());
      const grace = this.options.gracefulRestartMs ?? 0;
      await this.stoppable(Promise.all([...this.syncs.values()].map((s) => s.prune(grace > 0))));
      if (grace > 0) {
        this.log.info(`graceful restart: keeping stale routes for ${grace} ms`);
        this.graceTimer = setTimeout(() => {
          for (const s of this.syncs.values()) void s.pruneStale();
        }, grace);
        this.graceTimer.unref();
      }
    } catch (e) {
      // A shutdown began: it takes over from here, and withdraws whatever the start left (its table walk and final dump).
      if (e === STOPPED) return;
      this.walk.stop();
      this.unsubscribeNextHops?.();
      this.unwatchFlush?.();
      for (const s of this.syncs.values()) s.destroy();
      this.sm.go('stopping');
      this.sm.go('down');
      throw e;
    }
    this.sm.go('up');
  }

  /**
   * `work`, or STOPPED as soon as a shutdown begins. The start's long waits (a restart's wait for
   * the sources, the first feed that follows a load, the prune) do not hold a SIGTERM up; the dump
   * is not one of them (it fills the store the withdrawal reads) and is not long.
   */
  private stoppable<T>(work: Promise<T>): Promise<T> {
    work.catch(() => undefined); // a failure after the shutdown took over is the shutdown's to see
    return Promise.race([work, this.stopAsked]);
  }

  /**
   * A restart's first dump (a million routes of ours taken in on the JS thread) would share the
   * thread with the sources' load and slow both, and no early add makes that pay: the load goes
   * first (docs/benchmarks.md, Round 12). A cold start goes on at once.
   */
  private async restartAfterSources(): Promise<void> {
    const holds = await Promise.all([...this.syncs.values()].map((s) => s.holdsOurs()));
    if (!holds.includes(true)) return;
    this.log.info('the kernel holds routes of ours: the first dump waits for the sources to load');
    await this.sourcesLoaded();
  }

  /** The sources' load and its check; a source that failed to load fails the start. */
  private async sourcesLoaded(): Promise<void> {
    try {
      await Promise.all([this.sourcesIn, this.sourcesChecked]);
    } catch (e) {
      throw new KernelStartError(`a source failed to load: ${(e as Error).message}`);
    }
  }

  /** Sets that lost their last usable hop, or got one back, told before the table reorders their nets (sync-failover.ts). */
  private beforeNextHops(changes: readonly NextHopChange[]): void {
    if (this.sm.state === 'up') nextHopsTurned([...this.syncs.values()].map((s) => s.failover), changes);
  }

  /** A source is about to be flushed from the table: each sync switches the forwarding objects it is the primary of. */
  private onSourceFlush(src: RouteSource): void {
    if (this.sm.state !== 'up' && this.sm.state !== 'starting') return;
    for (const sync of this.syncs.values()) sync.failover.sourceDown(src.name);
  }

  /**
   * Next hops changed. The table has already moved the best routes of sets
   * that became (in)eligible; a set that kept some hops but not the same
   * ones is exported again, net by net through the table's index (with
   * merge_paths or failover, any change: a merged route takes hops from
   * several sets, and the `all` exporter they read does not carry the
   * reordered best routes), in slices (reexport.ts). A set with more usable
   * hops than before retries what the kernel refused once they are done.
   */
  private onNextHops(changes: readonly NextHopChange[]): void {
    if (!this.walk.reading) return;
    this.reexport.changed(changes, Boolean(this.channel.mergePaths) || this.chainsRead, (net) => this.syncs.has(net.family), this.chainsRead);
  }

  /**
   * Withdraws every route of ours (or, with persist, leaves them) and closes.
   * Resolves once the kernel holds no route of ours. Idempotent.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.doShutdown();
    return this.shutdownPromise;
  }

  private async doShutdown(): Promise<void> {
    // A shutdown during start stops it at its next wait (a dump in progress ends first: the store it
    // fills is what the withdrawal reads), then withdraws as from up.
    this.askStop();
    if (this.starting) await this.starting.catch(() => undefined);
    if (this.sm.state === 'down') return;
    this.sm.go('stopping');
    clearTimeout(this.graceTimer);
    this.unsubscribeNextHops?.();
    this.unwatchFlush?.();
    this.walk.stop();
    await this.walk.done;
    this.learn?.withdrawAll();
    for (const [family, sync] of this.syncs) {
      if (this.options.persist) {
        await sync.leaveInPlace();
        this.log.info('persist: leaving our routes in the kernel');
        continue;
      }
      // The table itself, walked now (nothing can change it in between): not the channel's state.
      const table = this.options.table;
      await sync.withdrawAll((v4, v6) => table.forEachNet(family, v4, v6));
    }
    this.sm.go('down');
  }

  /**
   * Applies new options in place when only the export filter, the scan
   * interval or the logger differ (a new filter refeeds the export request,
   * so every net is judged again); anything else returns false: restart me.
   */
  reconfigure(next: KernelProtocolOptions): boolean {
    const cur = this.options;
    const keys = new Set([...Object.keys(cur), ...Object.keys(next)] as (keyof KernelProtocolOptions)[]);
    for (const k of keys) {
      if (k === 'scanIntervalMs' || k === 'log' || k === 'filter' || k === 'nexthopObjects') continue;
      if (cur[k] !== next[k]) return false;
    }
    this.options = next;
    if (cur.scanIntervalMs !== next.scanIntervalMs) for (const s of this.syncs.values()) s.setScanInterval(next.scanIntervalMs ?? 60_000);
    if (cur.nexthopObjects !== next.nexthopObjects) for (const s of this.syncs.values()) s.setNexthopMode(next.nexthopObjects ?? 'auto');
    if (cur.filter !== next.filter) {
      this.channel.filter = next.filter ?? ACCEPT_ALL;
      this.walk.refeed('export filter changed');
    }
    return true;
  }

  /** The export memos' lookups so far, both families (tests; export-memo.ts). */
  exportMemoStats(): { hits: number; misses: number } {
    return this.walk.memoStats();
  }

  /** Sync status of one net, of the nets inside `prefix`, or of all. */
  status(prefix?: Prefix): RouteSyncStatus[] {
    const out: RouteSyncStatus[] = [];
    for (const sync of this.syncs.values()) out.push(...sync.status(prefix));
    return out;
  }

  /** Our nexthop objects per family, with the nets on each. */
  nexthopStatus(): Array<NexthopStatus & { family: Family }> {
    const out: Array<NexthopStatus & { family: Family }> = [];
    for (const [family, sync] of this.syncs) for (const s of sync.nexthopStatus()) out.push({ family, ...s });
    return out;
  }

  /** Per-state counts; nets a next-hop change left to export again count as pending until they are (reexport.ts). */
  counts(): SyncCounts {
    const c = sumCounts([...this.syncs.values()].map((sync) => sync.counts()));
    c.pending += this.reexport.pending;
    return c;
  }

  /** The per-family syncs, for metrics and the CLI's detail view. */
  get families(): ReadonlyMap<Family, KernelSync> {
    return this.syncs;
  }

  /** The per-family sync (for tests and the CLI's detail view). */
  sync(family: Family): KernelSync | undefined {
    return this.syncs.get(family);
  }

  /** Drops the protocol without touching the kernel: what a crash (SIGKILL) leaves. For tests. */
  crashForTesting(): void {
    this.unsubscribeNextHops?.();
    this.unwatchFlush?.();
    this.walk.stop();
    clearTimeout(this.graceTimer);
    for (const s of this.syncs.values()) s.destroy();
  }

  private firstSync(): KernelSync | undefined {
    return this.syncs.values().next().value;
  }
}
