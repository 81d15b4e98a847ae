/**
 * KernelIo: the netlink sockets of one KernelSync, and nothing else.
 *
 *  - the monitor (route, link and address notifications), opened first, so
 *    no change that happens after a dump can be missed;
 *  - a client for dumps (links at start, the table at every scan);
 *  - the route pipeline for batched changes.
 *
 * dumpTable() splits a dump into routes of ours and foreign routes, keeping
 * only our table and family and leaving out cloned (cache) entries, because
 * strict checking filters on the kernel side only when the kernel supports
 * it for that family. A table that never held a route does not exist yet:
 * the kernel answers ENOENT, which is an empty table here.
 */
import { constants as osConstants } from 'node:os';
import * as C from '../../netlink/constants';
import { NetlinkClient, type DumpResult } from '../../netlink/client';
import { NetlinkRequestError } from '../../netlink/errors';
import type { LinkMessage } from '../../netlink/link-codec';
import { RoutePipeline, type BatchResult, type OpSource, type RouteOp } from '../../netlink/pipeline';
import { DumpedRoutes, SharedRouteDecoder, decodeRouteMessage, encodeRouteDump, type RouteMessage } from '../../netlink/route-codec';
import type { KernelTarget } from './convert';
import { KernelMonitor, type KernelMonitorHandlers } from './kernel-monitor';

const { ENOENT } = osConstants.errno;

export interface KernelIoOptions {
  target: KernelTarget;
  netns?: string;
  monitorRcvbuf?: number;
  pipelineWindow?: number;
  /** Drop the notifications of our own changes in the kernel (default true; see ownEchoesFiltered). */
  filterOwnEchoes?: boolean;
}

export interface TableDump {
  /** Routes of ours, by column; routes of one shape share one RouteMessage (SharedRouteDecoder). */
  ours: DumpedRoutes;
  foreign: RouteMessage[];
  /** NLM_F_DUMP_INTR restarts the client did. */
  retries: number;
  /** Messages that could not be decoded. */
  undecodable: string[];
}

export class KernelIo {
  private monitor: KernelMonitor | undefined;
  /**
   * The kernel drops the notifications of our own changes before they reach
   * the monitor (a socket filter on the pipeline's port id): each change is
   * known from its answer instead, and the monitor drains before answers are
   * read, so a notification of someone else's change that happened before
   * ours always arrives while ours is still in flight. False when the filter
   * could not be attached or was not asked for: echoes come and are matched.
   */
  readonly ownEchoesFiltered: boolean;

  private constructor(
    private readonly target: KernelTarget,
    monitor: KernelMonitor,
    private readonly client: NetlinkClient,
    private readonly pipeline: RoutePipeline,
    filterOwnEchoes: boolean,
  ) {
    this.monitor = monitor;
    let filtered = false;
    if (filterOwnEchoes) {
      try {
        monitor.ignorePort(pipeline.socket.portId);
        pipeline.beforeAnswers = () => this.monitor?.drainNow();
        filtered = true;
      } catch {
        // Left to the echo matching.
      }
    }
    this.ownEchoesFiltered = filtered;
  }

  /** Opens the monitor, then the client and the pipeline; returns the sockets and the links the kernel has. */
  static async open(opts: KernelIoOptions, handlers: KernelMonitorHandlers): Promise<{ io: KernelIo; links: LinkMessage[] }> {
    const netns = opts.netns !== undefined ? { netns: opts.netns } : {};
    const monitor = new KernelMonitor({ family: opts.target.family, ...netns, ...(opts.monitorRcvbuf ? { rcvbuf: opts.monitorRcvbuf } : {}) }, handlers);
    let client: NetlinkClient | undefined;
    try {
      client = NetlinkClient.open(netns);
      // highWater: enough queued to keep the sender busy for a while (about 0.3 s of kernel time), no more: what
      // waits in the sync's own queue instead can still be put in the trie's order when the first feed ends.
      const pipeline = RoutePipeline.open({ ...netns, highWater: 65536, ...(opts.pipelineWindow ? { window: opts.pipelineWindow } : {}) });
      const io = new KernelIo(opts.target, monitor, client, pipeline, opts.filterOwnEchoes ?? true);
      try {
        const links = await client.dumpLinks();
        return { io, links: links.items };
      } catch (e) {
        io.destroy();
        throw e;
      }
    } catch (e) {
      monitor.close();
      client?.close();
      throw e;
    }
  }

  /** Our routes in our table (and, with includeForeign, everyone else's there). */
  async dumpTable(includeForeign: boolean): Promise<TableDump> {
    const t = this.target;
    const filter = includeForeign ? { family: t.family, table: t.table } : { family: t.family, table: t.table, protocol: t.protocol };
    const out: TableDump = { ours: new DumpedRoutes(), foreign: [], retries: 0, undecodable: [] };
    // Ours decoded once per shape (the bytes but the destination) straight into `ours`, no object per
    // route; foreign ones in full, and only if asked for. An interrupted dump starts both over.
    const shared = new SharedRouteDecoder();
    let res: DumpResult<RouteMessage>;
    try {
      res = await this.client.dump(
        (b, o, seq) => encodeRouteDump(b, o, seq, filter),
        (b, o, l, type): RouteMessage | undefined => {
          if (type !== C.RTM_NEWROUTE) return undefined;
          if (l > C.NLMSG_HDRLEN + 5 && b[o + C.NLMSG_HDRLEN + 5] === t.protocol) {
            const r = shared.decodeRoute(b, o, l);
            if (r.table === t.table && r.family === t.family && !(r.flags & C.RTM_F_CLONED)) out.ours.pushDecoded(shared, r);
            return undefined;
          }
          if (!includeForeign) return undefined;
          return decodeRouteMessage(b, o, l);
        },
        `dump routes of table ${t.table}`,
        () => {
          out.ours = new DumpedRoutes();
        },
      );
    } catch (err) {
      if (err instanceof NetlinkRequestError && err.errno === ENOENT) return out;
      throw err;
    }
    out.retries = res.retries;
    out.undecodable = res.errors.map((e) => e.message);
    for (const r of res.items) {
      if (r.table !== t.table || r.family !== t.family || r.flags & C.RTM_F_CLONED) continue;
      if (r.protocol !== t.protocol) out.foreign.push(r);
    }
    return out;
  }

  submit(ops: readonly RouteOp[] | OpSource): Promise<BatchResult> {
    return 'encode' in ops ? this.pipeline.submitSource(ops) : this.pipeline.submit(ops);
  }

  /** Waits while the pipeline holds more unsent changes than it wants (backpressure). */
  async drainIfFull(): Promise<void> {
    if (this.pipeline.full) await this.pipeline.drain();
  }

  /** Stops listening to notifications (shutdown: our own deletes need no repair). */
  closeMonitor(): void {
    this.monitor?.close();
    this.monitor = undefined;
  }

  /** Waits for every submitted change, then closes everything. */
  async close(): Promise<void> {
    this.closeMonitor();
    await this.pipeline.close();
    this.client.close();
  }

  /** Closes everything now; changes not yet settled fail. */
  destroy(): void {
    this.closeMonitor();
    this.pipeline.destroy();
    this.client.close();
  }
}
