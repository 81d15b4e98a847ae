/**
 * Test helper: pulls batches from a reader one at a time and tells "a batch
 * arrived" from "nothing comes now" (idle) without cancelling the pending
 * next(): readers run from setImmediate, so a few event-loop turns without a
 * batch mean the reader has nothing to hand out.
 */
import type { ReaderView } from './reader-view';
import type { ExportItem, FeederItem } from '../../../src/table/items';

type Item = ExportItem | FeederItem;

export const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

export class Puller<T extends Item> {
  private pending: Promise<IteratorResult<readonly T[], undefined>> | undefined;
  private settled: IteratorResult<readonly T[], undefined> | undefined;
  done = false;

  constructor(private readonly reader: AsyncIterator<readonly T[], undefined>) {}

  /** The next batch, 'idle' if none comes within `wait` turns, or 'done'. */
  async poll(wait = 6): Promise<readonly T[] | 'idle' | 'done'> {
    if (this.done) return 'done';
    if (this.pending === undefined) {
      this.settled = undefined;
      const p = this.reader.next();
      this.pending = p;
      void p.then((r) => {
        if (this.pending === p) this.settled = r;
      });
    }
    for (let i = 0; i < wait && this.settled === undefined; i++) await turns(1);
    const r = this.settled;
    if (r === undefined) return 'idle';
    this.pending = undefined;
    this.settled = undefined;
    if (r.done) {
      this.done = true;
      return 'done';
    }
    return r.value;
  }

  /** Pulls until idle or done, applying every batch to `view`; returns the batches. */
  async drain(view?: ReaderView, wait = 6): Promise<(readonly T[])[]> {
    const got: (readonly T[])[] = [];
    for (;;) {
      const b = await this.poll(wait);
      if (b === 'idle' || b === 'done') return got;
      view?.apply(b);
      got.push(b);
    }
  }
}
