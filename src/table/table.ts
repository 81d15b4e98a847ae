/**
 * Table: per net, the routes of every source, best first (BIRD's rtable).
 *
 * Writes are synchronous and cheap: announce(), withdraw(), refreshBegin()
 * and refreshEnd() update the NetStore and tell the two exporters what
 * changed; they never wait for a reader. Reads by readers happen in their own
 * runs, one net at a time, never across an await.
 *
 * Invariants:
 *  - a source has at most one route per net; a net's chain is ordered by
 *    the decision process (src/route/decision.ts: preference, BGP
 *    attributes, then name and creation), so the best route is first and
 *    the order never depends on timing;
 *  - re-announcing exactly what is stored (same attrs object) changes
 *    nothing and writes no journal item; it only renews the route for the
 *    refresh cycle;
 *  - `best` records a change only when a net's best route object changes,
 *    `all` records every route that appears, changes or disappears.
 *
 * Refresh cycle (BIRD's refresh_begin/refresh_end): refreshBegin(src) starts
 * a new cycle for the source, which makes all its routes stale at once
 * without touching them. Each announce renews its net (the table notes the
 * net in the cycle's renewed set; a source that had no routes when the cycle
 * began needs none: everything it has at the end came during the cycle).
 * refreshEnd(src) withdraws the routes of nets not renewed.
 *
 * Routes are shared: one Route per (source, attrs), the same object in every
 * net that has that announcement (see route.ts), kept in a WeakMap per
 * source so one no chain holds any more goes with its attrs.
 *
 * A source's state goes when its last route does (outside a refresh cycle):
 * sources that come and go (stream clients and their neighbours) leave
 * nothing behind. An `indexed` source also has a log of its nets
 * (net-log.ts), so flush() and refreshEnd() cost what the source has instead
 * of a walk of every net.
 *
 * Next-hop tracking (`nexthops`, nexthop-tracker.ts): a route whose next
 * hops cannot be used is not eligible to be best. Chains keep eligible
 * routes first (orderEligible), the best route is the head when it is
 * eligible, and a net with no eligible route has none (its routes stay, and
 * come back as soon as a next hop does). The nets using each next-hop set
 * are indexed (nexthop-index.ts), so when the tracker reports a set's
 * verdict changed, only those nets are ordered again and their best change
 * journaled, synchronously, before anything else can read the table.
 */
import type { Prefix } from '../lib/addr';
import { prefixFromKey, prefixKey } from '../lib/addr';
import type { RouteAttrs } from '../route/attrs';
import { chainWith, chainWithout, orderEligible } from '../route/decision';
import type { NextHopSet } from '../route/nexthop';
import { Route } from '../route/route';
import type { RouteSource } from '../route/source';
import { Exporter, type ExporterOptions } from './exporter';
import { NetLog } from './net-log';
import { netKeyOf, NetStore, type Slot, slotBest, slotRoutes } from './net-store';
import { NextHopIndex } from './nexthop-index';
import type { NextHopTracker } from './nexthop-tracker';

export interface TableOptions extends ExporterOptions {
  name: string;
  /** Next-hop tracking: routes whose next hops cannot be used are not eligible to be best. */
  nexthops?: NextHopTracker;
}

interface SourceState {
  refreshing: boolean;
  /** The nets announced since refreshBegin; undefined when not needed (see the header). */
  renewed: NetSet | undefined;
  routes: number;
  /** The source's Route for each attribute set it announces (shared by the nets). */
  readonly shared: WeakMap<RouteAttrs, Route>;
  /** The nets the source has routes for (and some it had): only for an `indexed` source. */
  readonly nets: NetLog | undefined;
}

/** A set of nets as the NetStore keys them (IPv4 sets made when first used). */
class NetSet {
  private readonly v4: (Set<number> | undefined)[] = new Array<Set<number> | undefined>(33).fill(undefined);
  private readonly v6 = new Set<string>();

  add(word: number | string, len: number): void {
    if (typeof word === 'number') (this.v4[len] ??= new Set<number>()).add(word);
    else this.v6.add(word);
  }

  has(word: number | string, len: number): boolean {
    return typeof word === 'number' ? this.v4[len]?.has(word) === true : this.v6.has(word);
  }

}

function routeOf(state: SourceState, src: RouteSource, attrs: RouteAttrs): Route {
  let r = state.shared.get(attrs);
  if (r === undefined) {
    r = new Route(src, attrs);
    state.shared.set(attrs, r);
  }
  return r;
}

export class Table {
  readonly name: string;
  readonly best: Exporter;
  readonly all: Exporter;
  private readonly store = new NetStore();
  private readonly sources = new Map<RouteSource, SourceState>();
  // One-entry cache: sources announce in long runs.
  private lastSource: RouteSource | undefined;
  private lastState: SourceState | undefined;
  private routeCount = 0;
  /** reserve(): IPv4, IPv6. */
  private readonly reserved = [0, 0];
  private readonly nh: NextHopTracker | undefined;
  private readonly nhIndex: NextHopIndex | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly flushWatchers = new Set<(src: RouteSource) => void>();
  /** Whether a route may be best (always, without next-hop tracking). */
  readonly eligible: (r: Route) => boolean;

  constructor(options: TableOptions) {
    this.name = options.name;
    this.best = new Exporter('best', this.store, options);
    this.all = new Exporter('all', this.store, options);
    const nh = options.nexthops;
    this.nh = nh;
    if (nh === undefined) {
      this.eligible = () => true;
      return;
    }
    this.eligible = (r) => r.attrs.nexthops === undefined || nh.eligible(r.attrs.nexthops);
    const index = new NextHopIndex(
      {
        slot: (word, len) => this.store.get(word, len),
        eligible: this.eligible,
        setChain: (word, len, chain) => this.store.set(word, len, chainOf(chain)),
        bestChanged: (word, len, old, neu) => this.best.record(word, len, this.store.idOf(word, len), old, neu),
      },
      nh,
    );
    this.nhIndex = index;
    this.best.bestOf = (slot) => this.bestOf(slotBest(slot));
    this.unsubscribe = nh.subscribe((changes) => index.onChanges(changes));
  }

  /** The tracker this table follows, if any. */
  get nexthops(): NextHopTracker | undefined {
    return this.nh;
  }

  /**
   * Every net with a route through `set`, now, synchronously, each once (the
   * kernel protocol re-exports them when a multipath set loses a member).
   * Nothing without next-hop tracking.
   */
  forEachNetUsing(set: NextHopSet, fn: (net: Prefix) => void): void {
    this.nhIndex?.forEachNet(set, (word, len) => fn(prefixFromKey(netKeyOf(word, len))));
  }

  /** Routes (one per source and net) through `set`, from the next-hop index: 0 without next-hop tracking. */
  routesUsing(set: NextHopSet): number {
    return this.nhIndex?.routesUsing(set) ?? 0;
  }

  /** The journal bound of both exporters (ExporterOptions.maxBehind); undefined: the default. */
  setMaxBehind(maxBehind: number | undefined): void {
    this.best.setMaxBehind(maxBehind);
    this.all.setMaxBehind(maxBehind);
  }

  get netCount(): number {
    return this.store.size;
  }

  /** Nets of one family. */
  netCountOf(family: 4 | 6): number {
    return this.store.sizeOf(family);
  }

  /** A hint before announceAt() of the IPv4 nets words[0..n): their index slots are read ahead, together (NetIndex.warm4). */
  warm4(words: Int32Array, lens: Uint8Array, n: number): void {
    this.store.warm4(words, lens, n);
  }

  /** Room for the `n` nets a fill brings (a routes file read whole), at once; readers size their state by sizeHint(). */
  reserve(family: 4 | 6, n: number): void {
    this.store.reserve(family, n);
    this.reserved[family === 4 ? 0 : 1] = Math.max(this.reserved[family === 4 ? 0 : 1]!, n);
  }

  /** The nets of one family the table holds, or has reserved room for if more. */
  sizeHint(family: 4 | 6): number {
    return Math.max(this.store.sizeOf(family), this.reserved[family === 4 ? 0 : 1]!);
  }

  get routeTotal(): number {
    return this.routeCount;
  }

  /** Calls `fn` with every source that has (or had) routes here and its route count: O(sources), not a walk. */
  forEachSource(fn: (src: RouteSource, routes: number) => void): void {
    for (const [src, state] of this.sources) fn(src, state.routes);
  }

  /** Routes the source has in this table. */
  routesOfSource(src: RouteSource): number {
    return this.sources.get(src)?.routes ?? 0;
  }

  /**
   * Every net of `family` with routes, now, synchronously and in no particular
   * order: IPv4 as (address word, length), IPv6 as a Prefix. For a walk of the
   * whole table that needs only the nets (the kernel protocol's shutdown): no
   * snapshot, sort, item or Prefix per IPv4 net, as a Feeder would make.
   */
  forEachNet(family: 4 | 6, v4: (word: number, len: number) => void, v6: (net: Prefix) => void): void {
    this.store.forEachNet(family, v4, v6);
  }

  /**
   * Every route of `src` with its net, now, synchronously (through the
   * source's index when it has one, else a walk of every net), and whether
   * it is stale (a refresh cycle is open and did not renew it). `fn` must not
   * write the table. For moving a source's routes to another source.
   */
  forEachRouteOf(src: RouteSource, fn: (net: Prefix, attrs: RouteAttrs, stale: boolean) => void): void {
    const state = this.sources.get(src);
    if (state === undefined) return;
    const renewed = state.refreshing ? state.renewed : undefined;
    const visit = (word: number | string, len: number, slot: Slot): void => {
      const r = slot instanceof Route ? (slot.src === src ? slot : undefined) : (slot as readonly Route[]).find((x) => x.src === src);
      if (r) fn(prefixFromKey(netKeyOf(word, len)), r.attrs, renewed !== undefined && !renewed.has(word, len));
    };
    if (state.nets) state.nets.forEach(this.liveFor(src), (word, len) => visit(word, len, this.store.get(word, len)!));
    else this.store.forEachEntry(visit);
  }

  /** The net's routes, best first (a lookup; readers use exporters). */
  routes(net: Prefix): readonly Route[] {
    return slotRoutes(this.slotOf(net));
  }

  /** Whether `src` has a route for `net` (a lookup, no array). */
  hasRoute(net: Prefix, src: RouteSource): boolean {
    return slotHas(this.slotOf(net), src);
  }

  /** The best route: the head of the chain, when it is eligible. */
  bestRoute(net: Prefix): Route | undefined {
    return this.bestOf(slotBest(this.slotOf(net)));
  }

  /** Adds or replaces `src`'s route for `net`. */
  announce(net: Prefix, src: RouteSource, attrs: RouteAttrs): void {
    this.announceAt(net.family === 4 ? net.w0 | 0 : (prefixKey(net) as string), net.len, src, attrs);
  }

  /** announce() of a net as the store names it: an IPv4 address word (host bits clear), or an IPv6 prefixKey. */
  announceAt(word: number | string, len: number, src: RouteSource, attrs: RouteAttrs): void {
    const state = this.stateOf(src);
    state.renewed?.add(word, len);
    const slot = this.store.get(word, len);
    if (slot === undefined) {
      const route = routeOf(state, src, attrs);
      const id = this.store.set(word, len, route);
      this.counted(state, 1);
      this.logged(src, state, word, len);
      this.nhIndex?.routeChanged(word, len, undefined, route);
      this.changed(word, len, id, undefined, this.bestOf(route), undefined, route);
      return;
    }
    if (slot instanceof Route && slot.src === src) {
      // The common case, without building arrays: the source replaces its only route.
      if (slot.attrs === attrs) return; // identical: renewed above, nothing to export
      const route = routeOf(state, src, attrs);
      const id = this.store.set(word, len, route);
      this.nhIndex?.routeChanged(word, len, slot, route);
      this.changed(word, len, id, this.bestOf(slot), this.bestOf(route), slot, route);
      return;
    }
    const chain = slotRoutes(slot);
    const i = chain.findIndex((r) => r.src === src);
    const old = chain[i];
    if (old !== undefined && old.attrs === attrs) return; // identical
    const route = routeOf(state, src, attrs);
    let next = chainWith(chain, i, route);
    // `next` is `chain` with `route` in place of `old`: when `chain` is all eligible, only `route` can be ineligible.
    if (this.nh && (this.anyIneligible(chain) || !this.eligible(route))) next = orderEligible(next, this.eligible);
    if (old === undefined) {
      this.counted(state, 1);
      this.logged(src, state, word, len);
    }
    const id = this.store.set(word, len, chainOf(next));
    this.nhIndex?.routeChanged(word, len, old, route);
    this.changed(word, len, id, this.bestOf(chain[0]), this.bestOf(next[0]), old, route);
  }

  /** Removes `src`'s route for `net`, if it has one. */
  withdraw(net: Prefix, src: RouteSource): void {
    const word = net.family === 4 ? net.w0 | 0 : (prefixKey(net) as string);
    this.remove(word, net.len, src);
  }

  /** Marks every route of `src` stale; announce renews them, refreshEnd prunes the rest. */
  refreshBegin(src: RouteSource): void {
    const state = this.stateOf(src);
    state.refreshing = true;
    state.renewed = state.routes === 0 ? undefined : new NetSet();
  }

  /** Withdraws the routes of `src` not re-announced since refreshBegin. Returns how many. */
  refreshEnd(src: RouteSource): number {
    const state = this.sources.get(src);
    if (state === undefined || !state.refreshing) return 0;
    state.refreshing = false;
    const renewed = state.renewed;
    state.renewed = undefined;
    if (state.routes === 0 || renewed === undefined) {
      this.forgetIfEmpty(src, state);
      return 0;
    }
    return this.removeAll(src, state, (word, len) => !renewed.has(word, len));
  }

  /**
   * Calls `fn` synchronously when every route of a source is about to be withdrawn (flush), before
   * the per-net work: a kernel protocol moves forwarding off that source with one message per next
   * hop first (docs/failover.md). `fn` must not write the table. Returns the unsubscribe.
   */
  watchFlush(fn: (src: RouteSource) => void): () => void {
    this.flushWatchers.add(fn);
    return () => this.flushWatchers.delete(fn);
  }

  /** Withdraws every route of `src`. Returns how many. */
  flush(src: RouteSource): number {
    const state = this.sources.get(src);
    if (state === undefined) return 0;
    if (state.routes > 0) for (const fn of this.flushWatchers) fn(src);
    state.refreshing = false;
    state.renewed = undefined;
    return this.removeAll(src, state, () => true);
  }

  /**
   * A source begins to fill the table (a routes file's first load): export requests in a feed
   * follow the fill, each net that comes fed once in the walk's batches and none of it journaled,
   * and are `ready` only after its end (docs/table.md, "Fills"). Returns the end (idempotent).
   */
  beginFill(): () => void {
    this.best.beginFill();
    this.all.beginFill();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.best.endFill();
      this.all.endFill();
    };
  }

  /** Stops both exporters (the table is being removed): readers get a stop item and resubscribe elsewhere. */
  stop(reason: string): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.best.stop(reason);
    this.all.stop(reason);
  }

  /**
   * The daemon is exiting and no kernel protocol reads this table any more:
   * stops the exporters and forgets every route at once, so the sources'
   * own shutdown (which withdraws their routes) finds nothing to walk. Two
   * sources of 1M routes each took about 3 s to withdraw one by one here.
   */
  discard(reason: string): void {
    this.stop(reason);
    this.nhIndex?.clear();
    this.store.clear();
    this.sources.clear();
    this.lastSource = undefined;
    this.lastState = undefined;
    this.routeCount = 0;
  }

  /** Removes the routes of `src` on the nets `pick` chooses: through the source's index, or a walk of every net. */
  private removeAll(src: RouteSource, state: SourceState, pick: (word: number | string, len: number) => boolean): number {
    const staleWords: (number | string)[] = [];
    const staleLens: number[] = [];
    const take = (word: number | string, len: number): void => {
      if (!pick(word, len)) return;
      staleWords.push(word);
      staleLens.push(len);
    };
    if (state.nets !== undefined) state.nets.forEach(this.liveFor(src), take);
    else
      this.store.forEachEntry((word, len, slot) => {
        if (slotHas(slot, src)) take(word, len);
      });
    for (let i = 0; i < staleWords.length; i++) this.remove(staleWords[i]!, staleLens[i]!, src);
    this.forgetIfEmpty(src, state);
    return staleWords.length;
  }

  private slotOf(net: Prefix): Slot | undefined {
    return this.store.get(net.family === 4 ? net.w0 | 0 : (prefixKey(net) as string), net.len);
  }

  private remove(word: number | string, len: number, src: RouteSource): void {
    const slot = this.store.get(word, len);
    if (slot === undefined) return;
    const chain = slotRoutes(slot);
    const i = chain.findIndex((r) => r.src === src);
    if (i < 0) return;
    const old = chain[i]!;
    let next = chainWithout(chain, i);
    if (this.nh && this.anyIneligible(chain)) next = orderEligible(next, this.eligible);
    const id = next.length === 0 ? this.store.delete(word, len) : this.store.set(word, len, chainOf(next));
    this.nhIndex?.routeChanged(word, len, old, undefined);
    const state = this.stateOf(src);
    this.counted(state, -1);
    this.changed(word, len, id, this.bestOf(chain[0]), this.bestOf(next[0]), old, undefined);
    this.forgetIfEmpty(src, state);
  }

  private changed(
    word: number | string,
    len: number,
    id: number,
    oldBest: Route | undefined,
    newBest: Route | undefined,
    oldRoute: Route | undefined,
    newRoute: Route | undefined,
  ): void {
    if (oldBest !== newBest) this.best.record(word, len, id, oldBest, newBest);
    this.all.record(word, len, id, oldRoute, newRoute);
  }

  /** The head of a chain when it may be best. */
  private bestOf(head: Route | undefined): Route | undefined {
    return head === undefined || this.nh === undefined || this.eligible(head) ? head : undefined;
  }

  private anyIneligible(chain: readonly Route[]): boolean {
    for (const r of chain) if (!this.eligible(r)) return true;
    return false;
  }

  private counted(state: SourceState, delta: number): void {
    state.routes += delta;
    this.routeCount += delta;
  }

  /** Notes a net the source gained in its index (an indexed source's). */
  private logged(src: RouteSource, state: SourceState, word: number | string, len: number): void {
    if (state.nets === undefined) return;
    state.nets.add(word, len);
    if (state.nets.size > 2 * state.routes + 1024) state.nets.compact(this.liveFor(src));
  }

  /** Whether `src` has a route for a net, as the index asks. */
  private liveFor(src: RouteSource): (word: number | string, len: number) => boolean {
    return (word, len) => slotHas(this.store.get(word, len), src);
  }

  /** A source with no routes and no refresh cycle open leaves nothing behind. */
  private forgetIfEmpty(src: RouteSource, state: SourceState): void {
    if (state.routes !== 0 || state.refreshing) return;
    this.sources.delete(src);
    if (this.lastSource === src) {
      this.lastSource = undefined;
      this.lastState = undefined;
    }
  }

  /** Sources with state in the table (for tests: departed sources leave none). */
  get sourceCount(): number {
    return this.sources.size;
  }

  private stateOf(src: RouteSource): SourceState {
    if (src === this.lastSource) return this.lastState!;
    let state = this.sources.get(src);
    if (state === undefined) {
      state = { refreshing: false, renewed: undefined, routes: 0, shared: new WeakMap(), nets: src.indexed ? new NetLog() : undefined };
      this.sources.set(src, state);
    }
    this.lastSource = src;
    this.lastState = state;
    return state;
  }
}

/** Whether a net's slot holds a route of `src`. */
function slotHas(slot: Slot | undefined, src: RouteSource): boolean {
  if (slot === undefined) return false;
  if (slot instanceof Route) return slot.src === src;
  for (const r of slot as readonly Route[]) if (r.src === src) return true;
  return false;
}

/**
 * Two-route chains, shared by every net whose chain is the same two routes
 * (first route -> second route -> chain): a stream announcing over a routes
 * file gives a million nets the same pair, which was a 64-byte frozen array
 * each. Chains are immutable, so sharing them is safe; WeakMaps, so a pair
 * goes when its routes do. Longer chains are rare and kept per net.
 */
const pairs = new WeakMap<Route, WeakMap<Route, readonly Route[]>>();

/** The slot for a net's chain `next` (best first, at least one route). */
function chainOf(next: Route[]): Slot {
  if (next.length === 1) return next[0]!;
  if (next.length !== 2) return Object.freeze(next);
  const [a, b] = next as [Route, Route];
  let inner = pairs.get(a);
  if (inner === undefined) {
    inner = new WeakMap();
    pairs.set(a, inner);
  }
  let chain = inner.get(b);
  if (chain === undefined) {
    chain = Object.freeze(next);
    inner.set(b, chain);
  }
  return chain;
}
