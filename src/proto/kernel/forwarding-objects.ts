/**
 * ForwardingObjects: the kernel nexthop objects that make failover cost one
 * message per next hop instead of one per prefix (prefix-independent
 * convergence, docs/failover.md).
 *
 * With failover on, a route does not name its next hops' object: it names a
 * forwarding object, a group (always a group, even of one member: the
 * kernel refuses to turn a plain object into a group by replace) keyed by
 * (primary source, primary hops, backup source, backup hops), whose content
 * is the primary's hops. Every net with the same best and next-best route
 * shares one. When the primary fails in a way the daemon learns of (its
 * source withdrawn), the object's content is replaced by the backup's hops
 * with one RTM_NEWNEXTHOP (sync-failover.ts): the kernel moves every route
 * on it at once.
 *
 * Invariants:
 *  - an object is interned by its key only while its content is its
 *    primary's: a switched object is taken out of the key map (a source
 *    that comes back makes a new object with its own hops) and waits as an
 *    orphan, by content, for the first new key with that content (the
 *    net's new best and next-best after the failover), which re-keys it:
 *    nets whose new pair matches what their object forwards to now stay on
 *    it, with no route message;
 *  - an object whose primary next-hop tracking holds unusable is held on
 *    its backup (hold): it keeps its key, and also serves, by that key,
 *    the nets whose best is the backup while that primary is held
 *    (internHeld), so the tracker's return is one replace (restore) and no
 *    route message; it never goes back with its link alone;
 *  - objects adopted at restart are orphans too (what they stood for is
 *    not in the kernel): a restart in the middle of a failover claims them
 *    by content, so routes stay where they are;
 *  - a forwarding object references its members (its content) and its
 *    backup's hops (so they exist when a failover needs them); ids come
 *    from the upper half of our range (isForwardingId).
 */
import type { Addr } from '../../lib/addr';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import { newObject, type ForwardingRole, type Hop, type NhObject } from './nh-object';

/** What ForwardingObjects needs of NexthopObjects (which owns ids, keys and references). */
export interface ForwardingHost {
  lookup(key: string): NhObject | undefined;
  register(o: NhObject): void;
  /** Takes `o` out of the key map (it stays known by id). */
  unkey(o: NhObject): void;
  allocate(): number;
  contentOf(m: NexthopMessage): string;
  release(o: NhObject): void;
  readonly protocol: number;
}

/**
 * Forwarding objects by what they forward to: `primary` (as keyed), `switched` (to the backup's hops
 * after its primary's source was withdrawn, until the nets' new pair claims it), `degraded` (to the
 * backup's hops while the primary's links are down), `held` (to the backup's hops while next-hop
 * tracking holds the primary unusable), `adopted` (found at restart, not claimed yet). The middle
 * three are a failover in force.
 */
export interface ForwardingCounts {
  primary: number;
  switched: number;
  degraded: number;
  held: number;
  adopted: number;
}

/** Whether an id of our range is a forwarding object's (the upper half of our 16 bits). */
export function isForwardingId(id: number): boolean {
  return (id & 0xffff) >= 0x8000;
}

export class ForwardingObjects {
  /** Routes go on forwarding objects (the failover option; nexthop objects on). */
  enabled = false;
  /** Whether a link is up with carrier (the sync's link cache): a primary whose links are all down is degraded. */
  linkUsable: (ifindex: number) => boolean = () => true;
  private readonly objects = new Set<NhObject>();
  private readonly orphans = new Map<string, NhObject[]>();

  constructor(private readonly host: ForwardingHost) {}

  /** The forwarding object for a net whose best route goes through `primary` and whose next-best through `backup`. */
  intern(primary: { source: string | undefined; hops: readonly Hop[] }, backup: { source: string | undefined; hops: readonly Hop[] } | undefined, hint?: number): NhObject {
    const key = keyFor(primary, backup);
    const there = this.host.lookup(key);
    if (there !== undefined) return there;
    const role: ForwardingRole = { primarySource: primary.source, backupSource: backup?.source, backup: backup?.hops, orphan: false };
    for (const h of backup?.hops ?? []) h.obj.refs++;
    if (backup !== undefined && this.linksDown(primary.hops) && this.linksUp(backup.hops)) {
      // Born degraded (a restart while the primary's links are down): the kernel cannot hold the primary's
      // hops now, and the object forwarding to the backup that the nets are on is claimed by that content.
      role.degraded = primary.hops;
      for (const h of primary.hops) h.obj.refs++;
      return this.place(key, role, backup.hops, hint);
    }
    return this.place(key, role, primary.hops, hint);
  }

  /**
   * The device of a forwarding object's primary hop through `gateway`, for a gateway no connected
   * prefix covers any more: IPv6 takes a link's addresses when it goes admin down, and the nets on
   * the object must stay on it (forwarding to the backup) rather than be sent as plain routes the
   * kernel refuses. O(forwarding objects): only asked when the connected prefixes have no answer.
   */
  deviceOf(gateway: Addr): number | undefined {
    for (const o of this.objects) {
      if (o.fwd!.orphan) continue;
      for (const m of o.fwd!.degraded?.map((h) => h.obj) ?? o.members ?? []) if (m.msg.oif !== undefined && m.msg.gateway?.equals(gateway) === true) return m.msg.oif;
    }
    return undefined;
  }

  /** Whether every hop names a device and none of those can be used now (the kernel has flushed their objects). */
  linksDown(hops: readonly Hop[]): boolean {
    return hops.length > 0 && hops.every((h) => h.obj.msg.oif !== undefined && !this.linkUsable(h.obj.msg.oif));
  }

  /** Whether every hop's device, if it names one, can be used now. */
  linksUp(hops: readonly Hop[]): boolean {
    return hops.every((h) => h.obj.msg.oif === undefined || this.linkUsable(h.obj.msg.oif));
  }

  /**
   * The object keyed (`held`, `best`) held on its backup (hold()) for a net whose best is `best` because
   * `held`, ranked above it, is held unusable by next-hop tracking: the net stays on it, so that the
   * tracker's return is one replace of its content (restore) and no route message. Made held, or
   * claimed by content (a restart in the middle of a tracked failure), when there is none; undefined
   * when the key's object forwards to `held` (it could not be held: the net goes by its own pair).
   */
  internHeld(held: { source: string | undefined; hops: readonly Hop[] }, best: { source: string | undefined; hops: readonly Hop[] }, hint?: number): NhObject | undefined {
    const key = keyFor(held, best);
    const there = this.host.lookup(key);
    // Given back by the tracker, its nets' re-export not done yet (a link change reconverts their wants meanwhile):
    // they stay on it, their new pair is its key. One that could not be held forwards to `held`: not for them.
    if (there !== undefined) return (there.fwd?.held === true && there.fwd.degraded !== undefined) || there.fwd?.released === true ? there : undefined;
    const role: ForwardingRole = { primarySource: held.source, backupSource: best.source, backup: best.hops, orphan: false, degraded: held.hops, held: true };
    for (const h of [...best.hops, ...held.hops]) h.obj.refs++;
    return this.place(key, role, best.hops, hint);
  }

  /** An object keyed `key` in `role` whose content is `content`: an orphan with that content claimed (`hint`'s first), else a new one. */
  private place(key: string, role: ForwardingRole, content: readonly Hop[], hint: number | undefined): NhObject {
    const msg = groupOf(content, this.host.protocol, 0);
    const o = this.claim(this.host.contentOf(msg), hint);
    if (o !== undefined) {
      o.key = key;
      o.fwd = role;
      this.host.register(o);
      return o;
    }
    const id = this.host.allocate();
    const made = newObject(id, key, { ...msg, id }, content.map((h) => h.obj), 'new');
    made.fwd = role;
    this.objects.add(made);
    this.host.register(made);
    return made;
  }

  /** Next-hop tracking judged `o`'s primary unusable: it forwards to its backup (degraded, if not already), keeping its key, until restore(). */
  hold(o: NhObject): void {
    this.degrade(o);
    o.fwd!.held = true;
    o.fwd!.released = false;
  }

  /** An object of ours from the kernel's dump (a restart): an orphan until a wanted route with its content claims it. */
  adopt(o: NhObject): void {
    o.fwd = { primarySource: undefined, backupSource: undefined, backup: undefined, orphan: true };
    this.objects.add(o);
    this.addOrphan(o);
  }

  /** `o` is gone (nothing uses it): out of every list, its backup's (and a degraded primary's) hops released. */
  forget(o: NhObject): void {
    this.objects.delete(o);
    this.dropOrphan(o);
    const b = o.fwd?.backup;
    const d = o.fwd?.degraded;
    if (o.fwd !== undefined) o.fwd.backup = o.fwd.degraded = undefined;
    for (const h of [...(b ?? []), ...(d ?? [])]) this.host.release(h.obj);
  }

  /** Objects that are neither orphans nor degraded, with a backup: those a link going down may degrade. */
  forEachKeyed(fn: (o: NhObject) => void): void {
    for (const o of this.objects) if (!o.fwd!.orphan && o.fwd!.backup !== undefined) fn(o);
  }

  /**
   * Every link of `o`'s primary went down (the kernel has deleted it, its routes with it): it
   * forwards to its backup's hops until one is back (restore), keeping its key, so the nets that
   * want it get their routes back on it at once, through the backup.
   */
  degrade(o: NhObject): void {
    const role = o.fwd!;
    if (role.degraded !== undefined || role.backup === undefined) return;
    role.degraded = o.members!.map((m, i) => ({ obj: m, weight: o.msg.group![i]!.weight }));
    for (const h of role.backup) h.obj.refs++;
    o.members = role.backup.map((h) => h.obj);
    o.msg = groupOf(role.backup, this.host.protocol, o.id);
  }

  /** A link of a degraded object's primary is back: its content is the primary's again (the caller tells the kernel). */
  restore(o: NhObject): void {
    const role = o.fwd!;
    const primary = role.degraded;
    if (primary === undefined) return;
    const old = o.members ?? [];
    role.released = role.held === true;
    role.degraded = undefined;
    role.held = false;
    o.members = primary.map((h) => h.obj);
    o.msg = groupOf(primary, this.host.protocol, o.id);
    for (const m of old) this.host.release(m);
  }

  /** Objects whose primary is `source` and that have a backup to switch to. */
  primaryOf(source: string): NhObject[] {
    const out: NhObject[] = [];
    for (const o of this.objects) if (!o.fwd!.orphan && o.fwd!.primarySource === source && o.fwd!.backup !== undefined) out.push(o);
    return out;
  }

  /**
   * `o` now forwards to its backup's hops (the caller tells the kernel): its content becomes the
   * backup's, it leaves the key map and waits as an orphan for the nets' new key.
   */
  switchToBackup(o: NhObject): void {
    const role = o.fwd!;
    const backup = role.backup!;
    if (role.degraded !== undefined) {
      // Already forwarding to the backup (its primary's links are down): the degraded primary goes.
      for (const h of role.degraded) this.host.release(h.obj);
      role.degraded = undefined;
      role.held = false;
    }
    const old = o.members ?? [];
    o.msg = groupOf(backup, this.host.protocol, o.id);
    o.members = backup.map((h) => h.obj); // the role's references on them become the members'
    role.backup = undefined;
    role.orphan = true;
    role.switched = true;
    this.host.unkey(o);
    this.addOrphan(o);
    for (const m of old) this.host.release(m);
  }

  /** Forwarding objects known (for tests and status). */
  get size(): number {
    return this.objects.size;
  }

  /** The objects by what they forward to (`show protocols`, metrics): O(forwarding objects), a handful. */
  counts(): ForwardingCounts {
    const c: ForwardingCounts = { primary: 0, switched: 0, degraded: 0, held: 0, adopted: 0 };
    for (const o of this.objects) c[roleState(o.fwd!)]++;
    return c;
  }

  private claim(content: string, hint: number | undefined): NhObject | undefined {
    const list = this.orphans.get(content);
    if (list === undefined) return undefined;
    let i = hint === undefined ? -1 : list.findIndex((o) => o.id === hint);
    if (i < 0) i = 0;
    const o = list[i]!;
    this.dropOrphan(o);
    return o;
  }

  private addOrphan(o: NhObject): void {
    const content = this.host.contentOf(o.msg);
    const list = this.orphans.get(content);
    if (list === undefined) this.orphans.set(content, [o]);
    else list.push(o);
  }

  private dropOrphan(o: NhObject): void {
    const content = this.host.contentOf(o.msg);
    const list = this.orphans.get(content);
    if (list === undefined) return;
    const rest = list.filter((x) => x !== o);
    if (rest.length > 0) this.orphans.set(content, rest);
    else this.orphans.delete(content);
  }
}

/** What a forwarding object forwards to now (see ForwardingCounts). */
export function roleState(role: ForwardingRole): keyof ForwardingCounts {
  if (role.orphan) return role.switched === true ? 'switched' : 'adopted';
  if (role.degraded === undefined) return 'primary';
  return role.held === true ? 'held' : 'degraded';
}

function keyFor(primary: { source: string | undefined; hops: readonly Hop[] }, backup: { source: string | undefined; hops: readonly Hop[] } | undefined): string {
  return `f ${primary.source ?? ''}|${hopsKey(primary.hops)} ${backup === undefined ? '-' : `${backup.source ?? ''}|${hopsKey(backup.hops)}`}`;
}

function hopsKey(hops: readonly Hop[]): string {
  return hops.map((h) => `${h.obj.id}*${h.weight}`).join(',');
}

/** A group over `hops` (sorted by id, as the kernel reports them). */
function groupOf(hops: readonly Hop[], protocol: number, id: number): NexthopMessage {
  return { id, family: undefined, protocol, scope: 0, flags: 0, group: hops.map((h) => ({ id: h.obj.id, weight: h.weight })) };
}
