/**
 * A batch of the kernel sync's changes as the pipeline reads it (an
 * OpSource): per change its entry, command and route, in three arrays, with
 * no op object per change. Planning's op objects die at once; these arrays
 * live until the kernel has answered, which during churn is long enough for
 * a million op objects to reach the old generation (about 56 bytes a change).
 * Adds and replaces send the shared wanted route with the entry's own net.
 * Each change also carries the time of the table change that caused it (0:
 * none), for the latency metric.
 */
import type { RouteOp, OpSource } from '../../netlink/pipeline';
import { encodeRouteRequest, type RouteMessage } from '../../netlink/route-codec';
import type { NetEntry } from './net-entry';
import type { KernelOp, KernelOpCmd } from './reconcile';

const CMDS: readonly KernelOpCmd[] = ['add', 'replace', 'delete'];
const DELETE = 2;

export class SyncBatch implements OpSource {
  readonly owners: NetEntry[] = [];
  private readonly routes: RouteMessage[] = [];
  private readonly cmds: number[] = [];
  private readonly times: number[] = [];

  get length(): number {
    return this.cmds.length;
  }

  push(e: NetEntry, op: KernelOp, changedAt = 0): void {
    this.owners.push(e);
    this.routes.push(op.route);
    this.cmds.push(CMDS.indexOf(op.cmd));
    this.times.push(changedAt);
  }

  /** When the table change behind change `i` reached the sync (Date.now()), 0 when none did. */
  changedAt(i: number): number {
    return this.times[i]!;
  }

  cmd(i: number): KernelOpCmd {
    return CMDS[this.cmds[i]!]!;
  }

  route(i: number): RouteMessage {
    return this.routes[i]!;
  }

  encode(buf: Buffer, off: number, seq: number, i: number): number {
    const c = this.cmds[i]!;
    const r = this.routes[i]!;
    return encodeRouteRequest(buf, off, seq, CMDS[c]!, r, false, c === DELETE ? r.dst : this.owners[i]!.net);
  }

  op(i: number): RouteOp {
    const c = this.cmds[i]!;
    const route = this.routes[i]!;
    return c === DELETE ? { cmd: CMDS[c]!, route } : { cmd: CMDS[c]!, route, dst: this.owners[i]!.net };
  }
}
