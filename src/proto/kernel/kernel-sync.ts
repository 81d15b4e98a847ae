/**
 * KernelSync: keeps one kernel table (one family, one protocol number) equal
 * to what we want, and knows per net how that is going.
 *
 * It receives its kernel (kernel-io.ts: netlink, or a fake in unit tests).
 * The protocol says what is wanted (setWanted) and when to scan, prune and
 * withdraw; the sync's phase (sync-state.ts) says what may happen now; the
 * per-route state is columns indexed by route id (route-store.ts) naming
 * interned kernel routes (kernel-routes.ts); the sender (sync-sender.ts)
 * plans, sends and takes the answers.
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
import { backoffDelay, type BackoffPolicy } from '../../lib/backoff';
import { DumpInterruptedError } from '../../netlink/client';
import * as C from '../../netlink/constants';
import type { AddrMessage, LinkMessage } from '../../netlink/link-codec';
import { SpreadIds, forEachInSpreadOrder } from '../../netlink/order';
import type { RouteMessage } from '../../netlink/route-codec';
import type { DumpedRoutes } from '../../netlink/route-dump';
import { newRouteHead, readRouteHead } from '../../netlink/route-head';
import type { RouteAttrs } from '../../route';
import type { KernelAttrs } from '../kernel-attrs';
import { RateLimitedLog, debugOn, type Logger } from '../logger';
import type { StateMachine } from '../protocol';
import type { KernelTarget } from './convert';
import { EchoMatcher } from './echo-matcher';
import type { DumpSink, KernelIo, KernelIoProvider } from './kernel-io';
import { KernelRoutes } from './kernel-routes';
import { LinkCache } from './link-cache';
import { openNetlinkKernelIo } from './netlink-io';
import { effectivePriority } from './normalize';
import { QUEUED, RECHECK, RouteStore, SEEN, UNCERTAIN } from './route-store';
import { countLine, type RouteSyncStatus, type SyncCounts } from './route-status';
import { ScanScheduler, type ScanTarget } from './scan-scheduler';
import { SyncSender, type SyncStats } from './sync-sender';
import { NO_SYNC_METRICS, SCAN_REASONS, scanReasonLabel, type KernelSyncMetrics } from './sync-metrics';
import { PHASE, syncStateMachine, type SyncState } from './sync-state';
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
  /** Counters for status and tests. */
  readonly stats: SyncStats = { scans: 0, resyncs: 0, repairs: 0, sent: 0, failed: 0, overflows: 0, rawEchoes: 0, notifications: 0, crossed: 0, earlyAdds: 0 };
  private readonly sender: SyncSender;
  private readonly log: Logger;
  private readonly limited: RateLimitedLog;
  private readonly target: KernelTarget;
  private io: KernelIo | undefined;
  private echoes: EchoMatcher | undefined;
  /** Notifications that arrived while the phase buffers them (a dump is being taken or applied). */
  private buffered: Array<[RouteMessage, boolean]> = [];
  private readonly head = newRouteHead();
  private refeeding = false;
  private readonly metrics: KernelSyncMetrics;
  /** The first sync is over: table changes from here on are timed to their answer (sync-metrics.ts). */
  private steady = false;
  private openedAt = 0;
  private tick: NodeJS.Timeout | undefined;
  private readonly scans: ScanScheduler;

  constructor(private readonly opts: KernelSyncOptions) {
    this.target = opts.target;
    this.metrics = opts.metrics ?? NO_SYNC_METRICS;
    this.log = opts.log;
    this.limited = new RateLimitedLog(opts.log);
    this.sm = syncStateMachine(`kernel ${opts.name}`, (from, to) => this.log.debug(`sync state ${from} -> ${to}`));
    this.scans = new ScanScheduler(this, opts.scanIntervalMs ?? 60_000, opts.minScanGapMs ?? 250);
    this.routes = new KernelRoutes(opts.target, this.links);
    this.store = new RouteStore(opts.target.family, this.routes);
    this.sender = new SyncSender({
      store: this.store,
      routes: this.routes,
      sm: this.sm,
      stats: this.stats,
      log: this.log,
      limited: this.limited,
      table: opts.target.table,
      protocol: opts.target.protocol,
      batchSize: opts.batchSize ?? 4096,
      backoff: opts.backoff,
      progressEveryMs: opts.progressEveryMs ?? 5000,
      metrics: this.metrics,
      io: () => this.io!,
      echoes: () => this.echoes,
      requestScan: (reason, delay) => this.requestScan(reason, delay),
    });
  }

  get state(): SyncState {
    return this.sm.state;
  }

  /** Resolves once no flush runs and no change of ours is out. */
  settled(): Promise<void> {
    return this.sender.settled();
  }

  /** A scan may begin: the first sync (and a graceful-restart hold) is over and no other scan runs. */
  get canScan(): boolean {
    return PHASE.scans(this.sm.state);
  }

  // ------------------------------------------------------------ lifecycle

  /** Opens the kernel I/O (listening first, so no change after the dump is missed) and reads the links. */
  async open(): Promise<void> {
    this.openedAt = Date.now();
    const { io, links } = await (this.opts.io ?? openNetlinkKernelIo)(
      {
        target: this.target,
        ...(this.opts.netns !== undefined ? { netns: this.opts.netns } : {}),
        ...(this.opts.monitorRcvbuf ? { monitorRcvbuf: this.opts.monitorRcvbuf } : {}),
        ...(this.opts.pipelineWindow ? { pipelineWindow: this.opts.pipelineWindow } : {}),
        ...(this.opts.filterOwnEchoes !== undefined ? { filterOwnEchoes: this.opts.filterOwnEchoes } : {}),
      },
      {
        onRoute: (r, deleted) => this.onRouteNotification(r, deleted),
        onLink: (l, deleted) => this.onLink(l, deleted),
        onAddr: (a, deleted) => this.onAddr(a, deleted),
        onOverflow: () => this.onOverflow(),
        onMalformed: (m) => this.limited.write('warn', 'malformed', `malformed notification: ${m}`),
        onRawRoute: (buf, off, len, type) => this.onRawRoute(buf, off, len, type),
      },
    );
    this.io = io;
    if (!io.ownEchoesFiltered) {
      this.echoes = new EchoMatcher();
      if (this.opts.filterOwnEchoes !== false) this.log.warn('the kernel refused the notification filter; matching our own notifications instead (slower with large tables)');
    }
    for (const l of links) this.links.update(l, false);
  }

  /** init -> first-dump -> first-feed: our routes in the kernel; then only early adds go out until prune(). */
  async firstScan(): Promise<void> {
    this.sm.go('first-dump');
    // Nothing is known yet, so the dump goes straight into the routes' state as it arrives (no list
    // of a million routes on the side); a dump that starts over starts the state over.
    const store = this.store;
    const routes = this.routes;
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
        await this.dumpOurs(sink);
        done = true;
      } catch (err) {
        // A table that keeps changing interrupts dumps: the first sync waits for a quiet moment.
        if (!(err instanceof DumpInterruptedError)) throw err;
        sink.restart();
        this.limited.write('warn', 'first-scan', `first scan: ${err.message}; trying again`, { table: this.target.table });
        await new Promise((r) => setTimeout(r, 200));
      }
      if (PHASE.closing(this.state)) return;
    }
    this.log.info(`first scan: ${count} routes of ours in table ${this.target.table}`, { table: this.target.table });
    this.sm.go('first-feed');
  }

  /**
   * first-feed -> pruning -> idle (or, with `keepStale`, -> holding: graceful restart keeps
   * routes of ours nothing wants until pruneStale()): sends every difference and waits for the
   * results.
   */
  async prune(keepStale = false): Promise<void> {
    // Someone else's change buffered while early adds went out is not ordered against them: a scan settles it.
    const crossed = this.stats.earlyAdds > 0 && this.buffered.length > 0;
    this.sm.go(keepStale ? 'holding' : 'pruning');
    if (crossed) this.requestScan(SCAN_REASONS.first_feed, 100);
    this.drainBuffered();
    this.queueAll(true);
    const t0 = Date.now();
    this.sender.kick();
    await this.sender.settled();
    if (PHASE.closing(this.state)) return;
    if (!keepStale) this.sm.go('idle');
    this.steady = true;
    this.metrics.firstSync((Date.now() - this.openedAt) / 1000);
    this.log.info(`in sync: ${countLine(this.counts())} (${Date.now() - t0} ms)`, { table: this.target.table });
    this.tick = setInterval(() => this.sender.onTick(Date.now()), 250);
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
    this.sender.kick();
    await this.sender.settled();
    if (PHASE.closing(this.state)) return;
    this.sm.go('idle');
  }

  /**
   * Queues what a prune has to do. The first (`first`): nets already right (a restart: nearly
   * all) are settled in place, the rest queued in the order the kernel's trie takes fastest,
   * together with early adds the pipeline has not taken yet (on a cold start the kernel is
   * behind the feed: a third to a half of them). The kernel adds them faster, and deletes them
   * faster at shutdown (its trie keeps the layout of the order routes went in): docs/benchmarks.md,
   * round 6. After a scan: every route whose retry is due.
   */
  private queueAll(first: boolean): void {
    const store = this.store;
    const sender = this.sender;
    const now = Date.now();
    if (!first) {
      store.forEach((id) => {
        if (store.retryAt(id) <= now) sender.dirty.add(id);
      });
      return;
    }
    const nets = store.nets;
    // Every queued and every walked route once. IPv4 goes in trie-spread order (read straight from
    // the routes' words: SpreadIds keeps 8 bytes a route, nothing else), IPv6 as it is.
    const spread = nets.stride === 1 && SpreadIds.fits(nets.end) ? new SpreadIds(store.size) : undefined;
    const work = spread === undefined ? new Int32Array(store.size) : undefined;
    let n = 0;
    const take = (id: number): void => {
      if (spread !== undefined) spread.push(nets.words[id]!, id);
      else work![n++] = id;
    };
    const plan = { n: 0, cmds: [], ids: [] };
    store.forEach((id) => {
      if (store.flag(id, QUEUED)) return take(id); // an early add the pipeline has not taken yet
      if (!sender.idleOnWire(id)) return;
      const w = store.want[id]!;
      if (w !== 0 && w === store.have[id]) sender.settleState(id, true);
      else if (w !== 0 && store.have[id] === 0) take(id); // certainly an add (or a failure to record)
      else if (store.plan(id, plan) === 0) sender.settleState(id, true);
      else take(id);
    });
    sender.dirty.clear(); // all of it was taken above: queued again below, in order
    if (spread !== undefined) {
      spread.sort();
      for (let k = 0; k < spread.n; k++) sender.dirty.add(spread.at(k));
    } else if (nets.stride !== 1) for (let i = 0; i < n; i++) sender.dirty.add(work![i]!);
    else forEachInSpreadOrder(nets.words, nets.lens, n, work, (i) => sender.dirty.add(work![i]!));
  }

  // ------------------------------------------------------------ what we want

  /** The route we want for `net` (attrs undefined: none), with the export filter's settings. */
  setWanted(net: Prefix, attrs: RouteAttrs | undefined, set: KernelAttrs | undefined, sourceName?: string): void {
    if (net.family !== this.target.family) return;
    const store = this.store;
    let id = store.nets.find(net);
    if (id < 0) {
      if (attrs === undefined) return;
      id = store.idOf(net);
    }
    if (this.refeeding) store.setFlag(id, SEEN, true);
    const before = store.want[id]!;
    const rid = attrs === undefined ? 0 : this.routes.wanted(attrs, set, sourceName);
    store.setWant(id, rid);
    store.clearFailure(id);
    const err = rid === 0 ? undefined : this.routes.get(rid).error;
    if (err !== undefined) {
      store.setState(id, 'failed');
      this.sender.failed.add(id);
      // Said once per new reason (links change often; the same reason again is not news).
      if (before !== rid) this.limited.write('warn', `convert:${err.errnoName}`, `cannot install ${net}: ${err.message}; waiting for a link change`, { prefix: net.toString(), errno: err.errnoName });
    }
    store.track(id);
    this.sender.markDirty(id, this.steady ? Date.now() : 0);
  }

  /** A refeed begins: nets it does not list by refeedEnd() are no longer wanted. */
  refeedBegin(): void {
    this.refeeding = true;
    this.store.forEach((id) => this.store.setFlag(id, SEEN, false));
  }

  /** The refeed is complete: a wanted net it did not list has no route now. */
  refeedEnd(): void {
    if (!this.refeeding) return;
    this.refeeding = false;
    const unseen: number[] = [];
    this.store.forEach((id) => {
      if (this.store.want[id] !== 0 && !this.store.flag(id, SEEN)) unseen.push(id);
      this.store.setFlag(id, SEEN, false);
    });
    for (const id of unseen) this.setWanted(this.store.nets.prefix(id), undefined, undefined);
  }

  // ------------------------------------------------------------ the kernel's side

  private async dumpOurs(sink?: DumpSink): Promise<DumpedRoutes> {
    const dump = await this.io!.dumpTable(this.opts.onForeignDump !== undefined, sink);
    if (dump.retries > 0) this.metrics.dumpRetried(dump.retries);
    if (dump.retries > 0) this.limited.write('warn', 'dump-intr', `dump interrupted ${dump.retries} times (table busy); retried`, { table: this.target.table });
    for (const m of dump.undecodable) this.limited.write('warn', 'dump-decode', `undecodable route in dump: ${m}`);
    this.opts.onForeignDump?.(dump.foreign);
    return dump.ours;
  }

  /** Room for `n` routes: the protocol knows the table's size before the first scan. */
  reserve(n: number): void {
    this.store.reserve(n);
  }

  /** Our view of the kernel becomes the dump; echoes still expected are forgotten (the dump shows their effect). */
  private applyDump(dumped: DumpedRoutes): void {
    const store = this.store;
    store.reserve(Math.max(store.size, dumped.length)); // usually the same nets
    store.forEach((id) => store.clearHave(id));
    this.echoes?.clear();
    const nets = store.nets;
    const routes = this.routes;
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

  private drainBuffered(): void {
    const buffered = this.buffered;
    this.buffered = [];
    for (const [r, deleted] of buffered) this.onRouteNotification(r, deleted);
  }

  /**
   * The echo fallback's fast path: the notification of our own change read in place (RouteHead),
   * so the common echo costs no decode. It does exactly what onRouteNotification does with such
   * an echo; anything else returns false and takes the full decode.
   */
  private onRawRoute(buf: Buffer, off: number, len: number, type: number): boolean {
    const echoes = this.echoes;
    if (echoes === undefined || PHASE.buffers(this.state) || PHASE.closing(this.state)) return false;
    const h = this.head;
    if (!readRouteHead(buf, off, len, h) || h.family !== this.target.family || h.protocol !== this.target.protocol || h.table !== this.target.table || h.flags & C.RTM_F_CLONED) return false;
    const nets = this.store.nets;
    const id = h.family === 4 ? nets.find4(h.dst0, h.dstLen) : nets.find6(h.dst0, h.dst1, h.dst2, h.dst3, h.dstLen);
    if (id < 0) return false;
    const deleted = type === C.RTM_DELROUTE;
    const prio = h.priority >= 0 ? h.priority : h.family === 6 ? 1024 : 0;
    const w = this.store.want[id]!;
    if (!echoes.takeRaw(id, h, deleted, w === 0 ? undefined : this.routes.get(w).route, prio)) return false;
    if (deleted) this.store.removeHave(id, prio);
    else this.store.putHave(id, w);
    this.stats.rawEchoes++;
    this.sender.afterSettle(id);
    return true;
  }

  private onRouteNotification(r: RouteMessage, deleted: boolean): void {
    if (PHASE.closing(this.state) || r.table !== this.target.table || r.flags & C.RTM_F_CLONED) return;
    this.stats.notifications++;
    if (PHASE.buffers(this.state)) {
      this.buffered.push([r, deleted]);
      return;
    }
    const store = this.store;
    if (r.protocol !== this.target.protocol) {
      this.metrics.foreignChange();
      this.opts.onForeignRoute?.(r, deleted);
      // A foreign route that was in the way of ours is gone: retry ours now.
      if (deleted) {
        const id = store.nets.find(r.dst);
        if (id >= 0 && store.state(id) === 'failed' && store.extra(id)?.error?.errnoName === 'EEXIST') {
          store.extraOf(id).retryAt = 0;
          this.sender.markDirty(id);
        }
      }
      return;
    }
    let id = store.nets.find(r.dst);
    if (id < 0) {
      if (deleted) return;
      id = store.idOf(r.dst); // a route with our number we never installed: not wanted, so it goes
    }
    const prio = effectivePriority(r);
    if (deleted) store.removeHave(id, r.priority === undefined && r.family === 4 ? undefined : prio);
    else {
      const w = store.want[id]!;
      const rid = w !== 0 && this.routes.matches(w, r) ? w : this.routes.seen(r);
      store.putHave(id, rid);
    }
    if (this.echoes?.take(id, deleted ? 'del' : 'new', prio) === true) {
      this.sender.afterSettle(id);
      return;
    }
    this.repair(id, deleted ? 'deleted' : 'changed');
  }

  /** Someone else changed or deleted a route of ours (or added one with our number): put ours back, rate-bounded. */
  private repair(id: number, what: 'deleted' | 'changed'): void {
    const store = this.store;
    const sender = this.sender;
    if (!sender.idleOnWire(id)) {
      store.setFlag(id, RECHECK, true);
      if (this.echoes === undefined) store.setFlag(id, UNCERTAIN, true); // no echo orders it against ours: see afterSettle
      return;
    }
    if (PHASE.closing(this.state)) return;
    const w = store.want[id]!;
    if ((w !== 0 && this.routes.get(w).error !== undefined) || store.plan(id, { n: 0, cmds: [], ids: [] }) === 0) {
      sender.settleState(id);
      return;
    }
    const now = Date.now();
    const x = store.extraOf(id);
    x.repairStreak = now - x.lastRepairAt < (this.opts.repairWindowMs ?? 10_000) ? x.repairStreak + 1 : 1;
    x.lastRepairAt = now;
    this.stats.repairs++;
    this.metrics.repaired(what);
    const net = store.nets.prefix(id).toString();
    this.limited.write('info', 'repair', `route ${net} ${what} by someone else; repairing`, { prefix: net, table: this.target.table });
    if (x.repairStreak > 2) {
      // Someone keeps undoing us: back off instead of fighting in a hot loop.
      const delay = backoffDelay({ baseMs: 500, maxMs: 60_000, jitter: 0.2 }, x.repairStreak - 2);
      x.retryAt = now + delay;
      sender.failed.add(id);
      this.limited.write('warn', 'repair-loop', `route ${net} keeps being changed by someone else; next repair in ${delay} ms`, { prefix: net });
      return;
    }
    sender.markDirty(id);
  }

  private onLink(l: LinkMessage, deleted: boolean): void {
    const change = this.links.update(l, deleted);
    if (change === 'none') return;
    this.log.debug(`link ${l.name ?? l.index} ${change}`);
    // Routes through a link that went away may be gone without a notification; ones waiting for it may go in now.
    this.onLinkLayerChange(change === 'up' || change === 'added' || change === 'renamed');
  }

  private onAddr(a: AddrMessage, deleted: boolean): void {
    if (a.family !== this.target.family) return;
    this.onLinkLayerChange(!deleted);
  }

  private onLinkLayerChange(cameBack: boolean): void {
    if (PHASE.closing(this.state)) return;
    const store = this.store;
    // Device names may resolve differently now: wanted routes naming one are converted again.
    const moved = this.routes.reconvert();
    if (moved.size > 0) {
      store.forEach((id) => {
        const to = moved.get(store.want[id]!);
        if (to === undefined) return;
        store.setWant(id, to);
        if (this.routes.get(to).error === undefined && store.state(id) === 'failed' && store.extra(id)?.error === undefined) store.setState(id, 'pending');
        if (this.routes.get(to).error !== undefined) {
          store.setState(id, 'failed');
          this.sender.failed.add(id);
        }
        store.track(id);
        this.sender.markDirty(id);
      });
    }
    if (cameBack) {
      const now = Date.now();
      for (const id of this.sender.failed) {
        const x = store.extra(id);
        if (x === undefined || !store.nets.live(id)) continue;
        x.retryAt = Math.min(x.retryAt, now);
        x.attempts = 0;
      }
    }
    this.requestScan(SCAN_REASONS.link, 100);
  }

  private onOverflow(): void {
    this.stats.overflows++;
    this.metrics.overflow();
    this.limited.write('warn', 'overflow', 'notification socket overflowed (ENOBUFS): changes were lost; resyncing', { table: this.target.table });
    this.requestScan(SCAN_REASONS.overflow, 0);
  }

  // ------------------------------------------------------------ scans

  /** Changes the periodic scan interval (0: off); the next scan is timed from now. */
  setScanInterval(ms: number): void {
    this.scans.setInterval(ms, this.state !== 'init' && this.state !== 'first-dump' && this.state !== 'first-feed');
  }

  /** Asks for a scan (a dump compared with what we want) after `delayMs`; requests coalesce. */
  requestScan(reason: string, delayMs = 0): void {
    if (!PHASE.closing(this.state)) this.scans.request(reason, delayMs);
  }

  /** idle -> scan-settle -> scan-dump -> pruning -> idle: dump, compare every attribute, send the differences. */
  async scan(reason: string): Promise<void> {
    this.sm.go('scan-settle');
    const t0 = Date.now();
    this.stats.scans++;
    if (reason !== SCAN_REASONS.periodic) {
      this.stats.resyncs++;
      this.metrics.resync(scanReasonLabel(reason));
    }
    await this.sender.settled();
    if (PHASE.closing(this.state)) return; // a shutdown began meanwhile: it owns the sync now
    this.sm.go('scan-dump');
    let dumped: DumpedRoutes | undefined;
    try {
      dumped = await this.dumpOurs();
    } catch (err) {
      this.metrics.scanFailed();
      this.limited.write('warn', 'scan-failed', `scan (${reason}) failed: ${(err as Error).message}; retrying`, { table: this.target.table });
    }
    if (PHASE.closing(this.state)) return;
    if (dumped) this.applyDump(dumped);
    this.sm.go('pruning');
    this.drainBuffered();
    this.queueAll(false);
    this.sender.kick();
    await this.sender.settled();
    if (PHASE.closing(this.state)) return;
    this.sm.go('idle');
    this.metrics.scanned((Date.now() - t0) / 1000);
    if (debugOn(this.log)) this.log.debug(`scan (${reason}) done: ${countLine(this.counts())}`);
    if (!dumped) this.requestScan(SCAN_REASONS.retry, 1000);
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Deletes every route of ours: one delete per net the sync holds or
   * wants, and per net of the table (`fed`), in batches, waiting for every
   * answer; then a final dump deletes whatever of ours is left. Ends down.
   */
  async withdrawAll(fed: ForEachFed): Promise<WithdrawResult> {
    this.beginShutdown();
    await this.sender.settled();
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
    );
    await this.close();
    return result;
  }

  /** Leaves every route in place and closes (persist). */
  async leaveInPlace(): Promise<void> {
    this.beginShutdown();
    await this.sender.settled();
    await this.close();
  }

  private beginShutdown(): void {
    if (PHASE.live(this.state)) this.sm.go('closing');
    this.stopTimers();
    this.io?.closeMonitor();
  }

  private stopTimers(): void {
    clearInterval(this.tick);
    this.scans.close();
  }

  private async close(): Promise<void> {
    await this.io?.close();
    this.sender.close();
    if (this.sm.can('down')) this.sm.go('down');
  }

  /** Drops everything at once without touching the kernel: what a crash leaves behind (tests), or a failed start. */
  destroy(): void {
    if (PHASE.live(this.state)) this.sm.go('closing');
    this.stopTimers();
    this.io?.destroy();
    this.sender.close();
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
