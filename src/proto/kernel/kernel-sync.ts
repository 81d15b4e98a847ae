/**
 * KernelSync: keeps one kernel table (one family, one protocol number) equal
 * to what we want, and knows per net how that is going.
 *
 * It owns the netlink side: a dump client, the batched route pipeline, the
 * notification monitor and the link cache. The protocol tells it what is
 * wanted (setWanted) and when to scan, prune and withdraw; it decides the
 * operations (reconcile.ts) and sends them in batches.
 *
 * Invariants:
 *  - only routes whose rtm_protocol is ours, in our table, are ever planned
 *    for change: everything else reaching it is passed to onForeignRoute;
 *  - nothing is sent while `sending` is off (first scan, the dump of a scan),
 *    except, during the first feed (`earlyAdds`), adds of nets the first
 *    scan found nothing of ours for: those are needed whatever the rest of
 *    the feed holds, so they go out while the feed is still being read;
 *  - our own changes' notifications never reach us (the kernel drops them:
 *    KernelIo.ownEchoesFiltered), so every notification is someone else's;
 *    one for a net with an operation of ours in flight marks it `uncertain`
 *    (which came last is unknown) and a scan settles it after the answer.
 *    Without the filter, a net with operations out (in flight, or acked but
 *    their notification not yet seen) is not planned again until they settle,
 *    so our own notifications are never taken for repairs. Either way changes
 *    meanwhile set `recheck`;
 *  - a failed route waits for its retry time (exponential backoff) and never
 *    holds up other nets; repairs of one net back off too when someone keeps
 *    undoing them.
 *  - an overflow of the notification socket, or a dump that keeps being
 *    interrupted, leads to a fresh dump and reconcile (a resync).
 */
import { constants as osConstants } from 'node:os';
import { AF_INET, type Prefix } from '../../lib/addr';
import { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from '../../lib/backoff';
import { KrtError } from '../../lib/errors';
import * as C from '../../netlink/constants';
import { NetlinkRequestError } from '../../netlink/errors';
import type { AddrMessage, LinkMessage } from '../../netlink/link-codec';
import { trieSpreadOrder } from '../../netlink/order';
import type { BatchResult } from '../../netlink/pipeline';
import { RTMSG_LEN, type DumpedRoutes, type RouteMessage } from '../../netlink/route-codec';
import type { RouteAttrs } from '../../route';
import type { KernelAttrs } from '../kernel-attrs';
import { RateLimitedLog, debugOn, type Logger } from '../logger';
import type { StateMachine } from '../protocol';
import { ConversionError, toKernelRoute, type KernelTarget } from './convert';
import { KernelIo } from './kernel-io';
import { LinkCache } from './link-cache';
import { effectivePriority } from './normalize';
import type { KernelOpCmd } from './reconcile';
import { SyncBatch } from './sync-batch';
import { NO_HAVE, NetEntry } from './net-entry';
import { NetMap } from './net-map';
import { DirtyQueue, EchoWaitQueue } from './entry-queue';
import { countLine, countStates, listStatus, type RouteError, type RouteSyncStatus, type SyncCounts } from './route-status';
import { syncStateMachine, type SyncState } from './sync-state';
import { ScanScheduler, type ScanTarget } from './scan-scheduler';
import { withdrawAll, type ForEachFed, type HeldNets, type WithdrawResult } from './withdraw';

const { ESRCH, EEXIST } = osConstants.errno;

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
  /** How often long work logs progress. Default 5 s. */
  progressEveryMs?: number;
  log: Logger;
  /** Routes of other protocols in our table (dumps and notifications), for learn. */
  onForeignRoute?: (r: RouteMessage, deleted: boolean) => void;
  /** Every scan also dumps foreign routes and hands over the complete list (learn resyncs from it). */
  onForeignDump?: (routes: readonly RouteMessage[]) => void;
}

export class KernelSync implements ScanTarget {
  readonly links = new LinkCache();
  readonly sm: StateMachine<SyncState>;
  /** Per net; the failed set and the queues below hold the entries themselves (no boxed number per net). */
  private readonly entries = new NetMap<NetEntry>();
  private readonly dirty = new DirtyQueue();
  private readonly failed = new Set<NetEntry>();
  private readonly waitingEcho = new EchoWaitQueue();
  private readonly log: Logger;
  private readonly limited: RateLimitedLog;
  private readonly target: KernelTarget;
  private io: KernelIo | undefined;
  private sending = false;
  /**
   * Between the first scan and prune(): adds of nets with nothing of ours in the kernel go out as
   * the feed brings them, so the kernel works while the rest of the table is still being read.
   * Only with our own notifications filtered (no echo to match while notifications are buffered).
   */
  private earlyAdds = false;
  /** Our own changes' notifications arrive and are matched (false: the kernel drops them; KernelIo). */
  private echoes = true;
  private allowDeletes = true;
  private flushing = false;
  private flushAgain = false;
  private outstanding = 0;
  private settleWaiters: Array<() => void> = [];
  private buffering: Array<[RouteMessage, boolean]> | undefined;
  /** A converted route per attribute set (no filter `set`), its dst replaced per net; cleared when links change. */
  private readonly wantTemplates = new Map<RouteAttrs, RouteMessage>();
  private tick: NodeJS.Timeout | undefined;
  private readonly scans: ScanScheduler;
  private closed = false;
  /** Counters for status and tests. */
  readonly stats = { scans: 0, resyncs: 0, repairs: 0, sent: 0, failed: 0, overflows: 0, rawEchoes: 0, notifications: 0, crossed: 0, earlyAdds: 0 };

  constructor(private readonly opts: KernelSyncOptions) {
    this.target = opts.target;
    this.log = opts.log;
    this.limited = new RateLimitedLog(opts.log);
    this.sm = syncStateMachine(`kernel ${opts.name}`, (from, to) => this.log.debug(`sync state ${from} -> ${to}`));
    this.scans = new ScanScheduler(this, opts.scanIntervalMs ?? 60_000, opts.minScanGapMs ?? 250);
  }

  get state(): SyncState {
    return this.sm.state;
  }

  /** A scan may begin: the first sync is over and no other scan runs. */
  get canScan(): boolean {
    return this.sm.state === 'idle' && !this.closed;
  }

  // ------------------------------------------------------------ lifecycle

  /** Opens the sockets (monitor first, so no change after the dump is missed) and reads the links. */
  async open(): Promise<void> {
    this.buffering = [];
    const { io, links } = await KernelIo.open(
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
        onRawRoute: (buf, off, len, type) => this.onRawEcho(buf, off, len, type),
      },
    );
    this.io = io;
    this.echoes = !io.ownEchoesFiltered;
    if (this.echoes && this.opts.filterOwnEchoes !== false) this.log.warn('the kernel refused the notification filter; matching our own notifications instead (slower with large tables)');
    for (const l of links) this.links.update(l, false);
  }

  /** init -> first-scan: dump our routes; nothing is sent until prune(). */
  async firstScan(): Promise<void> {
    this.sm.go('first-scan');
    const dumped = await this.dumpOurs();
    this.applyDump(dumped);
    this.log.info(`first scan: ${dumped.length} routes of ours in table ${this.target.table}`, { table: this.target.table });
    this.earlyAdds = !this.echoes && !this.closed;
  }

  /** An add that is right whatever else the first feed brings: the net wants a route and holds none of ours. */
  private static earlyAdd(e: NetEntry): boolean {
    return e.want !== undefined && e.wantError === undefined && e.haveCount === 0;
  }

  /**
   * first-scan -> pruning -> idle: sends every difference (adds, replaces,
   * deletes of stale routes) and waits for the results. With `keepStale`,
   * stale routes stay for now (graceful restart) and pruneStale() removes them.
   */
  async prune(keepStale = false): Promise<void> {
    this.sm.go('pruning');
    this.allowDeletes = !keepStale;
    this.earlyAdds = false;
    // Someone else's change buffered while early adds went out is not ordered against them: a scan settles it.
    if (this.stats.earlyAdds > 0 && this.buffering !== undefined && this.buffering.length > 0) this.requestScan('a change by someone else during the first feed', 100);
    this.drainBuffered();
    // The whole first sync is known now. Nets already right (a restart: nearly all) are settled
    // here, in the entries' own order; the rest is queued in the order the kernel's trie takes
    // fastest (sorting a million entries a restart does not send is 0.2 s for nothing). Early
    // adds the pipeline has not taken yet (on a cold start the kernel is behind the feed: a third
    // to a half of them) join that order; those out settle when their answer comes. The kernel
    // adds the rest faster, and deletes them faster at shutdown (its trie keeps the layout of the
    // order routes went in): cold start 6.4-6.5 -> 6.0 s back to back, docs/benchmarks.md round 6.
    const work: NetEntry[] = [];
    this.entries.forEach((e) => {
      if (e.queued || !e.idleOnWire) return;
      if (e.wantError !== undefined || (e.want !== undefined && e.haveCount === 0)) work.push(e); // certainly work (or a failure to record)
      else if (e.plan(this.target).length === 0) this.settleState(e, true);
      else work.push(e);
    });
    const rest = this.dirty.takeAll();
    for (const e of trieSpreadOrder(rest.length === 0 ? work : rest.concat(work), entryWord)) this.dirty.add(e);
    this.sending = true;
    const t0 = Date.now();
    await this.flushAndSettle();
    this.sm.go('idle');
    this.log.info(`in sync: ${countLine(this.counts())} (${Date.now() - t0} ms)`, { table: this.target.table });
    this.tick = setInterval(() => this.onTick(), 250);
    this.tick.unref();
    this.scans.armPeriodic();
  }

  /** Graceful restart is over: stale routes of ours may go now. */
  pruneStale(): void {
    this.allowDeletes = true;
    this.entries.forEach((e) => {
      if (e.want === undefined && e.haveCount > 0) this.dirty.add(e);
    });
    this.kickFlush();
  }

  // ------------------------------------------------------------ what we want

  /** The route we want for `net` (attrs undefined: none), with the export filter's settings. */
  setWanted(net: Prefix, attrs: RouteAttrs | undefined, set: KernelAttrs | undefined, sourceName?: string): void {
    if (net.family !== this.target.family) return;
    let e = this.entries.get(net);
    if (!e) {
      if (attrs === undefined) return;
      e = new NetEntry(net);
      this.entries.set(net, e);
    }
    e.attrs = attrs;
    e.set = set;
    e.sourceName = sourceName;
    this.convert(e);
    e.attempts = 0;
    e.retryAt = 0;
    this.markDirty(e);
  }

  private convert(e: NetEntry): void {
    const before = e.wantError?.message;
    e.wantError = undefined;
    e.want = undefined;
    if (e.attrs === undefined) return;
    try {
      // Everything but dst depends only on the (interned) attrs, the target and the links: one
      // conversion per attribute set, shared by every net with it (about 1 s per million routes
      // saved on a restart and on churn, and a route object per net: 122 bytes). Its dst is the
      // first such net's; planNet puts each net's own into the operations. Filter-set attributes
      // are converted each time.
      const tpl = e.set === undefined ? this.wantTemplates.get(e.attrs) : undefined;
      if (tpl !== undefined) e.want = tpl;
      else {
        e.want = toKernelRoute(e.net, e.attrs, e.set, this.target, this.links);
        if (e.set === undefined) {
          if (this.wantTemplates.size >= 4096) this.wantTemplates.clear(); // bounded: attribute sets can be many
          this.wantTemplates.set(e.attrs, e.want);
        }
      }
    } catch (err) {
      const errnoName = err instanceof ConversionError ? err.errnoName : 'EINVAL';
      e.wantError = { errno: 0, errnoName, message: (err as Error).message };
      e.state = 'failed';
      this.failed.add(e);
      // Said once per new reason (links change often; the same reason again is not news).
      if (before !== e.wantError.message)
        this.limited.write('warn', `convert:${errnoName}`, `cannot install ${e.net}: ${e.wantError.message}; waiting for a link change`, { prefix: e.net.toString(), errno: errnoName });
    }
  }

  private markDirty(e: NetEntry): void {
    if (!e.idleOnWire) {
      e.recheck = true;
      return;
    }
    if (this.earlyAdds && !KernelSync.earlyAdd(e)) return; // prune() finds it
    this.dirty.add(e);
    this.kickFlush();
  }

  // ------------------------------------------------------------ sending

  private kickFlush(): void {
    if (!(this.sending || this.earlyAdds) || this.closed) return;
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    try {
      do {
        this.flushAgain = false;
        let batch = new SyncBatch();
        const batchSize = this.opts.batchSize ?? 4096;
        let now = Date.now();
        let lastProgress = now;
        let sentHere = 0;
        while (this.dirty.size > 0) {
          if (!this.sending && !this.earlyAdds) break; // a scan or shutdown took over; what is left stays dirty
          const e = this.dirty.shift()!;
          if (e.dropped) continue;
          if (!this.sending && !KernelSync.earlyAdd(e)) continue; // changed during the first feed: prune() finds it
          if (!e.idleOnWire) {
            e.recheck = true;
            continue;
          }
          if (e.retryAt > now) continue; // the tick re-dirties it when due
          const planned = e.wantError ? [] : e.plan(this.target);
          const netOps = this.allowDeletes ? planned : planned.filter((op) => op.cmd !== 'delete');
          if (netOps.length === 0) {
            this.settleState(e, planned.length === 0);
            continue;
          }
          e.state = e.want ? 'pending' : 'withdrawing';
          // Only the echo wait reads it; with echoes filtered it stays 0 (a small integer: no boxed
          // number per entry, 16 bytes a net, which a Date.now() stored in a field costs).
          if (this.echoes) e.lastSentAt = now;
          for (const op of netOps) {
            batch.push(e, op);
            e.inflight++;
            if (this.echoes) e.expectEcho(op.cmd === 'delete' ? 'del' : 'new');
          }
          if (this.echoes) this.waitingEcho.add(e, now);
          if (!this.sending) this.stats.earlyAdds++;
          if (batch.length >= batchSize) {
            sentHere += batch.length;
            this.submit(batch);
            batch = new SyncBatch();
            await this.io!.drainIfFull();
            now = Date.now();
            if (now - lastProgress >= (this.opts.progressEveryMs ?? 5000)) {
              lastProgress = now;
              this.log.info(`syncing: ${sentHere} changes sent, ${this.dirty.size} nets to go`, { table: this.target.table });
            }
          }
        }
        if (batch.length) this.submit(batch);
      } while (this.flushAgain && (this.sending || this.earlyAdds) && !this.closed);
    } finally {
      this.flushing = false;
      this.maybeSettled();
    }
  }

  private submit(batch: SyncBatch): void {
    this.outstanding += batch.length;
    this.stats.sent += batch.length;
    void this.io!.submit(batch).then((res) => this.onResults(batch, res));
  }

  private onResults(batch: SyncBatch, res: BatchResult): void {
    const failures = new Map<number, KrtError>();
    for (const f of res.failed) failures.set(f.index, f.error);
    const now = Date.now();
    for (let i = 0; i < batch.length; i++) {
      const cmd = batch.cmd(i);
      const e = batch.owners[i]!;
      e.inflight--;
      const err = res.failed.length === 0 ? undefined : failures.get(i);
      const errno = err instanceof NetlinkRequestError ? err.errno : 0;
      if (err === undefined || (cmd === 'delete' && errno === ESRCH)) {
        if (err !== undefined) e.dropEcho('del'); // nothing was deleted: no notification comes
        e.applyHave(batch.route(i), cmd === 'delete');
        if (cmd !== 'delete') {
          e.markInstalled(); // the kernel accepted it; its notification will only confirm
          this.failed.delete(e);
        }
      } else {
        e.dropEcho(cmd === 'delete' ? 'del' : 'new');
        this.recordFailure(e, cmd, err, now);
        // EEXIST for an add: a route is in the way. If it is ours (our view was stale), a scan finds and fixes it.
        if (cmd === 'add' && errno === EEXIST) this.requestScan('route in the way (EEXIST)', 2000);
      }
      this.afterSettle(e);
    }
    this.outstanding -= batch.length;
    this.maybeSettled();
  }

  private recordFailure(e: NetEntry, cmd: KernelOpCmd, err: KrtError, now: number): void {
    this.stats.failed++;
    const ne = err instanceof NetlinkRequestError ? err : undefined;
    const error: RouteError = { errno: ne?.errno ?? 0, errnoName: ne?.errnoName ?? err.code, message: err.message };
    if (ne?.extAck) error.extAck = ne.extAck;
    const delay = backoffDelay(this.opts.backoff ?? DEFAULT_BACKOFF, e.attempts + 1);
    e.markFailed(error, now + delay);
    this.failed.add(e);
    this.limited.write('warn', `reject:${error.errnoName}`, `kernel refused ${cmd} ${e.net}: ${error.errnoName}${error.extAck ? ` (${error.extAck})` : ''}; retry in ${delay} ms`, {
      prefix: e.net.toString(),
      table: this.target.table,
      protocol: this.target.protocol,
      errno: error.errnoName,
    });
  }

  /** After an entry's operation or notification settled: plan again if something changed meanwhile. */
  private afterSettle(e: NetEntry): void {
    if (!e.idleOnWire) return;
    if (e.uncertain) {
      // Someone else changed this net while our change was out: which came last is unknown.
      e.uncertain = false;
      this.stats.crossed++;
      this.requestScan('a change by someone else crossed ours', 100);
    }
    if (e.recheck) {
      e.recheck = false;
      this.dirty.add(e);
      this.kickFlush();
      return;
    }
    if (e.state !== 'failed') this.settleState(e);
  }

  /** No operation needed right now: record the resulting state, drop empty entries. */
  private settleState(e: NetEntry, planIsEmpty = false): void {
    if (e.wantError) return;
    if (e.empty) {
      this.dropEntry(e);
      return;
    }
    if (e.state === 'failed' && e.retryAt > Date.now()) return;
    if (e.want && e.haveCount > 0 && (planIsEmpty || e.plan(this.target).length === 0)) {
      e.shareWant();
      e.state = 'installed';
      e.error = undefined;
      this.failed.delete(e);
    } else if (!e.want && e.haveCount > 0 && !this.allowDeletes) {
      e.state = 'withdrawing'; // kept until graceful restart ends
    }
  }

  /** An entry with nothing wanted and nothing held goes; a set still holding it skips it (`dropped`). */
  private dropEntry(e: NetEntry): void {
    if (this.entries.get(e.net) === e) this.entries.delete(e.net);
    e.dropped = true;
    this.failed.delete(e);
    this.dirty.delete(e);
  }

  private flushAndSettle(): Promise<void> {
    this.kickFlush();
    return this.settled();
  }

  /** Resolves once nothing is being flushed and no operation is out. */
  settled(): Promise<void> {
    if (this.outstanding === 0 && !this.flushing) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private maybeSettled(): void {
    if (this.outstanding !== 0 || this.flushing || this.settleWaiters.length === 0) return;
    const w = this.settleWaiters;
    this.settleWaiters = [];
    for (const f of w) f();
  }

  // ------------------------------------------------------------ the kernel's side

  private async dumpOurs(): Promise<DumpedRoutes> {
    const dump = await this.io!.dumpTable(this.opts.onForeignDump !== undefined);
    if (dump.retries > 0) this.limited.write('warn', 'dump-intr', `dump interrupted ${dump.retries} times (table busy); retried`, { table: this.target.table });
    for (const m of dump.undecodable) this.limited.write('warn', 'dump-decode', `undecodable route in dump: ${m}`);
    this.opts.onForeignDump?.(dump.foreign);
    return dump.ours;
  }

  /** Our view of the kernel becomes the dump; echoes still expected are forgotten (the dump shows their effect). */
  private applyDump(dumped: DumpedRoutes): void {
    this.entries.forEach((e) => {
      e.have = NO_HAVE;
      e.clearEchoes();
    });
    this.waitingEcho.clear();
    const entries = this.entries;
    // The route is often shared by many nets: only ever compared, never sent (planNet sends e.net).
    dumped.forEach((word, len, net, route) => {
      let e = net === undefined ? entries.getV4(len, word) : entries.get(net);
      if (!e) {
        if (net === undefined) {
          e = new NetEntry(word, len);
          entries.setV4(len, word, e);
        } else {
          e = new NetEntry(net);
          entries.set(net, e);
        }
      }
      e.addHave(route);
    });
  }

  private drainBuffered(): void {
    const buffered = this.buffering;
    this.buffering = undefined;
    if (buffered) for (const [r, deleted] of buffered) this.onRouteNotification(r, deleted);
  }

  /**
   * The notification of our own change, recognised on the raw buffer (rtmsg header, RTA_DST,
   * RTA_TABLE, RTA_PRIORITY, and for a 'new' the fields sameSimpleRoute compares), so the
   * common echo costs no decode, no RouteMessage, Prefix or Addr. It does exactly what
   * onRouteNotification does with such an echo. Anything else (IPv6, not ours, not an expected
   * echo, any attribute it does not read, a route not plainly equal to `want`) returns false
   * and takes the full decode.
   */
  private onRawEcho(buf: Buffer, off: number, len: number, type: number): boolean {
    if (this.closed || this.buffering || this.target.family !== 4) return false;
    const b = off + C.NLMSG_HDRLEN;
    const end = off + len;
    if (b + RTMSG_LEN > end || buf[b] !== AF_INET || buf[b + 2] !== 0 || buf[b + 3] !== 0) return false; // family, src_len, tos
    const dstLen = buf[b + 1]!;
    let table = buf[b + 4]!;
    const scope = buf[b + 6]!;
    const rtype = buf[b + 7]!;
    const flags = buf.readUInt32LE(b + 8);
    if (buf[b + 5] !== this.target.protocol || flags & C.RTM_F_CLONED || dstLen > 32) return false;
    let dst = 0;
    let hasDst = false;
    let priority: number | undefined;
    let gateway: number | undefined;
    let oif: number | undefined;
    for (let p = b + RTMSG_LEN; p + 4 <= end; ) {
      const alen = buf.readUInt16LE(p);
      if (alen < 4 || p + alen > end) return false;
      const t = buf.readUInt16LE(p + 2) & 0x3fff;
      const dl = alen - 4;
      if (t === C.RTA_DST && dl === 4) {
        dst = buf.readInt32BE(p + 4);
        hasDst = true;
      } else if (t === C.RTA_TABLE && dl === 4) table = buf.readUInt32LE(p + 4);
      else if (t === C.RTA_PRIORITY && dl === 4) priority = buf.readUInt32LE(p + 4);
      else if (t === C.RTA_GATEWAY && dl === 4) gateway = buf.readInt32BE(p + 4);
      else if (t === C.RTA_OIF && dl === 4) oif = buf.readUInt32LE(p + 4);
      else if (t !== C.RTA_CACHEINFO) return false;
      p += (alen + 3) & ~3;
    }
    if (table !== this.target.table || hasDst !== dstLen > 0) return false;
    const e = this.entries.getV4(dstLen, dst);
    const deleted = type === C.RTM_DELROUTE;
    if (e === undefined || e.echoes[0] !== (deleted ? 'del' : 'new')) return false;
    if (deleted) e.removeHave(4, priority);
    else {
      // Equal to want in canonical form, field by field as sameSimpleRoute (no prefsrc, realm, metrics, multipath, via).
      const w = e.want;
      if (w === undefined || w.type !== C.RTN_UNICAST || rtype !== C.RTN_UNICAST || w.gateway === undefined || gateway === undefined) return false;
      if (w.multipath !== undefined || w.metrics !== undefined || w.via !== undefined || w.prefsrc !== undefined || (w.flow ?? 0) !== 0) return false;
      if ((w.gateway.w0 | 0) !== gateway || effectivePriority(w) !== (priority ?? 0) || w.scope !== scope) return false;
      if ((w.flags & C.RTNH_F_ONLINK) !== (flags & C.RTNH_F_ONLINK) || (w.oif !== undefined && w.oif !== oif)) return false;
      e.applyHave(w, false);
    }
    this.stats.rawEchoes++;
    e.takeEcho(deleted ? 'del' : 'new');
    this.afterSettle(e);
    return true;
  }

  private onRouteNotification(r: RouteMessage, deleted: boolean): void {
    if (this.closed || r.table !== this.target.table || r.flags & C.RTM_F_CLONED) return;
    this.stats.notifications++;
    if (this.buffering) {
      this.buffering.push([r, deleted]);
      return;
    }
    if (r.protocol !== this.target.protocol) {
      this.opts.onForeignRoute?.(r, deleted);
      // A foreign route that was in the way of ours is gone: retry ours now.
      if (deleted) {
        const e = this.entries.get(r.dst);
        if (e && e.state === 'failed' && e.error?.errnoName === 'EEXIST') {
          e.retryAt = 0;
          this.markDirty(e);
        }
      }
      return;
    }
    let e = this.entries.get(r.dst);
    if (!e) {
      if (deleted) return;
      e = new NetEntry(r.dst); // a route with our number we never installed: not wanted, so it goes
      this.entries.set(r.dst, e);
    }
    e.applyHave(r, deleted);
    if (e.takeEcho(deleted ? 'del' : 'new')) {
      this.afterSettle(e);
      return;
    }
    this.repair(e, deleted ? 'deleted' : 'changed');
  }

  /** Someone else changed or deleted a route of ours (or added one with our number): put ours back, rate-bounded. */
  private repair(e: NetEntry, what: string): void {
    if (!e.idleOnWire) {
      e.recheck = true;
      if (!this.echoes) e.uncertain = true; // no echo orders it against ours: see afterSettle
      return;
    }
    if (this.state === 'shutting-down' || this.state === 'down') return;
    if (e.wantError || e.plan(this.target).length === 0) {
      this.settleState(e);
      return;
    }
    const now = Date.now();
    e.repairStreak = now - e.lastRepairAt < (this.opts.repairWindowMs ?? 10_000) ? e.repairStreak + 1 : 1;
    e.lastRepairAt = now;
    this.stats.repairs++;
    this.limited.write('info', 'repair', `route ${e.net} ${what} by someone else; repairing`, { prefix: e.net.toString(), table: this.target.table });
    if (e.repairStreak > 2) {
      // Someone keeps undoing us: back off instead of fighting in a hot loop.
      const delay = backoffDelay({ baseMs: 500, maxMs: 60_000, jitter: 0.2 }, e.repairStreak - 2);
      e.retryAt = now + delay;
      this.failed.add(e);
      this.limited.write('warn', 'repair-loop', `route ${e.net} keeps being changed by someone else; next repair in ${delay} ms`, { prefix: e.net.toString() });
      return;
    }
    this.dirty.add(e);
    this.kickFlush();
  }

  private onLink(l: LinkMessage, deleted: boolean): void {
    const change = this.links.update(l, deleted);
    if (change === 'none') return;
    this.wantTemplates.clear(); // device names may resolve differently now
    this.log.debug(`link ${l.name ?? l.index} ${change}`);
    // Routes through a link that went away may be gone without a notification; ones waiting for it may go in now.
    this.onLinkLayerChange(change === 'up' || change === 'added' || change === 'renamed');
  }

  private onAddr(a: AddrMessage, deleted: boolean): void {
    if (a.family !== this.target.family) return;
    this.onLinkLayerChange(!deleted);
  }

  private onLinkLayerChange(cameBack: boolean): void {
    if (this.closed) return;
    const now = Date.now();
    for (const e of this.failed) {
      if (e.dropped) continue;
      if (e.wantError) {
        this.convert(e); // an unknown device may exist now
        if (e.wantError) continue;
      }
      if (cameBack) {
        e.retryAt = Math.min(e.retryAt, now);
        e.attempts = 0;
      }
    }
    this.requestScan('link or address change', 100);
  }

  private onOverflow(): void {
    this.stats.overflows++;
    this.limited.write('warn', 'overflow', 'notification socket overflowed (ENOBUFS): changes were lost; resyncing', { table: this.target.table });
    this.requestScan('notification overflow', 0);
  }

  // ------------------------------------------------------------ scans

  /** Changes the periodic scan interval (0: off); the next scan is timed from now. */
  setScanInterval(ms: number): void {
    this.scans.setInterval(ms, this.state !== 'init' && this.state !== 'first-scan');
  }

  /** Asks for a scan (a dump compared with what we want) after `delayMs`; requests coalesce. */
  requestScan(reason: string, delayMs = 0): void {
    if (!this.closed) this.scans.request(reason, delayMs);
  }

  /** idle -> scanning -> pruning -> idle: dump, compare every attribute, send the differences. */
  async scan(reason: string): Promise<void> {
    this.sm.go('scanning');
    this.stats.scans++;
    if (reason !== 'periodic') this.stats.resyncs++;
    this.sending = false;
    await this.settled();
    this.buffering = [];
    let dumped: DumpedRoutes | undefined;
    try {
      dumped = await this.dumpOurs();
    } catch (err) {
      this.limited.write('warn', 'scan-failed', `scan (${reason}) failed: ${(err as Error).message}; retrying`, { table: this.target.table });
    }
    // A shutdown that began while the dump ran owns the state from here (not yet closed: it is withdrawing).
    if (this.shutDown()) return;
    if (dumped) this.applyDump(dumped);
    this.drainBuffered();
    this.sm.go('pruning');
    const now = Date.now();
    this.entries.forEach((e) => {
      if (e.retryAt <= now) this.dirty.add(e);
    });
    this.sending = true;
    await this.flushAndSettle();
    if (this.shutDown()) return;
    this.sm.go('idle');
    if (debugOn(this.log)) this.log.debug(`scan (${reason}) done: ${countLine(this.counts())}`); // counts() walks every net
    if (!dumped) this.requestScan('retry after failed scan', 1000);
  }

  private onTick(): void {
    const now = Date.now();
    for (const e of this.failed) {
      if (e.dropped) {
        this.failed.delete(e);
        continue;
      }
      if (e.retryAt > 0 && e.retryAt <= now && e.idleOnWire && !e.wantError) this.dirty.add(e);
    }
    // An echo that never came (lost, or the kernel merged notifications): stop waiting and re-plan.
    this.waitingEcho.takeOverdue(now - 5000, (e) => {
      e.clearEchoes();
      this.dirty.add(e);
    });
    if (this.dirty.size) this.kickFlush();
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Deletes every route of ours: first one delete per net in `nets` (the
   * table's feed), plus any net we still hold, in batches, waiting for every
   * ack; then a final dump deletes whatever of ours is left. Ends down.
   */
  async withdrawAll(fed: ForEachFed): Promise<WithdrawResult> {
    this.beginShutdown();
    await this.settled();
    // In the entries' own order (the order they were made in): no lookup per net.
    const entries = this.entries;
    const held: HeldNets = {
      count: entries.size,
      forEach: (v4, v6) =>
        entries.forEach((e) => {
          let metric: number | undefined;
          if (e.haveCount > 0) metric = effectivePriority(e.haveFirst!);
          else if (e.want) metric = e.want.priority;
          else return;
          const word = e.v4Word;
          if (word !== undefined) v4(word, e.v4Len, metric);
          else v6(e.net, metric);
        }),
      hasV4: (word, len) => {
        const e = entries.getV4(len, word);
        return e !== undefined && (e.haveCount > 0 || e.want !== undefined);
      },
    };
    const result = await withdrawAll(
      {
        io: this.io!,
        target: this.target,
        log: this.log,
        limited: this.limited,
        batchSize: this.opts.batchSize ?? 4096,
        progressEveryMs: this.opts.progressEveryMs ?? 5000,
      },
      fed,
      held,
    );
    await this.close();
    return result;
  }

  /** Leaves every route in place and closes (persist). */
  async leaveInPlace(): Promise<void> {
    this.beginShutdown();
    await this.settled();
    await this.close();
  }

  /** Closed, or a shutdown has begun (it is withdrawing, not yet closed): a scan must not move the state on. */
  private shutDown(): boolean {
    return this.closed || this.sm.state === 'shutting-down';
  }

  private beginShutdown(): void {
    if (this.sm.can('shutting-down')) this.sm.go('shutting-down');
    this.sending = false;
    this.earlyAdds = false;
    this.stopTimers();
    this.io?.closeMonitor();
  }

  private stopTimers(): void {
    clearInterval(this.tick);
    this.scans.close();
  }

  private async close(): Promise<void> {
    this.closed = true;
    await this.io?.close();
    if (this.sm.can('down')) this.sm.go('down');
  }

  /** Drops everything at once without touching the kernel: what a crash leaves behind (tests), or a failed start. */
  destroy(): void {
    this.closed = true;
    this.sending = false;
    this.earlyAdds = false;
    this.stopTimers();
    this.io?.destroy();
    for (const f of this.settleWaiters.splice(0)) f();
  }

  // ------------------------------------------------------------ status

  /** Status of one net, of every net inside `prefix`, or of every net. */
  status(prefix?: Prefix): RouteSyncStatus[] {
    return listStatus(this.entries.values(), prefix);
  }

  /** Nets we currently want in the kernel. */
  wantedNets(): Prefix[] {
    const out: Prefix[] = [];
    this.entries.forEach((e) => {
      if (e.attrs !== undefined) out.push(e.net);
    });
    return out;
  }

  counts(): SyncCounts {
    return countStates(this.entries.values());
  }
}

/** The IPv4 address word of an entry's net, or undefined for IPv6. */
function entryWord(e: NetEntry): number | undefined {
  return e.v4Word;
}
