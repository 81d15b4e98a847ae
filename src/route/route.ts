/**
 * Routes: a net, a source and an interned attribute set.
 *
 * The net is stored compactly, because a table holds millions of routes and a
 * Prefix object costs 72 bytes: for IPv4 the address word (int32, a small
 * integer in V8) and the length; for IPv6 the prefixKey string (which holds
 * the length too). `route.net` builds a Prefix on demand; `route.netKey` is
 * the lib's prefixKey, the key the table and journal use.
 *
 * Routes are immutable values except for `refreshCycle`, which belongs to the
 * table that stores the route (see Table.refreshBegin); readers ignore it.
 * Two routes are the same announcement when net, source and attrs are the
 * same, and attrs are interned, so that is three pointer/number comparisons.
 */
import { type Family, type Prefix, prefixFromKey, prefixKey } from '../lib/addr';
import type { RouteAttrs } from './attrs';
import { compareSources, type RouteSource } from './source';

/** prefixKey of a net: a number for IPv4, a short string for IPv6. */
export type NetKey = number | string;

export class Route {
  /** IPv4: the address word (int32); IPv6: the prefixKey string. */
  readonly netWord: number | string;
  /** Prefix length (for IPv6 also inside netWord). */
  readonly netLen: number;
  /**
   * Table bookkeeping for the refresh cycle: the source's cycle when this
   * route was last announced into its table. Not part of the route's value.
   */
  refreshCycle: number;

  constructor(
    net: Prefix,
    readonly src: RouteSource,
    readonly attrs: RouteAttrs,
    refreshCycle = 0,
  ) {
    this.netWord = net.family === 4 ? net.w0 | 0 : (prefixKey(net) as string);
    this.netLen = net.len;
    this.refreshCycle = refreshCycle;
  }

  get family(): Family {
    return typeof this.netWord === 'number' ? 4 : 6;
  }

  get netKey(): NetKey {
    return typeof this.netWord === 'number' ? (this.netWord >>> 0) * 64 + this.netLen : this.netWord;
  }

  /** A new Prefix each call: compare with equals(), not ===. */
  get net(): Prefix {
    return prefixFromKey(this.netKey);
  }

  /** Same net, source and attributes. */
  sameAs(o: Route): boolean {
    return this.attrs === o.attrs && this.src === o.src && this.netWord === o.netWord && this.netLen === o.netLen;
  }

  toString(): string {
    return `${this.net} ${this.attrs} (${this.src.name})`;
  }
}

/** Best first (routes of one net): the order of their sources. */
export function compareRoutes(a: Route, b: Route): number {
  return compareSources(a.src, b.src);
}
