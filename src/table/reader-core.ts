/**
 * What an exporter and its readers know of each other, and nothing more:
 * readers (export-request.ts, feeder.ts) use an ExporterCore, the exporter
 * (exporter.ts) attaches them as Readers. Kept apart so the imports point
 * one way: exporter.ts -> the readers -> this.
 */
import type { NetKey, Route } from '../route/route';
import type { FeedItem } from './items';
import type { Journal } from './journal';
import type { NetStore, NetWalk } from './net-store';

export type ExporterKind = 'best' | 'all';

export interface ReaderOptions {
  /** Items per batch (default 1024). A squash may add a few. */
  batchSize?: number;
}

/** A reader as its exporter sees it: an export request or a feeder. */
export interface Reader {
  /** The exporter stopped: hand the reader a stop item. */
  stop(reason: string): void;
}

/** What readers use of their exporter. */
export interface ExporterCore {
  readonly kind: ExporterKind;
  readonly journal: Journal;
  readonly store: NetStore;
  readonly stopReason: string | undefined;
  /** A fill is in progress (Table.beginFill): a first feed is not over before its end. */
  readonly filling: boolean;
  /** Current routes of a net as this exporter shows them (`best`: at most one). */
  routesOf(key: NetKey): readonly Route[];
  /** A feed item of the net's current routes, reflecting the journal below `seq`. */
  feedOf(key: NetKey, seq: number): FeedItem;
  feedFromWalk(walk: NetWalk, seq: number): FeedItem;
  /** The walk's current net's routes (a feed run's entry: no item made). */
  routesAt(walk: NetWalk): readonly Route[];
  attach(reader: Reader): void;
  detach(reader: Reader): void;
  trim(): void;
}
