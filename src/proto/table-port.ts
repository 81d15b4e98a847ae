/**
 * What protocols use of a table, as narrow views of src/table's Table: the
 * export side (`best` and `all` exporters: subscribe, feed; forEachNet for
 * the kernel protocol's shutdown walk, netCountOf and sizeHint to size its state; with
 * next-hop tracking the tracker, eligibility, and the nets using a next-hop
 * set with their best route, to re-export them; with failover, a net's
 * routes and the signal that a source is about to be flushed) for consumers,
 * and the source side (announce, withdraw, refresh cycle) for producers.
 * Depending on these views rather than the whole class keeps a protocol's
 * reach into the table visible in one place.
 */
import type { Table } from '../table';

export type ExportTable = Pick<Table, 'best' | 'all' | 'forEachNet' | 'netCountOf' | 'sizeHint' | 'nexthops' | 'eligible' | 'forEachNetUsing' | 'bestRoute' | 'routes' | 'watchFlush'>;
export type SourceTable = Pick<Table, 'announce' | 'withdraw' | 'refreshBegin' | 'refreshEnd'>;
