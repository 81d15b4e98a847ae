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
 *  - feeds: feeds of many nets of one family as a run of address words and
 *    lengths, each with its routes: what a request asked for with `feedRuns`
 *    gets in place of a feed item per net the walk hands out (no item or
 *    Prefix per net: a first feed of a million nets made 140 bytes of garbage
 *    a net). The same promises as `feed`, per net.
 *  - ready: the feed phase is over: every net has been fed at least once.
 *  - refeed: the reader fell behind (or asked for it): a full feed follows,
 *    then ready. Items stay self-contained: no state needs to be thrown away.
 *  - stop: the exporter stopped; the last item. Resubscribe elsewhere.
 */
import { Prefix } from '../lib/addr';
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

/**
 * Feeds of `n` nets of one family, in walk order: net i is words[i * stride ..] (host order, host
 * bits clear; stride 1 for IPv4, 4 for IPv6) with length lens[i], and has routes[i] (best first;
 * empty only in a refeed, as a feed item's). The arrays are the reader's, as the batch is.
 */
export class FeedRun {
  readonly kind = 'feeds';
  readonly stride: 1 | 4;
  n = 0;
  readonly words: Int32Array;
  readonly lens: Uint8Array;
  readonly routes: (readonly Route[])[];

  constructor(
    readonly family: 4 | 6,
    capacity: number,
    readonly seq: number,
  ) {
    this.stride = family === 4 ? 1 : 4;
    this.words = new Int32Array(capacity * this.stride);
    this.lens = new Uint8Array(capacity);
    // Its room at once: a pushed array grows by copies (a quarter of a first feed's garbage).
    this.routes = new Array<readonly Route[]>(capacity);
  }

  /** Net i as a Prefix (made on each call: for the few that need one). */
  net(i: number): Prefix {
    if (this.stride === 1) return new Prefix(4, this.lens[i]!, this.words[i]!);
    const k = i * 4;
    return new Prefix(6, this.lens[i]!, this.words[k]!, this.words[k + 1]!, this.words[k + 2]!, this.words[k + 3]!);
  }
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

export type ExportItem = UpdateItem | FeedItem | FeedRun | ReadyItem | RefeedItem | StopItem;
export type FeederItem = FeedItem | StopItem;

export const READY: ReadyItem = Object.freeze({ kind: 'ready' });
