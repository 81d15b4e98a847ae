/**
 * ExportWalk: the kernel protocol's reader of its export request on the
 * table, turning each item into the wanted route of a net in its family's
 * sync (ExportDecider: filter, usable next hops, failover's backup).
 *
 * One request: `best`, or `all` when the chain of a net is read (merge_paths
 * keeps every route per net here, best first; failover reads the table's
 * chain again per update). Feeds and updates become wants; `refeed` and
 * `ready` bracket a refeed's mark-and-sweep in the syncs; `stop` ends the
 * walk, leaving the routes until a restart.
 *
 * Invariants: start() resolves at the first `ready` and rejects if the walk
 * ends or fails before it (a prune on a partial feed would delete wanted
 * routes); after stop() no item of the old request reaches a sync; a net
 * exported again (reexportNet, next-hop changes) is read from the table as
 * it is now, so exporting it twice is idempotent.
 */
import type { Family, Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import type { NetKey, Route } from '../../route';
import { orderRoutes } from '../../route';
import type { ExportItem, FeedRun, Prefilter } from '../../table';
import type { ExportChannel } from '../channel';
import type { Logger } from '../logger';
import type { ExportTable } from '../table-port';
import { ExportDecider } from './export-decide';
import type { ExportDecision } from './export-memo';
import type { KernelSync } from './kernel-sync';

/** start() could not reach a first sync; nothing was changed in the kernel. */
export class KernelStartError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_KERNEL_START', message);
  }
}

/** What the walk shares with its protocol. */
export interface ExportWalkContext {
  /** The protocol's name, in the request's name. */
  readonly name: string;
  readonly table: ExportTable;
  readonly channel: ExportChannel;
  readonly syncs: ReadonlyMap<Family, KernelSync>;
  /** Failover reads each net's whole chain (the `all` exporter) to know its next-best route; not with merge_paths. */
  readonly chainsRead: boolean;
  readonly log: Logger;
}

type Subscription = AsyncIterableIterator<readonly ExportItem[]> & { close?(): void; refeed?(reason: string): void };

const NO_ROUTES: readonly Route[] = Object.freeze([]);

export class ExportWalk {
  private subscription: Subscription | undefined;
  private walkDone: Promise<void> | undefined;
  /** Settles the first feed: resolve at `ready`; reject when the walk ends or fails before it. */
  private firstFeed: { resolve: () => void; reject: (e: Error) => void } | undefined;
  /** With merge_paths: every route per net, best first. */
  private readonly chains = new Map<NetKey, Route[]>();
  private readonly oneRoute: Route[] = [];
  private readonly decider: ExportDecider;

  constructor(private readonly ctx: ExportWalkContext) {
    this.decider = new ExportDecider(ctx.channel, ctx.table, ctx.chainsRead);
  }

  /** Subscribes and reads on; resolves at the first `ready`, rejects if the walk ends or fails before it. */
  start(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => (this.firstFeed = { resolve, reject }));
    const { syncs, channel, table } = this.ctx;
    // One family: a family prefilter (no Prefix built per net or journal item to test it).
    const only = syncs.size === 1 ? [...syncs.keys()][0] : undefined;
    const prefilter: Prefilter | undefined = only !== undefined ? { kind: 'family', family: only } : undefined;
    const exporter = channel.mergePaths || this.ctx.chainsRead ? table.all : table.best;
    // Feeds as runs of words: no item or Prefix per net of a first feed (FeedRun).
    const sub = exporter.subscribe({ name: `kernel ${this.ctx.name}`, ...(prefilter ? { prefilter } : {}), batchSize: 4096, feedRuns: true });
    this.subscription = sub;
    this.walkDone = this.walk(sub).then(
      () => this.failFirstFeed(new KernelStartError('the export request ended before its first feed was complete (the table stopped?)')),
      (e: unknown) => {
        this.ctx.log.error(`export walk failed: ${(e as Error).message}`);
        this.failFirstFeed(e instanceof Error ? e : new Error(String(e)));
      },
    );
    return ready;
  }

  /** Whether the request is being read, or its first feed is still awaited. */
  get reading(): boolean {
    return this.subscription !== undefined || this.firstFeed !== undefined;
  }

  /** Resolves once the walk has ended (after stop()). */
  get done(): Promise<void> | undefined {
    return this.walkDone;
  }

  /** Every net is judged again (a new export filter). */
  refeed(reason: string): void {
    this.subscription?.refeed?.(reason);
  }

  private async walk(sub: AsyncIterable<readonly ExportItem[]>): Promise<void> {
    const { syncs, channel, table, log } = this.ctx;
    for await (const batch of sub) {
      if (this.subscription !== sub) return;
      // A source filling the table said how many nets it brings: room for them at once.
      if (this.firstFeed !== undefined) for (const [family, sync] of syncs) sync.reserve(table.sizeHint(family));
      for (const item of batch) {
        switch (item.kind) {
          case 'feed':
            if (channel.mergePaths) this.chains.set(item.net.key(), [...item.routes]);
            this.exportNet(item.net, item.routes);
            break;
          case 'feeds':
            this.exportRun(item);
            break;
          case 'update':
            if (channel.mergePaths) this.exportNet(item.net, this.applyToChain(item.net, item.old, item.new));
            else if (this.ctx.chainsRead) this.exportNet(item.net, table.routes(item.net)); // the chain now: later items read it again
            else if (item.new) {
              // One scratch array for the one route of an update (exportNet keeps nothing of it).
              this.oneRoute[0] = item.new;
              this.exportNet(item.net, this.oneRoute);
            } else this.exportNet(item.net, NO_ROUTES);
            break;
          case 'ready':
            for (const sync of syncs.values()) sync.refeedEnd();
            this.firstFeed?.resolve();
            this.firstFeed = undefined;
            break;
          case 'refeed':
            log.info(`refeed: ${item.reason}`);
            // A refeed lists every net that has routes: any other net we export has none by its end.
            for (const sync of syncs.values()) sync.refeedBegin();
            break;
          case 'stop':
            // Before the first `ready` this fails start (pruning on a partial feed would delete wanted routes).
            log.warn(`table stopped exporting (${item.reason}); routes stay until restart`);
            return;
          default: {
            const never: never = item;
            throw new Error(`unknown export item ${JSON.stringify(never)}`);
          }
        }
      }
    }
  }

  private applyToChain(net: Prefix, old: Route | undefined, neu: Route | undefined): readonly Route[] {
    const key = net.key();
    let chain = this.chains.get(key) ?? [];
    if (old) chain = chain.filter((r) => r.src !== old.src);
    if (neu) chain = orderRoutes([...chain.filter((r) => r.src !== neu.src), neu]);
    if (chain.length) this.chains.set(key, chain);
    else this.chains.delete(key);
    return chain;
  }

  private exportNet(net: Prefix, routes: readonly Route[]): void {
    const sync = this.ctx.syncs.get(net.family);
    if (!sync) return;
    const d = this.decider.decide(net, routes);
    sync.setWanted(net, d.attrs, d.set, d.source, d.backup, d.held);
  }

  /** A run of feeds: each net's want set by its words (a Prefix only where a decision reads the net). */
  private exportRun(run: FeedRun): void {
    const sync = this.ctx.syncs.get(run.family);
    if (!sync) return;
    if (!this.ctx.channel.mergePaths) return sync.setWantedRun(run, this.decideAt);
    for (let i = 0; i < run.n; i++) {
      const net = run.net(i);
      this.chains.set(net.key(), [...run.routes[i]!]);
      this.exportNet(net, run.routes[i]!);
    }
  }

  private readonly decideAt = (run: FeedRun, i: number): ExportDecision => this.decider.decideAt(run, i);

  /** One net of a next-hop change, exported from the table as it is now. */
  reexportNet(net: Prefix): void {
    const table = this.ctx.table;
    if (this.ctx.channel.mergePaths) this.exportNet(net, this.chains.get(net.key()) ?? NO_ROUTES);
    else if (this.ctx.chainsRead) this.exportNet(net, table.routes(net));
    else this.exportNet(net, table.bestRoute(net)?.alone ?? NO_ROUTES);
  }

  /** The first feed cannot complete: start() fails instead of pruning on a partial feed. */
  private failFirstFeed(e: Error): void {
    const f = this.firstFeed;
    this.firstFeed = undefined;
    f?.reject(e);
  }

  /** Ends the request: nothing of it reaches a sync afterwards. */
  stop(): void {
    const sub = this.subscription;
    this.subscription = undefined;
    if (sub) {
      sub.close?.();
      void sub.return?.();
    }
  }

  /** The export memos' lookups so far, both families (tests; export-memo.ts). */
  memoStats(): { hits: number; misses: number } {
    return this.decider.memoStats();
  }
}
