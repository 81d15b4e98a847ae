/**
 * BackupRoutes: `failover: backup_routes` (docs/failover.md), the lever for
 * failures the kernel acts on first. When a link loses carrier the kernel
 * deletes the nexthop objects on it, the groups left empty and every route
 * on them, before anyone can act. A route of ours for the same net at a
 * worse metric, on the next-best's next hops, survives that and forwards at
 * once.
 *
 * So each net with a next-best route also gets a backup route: the next-best
 * converted, at the backup metric (one metric for every backup route, an
 * option), on the next-best's own hop object or ECMP group (never on a
 * forwarding object: the kernel empties that one with the primary's link).
 * Backup routes live in a second route store with its own sender (the same
 * kernel I/O), so the primary store's plans never see them; every route of
 * ours at the backup metric is a backup route (dumps and notifications are
 * split by it).
 *
 * Invariants:
 *  - make before break across the two stores: a net's backup route is
 *    deleted only once the net's primary route is installed (or the net
 *    wants none), so the catch-up after a failure never leaves a net
 *    without a route it had;
 *  - a backup route through the same next hops as the primary is not made
 *    (it would die with it), but one that is there is kept when the primary
 *    moves onto its next hops (the old next-best took over): it changes
 *    nothing, and when the old primary returns it is wanted again, so a
 *    failover and its recovery cost no backup route changes.
 */
import type { Prefix } from '../../lib/addr';
import type { RouteMessage } from '../../netlink/route-codec';
import type { RouteAttrs } from '../../route';
import type { KernelTarget, LinkResolver } from './convert';
import { KernelRoutes, type WantedBackup, type WantedKey } from './kernel-routes';
import type { NexthopObjects } from './nexthop-objects';
import { effectivePriority } from './normalize';
import { MANY, RouteStore } from './route-store';
import { SyncSender, type SenderContext } from './sync-sender';

/**
 * The backup route a net wants with the primary route made from `k` (BackupRoutes.setWanted's argument): its
 * next-best, unless through the primary's own next hops (it would die with them); while a better route is
 * held unusable, the one the net had (its next-best then, its best now) stays wanted, so a restart keeps it too.
 */
export function backupWantOf(k: WantedKey): WantedBackup | undefined {
  if (k.backup !== undefined) return k.backup.attrs.nexthops !== k.attrs.nexthops ? k.backup : undefined;
  return k.held !== undefined ? k : undefined; // the route itself (its attrs and source), no object made
}

/** Whether two primary routes want the same backup route, one there is. */
export function sameBackupWant(a: WantedKey, b: WantedKey): boolean {
  const x = backupWantOf(a);
  const y = backupWantOf(b);
  return x !== undefined && y !== undefined && x.attrs === y.attrs && x.source === y.source;
}

/** The backup metric unless the config says otherwise: worse than any metric a route normally has. */
export const DEFAULT_BACKUP_METRIC = 4294967295;

export interface BackupRoutesContext {
  readonly target: KernelTarget;
  readonly links: LinkResolver;
  readonly nexthops: NexthopObjects;
  readonly metric: number;
  /** The sync's sender context, for a second sender over the backup store. */
  readonly sender: Omit<SenderContext, 'store' | 'routes' | 'reconvertAll'>;
  /** The primary store: a backup route goes only once its net's primary route is in. */
  readonly primary: RouteStore;
}

export class BackupRoutes {
  readonly routes: KernelRoutes;
  readonly store: RouteStore;
  readonly sender: SyncSender;
  /** Backup-store ids whose route should go once their net's primary route is installed. */
  private readonly dropping = new Set<number>();

  constructor(private readonly c: BackupRoutesContext) {
    this.routes = new KernelRoutes({ ...c.target, metric: c.metric }, c.links, c.nexthops, false);
    this.store = new RouteStore(c.target.family, this.routes);
    this.sender = new SyncSender({ ...c.sender, store: this.store, routes: this.routes, reconvertAll: () => this.reconvert(true) });
  }

  /** Whether a route of ours is a backup route (its metric is the backup metric). */
  isBackup(route: RouteMessage): boolean {
    return effectivePriority(route) === this.c.metric;
  }

  /**
   * The net's next-best route now (undefined: none, or the same next hops as the primary's):
   * wanted at the backup metric. Dropping one waits for the net's primary route (see the header);
   * one through the next hops of the net's `primary` now is kept.
   */
  setWanted(net: Prefix, backup: WantedBackup | undefined, steady: boolean, primary?: RouteAttrs, source?: string): void {
    const store = this.store;
    let id = store.nets.find(net);
    if (id < 0) {
      if (backup === undefined) return;
      id = store.idOf(net);
    }
    if (backup === undefined) {
      if (store.want[id] === 0) {
        if (!steady && primary !== undefined) this.adoptKept(id, primary, source);
        return;
      }
      if (primary !== undefined && this.routes.get(store.want[id]!).key?.attrs.nexthops === primary.nexthops) {
        // It goes where the primary now does (the old next-best took over): harmless, and the primary's
        // return wants it again. Kept: a failover and its recovery cost no backup route changes.
        this.dropping.delete(id);
        return;
      }
      if (!this.primaryIn(net)) {
        this.dropping.add(id);
        return;
      }
    }
    this.dropping.delete(id);
    const rid = backup === undefined ? 0 : this.routes.wanted(backup.attrs, undefined, backup.source);
    if (store.want[id] === rid) return;
    store.setWant(id, rid);
    store.clearFailure(id);
    store.track(id);
    this.sender.markDirty(id, steady ? Date.now() : 0);
  }

  /**
   * The first feed (a restart): a backup route of ours in the kernel that goes where the net's primary
   * now does is one the running daemon kept (see the header), so the new one keeps it too, and a restart
   * in the middle of a failover changes nothing; it goes when the primary moves elsewhere, like a kept one.
   */
  private adoptKept(id: number, primary: RouteAttrs, source: string | undefined): void {
    const h = this.store.have[id]!;
    if (h === 0 || h === MANY) return;
    const rid = this.routes.wanted(primary, undefined, source);
    this.routes.ref(rid);
    if (this.routes.same(rid, h)) {
      this.store.setWant(id, rid);
      this.store.track(id);
    }
    this.routes.unref(rid);
  }

  /** The tick: drops that waited for their primary route, then the sender's retries. */
  onTick(now: number): void {
    for (const id of this.dropping) {
      if (!this.store.nets.live(id)) {
        this.dropping.delete(id);
        continue;
      }
      const net = this.store.nets.prefix(id);
      if (this.primaryIn(net)) this.setWanted(net, undefined, true);
    }
    this.sender.onTick(now);
  }

  /** The graceful-restart hold is over: backup routes of ours nothing wants go. */
  queueStale(): void {
    this.store.forEach((id) => {
      if (this.store.want[id] === 0 && this.store.haveCount(id) > 0) this.sender.dirty.add(id);
    });
  }

  /** Backup routes waiting for their primary before they go (for tests). */
  get waiting(): number {
    return this.dropping.size;
  }

  /** Links changed: backup routes naming a device are converted again. */
  reconvert(all = false): void {
    const moved = this.routes.reconvert(all);
    if (moved.size === 0) return;
    this.store.forEach((id) => {
      const to = moved.get(this.store.want[id]!);
      if (to === undefined) return;
      this.store.setWant(id, to);
      this.store.track(id);
      this.sender.markDirty(id);
    });
  }

  /**
   * Whether the net's primary route is in the kernel as wanted, or none is wanted. After a switch the
   * catch-up wants a route the kernel already holds (the same, on the same object): that counts at
   * once, before the primary's plan has run, so most drops need no wait.
   */
  private primaryIn(net: Prefix): boolean {
    const p = this.c.primary;
    const id = p.nets.find(net);
    if (id < 0) return true;
    const w = p.want[id]!;
    const h = p.have[id]!;
    return w === 0 || (p.state(id) === 'installed' && h !== 0 && h !== MANY && (h === w || p.routes.same(w, h)));
  }
}
