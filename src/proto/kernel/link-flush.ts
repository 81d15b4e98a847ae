/**
 * What a link going down or losing carrier took from the kernel, told from
 * our own books instead of a dump.
 *
 * The kernel deletes every nexthop object on such a device, takes them out
 * of the groups that hold them, deletes a group left with no member, and
 * deletes every route on the objects it deleted, before it sends the link
 * notification and without a route notification (IPv4). For routes of ours
 * on our objects that is all known here: the objects on the device (live in
 * our books), the groups whose members are all among them, and the nets
 * whose held route names one of those (the route store). So the sync marks
 * those routes lost and plans them again at once (one add each), with no
 * dump: at a million routes the dump costs about a second of the failover,
 * and the re-adds no longer wait for it.
 *
 * It is certain only when nothing of ours was in flight across the flush:
 * a route change or an object made or replaced whose answer is still out
 * may have reached the kernel before the flush or after it. Then, as when
 * a notification was lost, the whole-table scan settles it (the caller asks
 * for it). Routes not on our objects (a realm, a gateway no connected
 * prefix gives a device for) are left to the device scan, which reads only
 * those (device-scan.ts). A guess that is wrong the other way, a route
 * re-added that the kernel still held, is answered EEXIST and a scan
 * follows (sync-sender.ts).
 */
import type { Logger } from '../logger';
import type { KernelTarget } from './convert';
import type { KernelRoutes } from './kernel-routes';
import type { NexthopObjects } from './nexthop-objects';
import type { NhObject } from './nh-object';
import { grownTo } from '../../lib/net-list';
import { MANY, type RouteStore } from './route-store';
import type { SyncFailover } from './sync-failover';
import { SCAN_REASONS } from './sync-metrics';
import type { SyncSender } from './sync-sender';

/**
 * Our objects the kernel deleted with device `index` (hops on it, groups left empty: `gone`), and the
 * groups it took some members out of (`shrunk`: their routes stay, the group is made whole again once
 * it can be); computed before our books change.
 */
export function flushedWith(objects: Iterable<NhObject>, index: number): { gone: Set<NhObject>; shrunk: Set<NhObject> } {
  const gone = new Set<NhObject>();
  const shrunk = new Set<NhObject>();
  const groups: NhObject[] = [];
  for (const o of objects) {
    if (o.members !== undefined) {
      // A stale group is in the kernel too, with its old content (one whose replace failed for a member on a
      // link that went before: the kernel kept it, and the routes on it, with the members it had left).
      if (o.state === 'live' || o.stale) groups.push(o);
    } else if (o.state === 'live' && o.msg.oif === index) gone.add(o); // not live: not in the kernel, nothing of ours on it
  }
  for (const g of groups) {
    // The kernel deletes a group when the last of the members it holds goes: those of ours that are not
    // live are not in it (a link took them before, and they could not be made again yet).
    const held = g.members!.filter((m) => m.state === 'live');
    const out = held.filter((m) => gone.has(m)).length;
    if (out > 0 && out === held.length) gone.add(g);
    else if (out > 0) shrunk.add(g);
  }
  return { gone, shrunk };
}

/**
 * Every net of `store` holding a route on one of `flushed.gone`: that route is dropped from our view of
 * the kernel. Returns those nets, and those holding a route on a group in `flushed.shrunk` (planned
 * again: the group is made whole first), or 'uncertain' when one of them has a change in flight (its
 * answer may predate the flush or follow it: a scan must look).
 */
export function dropFlushed(store: RouteStore, routes: KernelRoutes, flushed: Flushed): Int32Array | 'uncertain' {
  if (flushed.gone.size + flushed.shrunk.size === 0) return NONE;
  // A handful of interned routes are held by a million nets: each is asked once, up front (0: untouched, 1: gone,
  // 2: shrunk); a store none of whose routes is on a flushed object (the backup routes, nearly always) is not walked.
  const verdict = new Uint8Array(routes.end);
  let any = false;
  routes.forEachId((rid, r) => {
    const nh = r.nh;
    const v = nh === undefined ? 0 : flushed.gone.has(nh) ? 1 : flushed.shrunk.has(nh) ? 2 : 0;
    verdict[rid] = v;
    if (v !== 0) any = true;
  });
  if (!any) return NONE;
  const on = (rid: number): number => verdict[rid]!;
  const dropGone = (id: number, rid: number): boolean => {
    if (on(rid) !== 1) return false;
    store.removeHave(id, routes.get(rid).priority);
    return true;
  };
  // Ids in a typed array (a million lost nets were a JS array grown by copies, and garbage right after).
  let lost = new Int32Array(1024);
  let n = 0;
  let uncertain = false;
  store.forEach((id) => {
    const h = store.have[id]!;
    if (uncertain || h === 0 || (h !== MANY && on(h) === 0)) return;
    // One route held (nearly always): no list.
    const hit = h === MANY ? store.haves(id).filter((rid) => on(rid) !== 0) : undefined;
    if (hit?.length === 0) return;
    if (store.inflight(id) > 0) {
      uncertain = true;
      return;
    }
    let gone = false;
    if (hit === undefined) gone = dropGone(id, h);
    else for (const rid of hit) gone = dropGone(id, rid) || gone;
    if (gone && store.want[id] !== 0 && store.state(id) === 'installed') {
      store.setState(id, 'pending'); // not in the kernel now: counted so until it is back
      store.track(id);
    }
    if (n === lost.length) lost = grownTo(lost, n * 2);
    lost[n++] = id;
  });
  return uncertain ? 'uncertain' : lost.subarray(0, n);
}

const NONE = new Int32Array(0);

/** The lost nets and those the kernel told us of ahead of the link (IPv6), in one list. */
function withToldAhead(dropped: Int32Array, toldAhead: readonly number[]): Int32Array {
  const all = new Int32Array(dropped.length + toldAhead.length);
  all.set(dropped);
  all.set(toldAhead, dropped.length);
  return all;
}

/** What flushedWith found. */
export interface Flushed {
  readonly gone: ReadonlySet<NhObject>;
  readonly shrunk: ReadonlySet<NhObject>;
}

/** What taking a flush needs of its sync. */
export interface LinkFlushContext {
  readonly primary: FlushedStore;
  /** failover: backup_routes: the backup routes' store (sync-backup-routes.ts). */
  readonly backup: FlushedStore | undefined;
  readonly nexthops: NexthopObjects;
  readonly failover: SyncFailover;
  readonly log: Logger;
  readonly target: KernelTarget;
  requestScan(reason: string, delayMs: number): void;
  /** Whether device `ifindex` can carry routes now (the link cache, which has the news). */
  usable(ifindex: number): boolean;
  /** Next-hop tracking is on: it moves every net off a dead link (queueLost parks them for it). */
  readonly tracking: boolean;
}

export interface FlushedStore {
  readonly store: RouteStore;
  readonly routes: KernelRoutes;
  readonly sender: SyncSender;
  /** Lost nets whose want is on a dead link, waiting for it to change or for the link (queueLost). */
  parked: number[];
}

/**
 * Whether our books can tell what device `index` took with it, asked before they change: nothing of
 * ours is out (its answer may predate the flush or follow it), and no forwarding object forwards to
 * its backup already while its primary is on the device (held by next-hop tracking, which may have
 * heard first and sent its replace across the flush: the kernel holds either content).
 */
export function flushKnowable(c: LinkFlushContext, index: number): boolean {
  if (!c.primary.sender.quiet || (c.backup !== undefined && !c.backup.sender.quiet) || !c.failover.quiet || c.nexthops.making) return false;
  let held = false;
  c.nexthops.forwarding.forEachKeyed((o) => {
    if (o.fwd!.degraded?.some((h) => h.obj.msg.oif === index)) held = true;
  });
  return !held;
}

/**
 * Device `index` went down or lost carrier, and the kernel deleted `flushed.gone` with it: the routes
 * of ours on those are marked lost and planned again now, in both stores (those on a group that lost
 * members too) (`knowable`: flushKnowable,
 * asked before the books changed), with `toldAhead`: the nets whose route the kernel told us it
 * deleted on its own before this link's notification (IPv6), not planned then (sync-notices.ts).
 * Otherwise, the whole-table scan settles it.
 */
export function takeFlush(c: LinkFlushContext, index: number, flushed: Flushed, knowable: boolean, toldAhead: readonly number[] = []): void {
  if (flushed.gone.size + flushed.shrunk.size + toldAhead.length === 0) return;
  const dropped = knowable ? dropFlushed(c.primary.store, c.primary.routes, flushed) : 'uncertain';
  const primary = dropped === 'uncertain' ? dropped : toldAhead.length === 0 ? dropped : withToldAhead(dropped, toldAhead);
  const backup = c.backup === undefined || primary === 'uncertain' ? NONE : dropFlushed(c.backup.store, c.backup.routes, flushed);
  if (primary === 'uncertain' || backup === 'uncertain') {
    c.requestScan(SCAN_REASONS.link, 100);
    if (primary !== 'uncertain') c.primary.sender.queueLost(primary); // the scan follows: no parking
    return;
  }
  // Where one store lost nothing and holds a route for as many nets as the other lost (the backup routes, when the
  // primary's link went), those nets keep their trie leaves in the kernel: the adds go in address order.
  const keeps = (other: FlushedStore | undefined, otherLost: Int32Array, lost: Int32Array): boolean => other !== undefined && otherLost.length === 0 && other.store.size >= lost.length;
  queueLost(c, c.primary, primary, keeps(c.backup, backup, primary));
  if (c.backup !== undefined) queueLost(c, c.backup, backup, keeps(c.primary, primary, backup));
  if (primary.length + backup.length > 0) c.log.info(`link ${index} went with ${flushed.gone.size} nexthop objects of ours (${flushed.shrunk.size} groups lost members): ${primary.length + backup.length} routes on them planned again`, { table: c.target.table });
}

/**
 * Queues the lost nets whose wanted route can go in now (its object on usable devices: one degraded
 * to its backup, a net whose want moved already) at once. With next-hop tracking the others are
 * parked: their want is about to change (the tracker moves them off the dead link, through the
 * table's journal, over the next seconds at a million nets), and planned now they would be refused
 * (ENETDOWN) and wait out a backoff. A parked net is planned when its want changes (the sync marks
 * it dirty then), or when a link comes back and its want can go in (linkBack); a periodic scan plans
 * it too. Without tracking they are planned now: refused, they fail and come back with their link.
 */
function queueLost(c: LinkFlushContext, s: FlushedStore, ids: ArrayLike<number>, leavesKept = false): void {
  const now = new Int32Array(ids.length);
  let n = 0;
  const parked: number[] = [];
  const verdict = new Map<number, boolean>();
  // A million nets on a held object want a handful of routes, mostly the one before: no Map probe for those.
  let lastW = -1;
  let lastOk = false;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!s.store.nets.live(id)) continue;
    const w = s.store.want[id]!;
    let ok: boolean | undefined = w === lastW ? lastOk : verdict.get(w);
    if (ok === undefined) {
      const nh = w === 0 ? undefined : s.routes.get(w).nh;
      ok = nh === undefined || (nh.members ?? [nh]).every((m) => m.msg.oif === undefined || c.usable(m.msg.oif));
      verdict.set(w, ok);
    }
    lastW = w;
    lastOk = ok;
    if (ok || !c.tracking) now[n++] = id;
    else parked.push(id);
  }
  s.sender.queueLost(now.subarray(0, n), leavesKept);
  s.parked = parked;
}

/** A link is usable again: parked nets whose want can go in now are planned (queueLost). */
export function linkBack(c: LinkFlushContext): void {
  for (const s of [c.primary, c.backup]) if (s !== undefined && s.parked.length > 0) queueLost(c, s, s.parked);
}
