/**
 * Exponential backoff with jitter, and a token bucket: the two tools that keep
 * retries and repairs from turning into hot loops.
 *
 * Backoff: attempt n (1-based) waits base * 2^(n-1), capped at max, with up to
 * `jitter` of it taken off at random so many routes failing together do not
 * retry in lockstep. Pure given the random source, so tests pass their own.
 *
 * TokenBucket: `capacity` tokens, refilled at `ratePerSec`; take() says
 * whether an action may run now. Time comes from a clock function so tests
 * drive it by hand.
 */
export interface BackoffPolicy {
  /** First delay, milliseconds. */
  readonly baseMs: number;
  /** Largest delay, milliseconds. */
  readonly maxMs: number;
  /** Fraction of the delay (0..1) that may be taken off at random. */
  readonly jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 1000, maxMs: 300_000, jitter: 0.2 });

/** Delay before retry number `attempt` (1 = first retry). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exp = Math.min(Math.max(attempt, 1) - 1, 40);
  const full = Math.min(policy.maxMs, policy.baseMs * 2 ** exp);
  return Math.round(full * (1 - policy.jitter * random()));
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly capacity: number,
    readonly ratePerSec: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = capacity;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.ratePerSec);
    this.last = t;
  }

  /** Takes `n` tokens when there are enough; false (and nothing taken) otherwise. */
  take(n = 1): boolean {
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Milliseconds until `n` tokens are available (0: now). */
  waitMs(n = 1): number {
    this.refill();
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) / this.ratePerSec) * 1000);
  }
}
