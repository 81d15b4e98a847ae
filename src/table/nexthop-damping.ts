/**
 * Flap damping of one next hop, after BGP route flap damping (RFC 2439):
 * every time the next hop goes from usable to unusable it earns a penalty,
 * the penalty halves every `halfLifeMs`, and a next hop that comes back
 * while its penalty is at or above `suppress` stays held down until the
 * penalty has decayed to `reuse`. A first failure never holds a recovery
 * back (one flap's penalty is below `suppress`), so an ordinary failover
 * returns at once; a link that keeps flapping stays on the backup, longer
 * the more it flaps, never longer than `maxHoldMs` after its last flap.
 *
 * Pure: the time is passed in, so the tracker's clock (and fake timers in
 * tests) decide.
 */

export interface DampingOptions {
  /** Penalty earned by each failure (default 1000). */
  penalty?: number;
  /** A recovery with a penalty at or above this is held down (default 2500: the third flap in quick succession). */
  suppress?: number;
  /** A held next hop is released once its penalty has decayed to this (default 1000). */
  reuse?: number;
  /** The penalty halves in this time (default 15 s). */
  halfLifeMs?: number;
  /** A hold never lasts longer than this after the last failure (default 60 s); it also caps the penalty. */
  maxHoldMs?: number;
}

export type DampingSettings = Required<DampingOptions>;

export const DEFAULT_DAMPING: DampingSettings = { penalty: 1000, suppress: 2500, reuse: 1000, halfLifeMs: 15_000, maxHoldMs: 60_000 };

/** Damping off: every recovery counts at once. */
export const NO_DAMPING: DampingSettings = { penalty: 0, suppress: Infinity, reuse: 0, halfLifeMs: 15_000, maxHoldMs: 0 };

export class FlapDamping {
  private value = 0;
  private at = 0;
  /** Failures since tracking began (for show and metrics). */
  flaps = 0;
  /** Held down until this time (0: not held). */
  heldUntil = 0;

  constructor(private readonly d: DampingSettings) {}

  /** The penalty at `now`, decayed. */
  penaltyAt(now: number): number {
    if (this.value === 0) return 0;
    return this.value * Math.pow(0.5, Math.max(0, now - this.at) / this.d.halfLifeMs);
  }

  /** The next hop failed at `now`. */
  failed(now: number): void {
    this.flaps++;
    // The ceiling: a penalty that takes exactly maxHoldMs to decay to reuse.
    const ceiling = this.d.reuse * Math.pow(2, this.d.maxHoldMs / this.d.halfLifeMs);
    this.value = Math.min(this.penaltyAt(now) + this.d.penalty, Math.max(ceiling, this.d.penalty));
    this.at = now;
  }

  /**
   * The next hop is usable again at `now`: returns 0 when it may be used at
   * once, else the time until which it is held down (also kept in heldUntil).
   */
  recovered(now: number): number {
    const p = this.penaltyAt(now);
    if (p < this.d.suppress || this.d.maxHoldMs === 0) {
      this.heldUntil = 0;
      return 0;
    }
    const wait = Math.min(this.d.maxHoldMs, Math.ceil(this.d.halfLifeMs * Math.log2(p / Math.max(this.d.reuse, 1e-9))));
    this.heldUntil = now + Math.max(1, wait);
    return this.heldUntil;
  }

  /** Whether a hold is still on at `now` (ends it when it is over). */
  holding(now: number): boolean {
    if (this.heldUntil === 0) return false;
    if (now >= this.heldUntil) {
      this.heldUntil = 0;
      return false;
    }
    return true;
  }
}
