/**
 * SyncFailover: a kernel sync's side of prefix-independent convergence
 * (forwarding-objects.ts holds the objects; docs/failover.md).
 *
 * A source about to be withdrawn as a whole (a stream neighbour down, a
 * client gone) is announced by the table synchronously, before its
 * per-net withdrawals (Table.watchFlush). Each forwarding object whose
 * primary is that source and that has a backup gets the backup's hops as
 * its content: one RTM_NEWNEXTHOP with NLM_F_REPLACE, and the kernel moves
 * every route on it at once. The messages are written to the socket before
 * this returns (the netlink client sends at once), so they reach the kernel
 * before any route change the per-net catch-up makes; backup hop objects
 * not in the kernel yet are sent just before their group, on the same
 * socket, so the kernel takes them first.
 *
 * The per-net catch-up then finds, for most nets, that their new best and
 * next-best route claims the switched object (it is an orphan with exactly
 * that content): no route message. A replace the kernel refuses (the object
 * went with its link meanwhile) leaves the object to be made again with its
 * new content, and a scan puts its routes back.
 *
 * A next-hop set that next-hop tracking judges unusable holds the objects
 * on it on their backup instead (they keep their key: the nets stay on
 * them), and its return gives them their primary again: one replace each
 * way, before the table reorders the nets (the tracker's subscribeFirst).
 */
import { NetlinkRequestError } from '../../netlink/errors';
import { RouteAttrs } from '../../route';
import type { NextHopChange } from '../../table';
import type { Logger, RateLimitedLog } from '../logger';
import type { KernelTarget } from './convert';
import type { KernelIo } from './kernel-io';
import type { KernelRoutes } from './kernel-routes';
import type { ForwardingCounts } from './forwarding-objects';
import type { NexthopObjects, NhObject } from './nexthop-objects';
import type { SyncCounts } from './route-status';
import { SCAN_REASONS } from './sync-metrics';

export type FailoverMode = 'off' | 'objects' | 'backup_routes';

export interface SyncFailoverContext {
  readonly nexthops: NexthopObjects;
  readonly routes: KernelRoutes;
  readonly target: KernelTarget;
  readonly log: Logger;
  readonly limited: RateLimitedLog;
  io(): KernelIo;
  requestScan(reason: string, delayMs: number): void;
  /** The sync is open and not shutting down: switches may go out. */
  live(): boolean;
  /** The backup routes by state (failover: backup_routes), else undefined. */
  backupCounts(): SyncCounts | undefined;
  /** Reads the sync's queued notifications now (a link the kernel acted on: link-flush.ts). */
  drainMonitor(): void;
}

/** A sync's failover as `show protocols` and the metrics present it (absent with failover off). */
export interface FailoverStatus {
  mode: Exclude<FailoverMode, 'off'>;
  /** Routes go on forwarding objects now (false: nexthop objects off or not in this kernel, or the sync is not open). */
  active: boolean;
  objects: ForwardingCounts;
  /** A failover in force: objects switched, degraded or held on their backup. */
  inForce: number;
  backupRoutes?: SyncCounts;
  events: FailoverStats;
}

export interface FailoverStats {
  /** Sources whose withdrawal switched objects. */
  failovers: number;
  /** Objects switched to their backup. */
  switched: number;
  /** Replaces the kernel refused. */
  refused: number;
}

export class SyncFailover {
  readonly stats: FailoverStats = { failovers: 0, switched: 0, refused: 0 };
  /** Replaces sent whose answer is still out. */
  private out = 0;

  constructor(private readonly c: SyncFailoverContext) {}

  /** Whether routes go on forwarding objects (the option, with nexthop objects on), and the sync is open. */
  get active(): boolean {
    return this.c.nexthops.forwarding.enabled && this.c.nexthops.enabled && this.c.live();
  }

  /** The failover's state now (undefined: off). O(forwarding objects). */
  status(): FailoverStatus | undefined {
    const fw = this.c.nexthops.forwarding;
    if (!fw.enabled) return undefined;
    const objects = fw.counts();
    const backupRoutes = this.c.backupCounts();
    return { mode: backupRoutes === undefined ? 'objects' : 'backup_routes', active: this.active, objects, inForce: objects.switched + objects.degraded + objects.held, ...(backupRoutes !== undefined ? { backupRoutes } : {}), events: { ...this.stats } };
  }

  /** No replace of ours is out: the kernel holds our objects as our books say (link-flush.ts relies on it). */
  get quiet(): boolean {
    return this.out === 0;
  }

  /** The failover option (a restart or a reload): takes effect for routes converted from now on. */
  setMode(mode: FailoverMode): void {
    this.c.nexthops.forwarding.enabled = mode !== 'off';
  }

  /**
   * `source` is about to be withdrawn as a whole: every forwarding object it is the primary of
   * switches to its backup now. Returns how many were switched.
   */
  sourceDown(source: string): number {
    if (!this.active) return 0;
    const objs = this.c.nexthops.forwarding.primaryOf(source);
    return objs.length === 0 ? 0 : this.switchAll(objs, `source ${source} withdrawn`, false);
  }

  /**
   * Next-hop tracking judged every hop of `attrs` unusable, before the table reorders the nets that
   * use them: every forwarding object whose primary is only those hops, and whose backup is not,
   * is held on its backup now (one replace; none when its links went down and it forwards to its
   * backup already), keeping its key: the nets whose best is the backup while that primary is held
   * stay on it (no route message), and the tracker's return gives it the primary again (nextHopsUp).
   * Returns how many replaces were sent.
   */
  nextHopsDown(attrs: RouteAttrs): number {
    if (!this.active) return 0;
    // The tracker's socket may be read before the sync's: a link that lost carrier has its objects and routes
    // flushed already, and its notification waits in the sync's monitor. Taken first, the routes the kernel
    // dropped are known from our books (link-flush.ts) and the objects on it degraded before they are held.
    this.c.drainMonitor();
    const gone = new Set(this.c.routes.hopObjectsOf(attrs));
    if (gone.size === 0) return 0;
    const objs: NhObject[] = [];
    this.c.nexthops.forwarding.forEachKeyed((o) => {
      if (o.fwd!.held === true) return;
      const primary = o.fwd!.degraded?.map((h) => h.obj) ?? o.members ?? [];
      if (primary.length === 0 || !primary.every((m) => gone.has(m))) return;
      o.fwd!.released = false; // its primary is held again: not one for the nets held on it unless it is held (below)
      if (!o.fwd!.backup!.some((h) => gone.has(h.obj))) objs.push(o);
    });
    return objs.length === 0 ? 0 : this.switchAll(objs, 'next hops unusable', true);
  }

  /**
   * Next-hop tracking judged a hop of `attrs` usable again (after its damping hold), before the table
   * reorders the nets: every object held whose primary's hops are all among them gets them back, one
   * replace, and every net on it forwards through the primary again; the nets' new pair (the
   * primary, the backup) is its key, so the catch-up sends no route message.
   */
  nextHopsUp(attrs: RouteAttrs): number {
    if (!this.active) return 0;
    const back = new Set(this.c.routes.hopObjectsOf(attrs));
    if (back.size === 0) return 0;
    const objs: NhObject[] = [];
    this.c.nexthops.forwarding.forEachKeyed((o) => {
      const primary = o.fwd!.degraded;
      if (o.fwd!.held === true && primary !== undefined && primary.every((h) => back.has(h.obj))) objs.push(o);
    });
    return objs.length === 0 ? 0 : this.restoreAll(objs, 'next hops usable again');
  }

  /**
   * Switches each object to its backup (`hold`: held, keeping its key; else switched, an orphan until
   * claimed): one replace each, sent before this returns.
   */
  private switchAll(objs: readonly NhObject[], why: string, hold: boolean): number {
    const fw = this.c.nexthops.forwarding;
    const t0 = Date.now();
    const io = this.c.io();
    const now = Date.now();
    const pending: Promise<unknown>[] = [];
    const switched = new Set<NhObject>();
    let sent = 0;
    for (const o of objs) {
      const backup = o.fwd!.backup!;
      // A backup hop the kernel refused (its link is down) and may not be retried yet: this object's nets move one by one.
      if (!backup.every((h) => this.c.nexthops.usable(h.obj, now))) continue;
      // In the kernel with its routes on it: live, or stale (a link took some of its members and the kernel
      // keeps the rest; the replace that makes it whole again may be out: this one goes right behind it, on
      // the same socket). Degraded (its primary's links are down): it forwards to the backup already; only
      // our books change. Neither (its add is out, or it is still to be made): no route is on it yet.
      const live = (o.state === 'live' || o.stale) && o.fwd!.degraded === undefined;
      if (live) for (const h of backup) if (h.obj.state !== 'live') pending.push(this.c.nexthops.ensure(h.obj, io, now));
      if (hold) fw.hold(o);
      else {
        fw.switchToBackup(o);
        switched.add(o);
      }
      this.stats.switched++;
      if (!live) continue; // it is made with its new content before a route goes on it
      sent++;
      pending.push(this.replace(io, o));
    }
    this.stats.failovers++;
    this.c.log.info(`${why}: ${objs.length} forwarding objects ${hold ? 'held on' : 'switched to'} their backup, ${sent} replaced in the kernel (${Date.now() - t0} ms to send)`, { table: this.c.target.table });
    // After the replaces are out: one pass over the wanted routes for all the switched objects, not one per object.
    if (switched.size > 0) this.c.routes.forgetObjects(switched);
    void Promise.all(pending);
    return sent;
  }

  /**
   * Links changed (the link cache has the news): a forwarding object whose primary's links are all
   * down, which the kernel has deleted with its routes, forwards to its backup from now on (made
   * again with the backup's hops, its routes put back by the scan that follows the link change:
   * through the backup, where its nets' backup routes, if any, already forward); one degraded so
   * whose primary's links are all back gets the primary's hops again, one replace.
   */
  linksChanged(): void {
    if (!this.active) return;
    const fw = this.c.nexthops.forwarding;
    const restore: NhObject[] = [];
    let degraded = 0;
    fw.forEachKeyed((o) => {
      const role = o.fwd!;
      if (role.degraded === undefined) {
        if (!fw.linksDown((o.members ?? []).map((obj) => ({ obj, weight: 1 }))) || !fw.linksUp(role.backup!)) return;
        fw.degrade(o);
        degraded++;
        return;
      }
      // One held by next-hop tracking goes back when the tracker says so (its damping hold), not with the link.
      if (role.held !== true && fw.linksUp(role.degraded)) restore.push(o);
    });
    const restored = restore.length === 0 ? 0 : this.restoreAll(restore, undefined);
    if (degraded + restored > 0) this.c.log.info(`links changed: ${degraded} forwarding objects forward to their backup, ${restored} to their primary again`, { table: this.c.target.table });
  }

  /** Gives each degraded object its primary's hops again: one replace each (the hop objects made first, on the same socket). */
  private restoreAll(objs: readonly NhObject[], why: string | undefined): number {
    const fw = this.c.nexthops.forwarding;
    const io = this.c.io();
    const now = Date.now();
    const pending: Promise<unknown>[] = [];
    for (const o of objs) {
      const live = o.state === 'live';
      if (live) for (const h of o.fwd!.degraded!) if (h.obj.state !== 'live') pending.push(this.c.nexthops.ensure(h.obj, io, now));
      fw.restore(o);
      if (live) pending.push(this.replace(io, o));
    }
    if (why !== undefined) this.c.log.info(`${why}: ${objs.length} forwarding objects forward to their primary again`, { table: this.c.target.table });
    void Promise.all(pending);
    return objs.length;
  }

  /** One replace of `o` with its content now, counted until it is answered. */
  private replace(io: KernelIo, o: NhObject): Promise<void> {
    this.out++;
    return this.c.nexthops
      .switch(o, io)
      .then(
        () => undefined,
        (err: unknown) => this.refused(o, err),
      )
      .finally(() => this.out--);
  }

  /** The kernel refused a switch: the object is made again with its new content before its routes go back. */
  private refused(o: NhObject, err: unknown): void {
    this.stats.refused++;
    const name = err instanceof NetlinkRequestError ? err.errnoName : 'EIO';
    this.c.limited.write('warn', 'failover-refused', `switching forwarding object ${o.id} to its backup failed (${name}: ${(err as Error).message}); its routes move one by one`, { table: this.c.target.table });
    this.c.requestScan(SCAN_REASONS.nexthop, 50);
  }
}

/**
 * Sets that lost their last usable hop, or got one back, told before the table reorders their nets: each
 * sync's failover holds the objects on them on their backup, or gives them their primary again.
 */
export function nextHopsTurned(failovers: readonly SyncFailover[], changes: readonly NextHopChange[]): void {
  for (const c of changes) {
    if (c.wasEligible === c.eligible) continue;
    const attrs = RouteAttrs.of({ type: 'unicast', nexthops: c.set });
    for (const f of failovers) {
      if (c.eligible) f.nextHopsUp(attrs);
      else f.nextHopsDown(attrs);
    }
  }
}

/** The failover of several syncs (families) added up; undefined when none has it on. */
export function sumFailover(parts: Iterable<FailoverStatus | undefined>): FailoverStatus | undefined {
  let out: FailoverStatus | undefined;
  for (const f of parts) {
    if (f === undefined) continue;
    if (out === undefined) {
      out = { ...f, objects: { ...f.objects }, events: { ...f.events }, ...(f.backupRoutes ? { backupRoutes: { ...f.backupRoutes } } : {}) };
      continue;
    }
    out.active ||= f.active;
    out.inForce += f.inForce;
    for (const k of Object.keys(out.objects) as Array<keyof ForwardingCounts>) out.objects[k] += f.objects[k];
    for (const k of Object.keys(out.events) as Array<keyof FailoverStats>) out.events[k] += f.events[k];
    if (out.backupRoutes && f.backupRoutes) for (const k of Object.keys(out.backupRoutes) as Array<keyof SyncCounts>) out.backupRoutes[k] += f.backupRoutes[k];
  }
  return out;
}
