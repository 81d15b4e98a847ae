/**
 * SyncNexthops: a kernel sync's nexthop objects over time (the objects
 * themselves are nexthop-objects.ts): whether they are on (the option, and a
 * kernel that has them), adoption at open, someone else's changes, the
 * re-read each scan does, deleting the ones nothing uses, and the view
 * `krtsync show kernel --nexthops` and the metrics give.
 *
 * Ours are adopted whatever the option says: turning it off moves our
 * routes off them (in place), and then they are deleted like any object
 * nothing uses. Deleting is checked against foreign routes first, as the
 * kernel's notifications tell them (nexthop-users.ts; a dump of every route
 * table only when that count is not trusted, or at most once a minute while
 * a recorded foreign use keeps an object), with the notifications queued
 * until then read right before each delete; it runs at most every 2 s.
 */
import { KrtError } from '../../lib/errors';
import * as C from '../../netlink/constants';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import { debugOn, type Logger, type RateLimitedLog } from '../logger';
import type { KernelTarget } from './convert';
import type { KernelIo } from './kernel-io';
import type { KernelRoutes } from './kernel-routes';
import { roleState, type ForwardingCounts } from './forwarding-objects';
import type { AddrMessage, LinkMessage } from '../../netlink/link-codec';
import { linkUsable, type LinkCache } from './link-cache';
import type { ConnectedPrefixes, NexthopMode, NexthopObjects } from './nexthop-objects';
import { flushedWith, type Flushed } from './link-flush';
import { ForeignNexthopUsers } from './nexthop-users';
import { KernelNexthopView } from './nexthop-view';
import type { RouteMessage } from '../../netlink/route-codec';
import type { RouteStore } from './route-store';
import type { RouteError } from './route-status';
import { SCAN_REASONS } from './sync-metrics';

/** One object of ours as `show kernel --nexthops` lists it. */
export interface NexthopStatus {
  id: number;
  /** gateway, device (a device alone) or group. */
  kind: 'gateway' | 'device' | 'group';
  gateway?: string;
  dev?: string;
  onlink?: boolean;
  members?: { id: number; weight: number }[];
  /** Nets whose wanted route names it (a member's routes are those of its groups plus its own). */
  routes: number;
  /** Users inside krtsync: wanted and installed routes, groups, changes in flight. */
  refs: number;
  state: 'live' | 'new' | 'failed' | 'retired';
  error?: RouteError;
  /**
   * A forwarding object (docs/failover.md): its primary and backup sources; `switched`: an orphan (it forwards to what
   * was the backup, or was found at restart); `state`: what it forwards to (ForwardingCounts).
   */
  failover?: { primary?: string; backup?: string; switched: boolean; state: keyof ForwardingCounts };
}

export interface SyncNexthopsContext {
  readonly nexthops: NexthopObjects;
  readonly routes: KernelRoutes;
  readonly store: RouteStore;
  readonly links: LinkCache;
  readonly target: KernelTarget;
  readonly log: Logger;
  readonly limited: RateLimitedLog;
  io(): KernelIo;
  requestScan(reason: string, delayMs: number): void;
  /** Every wanted route was converted again (old id -> new id): its nets move over and are planned. */
  moveWanted(moved: ReadonlyMap<number, number>): void;
  /** Devices of connected prefixes (the objects resolve gateways sent without a device through it). */
  readonly connected: ConnectedPrefixes;
}

/** A recorded foreign use that keeps an object is checked against a dump at most this often. */
const RESEED_MS = 60_000;

export class SyncNexthops {
  private collecting = false;
  private lastCollect = 0;
  /** Foreign routes on our objects, kept from notifications. */
  readonly users: ForeignNexthopUsers;
  /** Every object in the kernel, to learn foreign routes that name one. */
  readonly view = new KernelNexthopView();

  constructor(
    private readonly c: SyncNexthopsContext,
    private mode: NexthopMode,
  ) {
    this.users = new ForeignNexthopUsers(c.target, (id) => c.nexthops.inRange(id));
  }

  /** Whether the kernel has objects (a dump works); ours are adopted. `on` without them is an error. */
  async open(io: KernelIo): Promise<void> {
    const nx = this.c.nexthops;
    try {
      const dumped = await io.dumpNexthops();
      nx.resync(dumped, true);
      this.view.reset(dumped);
      nx.supported = true;
    } catch (err) {
      if (this.mode === 'on') throw new KrtError('KRT_ERR_NEXTHOP', `nexthop_objects: on, but the kernel has no nexthop objects (${(err as Error).message}); use auto or off`);
      this.c.log.info(`the kernel has no nexthop objects (${(err as Error).message}): routes carry their next hops`);
    }
    // Routes of others may be on objects of ours already: they are counted from a dump (after the first sync).
    if (nx.stats.adopted > 0) this.users.distrust();
    nx.enabled = nx.supported && this.mode !== 'off';
    if (nx.supported) this.c.log.info(`nexthop objects ${nx.enabled ? 'on' : 'off'}: ${nx.stats.adopted} of ours adopted`, { table: this.c.target.table });
  }

  /** nexthop_objects changed (a reload): every wanted route is converted again and replaced in place. */
  setMode(mode: NexthopMode): void {
    this.mode = mode;
    const nx = this.c.nexthops;
    if (mode === 'on' && !nx.supported) this.c.log.warn('nexthop_objects: on, but the kernel has no nexthop objects; routes keep carrying their next hops');
    const on = nx.supported && mode !== 'off';
    if (on === nx.enabled) return;
    nx.enabled = on;
    this.c.log.info(`nexthop objects turned ${on ? 'on' : 'off'}: routes are replaced in place`, { table: this.c.target.table });
    this.c.moveWanted(this.c.routes.reconvert(true));
  }

  /** A route notification, of any table or family (`nlFlags`: its NLM_F_REPLACE / APPEND): foreign routes on our objects. */
  onRoute(r: RouteMessage, deleted: boolean, nlFlags: number): void {
    this.users.note(r, deleted, nlFlags);
  }

  /** Notifications were lost: foreign routes on our objects are counted again before the next delete. */
  onOverflow(): void {
    this.users.distrust();
  }

  /** The foreign uses are counted (seeded from a dump of every route table if they are not trusted). */
  async counted(): Promise<void> {
    if (!this.users.trusted && this.c.nexthops.supported) await this.users.seed(() => this.c.io().nexthopUsers((id) => this.c.nexthops.inRange(id)));
  }

  /** Whether a foreign route uses object `id`: the notifications queued now are read first (they may say so). */
  private usedByOthers = (id: number): boolean => {
    this.c.io().drainMonitor();
    return this.users.uses(id);
  };

  /** A notification: someone else changed or deleted an object of ours (a link flush tells nobody: scans re-read them). */
  onNotification(m: NexthopMessage, deleted: boolean): void {
    this.view.note(m, deleted);
    if (deleted && this.c.nexthops.isOurs(m)) this.users.objectGone(m.id); // the routes on it went with it
    if (!this.c.nexthops.onNotification(m, deleted)) return;
    this.c.limited.write('warn', 'nexthop-repair', `nexthop object ${m.id} of ours was ${deleted ? 'deleted' : 'changed'} by someone else; repairing`, { table: this.c.target.table });
    this.c.requestScan(SCAN_REASONS.nexthop, 50);
  }

  /**
   * A link change, before the link cache takes it: one that goes down or loses carrier took its
   * objects with it. Returns those of ours the kernel deleted (link-flush.ts), or undefined when the
   * link did not go.
   */
  onLink(l: LinkMessage, deleted: boolean): Flushed | undefined {
    if (deleted) this.c.connected.forget(l.index);
    let flushed: Flushed | undefined;
    if (this.c.links.get(l.index)?.usable !== false && (deleted || !linkUsable(l))) {
      flushed = flushedWith(this.c.nexthops.list(), l.index);
      for (const o of flushed.gone) o.gone = true; // the flush plans their routes (link-flush.ts)
      for (const o of this.c.nexthops.list()) if (o.msg.oif === l.index) this.users.objectGone(o.id); // flushed, with every route on it
      for (const o of flushed.gone) if (o.members !== undefined) this.users.objectGone(o.id);
      this.c.nexthops.linkGone(l.index);
    }
    // A link that came back resets the objects' backoff with the routes' (SyncSender.retryFailedNow), once per link-up:
    // a refusal read after a reset is not backed off (NexthopObjects.ensureOnce), so a link going down must not reset.
    return flushed;
  }

  onAddr(a: AddrMessage, deleted: boolean): void {
    this.c.connected.update(a.index, a.local ?? a.address, a.prefixLen, deleted);
  }

  /**
   * A scan re-reads the objects: ones the kernel lost are made again before their routes go back.
   * `afterDump` runs once the dump is in, before it is judged. Returns whether objects of ours were
   * missing or changed, undefined when the dump failed.
   */
  async reread(afterDump?: () => void): Promise<boolean | undefined> {
    if (!this.c.nexthops.supported) return false;
    try {
      const since = this.c.nexthops.changeCount;
      const before = this.c.nexthops.stats.repaired;
      const dumped = await this.c.io().dumpNexthops();
      afterDump?.();
      this.c.nexthops.resync(dumped, false, since);
      this.view.reset(dumped);
      return this.c.nexthops.stats.repaired !== before;
    } catch (err) {
      this.c.limited.write('warn', 'nexthop-dump', `nexthop objects dump failed: ${(err as Error).message}`, { table: this.c.target.table });
      return undefined;
    }
  }

  /** Deletes objects nothing uses any more (unless a foreign route does); at most one run every 2 s unless forced. */
  async collect(force = false): Promise<void> {
    const nx = this.c.nexthops;
    if (this.collecting || nx.retiredCount === 0 || (!force && Date.now() - this.lastCollect < 2000)) return;
    this.collecting = true;
    this.lastCollect = Date.now();
    try {
      // A recorded use may have ended unseen (see nexthop-users.ts): a dump looks again, now and then.
      if (!force && Date.now() - this.users.lastSeed > RESEED_MS && nx.retiredIds().some((id) => this.users.uses(id))) this.users.distrust();
      await this.counted();
      const n = await nx.collect(this.c.io(), this.usedByOthers);
      if (n > 0 && debugOn(this.c.log)) this.c.log.debug(`deleted ${n} nexthop objects nothing uses`);
      if (nx.retiredCount > 0) this.c.limited.write('info', 'nexthop-foreign', `${nx.retiredCount} nexthop objects of ours are kept: routes of others use them`, { table: this.c.target.table });
    } catch (err) {
      this.c.limited.write('warn', 'nexthop-collect', `deleting unused nexthop objects failed: ${(err as Error).message}`, { table: this.c.target.table });
    } finally {
      this.collecting = false;
    }
  }

  /**
   * Shutdown's fast way: every object of ours that no foreign route uses is deleted, and with it
   * every route on it, one message an object (a quarter of the time their deletes take,
   * docs/benchmarks.md). The deletes run in `done` (off the JS thread); `gone` says at once which
   * routes (by id) go with them, as planned: one whose object a foreign route took meanwhile is
   * left to the withdrawal's final dump. Counting failed: nothing is deleted this way.
   */
  async dropAll(): Promise<{ gone: (id: number) => boolean; done: Promise<void> }> {
    const { nexthops, store, routes } = this.c;
    const none = { gone: () => false, done: Promise.resolve() };
    if (!nexthops.supported) return none;
    nexthops.retireAll();
    try {
      await this.counted();
    } catch (err) {
      this.c.limited.write('warn', 'nexthop-users', `counting foreign routes on our nexthop objects failed: ${(err as Error).message}; deleting routes one by one`, { table: this.c.target.table });
      return none;
    }
    const planned = new Set(nexthops.retiredIds().filter((id) => !this.usedByOthers(id)));
    const dropped = new Set<number>();
    const t0 = Date.now();
    const done = nexthops.collect(this.c.io(), this.usedByOthers, dropped).then(
      () => {
        if (dropped.size > 0) this.c.log.info(`deleted ${dropped.size} nexthop objects of ours, and the routes on them, in ${Date.now() - t0} ms`, { table: this.c.target.table });
      },
      (err: Error) => {
        this.c.limited.write('warn', 'nexthop-collect', `deleting our nexthop objects failed: ${err.message}; the final dump finds their routes`, { table: this.c.target.table });
      },
    );
    const gone = (id: number): boolean => {
      const h = store.have[id]!;
      if (h === 0 || store.haveCount(id) !== 1) return false;
      const nh = routes.get(h).nh;
      return nh !== undefined && planned.has(nh.id);
    };
    return { gone, done };
  }

  /** Our objects, with the nets on each (a walk of every route: for the CLI, not for scrapes). */
  status(): NexthopStatus[] {
    const { store, routes, nexthops, links } = this.c;
    const byRoute = new Map<number, number>();
    store.forEach((id) => {
      const w = store.want[id]!;
      if (w !== 0) byRoute.set(w, (byRoute.get(w) ?? 0) + 1);
    });
    const nets = new Map<number, number>();
    for (const [rid, n] of byRoute) {
      const nh = routes.get(rid).nh;
      if (nh === undefined) continue;
      nets.set(nh.id, (nets.get(nh.id) ?? 0) + n);
      for (const m of nh.members ?? []) nets.set(m.id, (nets.get(m.id) ?? 0) + n);
    }
    return nexthops.list().map((o) => {
      const m = o.msg;
      const s: NexthopStatus = { id: o.id, kind: m.group ? 'group' : m.gateway ? 'gateway' : 'device', routes: nets.get(o.id) ?? 0, refs: o.refs, state: o.state };
      if (m.gateway) s.gateway = m.gateway.toString();
      if (m.oif !== undefined) s.dev = links.nameOf(m.oif) ?? `if${m.oif}`;
      if (m.flags & C.RTNH_F_ONLINK) s.onlink = true;
      if (m.group) s.members = m.group.map((g) => ({ id: g.id, weight: g.weight }));
      if (o.error) s.error = o.error;
      if (o.fwd) s.failover = { ...(o.fwd.primarySource !== undefined ? { primary: o.fwd.primarySource } : {}), ...(o.fwd.backupSource !== undefined ? { backup: o.fwd.backupSource } : {}), switched: o.fwd.orphan, state: roleState(o.fwd) };
      return s;
    });
  }
}
