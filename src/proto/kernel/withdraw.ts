/**
 * Withdrawing every route of ours on shutdown, in bulk.
 *
 * One delete per net (by net, table, protocol and metric: the kernel matches
 * any next hop), in the kernel's fastest order, sent in batches with the pipeline's backpressure, every ack
 * awaited. A delete the kernel answers ESRCH found nothing to delete: the
 * route was already gone, which is the goal, so it is not a failure. Then a
 * final dump finds whatever of ours is still there (withdrawals still in the
 * journal, routes added behind our back) and deletes that too.
 */
import { constants as osConstants } from 'node:os';
import type { Prefix } from '../../lib/addr';
import { NetlinkRequestError } from '../../netlink/errors';
import { trieSpreadOrder } from '../../netlink/order';
import type { RouteOp } from '../../netlink/pipeline';
import type { Logger } from '../logger';
import type { RateLimitedLog } from '../logger';
import { kernelDelete, type KernelTarget } from './convert';
import type { KernelIo } from './kernel-io';
import { NetMap } from './net-map';
import { effectivePriority } from './normalize';

const { ESRCH } = osConstants.errno;

export interface WithdrawResult {
  /** Deletes the kernel acknowledged. */
  deleted: number;
  /** Routes of ours the final dump still found. */
  leftovers: number;
  failed: number;
}

export interface WithdrawContext {
  io: KernelIo;
  target: KernelTarget;
  log: Logger;
  limited: RateLimitedLog;
  batchSize: number;
  progressEveryMs: number;
  /** The metric our route for `net` has (undefined: any metric of ours). */
  priorityOf(net: Prefix): number | undefined;
}

export async function withdrawAll(ctx: WithdrawContext, nets: AsyncIterable<readonly Prefix[]>, alsoHeld: Iterable<Prefix>): Promise<WithdrawResult> {
  const t0 = Date.now();
  let lastProgress = t0;
  const result: WithdrawResult = { deleted: 0, leftovers: 0, failed: 0 };
  const pending: Promise<void>[] = [];
  const seen = new NetMap<true>();
  let batch: RouteOp[] = [];
  let sent = 0;

  const send = async (): Promise<void> => {
    const ops = batch;
    batch = [];
    sent += ops.length;
    pending.push(
      ctx.io.submit(ops).then((res) => {
        result.deleted += res.ok;
        for (const f of res.failed) {
          if (f.error instanceof NetlinkRequestError && f.error.errno === ESRCH) continue;
          result.failed++;
          ctx.limited.write('warn', 'withdraw-failed', `withdraw ${f.op.route.dst} failed: ${f.error.message}`, { prefix: f.op.route.dst.toString() });
        }
      }),
    );
    await ctx.io.drainIfFull();
    if (Date.now() - lastProgress >= ctx.progressEveryMs) {
      lastProgress = Date.now();
      ctx.log.info(`withdrawing: ${sent} deletes sent`, { table: ctx.target.table });
    }
  };
  // The whole set is gathered first, each net once, and sent in the order the kernel's trie deletes
  // fastest (about twice as fast as address order for a full table; src/netlink/order.ts).
  // Each net's metric is looked up here, in feed order: in the trie-spread order below every lookup
  // is a cache miss (2.3 s of a 1M shutdown).
  const all: Prefix[] = [];
  const prios: (number | undefined)[] = [];
  const take = (net: Prefix): void => {
    if (net.family !== ctx.target.family) return;
    if (seen.has(net)) return;
    seen.set(net, true);
    all.push(net);
    prios.push(ctx.target.metric ?? ctx.priorityOf(net));
  };
  for await (const some of nets) for (const net of some) take(net);
  for (const net of alsoHeld) take(net);
  // Synchronous per net, awaiting only between batches: a million awaits cost seconds at shutdown.
  const order = trieSpreadOrder(
    all.map((_, i) => i),
    (i) => (all[i]!.family === 4 ? all[i]!.w0 : undefined),
  );
  for (const i of order) {
    batch.push({ cmd: 'delete', route: kernelDelete(all[i]!, ctx.target, prios[i]) });
    if (batch.length >= ctx.batchSize) await send();
  }
  if (batch.length) await send();
  await Promise.all(pending);

  const left = await ctx.io.dumpTable(false);
  for (const r of left.ours) batch.push({ cmd: 'delete', route: kernelDelete(r.dst, ctx.target, effectivePriority(r)) });
  result.leftovers = batch.length;
  if (batch.length) {
    await send();
    await Promise.all(pending);
  }
  ctx.log.info(`withdrew ${result.deleted} routes (${result.leftovers} found by the final scan, ${result.failed} failed) in ${Date.now() - t0} ms`, {
    table: ctx.target.table,
  });
  return result;
}
