/**
 * RunScheduler: run an async job on request, one run at a time, never losing
 * a request.
 *
 * request() asks for a run. Three cases:
 *  - idle: schedule a run (setImmediate, or setTimeout when a delay is given,
 *    so a burst of requests within the delay is served by one run);
 *  - scheduled: nothing to do, the coming run has not started and will see
 *    whatever state the requester changed;
 *  - running: remember the request. When the run ends, a remembered request
 *    schedules the next run.
 *
 * The third case is the one that matters. The naive scheduler ("if scheduled
 * or running, do nothing") loses a request that lands while the job is
 * running: the job already looked at the state before the change, and no run
 * follows, so the change waits for a wakeup that may never come (a lost
 * wakeup). The run is async (a reader's run lasts until its consumer is done
 * with the batch), so such requests are the normal case, not a corner case.
 *
 * Runs start from setImmediate, never a microtask: a reader that always has
 * work still lets I/O (and so the table's writers) run between its batches.
 */
export type RunPhase = 'idle' | 'scheduled' | 'running';

export class RunScheduler {
  private phase: RunPhase = 'idle';
  /** A request came during the current run; its delay (the smallest asked). */
  private requestedDuringRun: number | undefined;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly job: () => void | Promise<void>,
    /** Called with whatever the job throws; the scheduler keeps working. */
    private readonly onError: (err: unknown) => void = (err) => {
      queueMicrotask(() => {
        throw err;
      });
    },
    /** Called when a run ends and no other is due (the scheduler is idle). */
    private readonly onIdle?: () => void,
  ) {}

  get state(): RunPhase {
    return this.phase;
  }

  /** Ask for a run at least `delayMs` from now (0: as soon as the event loop turns). */
  request(delayMs = 0): void {
    if (this.closed) return;
    switch (this.phase) {
      case 'idle':
        this.schedule(delayMs);
        return;
      case 'scheduled':
        return;
      case 'running':
        this.requestedDuringRun = Math.min(this.requestedDuringRun ?? delayMs, delayMs);
        return;
    }
  }

  /** No more runs: a scheduled one is cancelled, a running one finishes. Idempotent. */
  close(): void {
    this.closed = true;
    this.requestedDuringRun = undefined;
    if (this.phase === 'scheduled') {
      clearImmediate(this.timer as NodeJS.Immediate);
      clearTimeout(this.timer as NodeJS.Timeout);
      this.phase = 'idle';
    }
  }

  private schedule(delayMs: number): void {
    this.phase = 'scheduled';
    this.timer = delayMs > 0 ? setTimeout(() => void this.fire(), delayMs) : setImmediate(() => void this.fire());
  }

  private async fire(): Promise<void> {
    this.phase = 'running';
    this.timer = undefined;
    try {
      await this.job();
    } catch (err) {
      this.onError(err);
    }
    this.phase = 'idle';
    // The re-check the naive scheduler lacks: a request during the run gets its run now.
    const again = this.requestedDuringRun;
    this.requestedDuringRun = undefined;
    if (again !== undefined && !this.closed) this.schedule(again);
    else this.onIdle?.();
  }
}
