/**
 * Withdrawing every route of ours on shutdown, in bulk.
 *
 * One delete per net (by net, table, protocol and metric: the kernel matches
 * any next hop), in the kernel's fastest order, sent in batches with the pipeline's backpressure, every ack
 * awaited. A delete the kernel answers ESRCH found nothing to delete: the
 * route was already gone, which is the goal, so it is not a failure. Then a
 * final dump finds whatever of ours is still there (withdrawals still in the
 * journal, routes added behind our back) and deletes that too. Routes that
 * go with their nexthop object (`gone`, kernel-sync.ts deletes our objects
 * first, `before`: the kernel does so while the nets are gathered here) are
 * not deleted again: their nets count as not held; the final dump waits for
 * `before`.
 */
import { constants as osConstants } from 'node:os';
import type { Prefix } from '../../lib/addr';
import { NetList } from '../../lib/net-list';
import { DumpInterruptedError } from '../../netlink/client';
import { NetlinkRequestError } from '../../netlink/errors';
import { NO_METRIC, NetDeleteSource } from '../../netlink/bulk-delete';
import { SpreadIds, spreadOrderLookup } from '../../netlink/order';
import { OpArraySource, opDst, type OpSource, type RouteOp } from '../../netlink/pipeline';
import type { Logger } from '../logger';
import type { RateLimitedLog } from '../logger';
import { kernelDelete, type KernelTarget } from './convert';
import type { KernelIo } from './kernel-io';
import type { RouteStore } from './route-store';
import { effectivePriority } from './normalize';
import type { KernelSyncMetrics } from './sync-metrics';

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
  metrics: KernelSyncMetrics;
}

/** Calls `v4` / `v6` for each net the table has (Table.forEachNet for the sync's family). */
export type ForEachFed = (v4: (word: number, len: number) => void, v6: (net: Prefix) => void) => void;

/**
 * Deletes the nets `store` holds or wants (each with the metric of our route there) and the
 * table's nets it does not (`fed`: by net alone, the target's metric or any metric of ours).
 */
export async function withdrawAll(ctx: WithdrawContext, fed: ForEachFed, store: RouteStore, gone: (id: number) => boolean = () => false, before: Promise<unknown> = Promise.resolve()): Promise<WithdrawResult> {
  const t0 = Date.now();
  let lastProgress = t0;
  const result: WithdrawResult = { deleted: 0, leftovers: 0, failed: 0 };
  const pending: Promise<void>[] = [];
  let sent = 0;

  const send = async (ops: OpSource, done?: () => void): Promise<void> => {
    sent += ops.length;
    pending.push(
      ctx.io.submit(ops).then((res) => {
        done?.();
        result.deleted += res.ok;
        let gone = 0;
        const failed = new Map<string, number>();
        for (const f of res.failed) {
          if (f.error instanceof NetlinkRequestError && f.error.errno === ESRCH) {
            gone++;
            continue;
          }
          const name = f.error instanceof NetlinkRequestError ? f.error.errnoName : f.error.code;
          failed.set(name, (failed.get(name) ?? 0) + 1);
          result.failed++;
          ctx.limited.write('warn', 'withdraw-failed', `withdraw ${opDst(f.op)} failed: ${f.error.message}`, { prefix: opDst(f.op).toString() });
        }
        if (res.ok + gone > 0) ctx.metrics.answered('delete', 'ok', res.ok + gone);
        for (const [name, n] of failed) ctx.metrics.answered('delete', name, n);
      }),
    );
    if (ctx.io.full) await ctx.io.drain();
    if (Date.now() - lastProgress >= ctx.progressEveryMs) {
      lastProgress = Date.now();
      ctx.log.info(`withdrawing: ${sent} deletes sent`, { table: ctx.target.table });
    }
  };
  // The whole set is gathered first (typed arrays, no object per route) and IPv4 is sent in the
  // order the kernel's trie deletes fastest (about twice as fast as address order for a full
  // table; src/netlink/order.ts), encoded straight from the arrays (NetDeleteSource). Nets the
  // sync holds are read where they are, by id (SpreadIds: 8 bytes a route), with the metric of our
  // route there; a table net it holds is not listed twice (one lookup); the rest go in a list.
  const nets = store.nets;
  const routes = store.routes;
  const stride = nets.stride;
  const dedicated = ctx.target.metric;
  const heldMetric = (id: number): number | undefined => {
    if (gone(id)) return undefined; // its route went with its nexthop object: nothing to delete
    const h = store.haveFirst(id);
    if (h !== 0) return routes.get(h).priority;
    const w = store.want[id]!;
    if (w === 0) return undefined;
    const r = routes.get(w);
    return r.route === undefined ? NO_METRIC : r.priority;
  };
  const spread = stride === 1 && SpreadIds.fits(nets.end) ? new SpreadIds(store.size) : undefined;
  const list = new NetList(stride, spread === undefined ? store.size + 1024 : 1024, true);
  // A list's metrics are a handful of values: each net keeps the index of its own (4 bytes, not 8).
  const metrics: number[] = [];
  const metricIndex = new Map<number, number>();
  const indexOf = (m: number): number => {
    let i = metricIndex.get(m);
    if (i === undefined) {
      i = metrics.push(m) - 1;
      metricIndex.set(m, i);
    }
    return i;
  };
  store.forEach((id) => {
    const metric = heldMetric(id);
    if (metric === undefined) return;
    const k = id * stride;
    if (spread !== undefined) spread.push(nets.words[id]!, id);
    else if (stride === 1) list.push(nets.lens[id]!, indexOf(dedicated ?? metric), nets.words[k]!);
    else list.push(nets.lens[id]!, indexOf(dedicated ?? metric), nets.words[k]!, nets.words[k + 1]!, nets.words[k + 2]!, nets.words[k + 3]!);
  });
  const fedMetric = indexOf(dedicated ?? NO_METRIC);
  const held = (id: number): boolean => id >= 0 && (gone(id) || heldMetric(id) !== undefined);
  fed(
    (word, len) => {
      if (stride === 1 && !held(nets.find4(word, len))) list.push(len, fedMetric, word);
    },
    (net) => {
      if (stride === 4 && !held(nets.find(net))) list.push(net.len, fedMetric, net.w0, net.w1, net.w2, net.w3);
    },
  );

  // Synchronous per net, awaiting only between batches: a million awaits cost seconds at shutdown.
  // Each batch's nets are copied out in send order as it goes: the encoder then reads them in
  // sequence, and no sorted copy of the whole set is made. A batch's arrays are used again once
  // its answers are in (fresh ones per batch piled up as garbage at the process's peak).
  const spare: Array<{ w: Int32Array; l: Uint8Array; m: Float64Array }> = [];
  /** Sends `count` nets in batches; fill(k, b, j) writes the k-th into slot j of batch b. */
  const emit = async (count: number, fill: (k: number, b: { w: Int32Array; l: Uint8Array; m: Float64Array }, j: number) => void): Promise<void> => {
    for (let a = 0; a < count; a += ctx.batchSize) {
      const n = Math.min(count, a + ctx.batchSize) - a;
      const b = spare.pop() ?? { w: new Int32Array(ctx.batchSize * stride), l: new Uint8Array(ctx.batchSize), m: new Float64Array(ctx.batchSize) };
      for (let j = 0; j < n; j++) fill(a + j, b, j);
      await send(new NetDeleteSource(ctx.target.family, ctx.target, b.w, b.l, b.m, n), () => spare.push(b));
    }
  };
  if (spread !== undefined) {
    spread.sort();
    await emit(spread.n, (k, b, j) => {
      const id = spread.at(k);
      b.w[j] = nets.words[id]!;
      b.l[j] = nets.lens[id]!;
      b.m[j] = dedicated ?? heldMetric(id)!;
    });
  }
  const order = stride === 1 ? spreadOrderLookup(list.words, list.lens, list.n) : undefined;
  await emit(list.n, (k, b, j) => {
    const i = order === undefined ? k : order(k);
    for (let x = 0; x < stride; x++) b.w[j * stride + x] = list.words[i * stride + x]!;
    b.l[j] = list.lens[i]!;
    b.m[j] = metrics[list.values[i]!]!;
  });
  await Promise.all(pending);
  await before; // our nexthop objects are gone (their routes with them) before the final dump looks

  let left;
  for (let attempt = 1; left === undefined; attempt++) {
    try {
      left = await ctx.io.dumpTable(false);
    } catch (err) {
      // A table that keeps changing interrupts dumps: try again a few times, then leave it said.
      if (err instanceof DumpInterruptedError && attempt < 5) continue;
      ctx.limited.write('warn', 'withdraw-scan', `final scan for leftovers failed: ${(err as Error).message}`, { table: ctx.target.table });
      ctx.log.info(`withdrew ${result.deleted} routes (final scan failed, ${result.failed} failed) in ${Date.now() - t0} ms`, { table: ctx.target.table });
      return result;
    }
  }
  const leftovers = left.ours.map((net, route): RouteOp => ({ cmd: 'delete', route: kernelDelete(net, ctx.target, effectivePriority(route)) }));
  result.leftovers = leftovers.length;
  if (leftovers.length) {
    await send(new OpArraySource(leftovers));
    await Promise.all(pending);
  }
  ctx.log.info(`withdrew ${result.deleted} routes (${result.leftovers} found by the final scan, ${result.failed} failed) in ${Date.now() - t0} ms`, {
    table: ctx.target.table,
  });
  return result;
}
