/**
 * BatchPump: the async-iterator side of a reader, shared by export requests
 * and feeders.
 *
 * The consumer pulls with `for await (const batch of reader)`. A run (driven
 * by a RunScheduler, see src/lib/run-scheduler.ts) takes one batch from the
 * reader synchronously, hands it to the waiting consumer, and then lasts
 * until the consumer asks for the next batch. Writes that land meanwhile
 * request a run; the scheduler turns that into the next run, so they are
 * picked up without any further write (no lost wakeups).
 *
 * Holding the run open while the consumer works also gives the reader one
 * batch in flight at a time: a slow consumer is simply behind in the journal,
 * where the fell-behind bound deals with it.
 */
import { RunScheduler } from '../lib/run-scheduler';

export interface BatchSource<T> {
  /**
   * Takes the next batch, synchronously. An empty batch means nothing to hand
   * out now (the reader waits for a write); null means the reader has ended.
   */
  take(): readonly T[] | null;
  /** True when take() would return something now (including the end). */
  hasWork(): boolean;
}

type Waiter<T> = { resolve: (r: IteratorResult<readonly T[], undefined>) => void; reject: (e: unknown) => void };

export class BatchPump<T> {
  private waiter: Waiter<T> | undefined;
  /** Ends the current run: called when the consumer comes back for more, or leaves. */
  private endRun: (() => void) | undefined;
  private finished = false;
  private readonly scheduler = new RunScheduler(() => this.run());

  constructor(private readonly source: BatchSource<T>) {}

  get isFinished(): boolean {
    return this.finished;
  }

  /** Something changed for this reader: take a batch after `delayMs` (the settle delay). */
  wake(delayMs = 0): void {
    this.scheduler.request(delayMs);
  }

  next(): Promise<IteratorResult<readonly T[], undefined>> {
    this.releaseRun();
    if (this.finished) return Promise.resolve({ done: true, value: undefined });
    if (this.waiter !== undefined) return Promise.reject(new Error('reader: next() called again before the previous batch arrived'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      if (this.source.hasWork()) this.scheduler.request(0);
    });
  }

  /** Ends iteration: the consumer's pending next() (if any) resolves done. Idempotent. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.scheduler.close();
    this.releaseRun();
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve({ done: true, value: undefined });
  }

  private releaseRun(): void {
    const end = this.endRun;
    this.endRun = undefined;
    end?.();
  }

  private async run(): Promise<void> {
    const waiter = this.waiter;
    if (waiter === undefined || this.finished) return; // nobody asking; next() requests a run itself
    let batch: readonly T[] | null;
    try {
      batch = this.source.take();
    } catch (err) {
      this.waiter = undefined;
      this.finish();
      waiter.reject(err);
      return;
    }
    if (batch === null) {
      this.finish();
      return;
    }
    if (batch.length === 0) return;
    this.waiter = undefined;
    // Leftovers (batch limit, a feed in progress) get the next run without waiting for a write.
    if (this.source.hasWork()) this.scheduler.request(0);
    await new Promise<void>((release) => {
      this.endRun = release;
      waiter.resolve({ done: false, value: batch });
    });
  }
}
