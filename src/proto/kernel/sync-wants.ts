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
import type { FeedRun } from '../../table';
import type { KernelAttrs } from '../kernel-attrs';
import type { ExportDecision } from './export-memo';
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
    const store = this.ctx.store;
    if (net.family !== this.ctx.target.family) return;
    // One probe of the net index, not two: at a million nets it shows in the first feed's profile.
    const id = attrs === undefined ? store.nets.find(net) : store.idOf(net);
    if (id >= 0) this.setAt(id, attrs, set, sourceName, backup, held);
  }

  /**
   * set() for each net of a feed run, found by its words (no Prefix per net: a table walk's first
   * feed of a million nets); `decide` gives net i's want. The store's hash slots of an IPv4 run are
   * read ahead together first (NetIndex.warm4), so the inserts that follow find them cached.
   */
  setRun(run: FeedRun, decide: (run: FeedRun, i: number) => ExportDecision): void {
    if (run.family !== this.ctx.target.family) return;
    const nets = this.ctx.store.nets;
    const { words, lens } = run;
    if (run.stride === 1) nets.warm4(words, lens, 0, run.n);
    for (let i = 0; i < run.n; i++) {
      const d = decide(run, i);
      const k = i * run.stride;
      const len = lens[i]!;
      let id: number;
      if (run.stride === 1) id = d.attrs === undefined ? nets.find4(words[i]!, len) : nets.insert4(words[i]!, len);
      else id = d.attrs === undefined ? nets.find6(words[k]!, words[k + 1]!, words[k + 2]!, words[k + 3]!, len) : nets.insert6(words[k]!, words[k + 1]!, words[k + 2]!, words[k + 3]!, len);
      if (id >= 0) this.setAt(id, d.attrs, d.set, d.source, d.backup, d.held);
    }
  }

  /** The want of the net with route id `id` (its Prefix made only for a message or the backup store). */
  private setAt(id: number, attrs: RouteAttrs | undefined, set: KernelAttrs | undefined, sourceName?: string, backup?: WantedBackup, held?: WantedBackup): void {
    const { store, routes, sender, backups } = this.ctx;
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
      if (before !== rid) {
        const net = store.nets.prefix(id);
        this.ctx.limited.write('warn', `convert:${err.errnoName}`, `cannot install ${net}: ${err.message}; waiting for a link change`, { prefix: net.toString(), errno: err.errnoName });
      }
    }
    store.track(id);
    if (!same) sender.markDirty(id, this.ctx.steady() ? Date.now() : 0);
    // The backup store is not probed when the net's backup route stays (a carrier loss's catch-up, a churn of the primary's next hop).
    const key = rid === 0 || backups === undefined ? undefined : routes.get(rid).key;
    if (backups !== undefined && !(prev !== undefined && key !== undefined && sameBackupWant(prev, key))) backups.setWanted(store.nets.prefix(id), key && backupWantOf(key), this.ctx.steady(), key?.attrs ?? attrs, sourceName);
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
