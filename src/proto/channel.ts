/**
 * ExportChannel: the link between a table and a consuming protocol on the
 * way out: the export filter, merge_paths, and counters for `show protocols`.
 *
 * exportNet() is the one decision per net: given the net's routes as the
 * exporter shows them (best first), the attributes to export and the filter's
 * kernel settings, or nothing. Routes of `ignoreSource` (a protocol's own
 * learn source, which would loop) are never exported.
 */
import type { Prefix } from '../lib/addr';
import type { Route, RouteAttrs, RouteSource } from '../route';
import { ACCEPT_ALL, runExportFilter, type ExportFilter } from './filter';
import type { KernelAttrs } from './kernel-attrs';
import { mergePaths, type MergePathsOptions } from './merge-paths';

export interface ChannelExport {
  attrs: RouteAttrs;
  set: KernelAttrs | undefined;
  /** The best route's source, for status. */
  source: RouteSource;
}

export interface ExportChannelOptions {
  filter?: ExportFilter;
  mergePaths?: MergePathsOptions;
  ignoreSource?: RouteSource;
}

export class ExportChannel {
  readonly counters = { accepted: 0, rejected: 0 };
  filter: ExportFilter;
  readonly mergePaths: MergePathsOptions | undefined;
  private readonly ignoreSource: RouteSource | undefined;

  constructor(opts: ExportChannelOptions = {}) {
    this.filter = opts.filter ?? ACCEPT_ALL;
    this.mergePaths = opts.mergePaths;
    this.ignoreSource = opts.ignoreSource;
  }

  /** What to export for a net whose routes are `routes` (best first; only the first without merge_paths). */
  exportNet(net: Prefix, routes: readonly Route[]): ChannelExport | undefined {
    // Without merge_paths (the common case, once per net of a full feed) the first accepted route is
    // returned as it is found: no array or wrapper object per net.
    const merge = this.mergePaths;
    let first: Route | undefined;
    let firstSet: KernelAttrs | undefined;
    let accepted: Route[] | undefined;
    for (const r of routes) {
      if (r.src === this.ignoreSource) continue;
      const res = runExportFilter(this.filter, r, net);
      if (!res.accept) {
        this.counters.rejected++;
        continue;
      }
      this.counters.accepted++;
      if (!merge) return { attrs: r.attrs, set: res.set, source: r.src };
      if (first === undefined) {
        first = r;
        firstSet = res.set;
      }
      (accepted ??= []).push(r);
    }
    if (first === undefined || !merge) return undefined;
    return { attrs: mergePaths(accepted!, merge)!, set: firstSet, source: first.src };
  }

  /**
   * The next-best route for failover (docs/failover.md): the first route after the best one's source
   * in `routes` (best first) that the filter accepts, from another source, through next hops. Not
   * counted: exportNet counted the net.
   */
  backupOf(net: Prefix, routes: readonly Route[], primary: RouteSource): Route | undefined {
    let past = false;
    for (const r of routes) {
      if (!past) {
        past = r.src === primary;
        continue;
      }
      if (r.src === this.ignoreSource || r.attrs.type !== 'unicast' || r.attrs.nexthops === undefined) continue;
      if (runExportFilter(this.filter, r, net).accept) return r;
    }
    return undefined;
  }
}
