/**
 * NextHopIndex: per next-hop set, the nets of a table that have a route
 * through it, so a next hop that fails or recovers costs the nets using it,
 * not a walk of the table. Only a table with next-hop tracking keeps one.
 *
 * Per set a NetLog (8 bytes an IPv4 net, net-log.ts) and the count of routes
 * using the set: the table calls added()/removed() when a route with the set
 * appears in or leaves a net (not on a re-announcement of the same set), the
 * log is compacted once it is past twice that count, and a set no route uses
 * any more is forgotten.
 */
import type { NextHopSet } from '../route/nexthop';
import { NetLog, type LiveNet } from './net-log';

interface Entry {
  readonly log: NetLog;
  routes: number;
}

export class NextHopIndex {
  private readonly bySet = new Map<NextHopSet, Entry>();

  /** A route through `set` appeared in the net. `live` tells whether a net still uses the set (for compaction). */
  added(set: NextHopSet, word: number | string, len: number, live: LiveNet): void {
    let e = this.bySet.get(set);
    if (e === undefined) this.bySet.set(set, (e = { log: new NetLog(), routes: 0 }));
    e.routes++;
    e.log.add(word, len);
    if (e.log.size > 2 * e.routes + 1024) e.log.compact(live);
  }

  /** A route through `set` left a net. */
  removed(set: NextHopSet): void {
    const e = this.bySet.get(set);
    if (e === undefined) return;
    if (--e.routes <= 0) this.bySet.delete(set);
  }

  /** Every net that has a route through `set` (each once). */
  forEachNet(set: NextHopSet, live: LiveNet, fn: (word: number | string, len: number) => void): void {
    this.bySet.get(set)?.log.forEach(live, fn);
  }

  /** Routes through `set`. */
  routesUsing(set: NextHopSet): number {
    return this.bySet.get(set)?.routes ?? 0;
  }

  clear(): void {
    this.bySet.clear();
  }
}
