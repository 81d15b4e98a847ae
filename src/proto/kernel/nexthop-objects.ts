/**
 * NexthopObjects: the kernel nexthop objects (Linux 5.3+) of one sync. A
 * route we want through next hops names one object (RTA_NH_ID) instead of
 * carrying them: one object per distinct next hop, and one group object
 * (with weights) per distinct ECMP set, interned by content. Which objects
 * a route's next hops are is route-hops.ts; here are the books, the ids and
 * the objects' life in the kernel.
 *
 * Ownership: an object is ours when its nh_protocol is our protocol number
 * and its id lies in our range (nh-ids.ts: its layout, and the allocator
 * that skips every id the kernel holds, from a dump at open and
 * notifications after).
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
import type { Family } from '../../lib/addr';
import { backoffDelay, type BackoffPolicy } from '../../lib/backoff';
import { NetlinkRequestError } from '../../netlink/errors';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import type { RouteMessage } from '../../netlink/route-codec';
import type { KernelTarget } from './convert';
import { ForwardingObjects, isForwardingId } from './forwarding-objects';
import { RouteHops, type ForwardingOf } from './route-hops';
import { NhIds } from './nh-ids';
import { keyOf, newObject, normalized, type NhObject } from './nh-object';
import type { RouteError } from './route-status';

export type NexthopMode = 'auto' | 'on' | 'off';
export type { Hop, NhObject } from './nh-object';
export type { ForwardingOf } from './route-hops';
export { ConnectedPrefixes, type ConnectedResolver } from './connected-prefixes';
export { idRange } from './nh-ids';
import type { ConnectedResolver } from './connected-prefixes';

export interface NexthopCounts {
  live: number;
  new: number;
  failed: number;
  retired: number;
}

/** The kernel's side of nexthop objects (KernelIo implements it). */
export interface NexthopIo {
  changeNexthop(cmd: 'add' | 'replace' | 'delete', m: NexthopMessage): Promise<void>;
}

const RETRY: BackoffPolicy = { baseMs: 1000, maxMs: 60_000, jitter: 0.2 };

export class NexthopObjects {
  /** Objects by content key (new, live, failed). */
  private readonly byKey = new Map<string, NhObject>();
  private readonly byId = new Map<number, NhObject>();
  /** Nothing uses them: to be deleted by collect(). */
  private retired: NhObject[] = [];
  /** Objects being made (ensure): their answer, for a second caller. */
  private readonly ensuring = new Map<NhObject, Promise<boolean>>();
  /** Objects a failover's replace is out for (switching): the answer a route on them waits for. */
  private readonly switching = new Map<NhObject, Promise<boolean>>();
  /** Our id range and its allocator; the ids the kernel holds that are not ours. */
  private readonly ids: NhIds;
  /** Forwarding objects (failover): groups keyed by (primary, backup), in the upper half of our range. */
  readonly forwarding: ForwardingObjects;
  /** A route's next hops as objects (route-hops.ts). */
  private readonly hops: RouteHops;
  /** Counts our changes of objects (made, replaced): a re-read's dump judges only those older than it (resync). */
  private changes = 0;
  /** An add found its id taken (EEXIST): the wanted routes must be converted again (takeCollided). */
  private collided = false;
  /** Backoff resets so far (resetBackoff): a change refused after one it was sent before is not backed off (ensureOnce). */
  private resets = 0;
  /** Routes go through objects (the option, and the kernel supports them). */
  enabled = false;
  /** The kernel has nexthop objects at all (a dump worked). */
  supported = false;
  readonly stats = { created: 0, deleted: 0, adopted: 0, failed: 0, keptForForeign: 0, repaired: 0 };

  constructor(
    private readonly target: KernelTarget,
    connected: ConnectedResolver,
  ) {
    this.ids = new NhIds(target, (id) => this.byId.has(id) || this.retired.some((r) => r.id === id));
    this.forwarding = new ForwardingObjects({
      lookup: (key) => this.byKey.get(key),
      register: (o) => {
        this.byKey.set(o.key, o);
        this.byId.set(o.id, o);
      },
      unkey: (o) => {
        if (this.byKey.get(o.key) === o) this.byKey.delete(o.key);
      },
      allocate: () => this.ids.allocate(true),
      contentOf: keyOf,
      release: (o) => this.release(o),
      protocol: target.protocol,
    });
    this.hops = new RouteHops({
      enabled: () => this.enabled,
      forwarding: this.forwarding,
      protocol: target.protocol,
      connected,
      lookup: (key) => this.byKey.get(key),
      intern: (m, members) => this.intern(m, members),
    });
  }

  /** Whether `id` is in our range (with our protocol, an object of ours). */
  inRange(id: number): boolean {
    return this.ids.inRange(id);
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
   * when the route is sent as it is (route-hops.ts).
   */
  forRoute(route: RouteMessage, fwd?: ForwardingOf): { route: RouteMessage; obj: NhObject } | undefined {
    return this.hops.forRoute(route, fwd);
  }

  /** The hop objects a route's next hops are, among those that exist (none made). */
  findHops(route: RouteMessage): NhObject[] {
    return this.hops.findHops(route);
  }

  // ---------------------------------------------------------------- the books

  ref(o: NhObject): void {
    o.refs++;
  }

  /** One user less; an object nobody uses is retired (and its members lose a user). */
  release(o: NhObject): void {
    if (o.state === 'retired' || --o.refs > 0) return;
    if (this.byKey.get(o.key) === o) this.byKey.delete(o.key);
    this.byId.delete(o.id);
    const wasInKernel = o.state === 'live' || o.stale;
    o.state = 'retired';
    if (wasInKernel) this.retired.push(o);
    for (const m of o.members ?? []) this.release(m);
    if (o.fwd !== undefined) this.forwarding.forget(o);
  }

  private intern(m: NexthopMessage, members: NhObject[] | undefined): NhObject {
    const key = keyOf(m);
    let o = this.byKey.get(key);
    if (o !== undefined) return o;
    const id = this.ids.allocate();
    o = newObject(id, key, { ...m, id }, members, 'new');
    this.byKey.set(key, o);
    this.byId.set(id, o);
    return o;
  }

  // ---------------------------------------------------------------- the kernel's objects

  /**
   * A dump of every object in the kernel (at open, and on each scan): ours are adopted (at open)
   * or checked (a scan: missing ones are made again, changed ones replaced; not those we made or
   * replaced since `since`, the change count when the dump began, which it may predate); others'
   * ids are kept out of the allocator.
   */
  resync(dumped: readonly NexthopMessage[], adopt: boolean, since = Infinity): void {
    this.ids.foreign.clear();
    const seen = new Map<number, NexthopMessage>();
    for (const m of dumped) {
      if (this.isOurs(m)) seen.set(m.id, m);
      else this.ids.foreign.add(m.id);
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
        if (members !== undefined && isForwardingId(m.id)) {
          // A forwarding object: what it stood for is not in the kernel; the first wanted route with its content claims it.
          const o = newObject(m.id, `adopted ${m.id}`, norm, members as NhObject[], 'live');
          this.byId.set(m.id, o);
          this.forwarding.adopt(o);
          this.stats.adopted++;
          continue;
        }
        if (this.byKey.has(key)) {
          // A duplicate of one adopted already: nothing will use it; it goes with the first collect.
          this.retired.push(newObject(m.id, key, norm, undefined, 'retired'));
          continue;
        }
        const o = newObject(m.id, key, norm, members as NhObject[] | undefined, 'live');
        this.byKey.set(key, o);
        this.byId.set(m.id, o);
        this.stats.adopted++;
      }
      return;
    }
    for (const o of this.byId.values()) {
      // Made or replaced by us after the dump began (a link back while a scan ran): the dump may predate it.
      if ((o.changedAt ?? -1) >= since) continue;
      const k = seen.get(o.id);
      if (k === undefined) {
        if (o.state === 'live') {
          Object.assign(o, { state: 'new', gone: true }); // flushed with its device, or deleted by someone: made again before its routes
          this.stats.repaired++;
        }
      } else if (keyOf(normalized(k, this.target.protocol)) !== keyOf(o.msg)) {
        o.stale = true;
        if (o.state === 'live') {
          o.state = 'new';
          this.stats.repaired++;
        }
      }
    }
    this.retired = this.retired.filter((r) => seen.has(r.id));
  }

  /** The change count now: a dump begun now judges the objects we change after it by nothing (resync's `since`). */
  get changeCount(): number {
    return this.changes;
  }

  /** We are changing `o` in the kernel (made, replaced): counted, for resync. */
  changing(o: NhObject): void {
    o.changedAt = this.changes++;
  }

  /** A notification: someone else's change of an object (ours are answered, and their echoes match). */
  onNotification(m: NexthopMessage, deleted: boolean): boolean {
    if (!this.isOurs(m)) {
      if (deleted) this.ids.foreign.delete(m.id);
      else this.ids.foreign.add(m.id);
      return false;
    }
    const o = this.byId.get(m.id);
    if (o === undefined) return false;
    if (deleted) {
      if (o.state !== 'live') return false;
      Object.assign(o, { state: 'new', gone: true });
      this.stats.repaired++;
      return true;
    }
    if (keyOf(normalized(m, this.target.protocol)) === keyOf(o.msg)) return false;
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

  /** Links came back: objects the kernel refused may go in now, and so may those whose refusal is still out (ensureOnce). */
  resetBackoff(): void {
    this.resets++;
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

  /** Whether an object is being made (its answer is still out). */
  get making(): boolean {
    return this.ensuring.size > 0;
  }

  /** Whether `o` is in the kernel, or may be made now (not failed with a retry still ahead). */
  usable(o: NhObject, now: number): boolean {
    if (this.switching.has(o)) return true;
    // A live group whose member is being made (a failover's backup hop) waits for it, like a new one.
    if (o.state === 'live') return (o.members ?? []).every((m) => this.usable(m, now));
    return o.state === 'new' || (o.state === 'failed' && o.retryAt <= now);
  }

  /**
   * Makes `o` (members first) if it is not in the kernel; true when it is afterwards. One at a time
   * per object: a second caller waits for the first's answer (a second add would find the id
   * taken, EEXIST, and give our own object up as someone else's).
   */
  ensure(o: NhObject, io: NexthopIo, now: number): Promise<boolean> {
    // A failover's replace decides what the kernel holds (an add or retry of the old content is moot).
    const running = this.switching.get(o) ?? this.ensuring.get(o);
    if (running !== undefined) return running;
    const p = this.ensureOnce(o, io, now).finally(() => this.ensuring.delete(o));
    this.ensuring.set(o, p);
    return p;
  }

  private async ensureOnce(o: NhObject, io: NexthopIo, now: number): Promise<boolean> {
    // A refusal read after a reset, of a change sent before it, may predate what the reset was for: not backed off (fail).
    const resets = this.resets;
    for (const m of o.members ?? []) if (!(await this.ensure(m, io, now))) {
      // A failover gave it other members meanwhile (it sent them itself, sync-failover.ts): not a failure.
      if (!(o.members?.includes(m) ?? false)) return false;
      this.fail(o, m.error ?? { errno: 0, errnoName: 'ENOENT', message: `member ${m.id} could not be made` }, now, resets !== this.resets);
      return false;
    }
    if (o.state === 'live') return true;
    if (o.state === 'retired') return false;
    if (o.state === 'failed' && o.retryAt > now) return false;
    const sent = o.msg;
    this.changing(o);
    try {
      await io.changeNexthop(o.stale ? 'replace' : 'add', sent);
    } catch (err) {
      const ne = err instanceof NetlinkRequestError ? err : undefined;
      if (ne?.errnoName === 'EEXIST' && !o.stale) {
        // Someone took the id since we last looked: it is not ours to overwrite. The object is given
        // up (takeCollided: the routes are converted again, onto a new object with a free id).
        this.ids.foreign.add(o.id);
        this.byKey.delete(o.key);
        this.byId.delete(o.id);
        o.state = 'retired';
        this.collided = true;
        return false;
      }
      this.fail(o, { errno: ne?.errno ?? 0, errnoName: ne?.errnoName ?? 'EIO', message: (err as Error).message, ...(ne?.extAck ? { extAck: ne.extAck } : {}) }, now, resets !== this.resets);
      return false;
    }
    if ((o.state as NhObject['state']) === 'retired') {
      // Nothing used it any more by the time the kernel had it: it goes like any retired object.
      if (!this.retired.includes(o)) this.retired.push(o);
      return false;
    }
    if (o.msg !== sent) {
      // A failover switched its content while the add was out: the kernel has the old one; replaced next.
      o.stale = true;
      return false;
    }
    this.madeLive(o);
    this.stats.created++;
    // A forwarding object's backup hops are made too (not awaited): a failover then switches to them with one message.
    for (const h of o.fwd?.backup ?? []) if (h.obj.state === 'new') void this.ensure(h.obj, io, now);
    return true;
  }

  /**
   * A failover's replace of `o` with its content now, sent on `io`: until it is answered, a route
   * that waits for `o` (ensure) waits for that answer, whatever state our books had `o` in (a
   * stale group failed for its dead member is in the kernel, routes and all). True when the kernel
   * took it; a refusal leaves `o` to be made again with its new content (no backoff: it is new).
   */
  switch(o: NhObject, io: NexthopIo): Promise<boolean> {
    this.changing(o);
    const sent = o.msg;
    const refused = (err: unknown): never => {
      if (o.state !== 'retired') Object.assign(o, { state: 'new', stale: true, retryAt: 0 });
      throw err;
    };
    const p = io.changeNexthop('replace', sent).then(() => o.state !== 'retired' && o.msg === sent && this.madeLive(o), refused);
    const answer = p.catch(() => false);
    this.switching.set(o, answer);
    void answer.then(() => this.switching.get(o) === answer && this.switching.delete(o));
    return p;
  }

  /** The kernel holds `o` as our books say. */
  private madeLive(o: NhObject): true {
    o.state = 'live';
    o.gone = false;
    o.stale = false;
    o.error = undefined;
    o.attempts = 0;
    return true;
  }

  /** Refused: a retry after the backoff; `beforeReset` (sent before the latest reset): recorded as reset, due now. */
  private fail(o: NhObject, error: RouteError, now: number, beforeReset: boolean): void {
    if (o.state === 'retired') return;
    o.state = 'failed';
    o.error = error;
    o.attempts = beforeReset ? 0 : o.attempts + 1;
    o.retryAt = beforeReset ? 0 : now + backoffDelay(RETRY, o.attempts);
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

export type { Family };
