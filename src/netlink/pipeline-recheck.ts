/**
 * Settling changes whose acks were lost (the pipeline's receive queue
 * overflowed): the tables they touched are dumped, and each change counts
 * as done when the table shows its effect: an add or replace present at its
 * net, table, tos and metric with the same type, gateway and device; a
 * delete absent. The rest is sent again (pipeline.ts).
 */
import type { Prefix } from '../lib/addr';
import type { NetlinkClient } from './client';
import type { RouteMessage } from './route-codec';
import { opDst, type RouteOp } from './route-ops';

/** What the re-check needs of a netlink client. */
export type RouteDumper = Pick<NetlinkClient, 'dumpRoutes' | 'close'>;

/** For each op, whether the kernel's tables show it done. */
export async function doneByDump(checker: RouteDumper, ops: readonly RouteOp[]): Promise<boolean[]> {
  const tables = new Map<string, { family: 4 | 6; table: number }>();
  for (const op of ops) tables.set(`${op.route.family}/${op.route.table}`, { family: op.route.family, table: op.route.table });
  const present = new Map<string, RouteMessage>();
  for (const t of tables.values()) {
    const dump = await checker.dumpRoutes(t);
    for (const r of dump.items) present.set(routeKey(r), r);
  }
  return ops.map((op) => {
    const have = present.get(routeKey(op.route, opDst(op)));
    return op.cmd === 'delete' ? have === undefined : have !== undefined && sameNextHop(op.route, have);
  });
}

function routeKey(r: RouteMessage, dst: Prefix = r.dst): string {
  const prio = r.priority ?? (r.family === 6 ? 1024 : 0); // the kernel's defaults when none is given
  return `${r.family}/${r.table}/${dst.key()}/${r.tos}/${prio}`;
}

function sameNextHop(want: RouteMessage, have: RouteMessage): boolean {
  if (want.type !== have.type) return false;
  if (want.oif !== undefined && want.oif !== have.oif) return false;
  if (want.gateway && !(have.gateway && want.gateway.equals(have.gateway))) return false;
  return true;
}

