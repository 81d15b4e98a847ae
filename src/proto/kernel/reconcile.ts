/**
 * Reconcile decisions, pure: given what we want for a net and the routes of
 * ours the kernel holds for it, the operations that make the kernel match.
 *
 * Rules (docs/kernel.md, "Reconcile"):
 *  - a route of ours identical to the wanted one (normalize.ts) stays: no op;
 *  - one with the same metric that differs in anything is replaced in place
 *    (NLM_F_REPLACE keys on net, tos and metric: it cannot move a metric);
 *  - a wanted route with no route of ours at its metric is added with
 *    NLM_F_EXCL, never replace: replace would overwrite a foreign route that
 *    happens to sit at the same net and metric;
 *  - every other route of ours for the net is deleted, after the add or
 *    replace (make before break).
 * Only routes of our protocol in our table may be passed in `have`.
 */
import type { Prefix } from '../../lib/addr';
import type { NetKey } from '../../route';
import type { RouteMessage } from '../../netlink/route-codec';
import { kernelDelete, type KernelTarget } from './convert';
import { effectivePriority, sameKernelRoute } from './normalize';

export type KernelOpCmd = 'add' | 'replace' | 'delete';

export interface KernelOp {
  readonly cmd: KernelOpCmd;
  readonly route: RouteMessage;
  /** The net, when `route` is a template shared by many nets (RouteOp.dst). */
  readonly dst?: Prefix;
}

/**
 * Operations for one net; empty when the kernel already holds exactly what we want. `net` is
 * the net's own prefix when `want` or `have` may be a route shared by many nets (the kernel
 * sync's per-attribute-set templates, whose dst is some other net's): the operations carry it
 * as `dst` (no copy of the route per net).
 */
export function planNet(want: RouteMessage | undefined, have: readonly RouteMessage[], target: KernelTarget, net?: Prefix): KernelOp[] {
  const ops: KernelOp[] = [];
  let kept: RouteMessage | undefined;
  if (want) {
    const prio = effectivePriority(want);
    kept = have.find((h) => effectivePriority(h) === prio);
    if (!kept) ops.push(net === undefined ? { cmd: 'add', route: want } : { cmd: 'add', route: want, dst: net });
    else if (kept !== want && !sameKernelRoute(want, kept)) ops.push(net === undefined ? { cmd: 'replace', route: want } : { cmd: 'replace', route: want, dst: net });
  }
  for (const h of have) {
    if (h === kept) continue;
    ops.push({ cmd: 'delete', route: kernelDelete(net ?? h.dst, target, effectivePriority(h)) });
  }
  return ops;
}

export interface ReconcilePlan {
  readonly ops: KernelOp[];
  /** Nets whose route of ours is already right. */
  readonly unchanged: number;
  readonly adds: number;
  readonly replaces: number;
  readonly deletes: number;
}

/**
 * A whole-table reconcile (first scan, periodic scans): `want` by net key,
 * `dumped` the routes of ours the kernel reported. Nets in neither are not
 * visited.
 */
export function reconcile(want: ReadonlyMap<NetKey, RouteMessage>, dumped: readonly RouteMessage[], target: KernelTarget): ReconcilePlan {
  const haveByNet = new Map<NetKey, RouteMessage[]>();
  for (const r of dumped) {
    const k = r.dst.key();
    const list = haveByNet.get(k);
    if (list) list.push(r);
    else haveByNet.set(k, [r]);
  }
  const ops: KernelOp[] = [];
  let unchanged = 0;
  const visit = (w: RouteMessage | undefined, h: readonly RouteMessage[]): void => {
    const netOps = planNet(w, h, target);
    if (netOps.length === 0) unchanged++;
    ops.push(...netOps);
  };
  for (const [k, w] of want) visit(w, haveByNet.get(k) ?? []);
  for (const [k, h] of haveByNet) if (!want.has(k)) visit(undefined, h);
  let adds = 0;
  let replaces = 0;
  let deletes = 0;
  for (const op of ops) {
    if (op.cmd === 'add') adds++;
    else if (op.cmd === 'replace') replaces++;
    else deletes++;
  }
  return { ops, unchanged, adds, replaces, deletes };
}
