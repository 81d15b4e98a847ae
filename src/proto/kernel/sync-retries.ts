/**
 * SyncRetries: one sender's routes that wait for a retry, when each is due,
 * and the reset that makes them all due at once.
 *
 * A refusal is recorded with its errno and the kernel's text (the route's
 * status, the log, rate-limited by errno) and waits out the sync's backoff,
 * doubling per attempt: never a hot loop, and other nets never wait for it.
 * A repair that keeps being undone waits here too (sync-notices.ts).
 *
 * Invariants:
 *  - a route is in `failed` while it waits; the tick (due) queues it once its
 *    time has come and nothing of ours for it is out;
 *  - a reset (a link or address back, a next hop usable again) makes every
 *    waiting route due now with no attempt counted, and the nexthop objects'
 *    refusals too (NexthopObjects.resetBackoff);
 *  - the reset also covers refusals still out when it came: a change sent
 *    before the latest reset (the sender notes `resets` when it submits) may
 *    have been refused before its cause went, and its answer read after
 *    (the pipeline drains notifications before it handles answers). Its refusal is
 *    recorded as reset, due now; the retry goes out after the reset, so a
 *    second refusal backs off as usual: one extra try per reset, at most.
 */
import { DEFAULT_BACKOFF, backoffDelay, type BackoffPolicy } from '../../lib/backoff';
import { KrtError } from '../../lib/errors';
import { NetlinkRequestError } from '../../netlink/errors';
import type { RateLimitedLog } from '../logger';
import type { KernelRoutes } from './kernel-routes';
import type { NhObject } from './nexthop-objects';
import type { RouteStore } from './route-store';
import type { RouteError } from './route-status';
import type { SyncCmd } from './sync-batch';

/** What the retries share with their sender (a part of its SenderContext). */
export interface RetryContext {
  readonly store: RouteStore;
  readonly routes: KernelRoutes;
  readonly stats: { failed: number };
  readonly limited: RateLimitedLog;
  readonly table: number;
  readonly protocol: number;
  readonly backoff: BackoffPolicy | undefined;
}

export class SyncRetries {
  /** Routes that failed or wait for a repair's backoff: due() queues them when their time comes. */
  readonly failed = new Set<number>();
  private resetCount = 0;

  constructor(private readonly c: RetryContext) {}

  /** Resets so far: a change sent now is answered before or after the next one. */
  get resets(): number {
    return this.resetCount;
  }

  /**
   * A refusal, recorded (status, errno, log) and given its backoff; `beforeReset`: the change went
   * out before the latest reset, which its cause may not have outlived: recorded as reset (no
   * attempt counted, due now), as if it had been answered just before the reset.
   */
  record(id: number, cmd: SyncCmd, err: KrtError, now: number, beforeReset = false): void {
    const c = this.c;
    c.stats.failed++;
    const ne = err instanceof NetlinkRequestError ? err : undefined;
    const error: RouteError = { errno: ne?.errno ?? 0, errnoName: ne?.errnoName ?? err.code, message: err.message };
    if (ne?.extAck) error.extAck = ne.extAck;
    const x = c.store.extraOf(id);
    const delay = beforeReset ? 0 : backoffDelay(c.backoff ?? DEFAULT_BACKOFF, x.attempts + 1);
    x.error = error;
    x.attempts = beforeReset ? 0 : x.attempts + 1;
    x.retryAt = now + delay;
    c.store.setState(id, 'failed');
    c.store.track(id);
    this.failed.add(id);
    const net = c.store.nets.prefix(id).toString();
    c.limited.write('warn', `reject:${error.errnoName}`, `kernel refused ${cmd} ${net}: ${error.errnoName}${error.extAck ? ` (${error.extAck})` : ''}; ${beforeReset ? 'retry now (sent before a link or next hop came back)' : `retry in ${delay} ms`}`, {
      prefix: net,
      table: c.table,
      protocol: c.protocol,
      errno: error.errnoName,
    });
  }

  /** The route's nexthop object is refused by the kernel: the route fails with its reason, and retries with it. */
  objectFailed(id: number, nh: NhObject, now: number): void {
    const e = nh.error;
    const err = e !== undefined && e.errno !== 0 ? new NetlinkRequestError(e.errno, e.extAck, `nexthop object ${nh.id}`) : new KrtError('KRT_ERR_NEXTHOP', `nexthop object ${nh.id}: ${e?.message ?? 'not in the kernel'}`);
    this.c.store.setState(id, 'pending');
    this.record(id, this.c.store.have[id] === 0 ? 'add' : 'replace', err, now);
  }

  /** What made routes fail may be gone: every waiting route, and every refused object, is due now, its backoff reset. */
  reset(now: number): void {
    const store = this.c.store;
    this.resetCount++;
    // Objects refused while their next hop was down may go in now too (a route waits for its object).
    this.c.routes.nexthops.resetBackoff();
    for (const id of this.failed) {
      const x = store.extra(id);
      if (x === undefined || !store.nets.live(id)) continue;
      x.retryAt = Math.min(x.retryAt, now);
      x.attempts = 0;
    }
  }

  /** Each waiting route whose retry is due and which `idle` says has nothing out goes to `queue`; dropped routes are forgotten. */
  due(now: number, idle: (id: number) => boolean, queue: (id: number) => void): void {
    const store = this.c.store;
    for (const id of this.failed) {
      if (!store.nets.live(id)) {
        this.failed.delete(id);
        continue;
      }
      const w = store.want[id]!;
      const at = store.retryAt(id);
      if (at > 0 && at <= now && idle(id) && (w === 0 || this.c.routes.get(w).error === undefined)) queue(id);
    }
  }
}
