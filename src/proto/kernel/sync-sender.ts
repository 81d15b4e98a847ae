/**
 * SyncSender: the kernel sync's way out and the answers coming back.
 *
 * Routes to plan wait in the dirty queue; a flush (one run at a time, on a
 * RunScheduler, so a route made dirty while a flush runs is never lost)
 * plans each (RouteStore.plan), puts the changes into batches and submits
 * them to the kernel I/O with its backpressure. Each answer updates what the
 * kernel holds and the route's status; a refusal is recorded with its errno
 * and the kernel's text and retried with backoff, never in a hot loop
 * (sync-retries.ts: the waiting routes, and the reset a link coming back
 * makes, which also covers refusals still unread then).
 *
 * What may go out is the sync's phase (sync-state.ts): everything in
 * pruning, holding (without deletes of unwanted routes) and idle; only early
 * adds in first-feed, with our own notifications filtered; nothing
 * otherwise, and what is left stays dirty for the next phase that sends.
 * A route with changes out (in flight, or, without the filter, echoes
 * expected) is not planned again until they settle: it is marked for a
 * recheck instead.
 */
import { constants as osConstants } from 'node:os';
import { setImmediate as yieldToIo } from 'node:timers/promises';
import type { BackoffPolicy } from '../../lib/backoff';
import type { KrtError } from '../../lib/errors';
import { RunScheduler } from '../../lib/run-scheduler';
import { NetlinkRequestError } from '../../netlink/errors';
import type { BatchResult } from '../../netlink/pipeline';
import type { RateLimitedLog, Logger } from '../logger';
import type { StateMachine } from '../protocol';
import { DirtyQueue } from './dirty-queue';
import type { EchoMatcher } from './echo-matcher';
import type { KernelIo } from './kernel-io';
import type { KernelRoutes } from './kernel-routes';
import type { NhObject } from './nexthop-objects';
import { MAX_INFLIGHT, QUEUED, RECHECK, UNCERTAIN, type PlanOut, type RouteStore } from './route-store';
import { SyncBatch, type SyncCmd } from './sync-batch';
import { SyncRetries } from './sync-retries';
import { PHASE, type SyncState } from './sync-state';
import { BatchAnswers, SCAN_REASONS, type KernelSyncMetrics } from './sync-metrics';

const { ESRCH, EEXIST, EINVAL } = osConstants.errno;

/**
 * Changes the flush keeps ahead of the kernel before it lets other work in: about a tenth of a second of the
 * kernel's work at a million routes, longer than any slice of other work between two of its turns.
 */
export const FEED_AHEAD = 32768;

export interface SyncStats {
  scans: number;
  resyncs: number;
  repairs: number;
  sent: number;
  failed: number;
  overflows: number;
  rawEchoes: number;
  notifications: number;
  crossed: number;
  earlyAdds: number;
  /** Route dumps scans took: the whole table, or the routes through one device. */
  dumps: number;
}

/** What the sender shares with its sync. */
export interface SenderContext {
  readonly store: RouteStore;
  readonly routes: KernelRoutes;
  readonly sm: StateMachine<SyncState>;
  readonly stats: SyncStats;
  readonly log: Logger;
  readonly limited: RateLimitedLog;
  readonly table: number;
  readonly protocol: number;
  readonly batchSize: number;
  readonly backoff: BackoffPolicy | undefined;
  readonly progressEveryMs: number;
  /** Where answers, latencies and the like go (sync-metrics.ts). */
  readonly metrics: KernelSyncMetrics;
  /** Routes go on nexthop objects (the shutdown deletes the objects, not the routes). */
  onObjects(): boolean;
  /** The kernel I/O, once open. */
  io(): KernelIo;
  /** The echo fallback, when our own notifications come back. */
  echoes(): EchoMatcher | undefined;
  requestScan(reason: string, delayMs: number): void;
  /** Every wanted route converted again and its nets moved over (a nexthop object had to change its id). */
  reconvertAll(): void;
}

export class SyncSender {
  readonly dirty: DirtyQueue;
  /** Routes that failed or wait for a repair's backoff, and their retries (sync-retries.ts). */
  private readonly retries: SyncRetries;
  /** Routes that failed or wait for a repair's backoff: the tick retries them when due. */
  readonly failed: Set<number>;
  private outstanding = 0;
  private settleWaiters: Array<() => void> = [];
  private readonly flusher: RunScheduler;
  private readonly plan: PlanOut = { n: 0, cmds: [], ids: [] };
  /** Batches whose answers are in, to be used again. */
  private readonly spare: SyncBatch[] = [];
  /** No early adds for now: a source is still loading input not yet known to be good (KernelSync.holdEarlyAdds). */
  earlyAddsHeld = false;

  constructor(private readonly c: SenderContext) {
    this.dirty = new DirtyQueue(c.store);
    this.retries = new SyncRetries(c);
    this.failed = this.retries.failed;
    this.flusher = new RunScheduler(
      () => this.flush(),
      (err) => c.log.error(`kernel sync flush failed: ${(err as Error).message}`),
      () => this.maybeSettled(),
    );
  }

  /** Nothing of ours for the route is out: no change in flight, no echo expected. */
  idleOnWire(id: number): boolean {
    return this.c.store.inflight(id) === 0 && this.c.echoes()?.pending(id) !== true;
  }

  /** An add that is right whatever else the first feed brings: the route is wanted and nothing of ours is held. */
  earlyAdd(id: number): boolean {
    const s = this.c.store;
    const w = s.want[id]!;
    return w !== 0 && this.c.routes.get(w).error === undefined && s.have[id] === 0;
  }

  /** Early adds may go out now: the first feed, with our own notifications filtered. */
  private get earlyAdds(): boolean {
    return PHASE.earlyAdds(this.c.sm.state) && this.c.echoes() === undefined && !this.earlyAddsHeld;
  }

  /**
   * Something about the route changed: plan it (now, or once its changes out settle). `at`: when
   * the table change behind it reached the sync (0: not a table change, or the first sync), for
   * the latency metric.
   */
  markDirty(id: number, at = 0): void {
    if (!this.idleOnWire(id)) {
      this.c.store.setFlag(id, RECHECK, true);
      return;
    }
    if (PHASE.closing(this.c.sm.state)) return;
    // Queued whatever the phase: one that does not send leaves it for the next that does (a flush
    // in the first feed takes only early adds; prune() walks every route anyway).
    this.dirty.add(id, at);
    this.kick();
  }

  kick(): void {
    if (PHASE.sends(this.c.sm.state) || this.earlyAdds) this.flusher.request();
  }

  /** Resolves once no flush runs and nothing is out. */
  settled(): Promise<void> {
    if (this.outstanding === 0 && this.flusher.state === 'idle') return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  private maybeSettled(): void {
    if (this.outstanding !== 0 || this.flusher.state !== 'idle' || this.settleWaiters.length === 0) return;
    for (const f of this.settleWaiters.splice(0)) f();
  }

  /** No more flushes; whoever waits for a settle is let go. */
  close(): void {
    this.flusher.close();
    for (const f of this.settleWaiters.splice(0)) f();
  }

  /**
   * Queues what a prune has to do. The first (`first`): nets already right (a restart: nearly
   * all) are settled in place, the rest queued in the order the kernel's trie takes fastest,
   * together with early adds the pipeline has not taken yet (on a cold start the kernel is
   * behind the feed: a third to a half of them). The kernel adds them faster, and deletes them
   * faster at shutdown (its trie keeps the layout of the order routes went in; docs/benchmarks.md).
   * On nexthop objects the adds go last and in address order: the object's delete at shutdown
   * walks the trie in address order, twice as fast over routes added so (the early adds, spread,
   * have built the trie's upper nodes: adding the rest so costs no more; Round 12).
   * After a scan: every route whose retry is due.
   */
  queueAll(first: boolean): void {
    const store = this.c.store;
    const sender = this;
    const now = Date.now();
    if (!first) {
      store.forEach((id) => {
        if (store.retryAt(id) <= now) sender.dirty.add(id);
      });
      return;
    }
    const order = this.dirty.inKernelOrder(store.size);
    const adds = this.c.onObjects() ? this.dirty.inKernelOrder(store.size, false) : order;
    const plan = { n: 0, cmds: [], ids: [] };
    store.forEach((id) => {
      if (store.flag(id, QUEUED)) return adds.take(id); // an early add the pipeline has not taken yet
      if (!sender.idleOnWire(id)) return;
      const w = store.want[id]!;
      if (w !== 0 && w === store.have[id]) sender.settleState(id, true);
      else if (w !== 0 && store.have[id] === 0) adds.take(id); // certainly an add (or a failure to record)
      else if (store.plan(id, plan) === 0) sender.settleState(id, true);
      else order.take(id);
    });
    sender.dirty.clear(); // all of it was taken above: queued again below, in order
    order.queue();
    if (adds !== order) adds.queue();
  }

  /**
   * Routes the kernel dropped with a link (link-flush.ts): planned again now, in the order the kernel takes
   * fastest. That is trie-spread order where the adds build the trie's leaves again, and address order where
   * `leavesKept` (another route of each net, its backup route, is still in the kernel): each add then only puts
   * an alias on a leaf that is there, and in address order the walk down to it stays in cache (a quarter less
   * kernel time at a million, and less JS: docs/benchmarks.md, "Failover", R12).
   */
  queueLost(ids: ArrayLike<number>, leavesKept = false): void {
    if (ids.length === 0) return;
    const order = this.dirty.inKernelOrder(ids.length, !leavesKept);
    for (let i = 0; i < ids.length; i++) order.take(ids[i]!);
    order.queue();
    this.kick();
  }

  /** Nothing of ours is in the kernel's hands: no change out, no flush between its plan and its answer. */
  get quiet(): boolean {
    return this.outstanding === 0 && this.flusher.state === 'idle';
  }

  private async flush(): Promise<void> {
    const c = this.c;
    const store = c.store;
    let batch = this.newBatch();
    let now = Date.now();
    let lastProgress = now;
    let sentHere = 0;
    let sinceYield = 0;
    const out = this.plan;
    while (this.dirty.size > 0) {
      const sends = PHASE.sends(c.sm.state);
      if (!sends && !this.earlyAdds) break; // a scan or a shutdown took over: what is left stays dirty
      const id = this.dirty.shift();
      if (id < 0) break;
      const changedAt = this.dirty.shiftedAt;
      if (!sends && !this.earlyAdd(id)) continue; // changed during the first feed: prune() finds it
      if (!this.idleOnWire(id)) {
        store.setFlag(id, RECHECK, true);
        continue;
      }
      if (store.retryAt(id) > now) continue; // the tick queues it again when due
      const w = store.want[id]!;
      const nh = w === 0 ? undefined : c.routes.get(w).nh;
      if (nh !== undefined && !objectLive(nh)) {
        // Its nexthop object goes in first (members before the group); the route waits for it.
        const nexthops = c.routes.nexthops;
        if (nexthops.usable(nh, now)) {
          await nexthops.ensure(nh, c.io(), now);
          if (nexthops.takeCollided()) c.reconvertAll(); // its id was taken: onto a new object
          now = Date.now();
          this.dirty.add(id, changedAt); // planned again: anything may have changed meanwhile
        } else this.retries.objectFailed(id, nh, now);
        continue;
      }
      const n = store.plan(id, out);
      const deletes = PHASE.deletes(c.sm.state);
      let sent = 0;
      for (let k = 0; k < n; k++) {
        if (out.cmds[k] === 'delete' && !deletes) continue;
        if (sent === MAX_INFLIGHT) {
          store.setFlag(id, RECHECK, true); // a net with that many routes of ours: the rest once these are answered
          break;
        }
        if (sent === 0) {
          store.setState(id, store.want[id] !== 0 ? 'pending' : 'withdrawing');
          store.track(id);
        }
        this.send(batch, id, out.cmds[k]!, out.ids[k]!, now, changedAt);
        sent++;
      }
      if (sent === 0) {
        this.settleState(id, n === 0);
        continue;
      }
      if (!sends) c.stats.earlyAdds++;
      if (batch.length >= c.batchSize) {
        sentHere += batch.length;
        sinceYield += batch.length;
        this.submit(batch);
        batch = this.newBatch();
        const io = c.io();
        // A prune lets I/O in: the pipeline's sender thread, done with its chunks, waits for its callback
        // here, and would sit idle until the pipeline is full (early adds keep pace with the feed as is).
        // But only once the kernel has FEED_AHEAD changes to do: the other work the turn lets in (a slice of a
        // failover's re-export, a feed's lines) takes longer than one batch takes the kernel, which would sit
        // idle for the rest of the turn. `sinceYield` bounds a run for an I/O whose backlog does not grow.
        if (io.full) {
          await io.drain();
          sinceYield = 0;
        } else if (sends && (io.backlog >= FEED_AHEAD || sinceYield >= FEED_AHEAD)) {
          await yieldToIo();
          sinceYield = 0;
        }
        now = Date.now();
        if (now - lastProgress >= c.progressEveryMs) {
          lastProgress = now;
          c.log.info(`syncing: ${sentHere} changes sent, ${this.dirty.size} nets to go`, { table: c.table });
        }
      }
    }
    if (batch.length > 0) this.submit(batch);
    else this.spare.push(batch);
  }

  private newBatch(): SyncBatch {
    return this.spare.pop() ?? new SyncBatch(this.c.store, this.c.routes, this.c.batchSize);
  }

  private send(batch: SyncBatch, id: number, cmd: SyncCmd, rid: number, now: number, changedAt: number): void {
    const store = this.c.store;
    batch.push(id, cmd, rid, changedAt);
    store.addInflight(id, 1);
    this.c.echoes()?.expect(id, cmd === 'delete' ? 'del' : 'new', this.c.routes.get(rid).priority, now);
  }

  private submit(batch: SyncBatch): void {
    this.outstanding += batch.length;
    this.c.stats.sent += batch.length;
    const resets = this.retries.resets;
    void this.c
      .io()
      .submit(batch)
      .then((res) => this.onResults(batch, res, resets !== this.retries.resets));
  }

  /** `beforeReset`: the batch went out before the latest backoff reset (retryFailedNow), so its refusals may predate it. */
  private onResults(batch: SyncBatch, res: BatchResult, beforeReset: boolean): void {
    const c = this.c;
    const store = c.store;
    let failures: Map<number, KrtError> | undefined;
    if (res.failed.length > 0) {
      failures = new Map();
      for (const f of res.failed) failures.set(f.index, f.error);
    }
    const now = Date.now();
    const answers = new BatchAnswers(c.metrics, now);
    // No failure, no echoes: an add or replace taken settles in place in the common case (RouteStore.settleTaken).
    const quick = failures === undefined && c.echoes() === undefined;
    for (let i = 0; i < batch.length; i++) {
      const cmd = batch.cmd(i);
      const id = batch.owners[i]!;
      const rid = batch.rid(i);
      if (quick && cmd !== 'delete' && (this.failed.size === 0 || !this.failed.has(id)) && store.settleTaken(id, rid)) {
        answers.add(cmd, undefined, batch.changedAt(i));
        continue;
      }
      const prio = c.routes.get(rid).priority;
      store.addInflight(id, -1);
      const err = failures?.get(i);
      const errno = err instanceof NetlinkRequestError ? err.errno : 0;
      const done = err === undefined || (cmd === 'delete' && errno === ESRCH); // ESRCH: nothing left to delete
      answers.add(cmd, done ? undefined : err instanceof NetlinkRequestError ? err.errnoName : err!.code, batch.changedAt(i));
      if (done) {
        if (err !== undefined) c.echoes()?.drop(id, 'del', prio); // nothing was deleted: no notification comes
        if (cmd === 'delete') store.removeHave(id, prio);
        else {
          store.putHave(id, rid);
          // The kernel accepted it; its notification, if any, only confirms.
          store.setState(id, 'installed');
          store.clearFailure(id);
          this.failed.delete(id);
        }
      } else if (cmd !== 'delete' && store.want[id] !== rid) {
        // A late answer for a route the net no longer wants (next-hop tracking moved it meanwhile, say
        // from a dead primary to the backup): its failure says nothing about the route wanted now,
        // which must not wait out a backoff for it. The net is planned again (RECHECK, afterSettle).
        c.echoes()?.drop(id, 'new', prio);
        store.setFlag(id, RECHECK, true);
      } else {
        c.echoes()?.drop(id, cmd === 'delete' ? 'del' : 'new', prio);
        this.retries.record(id, cmd, err!, now, beforeReset);
        // The reset applies to it as to the failures it found: the net is planned again at once.
        if (beforeReset) store.setFlag(id, RECHECK, true);
        // EEXIST for an add: a route is in the way. If it is ours (our view was stale), a scan finds and fixes it.
        if (cmd === 'add' && errno === EEXIST) c.requestScan(SCAN_REASONS.conflict, 2000);
        // The route's nexthop object is gone (deleted with no word to us): a scan re-reads the objects and makes it again.
        else if (errno === EINVAL && c.routes.get(rid).nh !== undefined) c.requestScan(SCAN_REASONS.nexthop, 100);
      }
      this.afterSettle(id);
      if (store.nets.live(id)) store.track(id);
    }
    answers.report();
    this.outstanding -= batch.length;
    batch.release();
    if (this.spare.length < 64) this.spare.push(batch);
    this.maybeSettled();
  }

  /** After a route's change or notification settled: plan again if something changed meanwhile. */
  afterSettle(id: number): void {
    if (!this.idleOnWire(id)) return;
    const store = this.c.store;
    if (store.flag(id, UNCERTAIN)) {
      // Someone else changed this net while our change was out: which came last is unknown.
      store.setFlag(id, UNCERTAIN, false);
      this.c.stats.crossed++;
      this.c.requestScan(SCAN_REASONS.crossed, 100);
    }
    if (store.flag(id, RECHECK)) {
      store.setFlag(id, RECHECK, false);
      this.markDirty(id);
      return;
    }
    if (store.state(id) !== 'failed') this.settleState(id);
  }

  /** Nothing to send for the route right now: record its status; a route with nothing left goes. */
  settleState(id: number, planIsEmpty = false): void {
    const c = this.c;
    const store = c.store;
    const w = store.want[id]!;
    if (w !== 0 && c.routes.get(w).error !== undefined) return; // failed until the links change
    const held = store.haveCount(id);
    if (w === 0 && held === 0 && this.idleOnWire(id)) {
      this.dropRoute(id);
      return;
    }
    if (store.state(id) === 'failed' && store.retryAt(id) > Date.now()) return;
    if (w !== 0 && held > 0 && (planIsEmpty || store.plan(id, this.plan) === 0)) {
      store.setState(id, 'installed');
      store.clearFailure(id);
      this.failed.delete(id);
    } else if (w === 0 && held > 0 && !PHASE.deletes(c.sm.state)) {
      store.setState(id, 'withdrawing'); // kept until the graceful-restart hold ends
    }
    store.track(id);
  }

  /** A route with nothing wanted and nothing held goes, and its id with it. */
  dropRoute(id: number): void {
    this.dirty.delete(id);
    this.failed.delete(id);
    this.c.echoes()?.forget(id);
    this.c.store.drop(id);
  }

  /**
   * What made routes fail may be gone (a link came back, a next hop became
   * usable): every failed route is due now, with its backoff reset, and goes
   * back into the queue at once rather than at its retry time. So is every
   * route whose refusal is still out (sync-retries.ts).
   */
  retryFailedNow(): void {
    const now = Date.now();
    this.retries.reset(now);
    this.onTick(now);
  }

  /** Every 250 ms: routes whose retry is due go back into the queue; echoes that never came are given up. */
  onTick(now: number): void {
    const store = this.c.store;
    this.retries.due(
      now,
      (id) => this.idleOnWire(id),
      (id) => this.dirty.add(id),
    );
    this.c.echoes()?.takeOverdue(
      now - 5000,
      (id) => store.inflight(id) > 0,
      (id) => this.dirty.add(id),
    );
    if (this.dirty.size > 0) this.kick();
  }
}

/** The object and its members are in the kernel as we want them. */
function objectLive(o: NhObject): boolean {
  return o.state === 'live' && (o.members === undefined || o.members.every((m) => m.state === 'live'));
}
