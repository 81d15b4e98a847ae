/**
 * SyncNotices: what the kernel tells a KernelSync, and what the sync does
 * about it: route notifications (read in place by the echo fallback, or
 * decoded), repairs of routes of ours someone else changed, links and
 * addresses, and overflows.
 *
 * While the sync's phase buffers notifications (a dump is being taken or
 * applied: sync-state.ts), route notifications wait here and are handed
 * over after the dump (drainBuffered). A notification for a route of ours
 * that is not the echo of our own change is someone else's change: our view
 * of the kernel takes it, and the route is repaired (rate-bounded: from the
 * third repair of one net within the window, it backs off). A link going
 * down or away may have dropped routes without a notification: wanted
 * routes naming a device are converted again and a scan of the routes
 * through it follows (device-scan.ts); an address going, a scan of the table.
 */
import { backoffDelay } from '../../lib/backoff';
import * as C from '../../netlink/constants';
import type { AddrMessage, LinkMessage } from '../../netlink/link-codec';
import type { RouteMessage } from '../../netlink/route-codec';
import { newRouteHead, readRouteHead } from '../../netlink/route-head';
import type { EchoMatcher } from './echo-matcher';
import type { LinkCache } from './link-cache';
import { effectivePriority } from './normalize';
import { RECHECK, UNCERTAIN } from './route-store';
import { SCAN_REASONS } from './sync-metrics';
import type { SyncCore } from './sync-core';
import { PHASE } from './sync-state';

/** What the notices share with their sync. */
export interface NoticesContext extends SyncCore {
  readonly links: LinkCache;
  readonly opts: {
    readonly repairWindowMs?: number;
    readonly onForeignRoute?: (r: RouteMessage, deleted: boolean) => void;
  };
  echoes(): EchoMatcher | undefined;
  requestScan(reason: string, delayMs: number): void;
  /** A scan of the routes through a device that went down or away (device-scan.ts), soon. */
  requestDeviceScan(index: number): void;
  /** Re-reads our nexthop objects, running `afterDump` once the dump is in (SyncNexthops.reread). */
  rereadNexthops(afterDump: () => void): Promise<boolean | undefined>;
  /** Reads what the monitor has queued now. */
  drainMonitor(): void;
  /** Every refused route of the sync (its backup routes' too) is due now, its backoff reset (KernelSync.retryFailedNow). */
  retryFailedNow(): void;
}

export class SyncNotices {
  /** Notifications that arrived while the phase buffers them (a dump is being taken or applied). */
  private buffered: Array<[RouteMessage, boolean, boolean]> = [];
  /** Nets whose route the kernel deleted on its own with an object of ours, waiting for the link's notification (byKernel). */
  private ahead: number[] = [];
  /** settleAhead runs (or is due). */
  private settling = false;
  private readonly head = newRouteHead();

  /** Foreign routes heard while learning is held (holdLearning): handed over after, in order. */
  private learnLater: Array<[RouteMessage, boolean]> | undefined;

  constructor(private readonly c: NoticesContext) {}

  /**
   * Reads what the monitor has queued now, from inside a next-hop tracker's verdict (sync-failover.ts),
   * where nothing may write a table: foreign routes heard until the verdict is over (the next turn of
   * the event loop) are learned then, in the order heard, and those heard meanwhile behind them.
   */
  drainInVerdict(io: { drainMonitor(): void } | undefined): void {
    if (io === undefined) return;
    this.holdLearning();
    io.drainMonitor();
  }

  private holdLearning(): void {
    if (this.c.opts.onForeignRoute === undefined || this.learnLater !== undefined) return;
    const later: Array<[RouteMessage, boolean]> = (this.learnLater = []);
    setImmediate(() => {
      this.learnLater = undefined;
      if (!PHASE.closing(this.c.sm.state)) for (const [r, deleted] of later) this.c.opts.onForeignRoute!(r, deleted);
    });
  }

  /** Someone else's change was buffered (the first feed's early adds are not ordered against it). */
  get anyBuffered(): boolean {
    return this.buffered.length > 0;
  }

  /** Hands over the notifications buffered while a dump was taken (they come after it). */
  drainBuffered(): void {
    const buffered = this.buffered;
    this.buffered = [];
    for (const [r, deleted, byKernel] of buffered) this.onRouteNotification(r, deleted, byKernel);
  }

  /** The nets the kernel took ahead of a link's notification (onRouteNotification), handed over once: the link's flush plans them. */
  takeAhead(): number[] {
    const ahead = this.ahead;
    this.ahead = [];
    return ahead;
  }

  /**
   * The echo fallback's fast path: the notification of our own change read in place (RouteHead),
   * so the common echo costs no decode. It does exactly what onRouteNotification does with such
   * an echo; anything else returns false and takes the full decode.
   */
  onRawRoute(buf: Buffer, off: number, len: number, type: number): boolean {
    const echoes = this.c.echoes();
    if (echoes === undefined || PHASE.buffers(this.c.sm.state) || PHASE.closing(this.c.sm.state)) return false;
    const h = this.head;
    if (!readRouteHead(buf, off, len, h) || h.family !== this.c.target.family || h.protocol !== this.c.target.protocol || h.table !== this.c.target.table || h.flags & C.RTM_F_CLONED) return false;
    const nets = this.c.store.nets;
    const id = h.family === 4 ? nets.find4(h.dst0, h.dstLen) : nets.find6(h.dst0, h.dst1, h.dst2, h.dst3, h.dstLen);
    if (id < 0) return false;
    const deleted = type === C.RTM_DELROUTE;
    const prio = h.priority >= 0 ? h.priority : h.family === 6 ? 1024 : 0;
    const w = this.c.store.want[id]!;
    if (!echoes.takeRaw(id, h, deleted, w === 0 ? undefined : this.c.routes.get(w).route, prio)) return false;
    if (deleted) this.c.store.removeHave(id, prio);
    else this.c.store.putHave(id, w);
    this.c.stats.rawEchoes++;
    this.c.sender.afterSettle(id);
    return true;
  }

  /**
   * A route notification of our family. `byKernel`: the kernel made the change on its own (port 0),
   * not at anyone's request.
   */
  onRouteNotification(r: RouteMessage, deleted: boolean, byKernel = false): void {
    if (PHASE.closing(this.c.sm.state) || r.table !== this.c.target.table || r.flags & C.RTM_F_CLONED) return;
    this.c.stats.notifications++;
    if (PHASE.buffers(this.c.sm.state)) {
      this.buffered.push([r, deleted, byKernel]);
      return;
    }
    const store = this.c.store;
    if (r.protocol !== this.c.target.protocol) {
      this.c.metrics.foreignChange();
      if (this.learnLater !== undefined) this.learnLater.push([r, deleted]);
      else this.c.opts.onForeignRoute?.(r, deleted);
      // A foreign route that was in the way of ours is gone: retry ours now.
      if (deleted) {
        const id = store.nets.find(r.dst);
        if (id >= 0 && store.state(id) === 'failed' && store.extra(id)?.error?.errnoName === 'EEXIST') {
          store.extraOf(id).retryAt = 0;
          this.c.sender.markDirty(id);
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
    if (deleted) store.removeHave(id, prio); // the metric of the route that went (none on IPv4: 0)
    else {
      const w = store.want[id]!;
      const rid = w !== 0 && this.c.routes.matches(w, r) ? w : this.c.routes.seen(r);
      store.putHave(id, rid);
    }
    if (this.c.echoes()?.take(id, deleted ? 'del' : 'new', prio) === true) {
      this.c.sender.afterSettle(id);
      return;
    }
    // The kernel deleted it on its own with an object of ours: a link took the object (IPv6 tells of each
    // route, before the link's notification on carrier loss, after it on an admin down; docs/failover.md,
    // "IPv6"). An add now would name an object the kernel no longer has, and go again once it is made.
    // An object our books know gone (a link's flush, a foreign delete told before its routes) is accounted
    // for: the flush or the scan plans its nets. Otherwise the net waits for the link's flush (takeAhead),
    // or for settleAhead to find that none is coming.
    if (deleted && byKernel && r.nhId !== undefined && this.c.routes.nexthops.inRange(r.nhId) && this.c.sender.idleOnWire(id)) {
      if (store.want[id] !== 0 && store.state(id) === 'installed') {
        store.setState(id, 'pending'); // not in the kernel now: counted so until it is back
        store.track(id);
      }
      if (this.c.routes.nexthops.get(r.nhId)?.gone !== true) this.park(id);
      return;
    }
    this.repair(id, deleted ? 'deleted' : 'changed');
  }

  private park(id: number): void {
    this.ahead.push(id);
    if (this.settling) return;
    this.settling = true;
    setImmediate(() => void this.settleAhead());
  }

  /**
   * Routes the kernel deleted on its own (park) that no link's flush took by the end of the read that
   * brought them. A dump of our objects is the barrier: the kernel answers it only once what it was
   * doing when it deleted them is over (both run under the RTNL lock), that link's notification sent;
   * the monitor is read as soon as the dump is in, so a flush that was coming has taken its nets by
   * then. What is left no flush accounts for (an ECMP group emptied by a link our books had counted it
   * out of already, a path of the kernel's we do not know): repaired now, onto objects re-read from
   * that dump (one gone is made again first), instead of at the periodic scan. Objects of ours found
   * missing or changed (the routes of the other family on them went silently) ask for a scan.
   */
  private async settleAhead(): Promise<void> {
    try {
      while (this.ahead.length > 0 && !PHASE.closing(this.c.sm.state)) {
        const found = await this.c.rereadNexthops(() => this.c.drainMonitor());
        const left = this.takeAhead();
        if (PHASE.closing(this.c.sm.state)) return;
        if (found !== false) this.c.requestScan(SCAN_REASONS.nexthop, 0);
        if (left.length === 0) continue;
        this.c.limited.write('info', 'kernel-deletes', `${left.length} routes of ours deleted by the kernel with no link of ours going down; putting them back`, { table: this.c.target.table });
        for (const id of left) if (this.c.store.nets.live(id)) this.repair(id, 'deleted');
      }
    } finally {
      this.settling = false;
    }
  }

  /** Someone else changed or deleted a route of ours (or added one with our number): put ours back, rate-bounded. */
  private repair(id: number, what: 'deleted' | 'changed'): void {
    const store = this.c.store;
    const sender = this.c.sender;
    if (!sender.idleOnWire(id)) {
      store.setFlag(id, RECHECK, true);
      if (this.c.echoes() === undefined) store.setFlag(id, UNCERTAIN, true); // no echo orders it against ours: see afterSettle
      return;
    }
    if (PHASE.closing(this.c.sm.state)) return;
    const w = store.want[id]!;
    if ((w !== 0 && this.c.routes.get(w).error !== undefined) || store.plan(id, { n: 0, cmds: [], ids: [] }) === 0) {
      sender.settleState(id);
      return;
    }
    const now = Date.now();
    const x = store.extraOf(id);
    x.repairStreak = now - x.lastRepairAt < (this.c.opts.repairWindowMs ?? 10_000) ? x.repairStreak + 1 : 1;
    x.lastRepairAt = now;
    this.c.stats.repairs++;
    this.c.metrics.repaired(what);
    const net = store.nets.prefix(id).toString();
    this.c.limited.write('info', 'repair', `route ${net} ${what} by someone else; repairing`, { prefix: net, table: this.c.target.table });
    if (x.repairStreak > 2) {
      // Someone keeps undoing us: back off instead of fighting in a hot loop.
      const delay = backoffDelay({ baseMs: 500, maxMs: 60_000, jitter: 0.2 }, x.repairStreak - 2);
      x.retryAt = now + delay;
      sender.failed.add(id);
      this.c.limited.write('warn', 'repair-loop', `route ${net} keeps being changed by someone else; next repair in ${delay} ms`, { prefix: net });
      return;
    }
    sender.markDirty(id);
  }

  onLink(l: LinkMessage, deleted: boolean): void {
    const change = this.c.links.update(l, deleted);
    if (change === 'none') return;
    this.c.log.debug(`link ${l.name ?? l.index} ${change}`);
    // Routes through a link that went down or away may be gone without a notification (a device scan
    // finds them); ones waiting for it may go in now.
    const gone = change === 'down' || change === 'removed';
    this.onLinkLayerChange(!gone);
    if (gone) this.c.requestDeviceScan(l.index);
  }

  onAddr(a: AddrMessage, deleted: boolean): void {
    if (a.family !== this.c.target.family) return;
    this.onLinkLayerChange(!deleted);
    // An address that went takes the routes preferring it as their source (on any device) and, the
    // device's last one, the routes through the device: the whole table is scanned (rare: addresses
    // change with configuration, links flap).
    if (deleted) this.c.requestScan(SCAN_REASONS.link, 100);
  }

  /** Nothing of ours goes when a link comes up or an address appears: no scan then. */
  private onLinkLayerChange(cameBack: boolean): void {
    if (PHASE.closing(this.c.sm.state)) return;
    // Device names may resolve differently now: wanted routes naming one are converted again.
    this.moveWanted(this.c.routes.reconvert());
    if (cameBack) this.c.retryFailedNow();
  }

  /** Wanted routes converted again (links changed, nexthop objects turned on or off): their nets move to the new ones. */
  moveWanted(moved: ReadonlyMap<number, number>): void {
    if (moved.size === 0) return;
    const store = this.c.store;
    store.forEach((id) => {
      const to = moved.get(store.want[id]!);
      if (to === undefined) return;
      store.setWant(id, to);
      if (this.c.routes.get(to).error === undefined && store.state(id) === 'failed' && store.extra(id)?.error === undefined) store.setState(id, 'pending');
      if (this.c.routes.get(to).error !== undefined) {
        store.setState(id, 'failed');
        this.c.sender.failed.add(id);
      }
      store.track(id);
      this.c.sender.markDirty(id);
    });
  }

  onOverflow(): void {
    this.c.stats.overflows++;
    this.c.metrics.overflow();
    this.c.limited.write('warn', 'overflow', 'notification socket overflowed (ENOBUFS): changes were lost; resyncing', { table: this.c.target.table });
    this.c.requestScan(SCAN_REASONS.overflow, 0);
  }
}
