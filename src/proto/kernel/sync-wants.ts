/**
 * SyncWants: what the protocol wants of one sync, written into its books.
 * A want (a net's route, filter settings, source, and with failover its
 * backup and held routes) is interned as a kernel route (kernel-routes.ts),
 * set in the route store, and the net queued for the sender; with
 * backup_routes the backup store is told its next-best route too.
 *
 * Invariants:
 *  - a net whose want changes only in our bookkeeping (the kernel route is
 *    the same) is not planned again (RouteStore.sameForKernel);
 *  - a want that cannot be converted (no device for its gateway) is failed
 *    at once and waits for a link change, said once per new reason;
 *  - a refeed is a mark and sweep: every net it does not list by its end
 *    is no longer wanted (SEEN flags).
 */
import type { Prefix } from '../../lib/addr';
import type { RouteAttrs } from '../../route';
import type { KernelAttrs } from '../kernel-attrs';
import type { WantedBackup } from './kernel-routes';
import type { NexthopObjects } from './nexthop-objects';
import { SEEN } from './route-store';
import { backupWantOf, sameBackupWant, type BackupRoutes } from './sync-backup-routes';
import type { SyncCore } from './sync-core';

/** What the wants share with their sync. */
export interface SyncWantsContext extends Pick<SyncCore, 'store' | 'routes' | 'sender' | 'limited' | 'target'> {
  readonly nexthops: NexthopObjects;
  readonly backups: BackupRoutes | undefined;
  /** The first sync is over: table changes from here on are timed to their answer (sync-metrics.ts). */
  steady(): boolean;
}

export class SyncWants {
  private refeeding = false;

  constructor(private readonly ctx: SyncWantsContext) {}

  /** KernelSync.setWanted. */
  set(net: Prefix, attrs: RouteAttrs | undefined, set: KernelAttrs | undefined, sourceName?: string, backup?: WantedBackup, held?: WantedBackup): void {
    const { store, routes, sender, backups } = this.ctx;
    if (net.family !== this.ctx.target.family) return;
    // One probe of the net index, not two: at a million nets it shows in the first feed's profile.
    const id = attrs === undefined ? store.nets.find(net) : store.idOf(net);
    if (id < 0) return;
    if (this.refeeding) store.setFlag(id, SEEN, true);
    const before = store.want[id]!;
    let rid = 0;
    if (attrs !== undefined) {
      // A restart claims adopted forwarding objects by content: the one this net's route is on first.
      const have = this.ctx.nexthops.forwarding.enabled ? store.have[id]! : 0;
      rid = routes.wanted(attrs, set, sourceName, backup, have === 0 ? undefined : routes.get(have).nh?.id, held);
    }
    const same = store.sameForKernel(id, before, rid); // only our bookkeeping changes: nothing to plan
    const prev = backups !== undefined && before !== 0 ? routes.get(before).key : undefined;
    store.setWant(id, rid);
    store.clearFailure(id);
    const err = rid === 0 ? undefined : routes.get(rid).error;
    if (err !== undefined) {
      store.setState(id, 'failed');
      sender.failed.add(id);
      // Said once per new reason (links change often; the same reason again is not news).
      if (before !== rid) this.ctx.limited.write('warn', `convert:${err.errnoName}`, `cannot install ${net}: ${err.message}; waiting for a link change`, { prefix: net.toString(), errno: err.errnoName });
    }
    store.track(id);
    if (!same) sender.markDirty(id, this.ctx.steady() ? Date.now() : 0);
    // The backup store is not probed when the net's backup route stays (a carrier loss's catch-up, a churn of the primary's next hop).
    const key = rid === 0 || backups === undefined ? undefined : routes.get(rid).key;
    if (backups !== undefined && !(prev !== undefined && key !== undefined && sameBackupWant(prev, key))) backups.setWanted(net, key && backupWantOf(key), this.ctx.steady(), key?.attrs ?? attrs, sourceName);
  }

  /** A refeed begins: nets it does not list by refeedEnd() are no longer wanted. */
  refeedBegin(): void {
    const store = this.ctx.store;
    this.refeeding = true;
    store.forEach((id) => store.setFlag(id, SEEN, false));
  }

  /** The refeed is complete: a wanted net it did not list has no route now. */
  refeedEnd(): void {
    if (!this.refeeding) return;
    const store = this.ctx.store;
    this.refeeding = false;
    const unseen: number[] = [];
    store.forEach((id) => {
      if (store.want[id] !== 0 && !store.flag(id, SEEN)) unseen.push(id);
      store.setFlag(id, SEEN, false);
    });
    for (const id of unseen) this.set(store.nets.prefix(id), undefined, undefined);
  }
}
