/**
 * Routes: a source and an interned attribute set; the net is where the route
 * is stored, not in the route.
 *
 * A table makes one Route per (source, attribute set) and every net with that
 * announcement holds the same object (Table keeps them in a WeakMap per
 * source): a million static routes via one gateway are one Route, where a
 * Route per net with its net inside cost 64 bytes each (128 MB for the two
 * routes per net of a stream over a routes file). Whatever hands a route
 * around hands its net beside it (journal and feed items, filters, `show`).
 *
 * Routes are immutable. Within one net's chain a source has at most one
 * route, so identity still tells changes apart: a net's route changed when
 * the object did, and attrs are interned, so two announcements are the same
 * when source and attrs are (two pointer comparisons).
 */
import type { RouteAttrs } from './attrs';
import type { RouteSource } from './source';

/** prefixKey of a net: a number for IPv4, a short string for IPv6. */
export type NetKey = number | string;

export class Route {
  /** This route as a chain of one: shared, so a feed of a million nets makes no array per net for it. */
  readonly alone: readonly Route[];

  constructor(
    readonly src: RouteSource,
    readonly attrs: RouteAttrs,
  ) {
    this.alone = Object.freeze([this]);
    Object.freeze(this);
  }

  /** Same source and attributes. */
  sameAs(o: Route): boolean {
    return this.attrs === o.attrs && this.src === o.src;
  }

  toString(): string {
    return `${this.attrs} (${this.src.name})`;
  }
}
