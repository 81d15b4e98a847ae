/**
 * Splitting a dump of a kernel table into routes of ours and foreign ones,
 * the same for every kernel I/O (netlink-io.ts, the tests' fake kernel).
 *
 * Only our table and family count, never cloned (cache) entries: strict
 * checking filters on the kernel side only where the kernel supports it for
 * that family. Routes of ours are decoded once per shape (SharedRouteDecoder)
 * straight into DumpedRoutes, no object per route; foreign ones in full, and
 * only when asked for. An interrupted dump starts both over (reset()).
 */
import * as C from '../../netlink/constants';
import type { DumpResult } from '../../netlink/client';
import { decodeRouteMessage, type RouteMessage } from '../../netlink/route-codec';
import { DumpedRoutes, SharedRouteDecoder } from '../../netlink/route-dump';
import type { KernelTarget } from './convert';
import type { DumpSink, TableDump } from './kernel-io';

export class TableDumpCollector {
  private ours = new DumpedRoutes();
  private readonly shared = new SharedRouteDecoder();

  constructor(
    private readonly target: KernelTarget,
    private readonly includeForeign: boolean,
    /** Takes routes of ours as they come (none are kept here then). */
    private readonly sink?: DumpSink,
  ) {}

  /** The dump's decoder: keeps routes of ours itself (undefined), returns foreign ones when asked for. */
  readonly decode = (b: Buffer, o: number, l: number, type: number): RouteMessage | undefined => {
    if (type !== C.RTM_NEWROUTE) return undefined;
    const t = this.target;
    if (l > C.NLMSG_HDRLEN + 5 && b[o + C.NLMSG_HDRLEN + 5] === t.protocol) {
      const r = this.shared.decodeRoute(b, o, l);
      if (r.table !== t.table || r.family !== t.family || r.flags & C.RTM_F_CLONED) return undefined;
      const d = this.shared;
      if (this.sink !== undefined) this.sink.route(r.family, d.lastLen, d.lastW0, d.lastW1, d.lastW2, d.lastW3, r);
      else this.ours.pushDecoded(d, r);
      return undefined;
    }
    return this.includeForeign ? decodeRouteMessage(b, o, l) : undefined;
  };

  /** An interrupted dump starts over. */
  readonly reset = (): void => {
    if (this.sink !== undefined) this.sink.restart();
    else this.ours = new DumpedRoutes();
  };

  /** The dump's result, foreign routes limited to our table and family. */
  finish(res: DumpResult<RouteMessage>): TableDump {
    const t = this.target;
    const foreign: RouteMessage[] = [];
    for (const r of res.items) if (r.table === t.table && r.family === t.family && !(r.flags & C.RTM_F_CLONED) && r.protocol !== t.protocol) foreign.push(r);
    return { ours: this.ours, foreign, retries: res.retries, undecodable: res.errors.map((e) => e.message) };
  }

  /** A table that does not exist (yet). */
  static empty(): TableDump {
    return { ours: new DumpedRoutes(), foreign: [], retries: 0, undecodable: [] };
  }
}
