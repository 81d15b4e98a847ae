/**
 * KernelRoutes: the kernel routes of one sync, interned, each with a small
 * integer id. A net's state (route-store.ts) names what it wants and what
 * the kernel holds by these ids, so a million nets through one gateway are
 * one KernelRoute, not a million objects.
 *
 * Two kinds share the id space:
 *  - wanted: converted from a table route's attributes, the export filter's
 *    settings and its source (toKernelRoute), interned by those three, or a
 *    conversion error (an unknown device) that every net with them shares.
 *    The attributes are taken as the kernel sees them (BGP attributes left
 *    out: a full table has a set per path, its kernel routes a handful), and
 *    settings by content (a filter merging two rules' settings makes a new
 *    object per route);
 *  - seen: a route of ours as the kernel reported it (a dump's shared
 *    shapes, a notification), interned by the decoded object.
 * Whether a seen route is a wanted one as installed (sameKernelRoute, the
 * canonical comparison) is asked once per pair and remembered.
 *
 * Ids are reference counted by their users (route-store.ts, batches in
 * flight): one no user holds is forgotten and its id reused. The route's
 * encoded bytes (RouteTemplate) are made on its first send and kept with it.
 * With nexthop objects on (nexthop-objects.ts), a wanted route's next hops
 * become the id of a shared kernel object (RTA_NH_ID): the KernelRoute holds
 * a reference on it, as does a seen route on an object of ours, so an object
 * lives exactly as long as some route we want or hold names it.
 */
import { Prefix } from '../../lib/addr';
import type { RouteMessage } from '../../netlink/route-codec';
import { RouteTemplate } from '../../netlink/route-template';
import type { RouteAttrs } from '../../route';
import type { KernelAttrs } from '../kernel-attrs';
import { ConversionError, kernelDelete, toKernelRoute, type KernelTarget, type LinkResolver } from './convert';
import { NexthopObjects, type ForwardingOf, type NhObject } from './nexthop-objects';
import { effectivePriority, sameKernelRoute } from './normalize';
import type { RouteError } from './route-status';

/** What a wanted route was made from. */
export interface WantedKey {
  readonly attrs: RouteAttrs;
  readonly set: KernelAttrs | undefined;
  readonly source: string | undefined;
  /** With failover on: the net's next-best route (its forwarding object is keyed by both; forwarding-objects.ts). */
  readonly backup?: WantedBackup | undefined;
  /** With failover on and next-hop tracking: a route ranked above the best that the tracker holds unusable (the net stays on the object held for it). */
  readonly held?: WantedBackup | undefined;
}

/** A net's next-best route as its wanted route is keyed by. */
export interface WantedBackup {
  readonly attrs: RouteAttrs;
  readonly source: string | undefined;
}

export class KernelRoute {
  /** Users holding the id (nets wanting or holding it, changes in flight). */
  refs = 0;
  private tpl: RouteTemplate | undefined = undefined;
  /** For a wanted route: whether a seen route (by id) is this one as installed. */
  readonly sameAs = new Map<number, boolean>();
  /** The routes whose sameAs names this one (told when it goes; stale ids are harmless). */
  readonly comparedBy: number[] = [];

  constructor(
    readonly id: number,
    /** The route; undefined when it cannot be expressed (error). */
    readonly route: RouteMessage | undefined,
    /** The kernel's metric for it (identity with net, table and tos). */
    readonly priority: number,
    /** Set for wanted routes while they are interned (reconvert() retires one by clearing it). */
    public key: WantedKey | undefined,
    /** Why a wanted route cannot be sent now (an unknown device). */
    readonly error: RouteError | undefined = undefined,
    /** The nexthop object it names (RTA_NH_ID), when it is one of ours. */
    readonly nh: NhObject | undefined = undefined,
  ) {}

  /** The encoded bytes, made on first use. */
  get template(): RouteTemplate {
    return (this.tpl ??= new RouteTemplate(this.route!));
  }
}

/** A wanted route per (attrs, set, source), a seen one per decoded object; ids from 1 (0: none). */
export class KernelRoutes {
  private readonly list: (KernelRoute | undefined)[] = [undefined];
  private readonly freeIds: number[] = [];
  private readonly byAttrs = new Map<RouteAttrs, KernelRoute[]>();
  private readonly bySeen = new Map<RouteMessage, KernelRoute>();
  private readonly deletes = new Map<number, RouteTemplate>();
  /** The family's default route: toKernelRoute needs a net; what it writes into dst is never used. */
  private readonly anyNet: Prefix;

  constructor(
    readonly target: KernelTarget,
    private readonly links: LinkResolver,
    readonly nexthops: NexthopObjects = new NexthopObjects(target, { deviceFor: () => undefined }),
    /** Routes may go on forwarding objects (failover); false for backup routes (sync-backup-routes.ts). */
    private readonly forwarding = true,
  ) {
    this.anyNet = new Prefix(target.family, 0, 0);
  }

  get(id: number): KernelRoute {
    return this.list[id]!;
  }

  /** One past the highest id in use: ids are below it. */
  get end(): number {
    return this.list.length;
  }

  /** Every route known, by id. */
  forEachId(fn: (id: number, r: KernelRoute) => void): void {
    for (let id = 1; id < this.list.length; id++) {
      const r = this.list[id];
      if (r !== undefined) fn(id, r);
    }
  }

  /** Routes known (for tests: a sync that forgets routes keeps this small). */
  get size(): number {
    return this.list.length - 1 - this.freeIds.length;
  }

  /**
   * The id of the wanted route for these attributes (and, with failover, the net's next-best route),
   * made (converted) if new; `hint`: the object a route of the net is on now. The caller refs it.
   */
  wanted(attrs: RouteAttrs, set: KernelAttrs | undefined, source: string | undefined, backup?: WantedBackup, hint?: number, held?: WantedBackup): number {
    if (attrs.bgp !== undefined) attrs = kernelView(attrs);
    if (backup !== undefined && backup.attrs.bgp !== undefined) backup = { attrs: kernelView(backup.attrs), source: backup.source };
    if (held !== undefined && held.attrs.bgp !== undefined) held = { attrs: kernelView(held.attrs), source: held.source };
    const same = this.byAttrs.get(attrs);
    if (same !== undefined) for (const r of same) if (r.key!.source === source && sameSettings(r.key!.set, set) && sameBackup(r.key!.backup, backup) && sameBackup(r.key!.held, held)) return r.id;
    const r = this.convert({ attrs, set, source, ...(backup !== undefined ? { backup } : {}), ...(held !== undefined ? { held } : {}) }, hint);
    if (same !== undefined) same.push(r);
    else this.byAttrs.set(attrs, [r]);
    return r.id;
  }

  /** The id of a route of ours the kernel reported (shared decoded objects share an id). The caller refs it. */
  seen(route: RouteMessage): number {
    let r = this.bySeen.get(route);
    if (r === undefined) {
      const nh = route.nhId === undefined ? undefined : this.nexthops.get(route.nhId);
      if (nh !== undefined) this.nexthops.ref(nh);
      r = this.make(route, effectivePriority(route), undefined, undefined, nh);
      this.bySeen.set(route, r);
    }
    return r.id;
  }

  ref(id: number): void {
    if (id !== 0) this.list[id]!.refs++;
  }

  unref(id: number): void {
    if (id === 0) return;
    const r = this.list[id]!;
    if (--r.refs > 0) return;
    this.list[id] = undefined;
    this.freeIds.push(id);
    if (r.key !== undefined) {
      const same = this.byAttrs.get(r.key.attrs);
      const rest = same?.filter((x) => x !== r) ?? [];
      if (rest.length > 0) this.byAttrs.set(r.key.attrs, rest);
      else this.byAttrs.delete(r.key.attrs);
    } else if (r.route !== undefined && this.bySeen.get(r.route) === r) this.bySeen.delete(r.route);
    for (const w of r.comparedBy) this.list[w]?.sameAs.delete(id);
    if (r.nh !== undefined) this.nexthops.release(r.nh);
  }

  /** Whether the kernel's route `have` is the wanted route `want` as installed (both ids; the answer is kept). */
  same(want: number, have: number): boolean {
    if (want === have) return true;
    const w = this.list[want]!;
    let s = w.sameAs.get(have);
    if (s === undefined) {
      const h = this.list[have]!;
      s = w.route !== undefined && h.route !== undefined && w.priority === h.priority && sameKernelRoute(w.route, h.route);
      w.sameAs.set(have, s);
      h.comparedBy.push(want);
    }
    return s;
  }

  /** Whether `route` (a notification, not interned) is the wanted route `want` as installed. */
  matches(want: number, route: RouteMessage): boolean {
    const w = this.list[want]!;
    return w.route !== undefined && w.priority === effectivePriority(route) && sameKernelRoute(w.route, route);
  }

  /** The bytes of a delete of our route at a metric (by net, table, protocol and metric: any next hop). */
  deleteTemplate(priority: number): RouteTemplate {
    let t = this.deletes.get(priority);
    if (t === undefined) {
      t = new RouteTemplate(kernelDelete(this.anyNet, this.target, priority));
      this.deletes.set(priority, t);
    }
    return t;
  }

  /**
   * Links changed (or, with `all`, nexthop objects were turned on or off): wanted routes naming a device are converted again. Each one that comes out
   * different is replaced by a new wanted route (changes in flight keep the old one, so an
   * answer still says what was sent); returns old id -> new id for the nets to move over.
   */
  reconvert(all = false): Map<number, number> {
    const moved = new Map<number, number>();
    for (const [attrs, list] of this.byAttrs) {
      // A gateway without a device is given one from the connected prefixes when it goes through an object.
      if (!all && !attrs.nexthops?.hops.some((h) => h.ifname !== undefined || (this.nexthops.enabled && h.ifindex === undefined))) continue;
      const next: KernelRoute[] = [];
      for (const old of list) {
        const r = this.convert(old.key!);
        const unchanged = r.error?.message === old.error?.message && (r.route === undefined ? old.route === undefined : old.route !== undefined && sameKernelRoute(r.route, old.route) && sameKernelRoute(old.route, r.route));
        if (unchanged) {
          this.list[r.id] = undefined;
          this.freeIds.push(r.id);
          if (r.nh !== undefined) this.nexthops.release(r.nh);
          next.push(old);
          continue;
        }
        next.push(r);
        moved.set(old.id, r.id);
      }
      this.byAttrs.set(attrs, next);
    }
    // The old ones are no longer interned: they go when their last user lets go.
    for (const oldId of moved.keys()) this.list[oldId]!.key = undefined;
    return moved;
  }

  /**
   * A failover switched `objs` to their backup: the wanted routes naming them are no longer interned, so
   * a net that wants their key again (the source came back) gets a new object with its own next hops.
   * One pass over the wanted routes for all of them.
   */
  forgetObjects(objs: ReadonlySet<NhObject>): void {
    const on = (r: KernelRoute): boolean => r.nh !== undefined && objs.has(r.nh);
    for (const [attrs, list] of this.byAttrs) {
      if (!list.some(on)) continue;
      for (const r of list) if (on(r)) r.key = undefined;
      const rest = list.filter((r) => !on(r));
      if (rest.length > 0) this.byAttrs.set(attrs, rest);
      else this.byAttrs.delete(attrs);
    }
  }

  /** The hop objects (those that exist) a route with these attributes goes through: for failover, a next-hop set gone bad. */
  hopObjectsOf(attrs: RouteAttrs): NhObject[] {
    try {
      return this.nexthops.findHops(toKernelRoute(this.anyNet, attrs, undefined, this.target, this.links));
    } catch {
      return [];
    }
  }

  private convert(key: WantedKey, hint?: number): KernelRoute {
    try {
      const route = toKernelRoute(this.anyNet, key.attrs, key.set, this.target, this.links);
      const viaObject = this.nexthops.forRoute(route, this.forwarding && this.nexthops.forwarding.enabled ? this.forwardingOf(key, hint) : undefined);
      if (viaObject === undefined) return this.make(route, effectivePriority(route), key);
      this.nexthops.ref(viaObject.obj);
      return this.make(viaObject.route, effectivePriority(route), key, undefined, viaObject.obj);
    } catch (err) {
      const errnoName = err instanceof ConversionError ? err.errnoName : 'EINVAL';
      return this.make(undefined, 0, key, { errno: 0, errnoName, message: (err as Error).message });
    }
  }

  /** What picks the forwarding object: the primary's source, the backup converted (one that cannot be is no backup). */
  private forwardingOf(key: WantedKey, hint: number | undefined): ForwardingOf {
    const backup = this.other(key.backup);
    const held = this.other(key.held);
    return { primarySource: key.source, ...(backup !== undefined ? { backup } : {}), ...(hint !== undefined ? { hint } : {}), ...(held !== undefined ? { held } : {}) };
  }

  /** A next-best or held route, converted; undefined when it cannot be (then it is none). */
  private other(w: WantedBackup | undefined): { route: RouteMessage; source: string | undefined } | undefined {
    if (w === undefined) return undefined;
    try {
      return { route: toKernelRoute(this.anyNet, w.attrs, undefined, this.target, this.links), source: w.source };
    } catch {
      return undefined;
    }
  }

  private make(route: RouteMessage | undefined, priority: number, key: WantedKey | undefined, error?: RouteError, nh?: NhObject): KernelRoute {
    const id = this.freeIds.pop() ?? this.list.length;
    const r = new KernelRoute(id, route, priority, key, error, nh);
    this.list[id] = r;
    return r;
  }
}

/** The attributes as the kernel sees them: without the BGP ones (interned, so one object per kernel shape). */
const kernelViews = new WeakMap<RouteAttrs, RouteAttrs>();
function kernelView(attrs: RouteAttrs): RouteAttrs {
  let v = kernelViews.get(attrs);
  if (v === undefined) {
    v = attrs.with({ bgp: undefined });
    kernelViews.set(attrs, v);
  }
  return v;
}

function sameBackup(a: WantedBackup | undefined, b: WantedBackup | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.attrs === b.attrs && a.source === b.source);
}

/** Export filter settings equal by content (the same object, nearly always). */
function sameSettings(a: KernelAttrs | undefined, b: KernelAttrs | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return (
    a.metric === b.metric &&
    a.realm === b.realm &&
    a.scope === b.scope &&
    a.pref === b.pref &&
    a.congctl === b.congctl &&
    (a.prefsrc === b.prefsrc || (a.prefsrc !== undefined && b.prefsrc !== undefined && a.prefsrc.equals(b.prefsrc))) &&
    sameRecord(a.metrics, b.metrics) &&
    sameList(a.locked, b.locked)
  );
}

function sameRecord(a: Readonly<Record<string, number>> | undefined, b: Readonly<Record<string, number>> | undefined): boolean {
  if (a === b) return true;
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a![k] === b?.[k]);
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if ((a?.length ?? 0) !== (b?.length ?? 0)) return false;
  const sb = new Set(b ?? []);
  return (a ?? []).every((x) => sb.has(x));
}
