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
import { NO_METRIC, V4DeleteSource } from '../../netlink/bulk-delete';
import { trieSpreadPermutation } from '../../netlink/order';
import { opDst, type RouteOp } from '../../netlink/pipeline';
import type { Logger } from '../logger';
import type { RateLimitedLog } from '../logger';
import { kernelDelete, type KernelTarget } from './convert';
import type { KernelIo } from './kernel-io';
import { NetMap } from './net-map';
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

/** The nets the sync holds or wants. */
export interface HeldNets {
  /** How many there are, at most (sizes the arrays up front). */
  readonly count: number;
  /** Calls `v4` or `v6` for each, with the metric of our route there (undefined: any of ours); an IPv4 net as word and length, no Prefix. */
  forEach(v4: (word: number, len: number, metric: number | undefined) => void, v6: (net: Prefix, metric: number | undefined) => void): void;
  /** Whether forEach lists this IPv4 net (a table net it lists needs no second delete). */
  hasV4(word: number, len: number): boolean;
}

/** Calls `v4` / `v6` for each net the table has (Table.forEachNet for the sync's family). */
export type ForEachFed = (v4: (word: number, len: number) => void, v6: (net: Prefix) => void) => void;

/** IPv4 nets gathered into growable typed arrays: word, length, metric (NO_METRIC: any of ours). */
class V4Nets {
  n = 0;
  words: Int32Array;
  lens: Uint8Array;
  metrics: Float64Array;
  constructor(capacity: number) {
    this.words = new Int32Array(capacity);
    this.lens = new Uint8Array(capacity);
    this.metrics = new Float64Array(capacity);
  }
  push(word: number, len: number, metric: number): void {
    if (this.n === this.words.length) {
      const grow = <T extends Int32Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.words = grow(this.words, (k) => new Int32Array(k));
      this.lens = grow(this.lens, (k) => new Uint8Array(k));
      this.metrics = grow(this.metrics, (k) => new Float64Array(k));
    }
    this.words[this.n] = word;
    this.lens[this.n] = len;
    this.metrics[this.n++] = metric;
  }
}

/**
 * `held` lists the nets the sync knows, with their metrics, best in the order
 * the sync keeps them (no lookup per net); `fed` walks the table's nets, whose
 * nets not held are deleted by net alone (the target's metric, or any metric of ours).
 */
export async function withdrawAll(ctx: WithdrawContext, fed: ForEachFed, held: HeldNets): Promise<WithdrawResult> {
  const t0 = Date.now();
  let lastProgress = t0;
  const result: WithdrawResult = { deleted: 0, leftovers: 0, failed: 0 };
  const pending: Promise<void>[] = [];
  let sent = 0;

  const send = async (ops: RouteOp[] | V4DeleteSource): Promise<void> => {
    sent += ops.length;
    pending.push(
      ctx.io.submit(ops).then((res) => {
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
    await ctx.io.drainIfFull();
    if (Date.now() - lastProgress >= ctx.progressEveryMs) {
      lastProgress = Date.now();
      ctx.log.info(`withdrawing: ${sent} deletes sent`, { table: ctx.target.table });
    }
  };
  // The whole set is gathered first and sent in the order the kernel's trie deletes fastest (about
  // twice as fast as address order for a full table; src/netlink/order.ts). IPv4 nets go into typed
  // arrays, sorted and de-duplicated there and encoded straight from them (V4DeleteSource): no
  // object per route. Held nets come first, with their metrics; a table net the sync holds is
  // skipped (one Map lookup, no second entry: a 2M-entry sort and its arrays made V8 start a full
  // GC in the middle of a shutdown). The sort still de-duplicates, keeping the first of equal nets.
  const v4 = new V4Nets(Math.max(1024, held.count + 1024));
  const v6: Prefix[] = [];
  const v6Metrics: (number | undefined)[] = [];
  const seen6 = new NetMap<true>();
  const take = (net: Prefix, metric: number | undefined): void => {
    if (net.family !== ctx.target.family) return;
    if (net.family === 4) {
      v4.push(net.w0, net.len, metric ?? NO_METRIC);
      return;
    }
    if (seen6.has(net)) return;
    seen6.set(net, true);
    v6.push(net);
    v6Metrics.push(metric);
  };
  held.forEach(
    (word, len, metric) => {
      if (ctx.target.family === 4) v4.push(word, len, ctx.target.metric ?? metric ?? NO_METRIC);
    },
    (net, metric) => take(net, ctx.target.metric ?? metric),
  );
  const fedMetric = ctx.target.metric ?? NO_METRIC;
  fed(
    (word, len) => {
      if (!held.hasV4(word, len)) v4.push(word, len, fedMetric);
    },
    (net) => take(net, ctx.target.metric),
  );

  // Synchronous per net, awaiting only between batches: a million awaits cost seconds at shutdown.
  if (v4.n > 0) {
    // The order, de-duplicated in place: the same net twice (held and fed) sorts side by side; the first (held) is kept.
    const order = trieSpreadPermutation(v4.words, v4.lens, v4.n);
    const { words, lens, metrics } = v4;
    let m = 0;
    for (let j = 0; j < v4.n; j++) {
      const i = order[j]!;
      if (m > 0) {
        const prev = order[m - 1]!;
        if (words[prev] === words[i] && lens[prev] === lens[i]) continue;
      }
      order[m++] = i;
    }
    // Each batch's nets copied out in send order as it goes: the encoder then reads them in sequence
    // (through the order it took 300 ms per million instead of 220 with the copy), and no sorted copy
    // of the whole set is made (13 MB at the moment the heap is largest).
    for (let a = 0; a < m; a += ctx.batchSize) {
      const n = Math.min(m, a + ctx.batchSize) - a;
      const bw = new Int32Array(n);
      const bl = new Uint8Array(n);
      const bm = new Float64Array(n);
      for (let k = 0; k < n; k++) {
        const i = order[a + k]!;
        bw[k] = words[i]!;
        bl[k] = lens[i]!;
        bm[k] = metrics[i]!;
      }
      await send(new V4DeleteSource(ctx.target, bw, bl, bm, n));
    }
  }
  let batch: RouteOp[] = [];
  for (let i = 0; i < v6.length; i++) {
    batch.push({ cmd: 'delete', route: kernelDelete(v6[i]!, ctx.target, v6Metrics[i]) });
    if (batch.length >= ctx.batchSize) {
      await send(batch);
      batch = [];
    }
  }
  if (batch.length) await send(batch);
  await Promise.all(pending);

  const left = await ctx.io.dumpTable(false);
  const leftovers = left.ours.map((net, route): RouteOp => ({ cmd: 'delete', route: kernelDelete(net, ctx.target, effectivePriority(route)) }));
  result.leftovers = leftovers.length;
  if (leftovers.length) {
    await send(leftovers);
    await Promise.all(pending);
  }
  ctx.log.info(`withdrew ${result.deleted} routes (${result.leftovers} found by the final scan, ${result.failed} failed) in ${Date.now() - t0} ms`, {
    table: ctx.target.table,
  });
  return result;
}
