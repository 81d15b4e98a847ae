/**
 * NextHopTracker: which next hops can be used now, from what the kernel
 * says of links and connected prefixes (FRR zebra's next-hop tracking,
 * BIRD's reachability check in rte_better).
 *
 * It holds facts, not sockets: the kernel side (proto/kernel/nexthop-watch.ts)
 * feeds it links (admin state, carrier) and connected prefixes (an address's
 * prefix on its device) and calls flush() after each batch; tables and kernel
 * protocols read verdicts and subscribe to changes. Verdicts are per next-hop
 * set (interned, so a million routes through one gateway ask about one set):
 *
 *  - a hop with a gateway is usable when its device is up with carrier and a
 *    connected prefix on that device covers the gateway (the longest match
 *    picks the device when the hop names none); an onlink hop needs only its
 *    device;
 *  - a device-only hop is usable when its device is up with carrier;
 *  - optionally (when the kernel side reports neighbours), a gateway whose
 *    neighbour entry on its device has failed (NUD_FAILED) is not usable;
 *  - a set is eligible while at least one hop is usable; its usable subset
 *    is what goes into the kernel (a multipath route drops dead members);
 *  - routes without next hops (blackhole, unreachable, prohibit) are not
 *    asked about: always eligible.
 *
 * Until the first resync() the tracker knows nothing and says "usable".
 * A hop that fails earns a flap penalty (nexthop-damping.ts); a recovery
 * while the penalty is high is held down, and a timer releases it.
 *
 * Cost: a fact change re-evaluates every tracked hop (there are as many as
 * distinct next hops, not routes) and reports the sets whose verdict changed;
 * what a set change costs a table is proportional to the nets using it.
 */
import type { Addr, Prefix } from '../lib/addr';
import type { NextHop } from '../route/nexthop';
import { NextHopSet } from '../route/nexthop';
import { DEFAULT_DAMPING, FlapDamping, type DampingSettings } from './nexthop-damping';

export interface TrackedLink {
  index: number;
  name: string;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Carrier present (IFF_LOWER_UP). */
  carrier: boolean;
}

/** A prefix directly reachable on a device (an address's prefix). */
export interface ConnectedPrefix {
  prefix: Prefix;
  ifindex: number;
}

/** One set's verdict changed. */
export interface NextHopChange {
  readonly set: NextHopSet;
  readonly wasEligible: boolean;
  readonly eligible: boolean;
  /** More of its hops can be used than before (a recovery, whole or in part). */
  readonly gained: boolean;
}

export type NextHopListener = (changes: readonly NextHopChange[]) => void;

export interface NextHopTrackerOptions {
  damping?: DampingSettings;
  /** The clock (tests). */
  now?: () => number;
}

interface HopState {
  readonly hop: NextHop;
  readonly sets: NextHopSet[];
  /** Why it cannot be used by the kernel's facts; undefined: usable. */
  down: string | undefined;
  /** Usable as far as routes are concerned (not down, not held). */
  usable: boolean;
  readonly damping: FlapDamping;
}

interface SetState {
  eligible: boolean;
  /** The usable hops (the set itself when all are); undefined when none. */
  usableHops: NextHopSet | undefined;
  readonly hops: HopState[];
}

export interface HopReport {
  hop: string;
  /** The device the kernel would send through: the hop's own, or the one whose connected prefix covers the gateway. */
  dev?: string;
  usable: boolean;
  /** usable; down (the kernel's facts: `reason`); held (damped after flapping, until `heldUntil`). */
  state: 'usable' | 'down' | 'held';
  reason?: string;
  flaps: number;
  penalty: number;
  /** When a hold ends (ms since the epoch on the tracker's clock); absent when none was ever set. */
  heldUntil?: number;
  /** Next-hop sets that contain this hop. */
  sets: number;
  /** Routes (of every source, in the tables asked) whose next-hop set holds this hop; only when a count was given. */
  routes?: number;
}

export class NextHopTracker {
  private readonly links = new Map<number, TrackedLink>();
  private readonly byName = new Map<string, number>();
  private connected: ConnectedPrefix[] = [];
  /** Neighbours whose entry failed, by `ifindex|address`. */
  private readonly failedNeighbours = new Set<string>();
  private readonly hops = new Map<string, HopState>();
  private readonly sets = new Map<NextHopSet, SetState>();
  private readonly listeners = new Set<NextHopListener>();
  /** Told before `listeners` (and so before the table reorders its nets): a kernel protocol's failover. */
  private readonly firstListeners = new Set<NextHopListener>();
  private readonly damping: DampingSettings;
  private readonly now: () => number;
  private known = false;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  /** Hops not usable now (a fast path for `eligible` when everything is fine). */
  private unusableHops = 0;
  /** Verdict changes reported so far (metrics; a kernel protocol's export memo is valid while it stays: export-memo.ts). */
  changes = 0;

  constructor(opts: NextHopTrackerOptions = {}) {
    this.damping = opts.damping ?? DEFAULT_DAMPING;
    this.now = opts.now ?? Date.now;
  }

  /** Whether the kernel's facts are in (before that, every next hop counts as usable). */
  get synced(): boolean {
    return this.known;
  }

  subscribe(fn: NextHopListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Like subscribe, but told before every subscriber, so before the tables reorder the nets that
   * use a changed set: a kernel protocol moves forwarding with one message per next hop first
   * (docs/failover.md). `fn` must not write a table.
   */
  subscribeFirst(fn: NextHopListener): () => void {
    this.firstListeners.add(fn);
    return () => this.firstListeners.delete(fn);
  }

  // ---- facts (from the kernel side); flush() evaluates and reports

  /** Replaces every fact (the first dump, or a resync after lost notifications). */
  resync(links: readonly TrackedLink[], connected: readonly ConnectedPrefix[], failedNeighbours: readonly { ifindex: number; addr: Addr }[] = []): void {
    this.links.clear();
    this.byName.clear();
    for (const l of links) this.putLink(l);
    this.connected = [...connected];
    this.failedNeighbours.clear();
    for (const n of failedNeighbours) this.failedNeighbours.add(`${n.ifindex}|${n.addr}`);
    this.known = true;
    this.dirty = true;
  }

  setLink(l: TrackedLink): void {
    const old = this.links.get(l.index);
    if (old && old.name === l.name && old.up === l.up && old.carrier === l.carrier) return;
    if (old && old.name !== l.name && this.byName.get(old.name) === l.index) this.byName.delete(old.name);
    // Connected prefixes stay while a device is down: the kernel drops its IPv4 prefix routes then, but puts
    // them back when it comes up without a new address notification. Down is reason enough on its own.
    this.putLink(l);
    this.dirty = true;
  }

  removeLink(index: number): void {
    const old = this.links.get(index);
    if (!old) return;
    this.links.delete(index);
    if (this.byName.get(old.name) === index) this.byName.delete(old.name);
    this.connected = this.connected.filter((c) => c.ifindex !== index);
    this.dirty = true;
  }

  setConnected(c: ConnectedPrefix, present: boolean): void {
    const i = this.connected.findIndex((x) => x.ifindex === c.ifindex && x.prefix.equals(c.prefix));
    if (present && i < 0) this.connected.push(c);
    else if (!present && i >= 0) this.connected.splice(i, 1);
    else return;
    this.dirty = true;
  }

  /** A neighbour entry failed (NUD_FAILED), or is fine again (any other state, or deleted). */
  setNeighbour(ifindex: number, addr: Addr, failed: boolean): void {
    const key = `${ifindex}|${addr}`;
    if (failed === this.failedNeighbours.has(key)) return;
    if (failed) this.failedNeighbours.add(key);
    else this.failedNeighbours.delete(key);
    this.dirty = true;
  }

  /** Evaluates every tracked hop against the facts and tells subscribers which sets changed. */
  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.evaluate();
  }

  // ---- verdicts

  /** Whether a route with this set may be best. */
  eligible(set: NextHopSet): boolean {
    const s = this.sets.get(set);
    if (s !== undefined) return s.eligible;
    return this.track(set).eligible;
  }

  /** The hops of `set` that can be used (the set itself when all can), or undefined when none. */
  usableHops(set: NextHopSet): NextHopSet | undefined {
    return (this.sets.get(set) ?? this.track(set)).usableHops;
  }

  /** Why a set is not eligible, or which of its hops are left out: undefined when all are usable. */
  why(set: NextHopSet): string | undefined {
    const s = this.sets.get(set) ?? this.track(set);
    const bad = s.hops.filter((h) => !h.usable);
    if (bad.length === 0) return undefined;
    return bad.map((h) => `next hop ${h.hop.toString()}: ${this.reasonOf(h)}`).join('; ');
  }

  /**
   * Every tracked hop, for `krtsync show nexthops` and tests. With `routesUsing` (routes through a
   * set, from the tables' indexes), each hop says how many routes go through it: O(sets), not routes.
   */
  report(routesUsing?: (set: NextHopSet) => number): HopReport[] {
    const now = this.now();
    return [...this.hops.values()].map((h) => {
      const dev = this.deviceOf(h.hop);
      const r: HopReport = {
        hop: h.hop.toString(),
        ...(dev !== undefined ? { dev } : {}),
        usable: h.usable,
        state: h.usable ? 'usable' : h.down !== undefined ? 'down' : 'held',
        ...(h.usable ? {} : { reason: this.reasonOf(h) }),
        flaps: h.damping.flaps,
        penalty: Math.round(h.damping.penaltyAt(now)),
        ...(h.damping.heldUntil > 0 ? { heldUntil: h.damping.heldUntil } : {}),
        sets: h.sets.length,
      };
      if (routesUsing) r.routes = h.sets.reduce((n, set) => n + routesUsing(set), 0);
      return r;
    });
  }

  /** Tracked hops and how many are usable (metrics: no walk of routes). */
  counts(): { hops: number; unusable: number; held: number; sets: number; flaps: number } {
    let held = 0;
    let flaps = 0;
    for (const h of this.hops.values()) {
      if (h.down === undefined && !h.usable) held++;
      flaps += h.damping.flaps;
    }
    return { hops: this.hops.size, unusable: this.unusableHops, held, sets: this.sets.size, flaps };
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.listeners.clear();
    this.firstListeners.clear();
  }

  // ---- inside

  private putLink(l: TrackedLink): void {
    this.links.set(l.index, { ...l });
    this.byName.set(l.name, l.index);
  }

  private reasonOf(h: HopState): string {
    if (h.down !== undefined) return h.down;
    const secs = Math.max(1, Math.ceil((h.damping.heldUntil - this.now()) / 1000));
    return `flapping (${h.damping.flaps} failures), held down for ${secs} s more`;
  }

  private track(set: NextHopSet): SetState {
    const hops = set.hops.map((hop) => {
      let h = this.hops.get(hop.key);
      if (h === undefined) {
        const down = this.known ? this.factsSay(hop) : undefined;
        h = { hop, sets: [], down, usable: down === undefined, damping: new FlapDamping(this.damping) };
        if (!h.usable) this.unusableHops++;
        this.hops.set(hop.key, h);
      }
      h.sets.push(set);
      return h;
    });
    const s: SetState = { eligible: true, usableHops: set, hops };
    this.judge(set, s);
    this.sets.set(set, s);
    return s;
  }

  /** Sets the set's verdict from its hops; true when eligibility or the usable hops changed. */
  private judge(set: NextHopSet, s: SetState): boolean {
    const usable = s.hops.filter((h) => h.usable);
    const before = s.usableHops;
    s.usableHops = usable.length === 0 ? undefined : usable.length === s.hops.length ? set : NextHopSet.of(usable.map((h) => h.hop));
    s.eligible = usable.length > 0;
    return before !== s.usableHops;
  }

  private evaluate(): void {
    const now = this.now();
    const touched = new Set<HopState>();
    let nextRelease = Infinity;
    for (const h of this.hops.values()) {
      const down = this.known ? this.factsSay(h.hop) : undefined;
      const wasUsable = h.usable;
      const wasDown = h.down !== undefined;
      h.down = down;
      if (down !== undefined) {
        if (!wasDown) h.damping.failed(now);
        h.damping.heldUntil = 0;
        h.usable = false;
      } else if (wasDown) {
        const until = h.damping.recovered(now);
        h.usable = until === 0;
      } else {
        h.usable = !h.damping.holding(now);
      }
      if (!h.usable && down === undefined) nextRelease = Math.min(nextRelease, h.damping.heldUntil);
      if (h.usable !== wasUsable) {
        this.unusableHops += h.usable ? -1 : 1;
        touched.add(h);
      }
    }
    this.schedule(nextRelease, now);
    if (touched.size === 0) return;
    const changes: NextHopChange[] = [];
    const seen = new Set<NextHopSet>();
    for (const h of touched) {
      for (const set of h.sets) {
        if (seen.has(set)) continue;
        seen.add(set);
        const s = this.sets.get(set)!;
        const wasEligible = s.eligible;
        const had = s.usableHops?.hops.length ?? 0;
        if (this.judge(set, s)) changes.push({ set, wasEligible, eligible: s.eligible, gained: (s.usableHops?.hops.length ?? 0) > had });
      }
    }
    if (changes.length === 0) return;
    this.changes += changes.length;
    for (const fn of [...this.firstListeners]) fn(changes);
    for (const fn of [...this.listeners]) fn(changes);
  }

  /** A timer for the earliest end of a hold: then the held hops are judged again. */
  private schedule(at: number, now: number): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (at === Infinity) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.evaluate();
      },
      Math.max(0, at - now),
    );
    this.timer.unref?.();
  }

  /** What the kernel's facts say of a hop: undefined when usable, else why not. */
  private factsSay(hop: NextHop): string | undefined {
    let index = hop.ifindex;
    if (index === undefined && hop.ifname !== undefined) {
      index = this.byName.get(hop.ifname);
      if (index === undefined) return `dev ${hop.ifname} does not exist`;
    }
    if (index !== undefined && !this.links.has(index)) return `ifindex ${index} does not exist`;
    if (hop.gateway !== undefined && !hop.onlink) {
      const c = this.covering(hop.gateway, index);
      if (c === undefined) return `no connected route covers ${hop.gateway}${index !== undefined ? ` on dev ${this.links.get(index)!.name}` : ''}`;
      index = c.ifindex;
    }
    const link = index === undefined ? undefined : this.links.get(index);
    if (link === undefined) return `ifindex ${index} does not exist`;
    if (!link.up) return `dev ${link.name} is down`;
    if (!link.carrier) return `dev ${link.name} has no carrier`;
    if (hop.gateway !== undefined && this.failedNeighbours.size > 0 && this.failedNeighbours.has(`${link.index}|${hop.gateway}`)) {
      return `neighbour ${hop.gateway} on dev ${link.name} failed`;
    }
    return undefined;
  }

  /** The device a hop goes out of, as factsSay resolves it; undefined when none does. */
  private deviceOf(hop: NextHop): string | undefined {
    let index = hop.ifindex ?? (hop.ifname !== undefined ? this.byName.get(hop.ifname) : undefined);
    if (index === undefined && hop.ifname !== undefined) return hop.ifname;
    if (hop.gateway !== undefined && !hop.onlink && index === undefined) index = this.covering(hop.gateway, undefined)?.ifindex;
    return index === undefined ? undefined : (this.links.get(index)?.name ?? `if${index}`);
  }

  /** The longest connected prefix covering `gw` (on device `index` when given). */
  private covering(gw: Addr, index: number | undefined): ConnectedPrefix | undefined {
    let best: ConnectedPrefix | undefined;
    for (const c of this.connected) {
      if (c.prefix.family !== gw.family || (index !== undefined && c.ifindex !== index)) continue;
      if (!c.prefix.contains(gw)) continue;
      if (best === undefined || c.prefix.len > best.prefix.len) best = c;
    }
    return best;
  }
}
