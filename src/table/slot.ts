/**
 * A net's chain as the store keeps it (a Slot): the Route itself in the
 * common one-route case, or a frozen array of two or more, best first.
 * Chains are copy-on-write: a reader may keep one, a writer never changes it.
 */
import type { Route } from '../route/route';

export type Slot = Route | readonly Route[];

export function slotBest(slot: Slot | undefined): Route | undefined {
  return slot === undefined ? undefined : Array.isArray(slot) ? (slot as readonly Route[])[0] : (slot as Route);
}

const NO_ROUTES: readonly Route[] = Object.freeze([]);

/** The chain in a slot, best first (shared and frozen: never written to). */
export function slotRoutes(slot: Slot | undefined): readonly Route[] {
  return slot === undefined ? NO_ROUTES : Array.isArray(slot) ? (slot as readonly Route[]) : (slot as Route).alone;
}
