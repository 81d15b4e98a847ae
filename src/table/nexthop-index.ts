/**
 * NextHopIndex: next-hop tracking's side of a table. Per next-hop set, the
 * nets that have a route through it, so a next hop that fails or recovers
 * costs the nets using it, not a walk of the table; and the reorder of those
 * nets when the tracker reports a set's verdict changed.
 *
 * Per set a NetLog (8 bytes an IPv4 net, net-log.ts) and the count of routes
 * using the set: the table calls routeChanged() when a net's route of one
 * source appears, changes set or goes (not on a re-announcement of the same
 * set), the log is compacted once it is past twice that count and before a
 * walk that could meet a dead or repeated net, and a set no
 * route uses any more is forgotten.
 *
 * A reorder runs synchronously inside the tracker's notification, so no
 * reader sees a chain ordered by old verdicts after the tracker changed.
 * The chains were ordered by the verdicts before the change, which the
 * change list tells, so each net's old best is known exactly and its best
 * change is journaled once.
 */
import { compareRoutes, orderEligible } from '../route/decision';
import type { NextHopSet } from '../route/nexthop';
import { Route } from '../route/route';
import { NetLog } from './net-log';
import { netKeyOf, type Slot, slotRoutes } from './net-store';
import type { NextHopChange, NextHopTracker } from './nexthop-tracker';

/** What the index needs of its table. */
export interface IndexedTable {
  slot(word: number | string, len: number): Slot | undefined;
  eligible(r: Route): boolean;
  /** Stores a net's reordered chain (same routes). */
  setChain(word: number | string, len: number, chain: Route[]): void;
  /** Journals a change of a net's best route. */
  bestChanged(word: number | string, len: number, old: Route | undefined, neu: Route | undefined): void;
}

interface Entry {
  readonly log: NetLog;
  routes: number;
  /** The log is exactly the set's live nets, sorted, each once: compacted, and no route came or went since. */
  exact: boolean;
  /** A route left the set since the last compaction: the log may name a net that no longer uses it. */
  dropped: boolean;
}

export class NextHopIndex {
  private readonly bySet = new Map<NextHopSet, Entry>();

  constructor(
    private readonly table: IndexedTable,
    private readonly tracker: NextHopTracker,
  ) {}

  /** A net's route of one source went from `old` to `neu` (either may be undefined). */
  routeChanged(word: number | string, len: number, old: Route | undefined, neu: Route | undefined): void {
    const a = old?.attrs.nexthops;
    const b = neu?.attrs.nexthops;
    if (a === b) return;
    if (a !== undefined) {
      const e = this.bySet.get(a);
      if (e !== undefined) {
        e.exact = false;
        e.dropped = true;
        if (--e.routes <= 0) this.bySet.delete(a);
      }
    }
    if (b !== undefined) {
      let e = this.bySet.get(b);
      if (e === undefined) this.bySet.set(b, (e = { log: new NetLog(), routes: 0, exact: false, dropped: false }));
      e.routes++;
      e.log.add(word, len);
      e.exact = false;
      if (e.log.size > 2 * e.routes + 1024) {
        e.log.compact(this.usesSet(b));
        e.exact = true;
        e.dropped = false;
      }
    }
  }

  /** Routes (one per source and net) through `set`. */
  routesUsing(set: NextHopSet): number {
    return this.bySet.get(set)?.routes ?? 0;
  }

  /** Every net that has a route through `set` (each once). */
  forEachNet(set: NextHopSet, fn: (word: number | string, len: number) => void): void {
    const e = this.bySet.get(set);
    if (e === undefined) return;
    // A link event walks the set twice (the reorder here, then each kernel protocol's export): the second
    // finds the log still exact and skips the sort and a table lookup per net. So does the first when no
    // route left the set and its nets were logged in order, each once (a full table fed in address order;
    // a routes file is announced in spread order and is sorted once), which saves the sort of a million
    // logged nets (0.25 s).
    if (!e.exact) {
      if (e.dropped || !e.log.ordered) e.log.compact(this.usesSet(set));
      e.exact = true; // before the walk: a route that comes or goes during it clears it again
      e.dropped = false;
    }
    e.log.forEachLogged(fn);
  }

  clear(): void {
    this.bySet.clear();
  }

  /** Sets changed eligibility: the nets using them are ordered again and their best changes journaled. */
  onChanges(changes: readonly NextHopChange[]): void {
    const flipped = new Map<NextHopSet, boolean>();
    for (const c of changes) if (c.wasEligible !== c.eligible) flipped.set(c.set, c.wasEligible);
    if (flipped.size === 0) return;
    const was = (r: Route): boolean => {
      const s = r.attrs.nexthops;
      if (s === undefined) return true;
      return flipped.get(s) ?? this.tracker.eligible(s);
    };
    // A net using two of the flipped sets is ordered once: the second time its chain would already be new.
    const seen = flipped.size > 1 ? new Set<number | string>() : undefined;
    for (const set of flipped.keys()) {
      this.forEachNet(set, (word, len) => {
        if (seen !== undefined) {
          const k = netKeyOf(word, len);
          if (seen.has(k)) return;
          seen.add(k);
        }
        this.reorder(word, len, was);
      });
    }
  }

  private reorder(word: number | string, len: number, was: (r: Route) => boolean): void {
    const t = this.table;
    const slot = t.slot(word, len);
    if (slot === undefined) return;
    const chain = slotRoutes(slot);
    const head = chain[0]!;
    const oldBest = was(head) ? head : undefined;
    let next: readonly Route[] = chain;
    if (chain.length === 2) {
      // The common case (a primary and a backup), without sorting: eligible first, else decision order.
      const [a, b] = chain as [Route, Route];
      const ea = t.eligible(a);
      const eb = t.eligible(b);
      if (ea === eb ? compareRoutes(a, b) > 0 : eb) {
        next = [b, a];
        t.setChain(word, len, [b, a]);
      }
    } else if (chain.length > 2) {
      const ordered = orderEligible(chain, (r) => t.eligible(r));
      if (ordered.some((r, k) => r !== chain[k])) {
        t.setChain(word, len, ordered);
        next = ordered;
      }
    }
    const newBest = t.eligible(next[0]!) ? next[0] : undefined;
    if (oldBest !== newBest) t.bestChanged(word, len, oldBest, newBest);
  }

  /** Whether a net still has a route through `set` (the log's liveness test). */
  private usesSet(set: NextHopSet): (word: number | string, len: number) => boolean {
    return (word, len) => {
      const slot = this.table.slot(word, len);
      if (slot === undefined) return false;
      if (slot instanceof Route) return slot.attrs.nexthops === set;
      for (const r of slot as readonly Route[]) if (r.attrs.nexthops === set) return true;
      return false;
    };
  }
}
