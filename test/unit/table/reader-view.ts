/**
 * Test helper: a reader's view of a table, built only from the items it
 * receives, with the checks the export contract promises:
 *  - an update's old is exactly what the reader holds for that net (so a
 *    change seen twice, or missed, shows up as a mismatch);
 *  - seqs of one net's updates only increase, and a feed never goes back
 *    behind an update the reader already had.
 */
import type { Prefix } from '../../../src/lib/addr';
import type { Route } from '../../../src/route/route';
import type { RouteSource } from '../../../src/route/source';
import type { Table } from '../../../src/table/table';
import type { ExportItem, FeederItem } from '../../../src/table/items';

export class ReaderView {
  /** net text → routes (best first for 'best': one route). */
  readonly nets = new Map<string, Route[]>();
  readonly lastSeq = new Map<string, number>();
  readonly errors: string[] = [];
  readonly kinds: string[] = [];
  stopped: string | undefined;
  /** Nets fed since the feed phase began (a refeed item or the start), to catch a net fed twice. */
  private fedThisPhase: Set<string> | undefined = new Set();
  readyCount = 0;
  updates = 0;
  feeds = 0;

  constructor(private readonly mode: 'best' | 'all') {}

  apply(batch: readonly (ExportItem | FeederItem)[]): void {
    for (const item of batch) {
      this.kinds.push(item.kind);
      switch (item.kind) {
        case 'update':
          this.update(item.net, item.seq, item.old, item.new);
          break;
        case 'feed':
          this.feed(item.net, item.routes, item.seq);
          break;
        case 'feeds':
          // A run promises per net what a feed item does.
          if (item.n === 0) this.errors.push('an empty feed run');
          for (let i = 0; i < item.n; i++) this.feed(item.net(i), item.routes[i]!, item.seq);
          break;
        case 'ready':
          this.readyCount++;
          this.fedThisPhase = undefined;
          break;
        case 'refeed':
          this.fedThisPhase = new Set();
          break;
        case 'stop':
          this.stopped = item.reason;
          break;
        default: {
          const never: never = item;
          throw new Error(`unknown item ${JSON.stringify(never)}`);
        }
      }
    }
  }

  private feed(net: Prefix, routes: readonly Route[], seq: number): void {
    this.feeds++;
    const k = net.toString();
    if (this.fedThisPhase?.has(k)) this.errors.push(`${k}: fed twice in one feed phase`);
    this.fedThisPhase?.add(k);
    if (this.mode === 'best' && routes.length > 1) this.errors.push(`${k}: best feed with ${routes.length} routes`);
    if (routes.length) this.nets.set(k, [...routes]);
    else this.nets.delete(k);
    const last = this.lastSeq.get(k);
    if (last !== undefined && seq <= last) this.errors.push(`${k}: feed at ${seq} after update ${last}`);
    this.lastSeq.set(k, seq - 1);
  }

  private update(net: Prefix, seq: number, old: Route | undefined, neu: Route | undefined): void {
    this.updates++;
    const k = net.toString();
    const last = this.lastSeq.get(k);
    if (last !== undefined && seq <= last) this.errors.push(`${k}: update seq ${seq} after ${last}`);
    this.lastSeq.set(k, seq);
    const have = this.nets.get(k) ?? [];
    const src = (old ?? neu)!.src;
    const mine = this.mode === 'best' ? have[0] : have.find((r) => r.src === src);
    if (mine !== old) this.errors.push(`${k}: update old ${old ?? 'none'} but reader has ${mine ?? 'none'} (seq ${seq})`);
    let next = this.mode === 'best' ? [] : have.filter((r) => r.src !== src);
    if (neu) next = [...next, neu];
    if (next.length) this.nets.set(k, next);
    else this.nets.delete(k);
  }

  /** The view as text, comparable with expectedView(). */
  text(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, routes] of this.nets) out.set(k, describe(routes, this.mode));
    return out;
  }
}

function describe(routes: readonly Route[], mode: 'best' | 'all'): string {
  const list = mode === 'best' ? routes.slice(0, 1) : [...routes].sort((a, b) => a.src.id - b.src.id);
  return list.map((r) => `${r.src.name}:${r.attrs}`).join(' | ');
}

/** What a reader in sync must hold: the table's routes, as text. */
export function expectedView(table: Table, nets: Iterable<Prefix>, mode: 'best' | 'all'): Map<string, string> {
  const out = new Map<string, string>();
  for (const net of nets) {
    // The best route may be none while routes exist (next-hop tracking: none eligible).
    const routes = mode === 'best' ? (table.bestRoute(net)?.alone ?? []) : table.routes(net);
    if (routes.length) out.set(net.toString(), describe(routes, mode));
  }
  return out;
}

export type { RouteSource };
