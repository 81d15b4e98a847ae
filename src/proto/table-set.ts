/**
 * The tables a source protocol feeds, one per address family, and the calls
 * every source makes on them: announce and withdraw by the net's family, and
 * the refresh cycle over all of them at once. A route of a family the
 * protocol has no table for is an error that names the protocol.
 */
import type { Family, Prefix } from '../lib/addr';
import { KrtError } from '../lib/errors';
import type { RouteAttrs, RouteSource } from '../route';
import type { Table } from '../table';

export class NoTableError extends KrtError {
  constructor(protocol: string, family: Family) {
    super('KRT_ERR_NO_TABLE', `protocol ${protocol} has no IPv${family} table`);
  }
}

export class TableSet {
  constructor(
    readonly protocol: string,
    private readonly byFamily: ReadonlyMap<Family, Table>,
  ) {}

  get tables(): Table[] {
    return [...new Set(this.byFamily.values())];
  }

  table(family: Family): Table {
    const t = this.byFamily.get(family);
    if (!t) throw new NoTableError(this.protocol, family);
    return t;
  }

  has(family: Family): boolean {
    return this.byFamily.has(family);
  }

  announce(src: RouteSource, net: Prefix, attrs: RouteAttrs): void {
    this.table(net.family).announce(net, src, attrs);
  }

  /** announce() of an IPv4 net as its address word (host bits clear) and length: no Prefix per route. */
  announce4(src: RouteSource, word: number, len: number, attrs: RouteAttrs): void {
    this.table(4).announceAt(word, len, src, attrs);
  }

  /** A hint before announce4() of the IPv4 nets words[0..n) (Table.warm4). */
  warm4(words: Int32Array, lens: Uint8Array, n: number): void {
    if (this.has(4)) this.table(4).warm4(words, lens, n);
  }

  withdraw(src: RouteSource, net: Prefix): void {
    this.table(net.family).withdraw(net, src);
  }

  refreshBegin(src: RouteSource, family?: Family): void {
    for (const t of family ? [this.table(family)] : this.tables) t.refreshBegin(src);
  }

  /** Prunes what `src` did not re-announce since refreshBegin; returns how many routes went. */
  refreshEnd(src: RouteSource, family?: Family): number {
    let n = 0;
    for (const t of family ? [this.table(family)] : this.tables) n += t.refreshEnd(src);
    return n;
  }

  /** Room for the nets a load brings, per family (Table.reserve). */
  reserve(counts: { v4: number; v6: number }): void {
    if (counts.v4 > 0 && this.has(4)) this.table(4).reserve(4, counts.v4);
    if (counts.v6 > 0 && this.has(6)) this.table(6).reserve(6, counts.v6);
  }

  /** A fill of every table of the set (Table.beginFill); returns its end. */
  beginFill(): () => void {
    const ends = this.tables.map((t) => t.beginFill());
    return () => {
      for (const end of ends) end();
    };
  }

  /** Withdraws every route of `src`. */
  flush(src: RouteSource): number {
    let n = 0;
    for (const t of this.tables) n += t.flush(src);
    return n;
  }

  routesOf(src: RouteSource): number {
    let n = 0;
    for (const t of this.tables) n += t.routesOfSource(src);
    return n;
  }
}
