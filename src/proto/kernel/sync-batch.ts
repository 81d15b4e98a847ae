/**
 * A batch of the kernel sync's changes as the pipeline reads it (an
 * OpSource): per change its route id, command and KernelRoute id, in typed
 * arrays, with no object per change. Each change is encoded from its
 * KernelRoute's bytes (RouteTemplate) and the route's net words (NetIndex):
 * no RouteMessage, Prefix or op per change. A RouteOp is built only for a
 * failure. The batch holds a reference to each KernelRoute it sends until
 * its answers are in (release()), so an answer still says what was sent.
 * Released batches are used again: fresh ones are garbage outside V8's heap
 * until its next full collection, and a first sync makes hundreds.
 */
import { grownTo } from '../../lib/net-list';
import type { RouteOp, OpSource } from '../../netlink/pipeline';
import type { RouteCommand } from '../../netlink/route-codec';
import { kernelDelete } from './convert';
import type { KernelRoutes } from './kernel-routes';
import type { RouteStore } from './route-store';
import type { KernelOpCmd } from './sync-metrics';

export type SyncCmd = KernelOpCmd;
const CMDS: readonly SyncCmd[] = ['add', 'replace', 'delete'];
const CMD_CODES: Readonly<Record<SyncCmd, number>> = { add: 0, replace: 1, delete: 2 };
const DELETE = 2;

export class SyncBatch implements OpSource {
  private n = 0;
  owners: Int32Array;
  private rids: Uint32Array;
  private cmds: Uint8Array;
  /** When the table change behind each change reached the sync (Date.now(); 0: none), for the latency metric. */
  private times: Float64Array;

  constructor(
    private readonly store: RouteStore,
    private readonly routes: KernelRoutes,
    capacity: number,
  ) {
    this.owners = new Int32Array(capacity);
    this.rids = new Uint32Array(capacity);
    this.cmds = new Uint8Array(capacity);
    this.times = new Float64Array(capacity);
  }

  get length(): number {
    return this.n;
  }

  /** Adds a change of route `id`: add or replace with wanted route `rid`, or delete of held route `rid`. */
  push(id: number, cmd: SyncCmd, rid: number, changedAt = 0): void {
    if (this.n === this.cmds.length) this.grow(); // a net's last changes may pass the batch size
    this.owners[this.n] = id;
    this.rids[this.n] = rid;
    this.times[this.n] = changedAt;
    this.cmds[this.n++] = CMD_CODES[cmd];
    this.routes.ref(rid);
  }

  cmd(i: number): SyncCmd {
    return CMDS[this.cmds[i]!]!;
  }

  /** When the table change behind change i reached the sync (Date.now()), 0 when none did. */
  changedAt(i: number): number {
    return this.times[i]!;
  }

  /** The KernelRoute id of change i. */
  rid(i: number): number {
    return this.rids[i]!;
  }

  encode(buf: Buffer, off: number, seq: number, i: number): number {
    const id = this.owners[i]!;
    const c = this.cmds[i]!;
    const r = this.routes.get(this.rids[i]!);
    const t = c === DELETE ? this.routes.deleteTemplate(r.priority) : r.template;
    const nets = this.store.nets;
    const len = nets.lens[id]!;
    if (nets.stride === 1) return t.encode(buf, off, seq, CMDS[c] as RouteCommand, len, nets.words[id]!);
    const k = id * 4;
    const w = nets.words;
    return t.encode(buf, off, seq, CMDS[c] as RouteCommand, len, w[k]!, w[k + 1]!, w[k + 2]!, w[k + 3]!);
  }

  op(i: number): RouteOp {
    const c = this.cmds[i]!;
    const r = this.routes.get(this.rids[i]!);
    const dst = this.store.nets.prefix(this.owners[i]!);
    if (c === DELETE) return { cmd: 'delete', route: kernelDelete(dst, this.routes.target, r.priority) };
    return { cmd: CMDS[c]!, route: r.route!, dst };
  }

  private grow(): void {
    const cap = this.n * 2 + 8;
    this.owners = grownTo(this.owners, cap);
    this.rids = grownTo(this.rids, cap);
    this.cmds = grownTo(this.cmds, cap);
    this.times = grownTo(this.times, cap);
  }

  /** The answers are in: the batch lets go of its routes, and is empty to be used again. */
  release(): void {
    for (let i = 0; i < this.n; i++) this.routes.unref(this.rids[i]!);
    this.n = 0;
  }
}
