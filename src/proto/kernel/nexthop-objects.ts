/**
 * NexthopObjects: the kernel nexthop objects (Linux 5.3+) of one sync. A
 * route we want through next hops names one object (RTA_NH_ID) instead of
 * carrying them: one object per distinct next hop, and one group object
 * (with weights) per distinct ECMP set, interned by content.
 *
 * Ownership: an object is ours when its nh_protocol is our protocol number
 * and its id lies in our range (idRange()): the top byte is the protocol,
 * then a bit for the family of the routes, then 7 bits of the table id, then
 * 16 bits of our own. Ids are handed out by an allocator that skips every id
 * the kernel holds (a dump at open, notifications after).
 *
 * Lifetime: an object is referenced by the KernelRoutes that name it (wanted
 * ones, and routes of ours the kernel holds on it) and a group by its
 * members' users through the group. It is created before the first route
 * that uses it goes out (the sender awaits ensure()), and once nothing
 * references it (the last route on it replaced or deleted, and answered) it
 * is retired: a later want of the same content makes a new object, and the
 * retired one is deleted by collect(), unless a foreign route uses it (then
 * it stays, and is looked at again on the next collect).
 *
 * On restart the objects are adopted from a dump by content (adopt()), so
 * the wanted routes come out identical to what the kernel holds and nothing
 * changes. A scan re-reads the objects (resync()): the kernel deletes objects
 * on a device that goes down or loses carrier (and the routes on them)
 * without telling anyone; someone may delete or replace one of ours. Missing
 * ones are made again before their routes are re-added; changed ones are
 * replaced back.
 */
import { Prefix, type Addr, type Family } from '../../lib/addr';
import { backoffDelay, type BackoffPolicy } from '../../lib/backoff';
import * as C from '../../netlink/constants';
import { NetlinkRequestError } from '../../netlink/errors';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import type { RouteMessage } from '../../netlink/route-codec';
import type { KernelTarget } from './convert';
import type { RouteError } from './route-status';

export type NexthopMode = 'auto' | 'on' | 'off';

export interface NexthopCounts {
  live: number;
  new: number;
  failed: number;
  retired: number;
}

export interface NhObject {
  readonly id: number;
  readonly key: string;
  readonly msg: NexthopMessage;
  readonly members: readonly NhObject[] | undefined;
  /** KernelRoutes (and groups) naming it. */
  refs: number;
  /** new: to be made; live: the kernel holds it as we want; failed: the kernel refused it (retry at retryAt); retired: nothing uses it. */
  state: 'new' | 'live' | 'failed' | 'retired';
  /** The kernel holds an object with our id but other content: replace, not add. */
  stale: boolean;
  error: RouteError | undefined;
  attempts: number;
  retryAt: number;
}

/** The kernel's side of nexthop objects (KernelIo implements it). */
export interface NexthopIo {
  changeNexthop(cmd: 'add' | 'replace' | 'delete', m: NexthopMessage): Promise<void>;
}

/** Devices of connected prefixes, to give a gateway sent without a device the one the kernel would pick. */
export interface ConnectedResolver {
  deviceFor(gateway: Addr): number | undefined;
}

/** First and last id of our range (see the module comment). */
export function idRange(target: Pick<KernelTarget, 'protocol' | 'family' | 'table'>): { first: number; last: number } {
  const base = ((target.protocol << 24) | (target.family === 6 ? 1 << 23 : 0) | ((target.table & 0x7f) << 16)) >>> 0;
  return { first: base + 1, last: base + 0xffff };
}

const RETRY: BackoffPolicy = { baseMs: 1000, maxMs: 60_000, jitter: 0.2 };

export class NexthopObjects {
  /** Objects by content key (new, live, failed). */
  private readonly byKey = new Map<string, NhObject>();
  private readonly byId = new Map<number, NhObject>();
  /** Nothing uses them: to be deleted by collect(). */
  private retired: NhObject[] = [];
  /** Ids the kernel holds that are not ours. */
  private readonly foreignIds = new Set<number>();
  private readonly first: number;
  private readonly last: number;
  private cursor: number;
  /** An add found its id taken (EEXIST): the wanted routes must be converted again (takeCollided). */
  private collided = false;
  /** Routes go through objects (the option, and the kernel supports them). */
  enabled = false;
  /** The kernel has nexthop objects at all (a dump worked). */
  supported = false;
  readonly stats = { created: 0, deleted: 0, adopted: 0, failed: 0, keptForForeign: 0, repaired: 0 };

  constructor(
    private readonly target: KernelTarget,
    private readonly connected: ConnectedResolver,
  ) {
    const r = idRange(target);
    this.first = r.first;
    this.last = r.last;
    this.cursor = r.first;
  }

  /** Whether `id` is in our range (with our protocol, an object of ours). */
  inRange(id: number): boolean {
    return id >= this.first && id <= this.last;
  }

  isOurs(m: NexthopMessage): boolean {
    return m.protocol === this.target.protocol && this.inRange(m.id) && !m.fdb;
  }

  get(id: number): NhObject | undefined {
    return this.byId.get(id);
  }

  /** Objects known (live, new, failed), for show and metrics. */
  list(): NhObject[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  get retiredCount(): number {
    return this.retired.length;
  }

  /** Ids of the retired objects still in the kernel. */
  retiredIds(): number[] {
    return this.retired.map((o) => o.id);
  }

  /** Objects of ours by state (retired: nothing uses them; still in the kernel, being deleted or kept for a foreign route). */
  counts(): NexthopCounts {
    const c: NexthopCounts = { live: 0, new: 0, failed: 0, retired: this.retired.length };
    for (const o of this.byId.values()) if (o.state !== 'retired') c[o.state]++;
    return c;
  }

  // ---------------------------------------------------------------- routes onto objects

  /**
   * The route through an object, and the object (not yet referenced: the caller refs it); undefined
   * when the route is sent as it is: not unicast, a realm (the kernel drops RTA_FLOW on routes with
   * an object), a per-hop realm, or a gateway no connected prefix gives a device for.
   */
  forRoute(route: RouteMessage): { route: RouteMessage; obj: NhObject } | undefined {
    if (!this.enabled || route.type !== C.RTN_UNICAST || route.flow !== undefined) return undefined;
    const hops = route.multipath ?? [{ gateway: route.gateway, via: route.via, oif: route.oif ?? 0, flags: route.flags, weight: 1, flow: undefined }];
    const singles: { obj: NhObject; weight: number }[] = [];
    for (const h of hops) {
      if (h.flow !== undefined) return undefined;
      const gw = h.gateway ?? h.via;
      let oif = h.oif;
      if (oif === 0 && gw !== undefined) oif = this.connected.deviceFor(gw) ?? 0;
      if (oif === 0) return undefined;
      const m: NexthopMessage = { id: 0, family: gw?.family ?? route.family, protocol: this.target.protocol, scope: 0, flags: h.flags & C.RTNH_F_ONLINK, oif };
      if (gw !== undefined) m.gateway = gw;
      singles.push({ obj: this.intern(m, undefined), weight: hops.length === 1 ? 1 : h.weight });
    }
    let obj: NhObject;
    if (singles.length === 1) obj = singles[0]!.obj;
    else {
      singles.sort((a, b) => a.obj.id - b.obj.id);
      const m: NexthopMessage = { id: 0, family: undefined, protocol: this.target.protocol, scope: 0, flags: 0, group: singles.map((s) => ({ id: s.obj.id, weight: s.weight })) };
      obj = this.intern(m, singles.map((s) => s.obj));
    }
    const out: RouteMessage = { ...route, flags: route.flags & ~C.RTNH_F_ONLINK, nhId: obj.id };
    delete out.gateway;
    delete out.via;
    delete out.oif;
    delete out.multipath;
    return { route: out, obj };
  }

  ref(o: NhObject): void {
    o.refs++;
  }

  /** One user less; an object nobody uses is retired (and its members lose a user). */
  release(o: NhObject): void {
    if (o.state === 'retired' || --o.refs > 0) return;
    this.byKey.delete(o.key);
    this.byId.delete(o.id);
    const wasInKernel = o.state === 'live' || o.stale;
    o.state = 'retired';
    if (wasInKernel) this.retired.push(o);
    for (const m of o.members ?? []) this.release(m);
  }

  private intern(m: NexthopMessage, members: NhObject[] | undefined): NhObject {
    const key = keyOf(m);
    let o = this.byKey.get(key);
    if (o !== undefined) return o;
    const id = this.allocate();
    o = { id, key, msg: { ...m, id }, members, refs: 0, state: 'new', stale: false, error: undefined, attempts: 0, retryAt: 0 };
    for (const x of members ?? []) x.refs++;
    this.byKey.set(key, o);
    this.byId.set(id, o);
    return o;
  }

  /** The next id of our range that nobody holds (ours, foreign, or retired and not yet deleted). */
  private allocate(): number {
    const span = this.last - this.first + 1;
    for (let n = 0; n < span; n++) {
      const id = this.cursor;
      this.cursor = id === this.last ? this.first : id + 1;
      if (!this.byId.has(id) && !this.foreignIds.has(id) && !this.retired.some((r) => r.id === id)) return id;
    }
    throw new Error(`no free nexthop object id in ${this.first}..${this.last}`);
  }

  // ---------------------------------------------------------------- the kernel's objects

  /**
   * A dump of every object in the kernel (at open, and on each scan): ours are adopted (at open)
   * or checked (a scan: missing ones are made again, changed ones replaced); others' ids are kept
   * out of the allocator.
   */
  resync(dumped: readonly NexthopMessage[], adopt: boolean): void {
    this.foreignIds.clear();
    const seen = new Map<number, NexthopMessage>();
    for (const m of dumped) {
      if (this.isOurs(m)) seen.set(m.id, m);
      else this.foreignIds.add(m.id);
    }
    if (adopt) {
      // Members first: a group's key is made of its members' ids.
      const order = [...seen.values()].sort((a, b) => (a.group ? 1 : 0) - (b.group ? 1 : 0));
      for (const m of order) {
        if (this.byId.has(m.id)) continue;
        const members = m.group?.map((g) => this.byId.get(g.id));
        if (members?.some((x) => x === undefined)) continue; // a group over objects not ours: left alone
        const norm = normalized(m, this.target.protocol);
        const key = keyOf(norm);
        if (this.byKey.has(key)) {
          // A duplicate of one adopted already: nothing will use it; it goes with the first collect.
          this.retired.push({ id: m.id, key, msg: norm, members: undefined, refs: 0, state: 'retired', stale: false, error: undefined, attempts: 0, retryAt: 0 });
          continue;
        }
        const o: NhObject = { id: m.id, key, msg: norm, members: members as NhObject[] | undefined, refs: 0, state: 'live', stale: false, error: undefined, attempts: 0, retryAt: 0 };
        for (const x of o.members ?? []) x.refs++;
        this.byKey.set(key, o);
        this.byId.set(m.id, o);
        this.stats.adopted++;
      }
      return;
    }
    for (const o of this.byId.values()) {
      const k = seen.get(o.id);
      if (k === undefined) {
        if (o.state === 'live') {
          o.state = 'new'; // flushed with its device, or deleted by someone: made again before its routes
          this.stats.repaired++;
        }
      } else if (keyOf(normalized(k, this.target.protocol)) !== o.key) {
        o.stale = true;
        if (o.state === 'live') {
          o.state = 'new';
          this.stats.repaired++;
        }
      }
    }
    this.retired = this.retired.filter((r) => seen.has(r.id));
  }

  /** A notification: someone else's change of an object (ours are answered, and their echoes match). */
  onNotification(m: NexthopMessage, deleted: boolean): boolean {
    if (!this.isOurs(m)) {
      if (deleted) this.foreignIds.delete(m.id);
      else this.foreignIds.add(m.id);
      return false;
    }
    const o = this.byId.get(m.id);
    if (o === undefined) return false;
    if (deleted) {
      if (o.state !== 'live') return false;
      o.state = 'new';
      this.stats.repaired++;
      return true;
    }
    if (keyOf(normalized(m, this.target.protocol)) === o.key) return false;
    o.stale = true;
    o.state = 'new';
    this.stats.repaired++;
    return true;
  }

  /** Adopted objects no route took: retired now that the first sync is over. */
  sweepUnused(): void {
    for (const o of [...this.byId.values()]) if (o.refs === 0) {
      o.refs = 1;
      this.release(o);
    }
  }

  /**
   * A link went down or lost carrier: the kernel has deleted the objects on it (and the routes on
   * them), and taken them out of groups, without a word. They are made again before their routes
   * go back; a group that held one is made again over whatever is left of it (replace).
   */
  linkGone(index: number): void {
    for (const o of this.byId.values()) if (o.members === undefined && o.msg.oif === index && o.state === 'live') o.state = 'new';
    for (const o of this.byId.values()) {
      if (o.members === undefined || !o.members.some((m) => m.state !== 'live')) continue;
      o.stale = true;
      if (o.state === 'live') o.state = 'new';
    }
  }

  /** Links came back: objects the kernel refused may go in now. */
  resetBackoff(): void {
    for (const o of this.byId.values()) if (o.state === 'failed') {
      o.retryAt = 0;
      o.attempts = 0;
    }
  }

  /** Whether an object was given up because someone took its id; asking clears it. */
  takeCollided(): boolean {
    const c = this.collided;
    this.collided = false;
    return c;
  }

  /** Whether `o` is in the kernel, or may be made now (not failed with a retry still ahead). */
  usable(o: NhObject, now: number): boolean {
    if (o.state === 'live') return (o.members ?? []).every((m) => m.state === 'live');
    return o.state === 'new' || (o.state === 'failed' && o.retryAt <= now);
  }

  /** Makes `o` (members first) if it is not in the kernel; true when it is afterwards. */
  async ensure(o: NhObject, io: NexthopIo, now: number): Promise<boolean> {
    for (const m of o.members ?? []) if (!(await this.ensure(m, io, now))) {
      this.fail(o, m.error ?? { errno: 0, errnoName: 'ENOENT', message: `member ${m.id} could not be made` }, now);
      return false;
    }
    if (o.state === 'live') return true;
    if (o.state === 'retired') return false;
    if (o.state === 'failed' && o.retryAt > now) return false;
    try {
      await io.changeNexthop(o.stale ? 'replace' : 'add', o.msg);
    } catch (err) {
      const ne = err instanceof NetlinkRequestError ? err : undefined;
      if (ne?.errnoName === 'EEXIST' && !o.stale) {
        // Someone took the id since we last looked: it is not ours to overwrite. The object is given
        // up (takeCollided: the routes are converted again, onto a new object with a free id).
        this.foreignIds.add(o.id);
        this.byKey.delete(o.key);
        this.byId.delete(o.id);
        o.state = 'retired';
        this.collided = true;
        return false;
      }
      this.fail(o, { errno: ne?.errno ?? 0, errnoName: ne?.errnoName ?? 'EIO', message: (err as Error).message, ...(ne?.extAck ? { extAck: ne.extAck } : {}) }, now);
      return false;
    }
    if ((o.state as NhObject['state']) === 'retired') return false;
    o.state = 'live';
    o.stale = false;
    o.error = undefined;
    o.attempts = 0;
    this.stats.created++;
    return true;
  }

  private fail(o: NhObject, error: RouteError, now: number): void {
    if (o.state === 'retired') return;
    o.state = 'failed';
    o.error = error;
    o.attempts++;
    o.retryAt = now + backoffDelay(RETRY, o.attempts);
    this.stats.failed++;
  }

  /**
   * Deletes retired objects no foreign route uses (`usedByOthers`, asked right before each delete;
   * a group before its members); those a foreign route uses stay in the kernel and are looked at
   * again next time. Returns how many went.
   */
  async collect(io: NexthopIo, usedByOthers: (id: number) => boolean, deleted?: Set<number>): Promise<number> {
    if (this.retired.length === 0) return 0;
    const batch = this.retired;
    this.retired = [];
    let n = 0;
    // The members of a group kept for a foreign route stay too: deleting one takes it out of that
    // group (the last one, the group and the foreign route with it). Groups come before members.
    const members = new Set<number>();
    for (const o of batch) {
      if (usedByOthers(o.id) || members.has(o.id)) {
        this.retired.push(o);
        this.stats.keptForForeign++;
        for (const m of o.members ?? []) members.add(m.id);
        continue;
      }
      try {
        await io.changeNexthop('delete', o.msg);
      } catch (err) {
        const name = err instanceof NetlinkRequestError ? err.errnoName : '';
        if (name !== 'ENOENT' && name !== 'ESRCH') {
          this.retired.push(o);
          continue;
        }
      }
      n++;
      this.stats.deleted++;
      deleted?.add(o.id);
    }
    return n;
  }

  /** Every object of ours leaves with the routes (shutdown, after the routes are gone): all are retired. */
  retireAll(): void {
    // Groups first: a group deleted before its members is one change, not one per member taken out of it.
    for (const o of [...this.byId.values()].sort((a, b) => (b.members ? 1 : 0) - (a.members ? 1 : 0))) {
      o.refs = 1;
      this.release(o);
    }
  }
}

/** What makes two objects the same: family, gateway, device, onlink; or a group's members and weights. */
function keyOf(m: NexthopMessage): string {
  if (m.group !== undefined) return `g ${m.group.map((g) => `${g.id}*${g.weight}`).join(' ')}`;
  if (m.blackhole) return `b ${m.family ?? 0}`;
  return `${m.family ?? 0} ${m.gateway?.toString() ?? '-'} ${m.oif ?? 0} ${m.flags & C.RTNH_F_ONLINK}`;
}

/** An object as we would send it (the kernel reports scope and state flags of its own). */
function normalized(m: NexthopMessage, protocol: number): NexthopMessage {
  const out: NexthopMessage = { id: m.id, family: m.family, protocol, scope: 0, flags: m.flags & C.RTNH_F_ONLINK };
  if (m.group !== undefined) out.group = [...m.group].sort((a, b) => a.id - b.id);
  if (m.blackhole) out.blackhole = true;
  if (m.oif !== undefined) out.oif = m.oif;
  if (m.gateway !== undefined) out.gateway = m.gateway;
  return out;
}

/** Connected prefixes per device from address messages (both families), for ConnectedResolver. */
export class ConnectedPrefixes implements ConnectedResolver {
  private readonly byIndex = new Map<number, Prefix[]>();

  update(index: number, local: Addr | undefined, prefixLen: number, deleted: boolean): void {
    if (local === undefined) return;
    const p = Prefix.of(local, prefixLen);
    const list = (this.byIndex.get(index) ?? []).filter((x) => !x.equals(p));
    if (!deleted) list.push(p);
    if (list.length > 0) this.byIndex.set(index, list);
    else this.byIndex.delete(index);
  }

  forget(index: number): void {
    this.byIndex.delete(index);
  }

  /** The device whose connected prefix holds `gateway` (the longest wins; none: undefined). */
  deviceFor(gateway: Addr): number | undefined {
    let best: number | undefined;
    let bestLen = -1;
    for (const [index, list] of this.byIndex) {
      for (const p of list) if (p.family === gateway.family && p.len > bestLen && p.contains(gateway)) {
        best = index;
        bestLen = p.len;
      }
    }
    return best;
  }
}

export type { Family };
