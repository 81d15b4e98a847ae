/**
 * Route sources: who announced a route.
 *
 * A RouteSource is an identity object (compared with `===`) with a name for
 * people and a preference for best-route selection: higher wins, as in BIRD.
 * Ties are broken by name, then by creation order (`id`), so the order of a
 * net's routes never depends on announce timing.
 */
import { RouteError } from './route-error';

let nextSourceId = 1;

export class RouteSource {
  /** Creation order; unique in the process. The last tie-break. */
  readonly id: number;

  constructor(
    readonly name: string,
    /** Higher is preferred (BIRD: static 200, kernel 10); an integer 0..65535. */
    readonly preference: number,
  ) {
    if (!Number.isInteger(preference) || preference < 0 || preference > 65535) {
      throw new RouteError(`source ${name}: preference ${preference} must be an integer 0..65535`);
    }
    this.id = nextSourceId++;
    Object.freeze(this);
  }

  toString(): string {
    return this.name;
  }
}

/** Best first: higher preference, then name, then creation order. Zero only for the same source. */
export function compareSources(a: RouteSource, b: RouteSource): number {
  if (a === b) return 0;
  if (a.preference !== b.preference) return b.preference - a.preference;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.id - b.id;
}
