/**
 * Feeder: a feed-only reader (BIRD's feed-only export request).
 *
 * On the consumer's first next() it snapshots the nets that pass its
 * prefilter with their chains, sorted (IPv4 first, then address, then
 * length), and walks them in batches. Chains are copy-on-write, so the feed
 * is a consistent picture of the table at that moment, however long the walk
 * takes and whatever writers do meanwhile. The feeder never reads the
 * journal, never holds up trimming, and ends after the last net.
 *
 * If the exporter stops, the last batch holds a stop item: a consumer tells
 * "walked everything" (iteration ends with no stop) from "cut short".
 */
import { BatchPump, type BatchSource } from './batch-pump';
import type { ExporterCore, ReaderOptions } from './reader-core';
import type { FeederItem, StopItem } from './items';
import type { NetWalk } from './net-store';
import type { NetFilter, Prefilter } from './prefilter';

export type FeederState = 'down' | 'feeding' | 'done' | 'stopped' | 'closed';

export interface FeederOptions extends ReaderOptions {
  prefilter?: Prefilter;
}

export class Feeder implements AsyncIterableIterator<readonly FeederItem[]>, BatchSource<FeederItem> {
  private _state: FeederState = 'down';
  private walk: NetWalk | undefined;
  private stopItem: StopItem | undefined;
  private ended = false;
  private readonly batchSize: number;
  private readonly pump = new BatchPump<FeederItem>(this);

  constructor(
    private readonly exporter: ExporterCore,
    private readonly filter: NetFilter | undefined,
    options: FeederOptions,
  ) {
    this.batchSize = Math.max(1, options.batchSize ?? 1024);
  }

  get state(): FeederState {
    return this._state;
  }

  /** Why the feed was cut short (after a stop item), else undefined. */
  get stopReason(): string | undefined {
    return this.stopItem?.reason;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<readonly FeederItem[], undefined>> {
    if (this._state === 'down') this.start();
    return this.pump.next();
  }

  return(): Promise<IteratorResult<readonly FeederItem[], undefined>> {
    this.close();
    return Promise.resolve({ done: true, value: undefined });
  }

  close(): void {
    if (this._state === 'down' || this._state === 'feeding') this._state = 'closed';
    this.exporter.detach(this);
    this.pump.finish();
  }

  stop(reason: string): void {
    if (this._state !== 'down' && this._state !== 'feeding') return;
    this._state = 'stopped';
    this.walk = undefined;
    this.stopItem = { kind: 'stop', reason };
    this.pump.wake(0);
  }

  hasWork(): boolean {
    return this.ended || this.stopItem !== undefined || this.walk !== undefined;
  }

  take(): readonly FeederItem[] | null {
    if (this.ended) return null;
    if (this.stopItem !== undefined) {
      this.ended = true;
      return [this.stopItem];
    }
    const walk = this.walk;
    if (walk === undefined) return [];
    const out: FeederItem[] = [];
    const seq = this.exporter.journal.end;
    while (out.length < this.batchSize && walk.advance()) {
      const item = this.exporter.feedFromWalk(walk, seq);
      if (item.routes.length > 0) out.push(item);
    }
    if (walk.done) {
      this.walk = undefined;
      this.ended = true;
      this._state = 'done';
      this.exporter.detach(this);
      if (out.length === 0) return null;
    }
    return out;
  }

  private start(): void {
    this._state = 'feeding';
    this.exporter.attach(this);
    if (this.exporter.stopReason !== undefined) return this.stop(this.exporter.stopReason);
    this.walk = this.exporter.store.walk(this.filter, undefined, true);
  }
}
