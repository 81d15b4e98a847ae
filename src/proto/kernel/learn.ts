/**
 * Learn: routes of other protocols in our kernel table become routes of a
 * source in a krtsync table, so they can be exported elsewhere.
 *
 * Per net the kernel may hold several foreign routes (different metrics or
 * protocols); the one with the lowest metric is announced, as the kernel
 * would prefer it. Routes of the kernel itself (proto kernel: connected
 * subnets), local/broadcast types, and what the model cannot carry are left
 * out. On shutdown every learned route is withdrawn.
 *
 * Every scan hands over the complete list of foreign routes (resync): what
 * notifications missed (an overflow) is corrected, and routes that vanished
 * meanwhile are withdrawn.
 */
import type { Prefix } from '../../lib/addr';
import * as C from '../../netlink/constants';
import type { RouteMessage } from '../../netlink/route-codec';
import type { NetKey, RouteAttrs, RouteSource } from '../../route';
import type { SourceTable } from '../table-port';
import { fromKernelRoute } from './convert';
import { effectivePriority } from './normalize';

export class KernelLearn {
  private readonly nets = new Map<NetKey, { net: Prefix; routes: Map<string, { prio: number; attrs: RouteAttrs }>; announced?: RouteAttrs }>();

  constructor(
    private readonly table: SourceTable,
    readonly source: RouteSource,
    private readonly nameOf: (index: number) => string | undefined,
  ) {}

  onRoute(r: RouteMessage, deleted: boolean): void {
    if (r.protocol === C.RTPROT_KERNEL) return;
    const key = r.dst.key();
    const id = `${r.protocol}/${effectivePriority(r)}/${r.tos}`;
    let n = this.nets.get(key);
    if (deleted) {
      if (!n || !n.routes.delete(id)) return;
    } else {
      const attrs = fromKernelRoute(r, this.nameOf);
      if (!attrs) return;
      if (!n) {
        n = { net: r.dst, routes: new Map() };
        this.nets.set(key, n);
      }
      n.routes.set(id, { prio: effectivePriority(r), attrs });
    }
    let best: { prio: number; attrs: RouteAttrs } | undefined;
    for (const v of n.routes.values()) if (!best || v.prio < best.prio) best = v;
    if (!best) {
      this.nets.delete(key);
      if (n.announced) this.table.withdraw(n.net, this.source);
      return;
    }
    if (best.attrs !== n.announced) {
      n.announced = best.attrs;
      this.table.announce(n.net, this.source, best.attrs);
    }
  }

  /** The complete foreign routes of one family, from a dump: learned state becomes exactly that. */
  resync(family: 4 | 6, routes: readonly RouteMessage[]): void {
    for (const n of this.nets.values()) if (n.net.family === family) n.routes.clear();
    for (const r of routes) this.onRoute(r, false);
    // Nets the dump no longer shows (or shows only with routes we do not learn).
    for (const [key, n] of this.nets) {
      if (n.net.family !== family || n.routes.size > 0) continue;
      this.nets.delete(key);
      if (n.announced) this.table.withdraw(n.net, this.source);
    }
  }

  /** Withdraws everything learned. */
  withdrawAll(): void {
    for (const n of this.nets.values()) if (n.announced) this.table.withdraw(n.net, this.source);
    this.nets.clear();
  }
}
