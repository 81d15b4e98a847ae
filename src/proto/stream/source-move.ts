/**
 * A stream protocol's reconfigure moves each neighbour to a new source when
 * its preference, always_compare_med or the import filter changed: sources
 * are immutable, so the neighbour's routes are read from the tables,
 * announced under the new source (those the new filter accepts), and the
 * old source is flushed. Routes the startup hold staged go through the new
 * filter in place (they are not in the tables yet).
 *
 * Invariants: the move runs inside the protocol's change() per peer, so the
 * client's and the protocol's route counts stay right; an open refresh
 * cycle moves along (what was stale stays stale, what was renewed stays
 * renewed); routes the new filter rejects are withdrawn, and routes the old
 * one rejected are not brought back (no copy of rejected routes is kept:
 * they come with their next announcement).
 */
import type { Prefix } from '../../lib/addr';
import type { RouteAttrs, RouteSource } from '../../route';
import { runImportFilter, type ExportFilter } from '../filter';
import type { TableSet } from '../table-set';
import type { Client, Peer } from './peer';
import type { StartupHold } from './startup-hold';

/** What the move needs of its protocol. */
export interface SourceMoveContext {
  readonly tables: TableSet;
  /** The new import filter (undefined: none). */
  readonly importFilter: ExportFilter | undefined;
  /** The source a peer gets under the new settings. */
  sourceFor(c: Client, key: string): RouteSource;
  /** Runs table work for a peer and books the change of its route count. */
  change(c: Client, p: Peer, work: () => void): void;
  readonly hold: StartupHold | undefined;
  /** The neighbour peer of a source name (the startup hold's key). */
  peerNamed(name: string): Peer | undefined;
}

/** Moves every peer whose source changes (every peer when the filter changed); returns the routes moved and those the new filter withdrew. */
export function moveToNewSources(clients: Iterable<Client>, ctx: SourceMoveContext, filterChanged: boolean): { moved: number; dropped: number } {
  const { tables, importFilter } = ctx;
  if (filterChanged && ctx.hold && importFilter) {
    ctx.hold.retain((key, net, attrs) => {
      const p = ctx.peerNamed(key);
      return p !== undefined && runImportFilter(importFilter, p.source, attrs, net);
    });
  }
  let moved = 0;
  let dropped = 0;
  for (const c of clients) {
    for (const p of c.peers.values()) {
      const source = ctx.sourceFor(c, p.key);
      if (!filterChanged && source.preference === p.source.preference && source.alwaysCompareMed === p.source.alwaysCompareMed) continue;
      const old = p.source;
      const keep: [Prefix, RouteAttrs, boolean][] = [];
      for (const t of tables.tables) t.forEachRouteOf(old, (net, attrs, stale) => keep.push([net, attrs, stale]));
      ctx.change(c, p, () => {
        p.source = source;
        const taken = keep.filter(([net, attrs]) => !importFilter || runImportFilter(importFilter, source, attrs, net));
        dropped += keep.length - taken.length;
        moved += taken.length;
        for (const [net, attrs] of taken) tables.announce(source, net, attrs);
        if (p.refreshing) {
          // The open refresh cycle moves along: what was stale stays stale, what was renewed stays renewed.
          tables.refreshBegin(source);
          for (const [net, attrs, stale] of taken) if (!stale) tables.announce(source, net, attrs);
        }
        tables.flush(old);
      });
    }
  }
  return { moved, dropped };
}
