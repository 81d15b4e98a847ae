/**
 * Route sources: who announced a route.
 *
 * A RouteSource is an identity object (compared with `===`) with a name for
 * people and a preference for best-route selection: higher wins, as in BIRD.
 * How routes of equal preference are ordered is src/route/decision.ts's job
 * (BGP attributes, then name, then creation order `id`), so the order of a
 * net's routes never depends on announce timing.
 */
import { RouteError } from './route-error';

let nextSourceId = 1;

export interface RouteSourceOptions {
  /** Compare MED between BGP routes of this source whatever their neighbouring AS (BIRD's `med metric`, FRR's `always-compare-med`). */
  alwaysCompareMed?: boolean;
  /**
   * The table keeps an index of this source's nets, so flushing it or ending
   * its refresh cycle costs what it has, not a walk of the table (stream
   * peers: a neighbour going down).
   */
  indexed?: boolean;
}

export class RouteSource {
  /** Creation order; unique in the process. The last tie-break. */
  readonly id: number;
  readonly alwaysCompareMed: boolean;
  readonly indexed: boolean;

  constructor(
    readonly name: string,
    /** Higher is preferred (BIRD: static 200, kernel 10); an integer 0..65535. */
    readonly preference: number,
    options: RouteSourceOptions = {},
  ) {
    if (!Number.isInteger(preference) || preference < 0 || preference > 65535) {
      throw new RouteError(`source ${name}: preference ${preference} must be an integer 0..65535`);
    }
    this.id = nextSourceId++;
    this.alwaysCompareMed = options.alwaysCompareMed ?? false;
    this.indexed = options.indexed ?? false;
    Object.freeze(this);
  }

  toString(): string {
    return this.name;
  }
}
