/**
 * ExportChannel: the link between a table and a consuming protocol on the
 * way out: the export filter, merge_paths, and counters for `show protocols`.
 *
 * exportNet() is the one decision per net: given the net's routes as the
 * exporter shows them (best first), the attributes to export and the filter's
 * kernel settings, or nothing. Routes of `ignoreSource` (a protocol's own
 * learn source, which would loop) are never exported.
 */
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
  exportNet(routes: readonly Route[]): ChannelExport | undefined {
    if (!this.mergePaths) {
      // The common case, once per net of a full feed: the first accepted route, nothing else allocated.
      for (const r of routes) {
        if (r.src === this.ignoreSource) continue;
        const res = runExportFilter(this.filter, r);
        if (!res.accept) {
          this.counters.rejected++;
          continue;
        }
        this.counters.accepted++;
        return { attrs: r.attrs, set: res.set, source: r.src };
      }
      return undefined;
    }
    let first: { route: Route; set: KernelAttrs | undefined } | undefined;
    const accepted: Route[] = [];
    for (const r of routes) {
      if (r.src === this.ignoreSource) continue;
      const res = runExportFilter(this.filter, r);
      if (!res.accept) {
        this.counters.rejected++;
        continue;
      }
      this.counters.accepted++;
      if (!first) first = { route: r, set: res.set };
      accepted.push(r);
      if (!this.mergePaths) break;
    }
    if (!first) return undefined;
    const attrs = this.mergePaths ? mergePaths(accepted, this.mergePaths)! : first.route.attrs;
    return { attrs, set: first.set, source: first.route.src };
  }
}
