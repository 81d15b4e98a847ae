/**
 * ExportMemo: the kernel protocol's export decision per chain content, so
 * that a million nets whose chains are the same shared Route objects (the
 * table makes one Route per source and attribute set) are decided once, not
 * once per net. A carrier loss with next-hop tracking reorders every net on
 * the dead link and the kernel protocol exports each again (docs/failover.md,
 * "Carrier loss"); a churn of one new next hop does the same through the
 * export feed.
 *
 * Key: the chain's Route objects in order, by identity (a trie of Maps, so
 * the caller's array may be a scratch one). Route objects are frozen, so a
 * changed route is a new object and misses. What else a decision reads is
 * checked on every lookup, and the memo empties itself when it moved:
 *  - the export filter (by identity: reconfigure assigns a new one);
 *  - the next-hop tracker's verdicts (NextHopTracker.verdicts counts their
 *    changes: eligibility orders the chain, usable hops trim the attrs);
 *  - the net's family: one memo per family (a filter may match `family`).
 * Invariant: only a decision that does not read the net may be kept: the
 * caller asks filterReadsNet() and bypasses the memo for a filter that
 * matches prefixes (and with merge_paths, whose merged attrs are not kept).
 * Size: at most `limit` chains; past it the memo starts empty again (the
 * Routes it holds would otherwise stay alive after the table dropped them).
 */
import type { Route, RouteAttrs } from '../../route';
import type { ExportFilter } from '../filter';
import type { KernelAttrs } from '../kernel-attrs';
import type { WantedBackup } from './kernel-routes';

/** What the kernel protocol wants for a net with a given chain: KernelSync.setWanted's arguments but the net. */
export interface ExportDecision {
  /** Undefined: nothing to export (the net's route of ours goes). */
  readonly attrs: RouteAttrs | undefined;
  readonly set: KernelAttrs | undefined;
  readonly source: string | undefined;
  readonly backup: WantedBackup | undefined;
  readonly held: WantedBackup | undefined;
  /** What deciding added to the channel's counters (a hit adds them again: they count nets). */
  readonly accepted: number;
  readonly rejected: number;
}

interface Node {
  decision?: ExportDecision;
  next?: Map<Route, Node>;
}

export class ExportMemo {
  private readonly root = new Map<Route, Node>();
  private filter: ExportFilter | undefined;
  private verdicts = -1;
  private size = 0;
  /** For tests and the profile: lookups answered and not. */
  hits = 0;
  misses = 0;

  constructor(private readonly limit = 1 << 16) {}

  /** The decision kept for `chain` (not empty), if the filter and the tracker's verdicts are still those it was made under. */
  get(chain: readonly Route[], filter: ExportFilter, verdicts: number): ExportDecision | undefined {
    if (filter !== this.filter || verdicts !== this.verdicts) {
      this.clear();
      this.filter = filter;
      this.verdicts = verdicts;
    }
    let node = this.root.get(chain[0]!);
    for (let i = 1; node !== undefined && i < chain.length; i++) node = node.next?.get(chain[i]!);
    const d = node?.decision;
    if (d === undefined) this.misses++;
    else this.hits++;
    return d;
  }

  /** Keeps `d` for `chain`; call right after a get() that missed (the filter and verdicts it checked). */
  set(chain: readonly Route[], d: ExportDecision): void {
    if (this.size >= this.limit) this.clear();
    let level = this.root;
    let node: Node | undefined;
    for (let i = 0; i < chain.length; i++) {
      node = level.get(chain[i]!);
      if (node === undefined) level.set(chain[i]!, (node = {}));
      if (i < chain.length - 1) level = node.next ??= new Map();
    }
    if (node!.decision === undefined) this.size++;
    node!.decision = d;
  }

  clear(): void {
    this.root.clear();
    this.size = 0;
  }

  /** Chains kept. */
  get entries(): number {
    return this.size;
  }
}
