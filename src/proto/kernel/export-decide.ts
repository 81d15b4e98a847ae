/**
 * ExportDecider: what the kernel protocol wants for a net, from its chain
 * (the table's routes, best first): the channel's verdict on the best route
 * with only its usable next hops (next-hop tracking), and with failover the
 * next-best route (the backup) and a better route the tracker holds unusable.
 *
 * Decisions are kept per chain content (export-memo.ts) when they cannot
 * depend on the net: the filter matches no prefixes (filterReadsNet, asked
 * once per filter) and there is no merge_paths (its merged attrs are made
 * per net). Otherwise every net is decided on its own, as before the memo.
 */
import type { Prefix } from '../../lib/addr';
import type { NextHopSet, Route, RouteAttrs } from '../../route';
import type { ExportChannel } from '../channel';
import { filterReadsNet, type ExportFilter } from '../filter';
import type { ExportTable } from '../table-port';
import type { FeedRun } from '../../table';
import { ExportMemo, type ExportDecision } from './export-memo';

/** The want of a net without routes. */
const NOTHING: ExportDecision = Object.freeze({ attrs: undefined, set: undefined, source: undefined, backup: undefined, held: undefined, accepted: 0, rejected: 0 });

export class ExportDecider {
  /** A route's attrs with only its usable next hops, per (attrs, usable set). */
  private readonly reduced = new WeakMap<RouteAttrs, { set: NextHopSet; attrs: RouteAttrs }>();
  /** Per family (IPv4, IPv6): a filter may match `family`. */
  private readonly memos = [new ExportMemo(), new ExportMemo()];
  /** Whether the memos may be used with `memoFilter`: it matches no prefixes. */
  private memoFilter: ExportFilter | undefined;
  private memoSafe = false;

  constructor(
    private readonly channel: ExportChannel,
    private readonly table: ExportTable,
    /** Failover reads each net's whole chain for its next-best route (not with merge_paths). */
    private readonly chainsRead: boolean,
  ) {}

  decide(net: Prefix, chain: readonly Route[]): ExportDecision {
    return this.known(net.family, chain) ?? this.fresh(net, chain);
  }

  /** decide() for net i of a feed run: its Prefix is made only when no memo can answer. */
  decideAt(run: FeedRun, i: number): ExportDecision {
    const chain = run.routes[i]!;
    return this.known(run.family, chain) ?? this.fresh(run.net(i), chain);
  }

  /** The decision a chain needs no net for: none for no routes, or the memo's (counted as a net decided); else undefined. */
  private known(family: 4 | 6, chain: readonly Route[]): ExportDecision | undefined {
    if (chain.length === 0) return NOTHING;
    const hit = this.memoOf(family)?.get(chain, this.channel.filter, this.table.nexthops?.changes ?? 0);
    if (hit === undefined) return undefined;
    const counters = this.channel.counters;
    counters.accepted += hit.accepted;
    counters.rejected += hit.rejected;
    return hit;
  }

  private fresh(net: Prefix, chain: readonly Route[]): ExportDecision {
    const d = this.make(net, chain);
    this.memoOf(net.family)?.set(chain, d);
    return d;
  }

  /** The family's memo when decisions may be kept (the filter matches no prefixes, no merge_paths). */
  private memoOf(family: 4 | 6): ExportMemo | undefined {
    const filter = this.channel.filter;
    if (filter !== this.memoFilter) {
      this.memoFilter = filter;
      this.memoSafe = !filterReadsNet(filter);
    }
    return this.memoSafe && !this.channel.mergePaths ? this.memos[family === 4 ? 0 : 1] : undefined;
  }

  /** The memos' lookups so far (tests). */
  memoStats(): { hits: number; misses: number } {
    return { hits: this.memos[0]!.hits + this.memos[1]!.hits, misses: this.memos[0]!.misses + this.memos[1]!.misses };
  }

  private make(net: Prefix, chain: readonly Route[]): ExportDecision {
    const counters = this.channel.counters;
    const accepted = counters.accepted;
    const rejected = counters.rejected;
    const table = this.table;
    const nh = table.nexthops;
    const chainsRead = this.chainsRead;
    // merge_paths and failover read every route: only eligible ones may add their next hops or stand behind the best.
    let routes = chain;
    // No copy of the chain when every route is eligible (nearly always).
    if (nh && (this.channel.mergePaths || chainsRead) && !routes.every(table.eligible)) routes = routes.filter(table.eligible);
    const out = this.channel.exportNet(net, routes);
    const attrs = out && nh ? this.usableOnly(out.attrs) : out?.attrs;
    if (!out || !attrs) return { ...NOTHING, accepted: counters.accepted - accepted, rejected: counters.rejected - rejected };
    const next = chainsRead && routes.length > 1 ? this.channel.backupOf(net, routes, out.source) : undefined;
    const backupAttrs = next && nh ? this.usableOnly(next.attrs) : next?.attrs;
    // A better route held unusable by next-hop tracking: the net stays on the object held for it (its return is one replace).
    const held = chainsRead && nh && chain.length > routes.length ? this.channel.heldOf(net, chain, out.source, table.eligible) : undefined;
    return {
      attrs,
      set: out.set,
      source: out.source.name,
      backup: backupAttrs && { attrs: backupAttrs, source: next!.src.name },
      held: held && { attrs: held.attrs, source: held.src.name },
      accepted: counters.accepted - accepted,
      rejected: counters.rejected - rejected,
    };
  }

  /** `attrs` with only the next hops that can be used now (itself when all can); undefined when none can. */
  private usableOnly(attrs: RouteAttrs): RouteAttrs | undefined {
    const set = attrs.nexthops;
    if (set === undefined) return attrs;
    const usable = this.table.nexthops!.usableHops(set);
    if (usable === set || usable === undefined) return usable && attrs;
    const cached = this.reduced.get(attrs);
    if (cached?.set === usable) return cached.attrs;
    const r = attrs.with({ nexthops: usable });
    this.reduced.set(attrs, { set: usable, attrs: r });
    return r;
  }
}
