/**
 * What readers receive: a tagged union, handled with an exhaustive switch.
 *
 * An export request yields batches (arrays) of ExportItem; a feeder yields
 * batches of FeederItem. A batch is handed over synchronously and is the
 * reader's to keep; the next batch is prepared when the reader asks for it.
 *
 *  - update: a change of one net since the reader's last item for it.
 *    `best`: old and new best route; `all`: old and new route of one source.
 *    undefined means none. Consecutive changes the reader had not yet taken
 *    are squashed (old of the first, new of the last); `seq` is the last.
 *  - feed: the complete current routes of a net (best first; for `best`, at
 *    most one), replacing whatever the reader knew about it. An empty list
 *    says the net has no routes (sent during a refeed, for nets that may have
 *    disappeared). The feed reflects every change with seq below `seq`.
 *  - ready: the feed phase is over: every net has been fed at least once.
 *  - refeed: the reader fell behind (or asked for it): a full feed follows,
 *    then ready. Items stay self-contained: no state needs to be thrown away.
 *  - stop: the exporter stopped; the last item. Resubscribe elsewhere.
 */
import type { Prefix } from '../lib/addr';
import type { Route } from '../route/route';

export interface UpdateItem {
  readonly kind: 'update';
  readonly seq: number;
  readonly net: Prefix;
  readonly old: Route | undefined;
  readonly new: Route | undefined;
}

export interface FeedItem {
  readonly kind: 'feed';
  readonly net: Prefix;
  readonly routes: readonly Route[];
  readonly seq: number;
}

/**
 * A FeedItem made with `new`, not as an object literal. A literal's allocation site is tracked for
 * pretenuring, and a feed batch is alive whole whenever a scavenge comes during it: V8 then made
 * every later feed item (and the Prefix it holds) in the old generation, where they died, a full
 * collection every 100-200 ms of a million-net first feed (docs/benchmarks.md, Round 13).
 */
export class Feed implements FeedItem {
  readonly kind = 'feed';
  constructor(
    readonly net: Prefix,
    readonly routes: readonly Route[],
    readonly seq: number,
  ) {}
}

export interface ReadyItem {
  readonly kind: 'ready';
}

export interface RefeedItem {
  readonly kind: 'refeed';
  readonly reason: string;
}

export interface StopItem {
  readonly kind: 'stop';
  readonly reason: string;
}

export type ExportItem = UpdateItem | FeedItem | ReadyItem | RefeedItem | StopItem;
export type FeederItem = FeedItem | StopItem;

export const READY: ReadyItem = Object.freeze({ kind: 'ready' });
