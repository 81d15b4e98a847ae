/**
 * The real kernel I/O (kernel-io.ts): one sync's netlink sockets.
 *
 *  - the monitor (route, link and address notifications), opened first, so
 *    no change that happens after a dump can be missed;
 *  - a client for dumps (links at start, the table at every scan);
 *  - the route pipeline for batched changes.
 *
 * The kernel drops the notifications of our own changes before they reach
 * the monitor (a socket filter on the pipeline's port id), and the monitor
 * is drained before the pipeline reads answers, so a notification of
 * someone else's change made before ours always arrives while ours is
 * still in flight. A table that never held a route does not exist yet: the
 * kernel answers ENOENT, which is an empty dump.
 */
import { constants as osConstants } from 'node:os';
import { NetlinkClient, anyRoute } from '../../netlink/client';
import { NetlinkRequestError } from '../../netlink/errors';
import { RoutePipeline, type BatchResult, type OpSource } from '../../netlink/pipeline';
import { NetlinkSocket } from '../../netlink/socket';
import * as C from '../../netlink/constants';
import { decodeNexthopMessage, encodeNexthopDump, encodeNexthopRequest, type NexthopMessage } from '../../netlink/nexthop-codec';
import { RTMSG_LEN, decodeRouteMessage, encodeRouteDump, type RouteMessage } from '../../netlink/route-codec';
import { walkAttrs } from '../../netlink/wire';
import type { KernelTarget } from './convert';
import type { DumpSink, KernelEvents, KernelIo, KernelIoOptions, KernelIoProvider, TableDump } from './kernel-io';
import { KernelMonitor } from './kernel-monitor';
import { idRange } from './nexthop-objects';
import { TableDumpCollector } from './table-dump';

const { ENOENT } = osConstants.errno;

class NetlinkKernelIo implements KernelIo {
  private monitor: KernelMonitor | undefined;
  readonly ownEchoesFiltered: boolean;

  constructor(
    private readonly target: KernelTarget,
    monitor: KernelMonitor,
    private readonly client: NetlinkClient,
    private readonly pipeline: RoutePipeline,
    filterOwnEchoes: boolean,
    private readonly netns: string | undefined,
  ) {
    this.monitor = monitor;
    // Notifications before answers, with the filter or without: someone else's change made before
    // ours is seen while ours is in flight, and without the filter our own echoes are matched while
    // their changes are still out (the raw fast path), though the sender runs ahead of the JS thread.
    pipeline.beforeAnswers = () => this.monitor?.drainNow();
    let filtered = false;
    if (filterOwnEchoes) {
      try {
        // The client's too: a failover's nexthop replace is stamped on the notification of every route on the object.
        monitor.ignorePort([pipeline.socket.portId, ...(client.socket instanceof NetlinkSocket ? [client.socket.portId] : [])], idRange(target).first >>> 16);
        filtered = true;
      } catch {
        // Left to the echo matching.
      }
    }
    this.ownEchoesFiltered = filtered;
  }

  async dumpTable(includeForeign: boolean, sink?: DumpSink, oif?: number): Promise<TableDump> {
    const t = this.target;
    const filter = { family: t.family, table: t.table, ...(includeForeign ? {} : { protocol: t.protocol }), ...(oif !== undefined ? { oif } : {}) };
    const collect = new TableDumpCollector(t, includeForeign, sink);
    try {
      const res = await this.client.dump((b, o, seq) => encodeRouteDump(b, o, seq, filter), collect.decode, `dump routes of table ${t.table}`, collect.reset);
      return collect.finish(res);
    } catch (err) {
      if (err instanceof NetlinkRequestError && err.errno === ENOENT) return TableDumpCollector.empty();
      throw err;
    }
  }

  holdsOurs(): Promise<boolean> {
    const t = this.target;
    return anyRoute({ family: t.family, table: t.table, protocol: t.protocol }, this.netns !== undefined ? { netns: this.netns } : {});
  }

  async dumpNexthops(): Promise<NexthopMessage[]> {
    const res = await this.client.dump(encodeNexthopDump, (b, o, l, t) => (t === C.RTM_NEWNEXTHOP ? decodeNexthopMessage(b, o, l) : undefined), 'dump nexthop objects');
    return res.items;
  }

  changeNexthop(cmd: 'add' | 'replace' | 'delete', m: NexthopMessage): Promise<void> {
    const encode = (b: Buffer, o: number, seq: number): number => encodeNexthopRequest(b, o, seq, cmd, m);
    // A delete takes every route on the object with it, inside the kernel's sendmsg: off the JS thread.
    return cmd === 'delete' ? this.client.requestOffThread(encode, `delete nexthop ${m.id}`) : this.client.request(encode, `${cmd} nexthop ${m.id}`);
  }

  async nexthopUsers(inRange: (id: number) => boolean): Promise<RouteMessage[]> {
    const t = this.target;
    // Read in place: only the header's protocol and table and RTA_TABLE / RTA_NH_ID matter here;
    // the few routes on an object in range are decoded.
    const take = (buf: Buffer, off: number, len: number, type: number): RouteMessage | undefined => {
      if (type !== C.RTM_NEWROUTE) return undefined;
      const b = off + C.NLMSG_HDRLEN;
      let table = buf[b + 4]!;
      if (buf[b + 5] === t.protocol && table === t.table) return undefined; // ours (a table id that fits the header): most of a dump

      let nh = 0;
      walkAttrs(buf, b + RTMSG_LEN, off + len, (a, d, dl) => {
        if (a === C.RTA_TABLE && dl >= 4) table = buf.readUInt32LE(d);
        else if (a === C.RTA_NH_ID && dl >= 4) nh = buf.readUInt32LE(d);
      });
      return nh !== 0 && inRange(nh) && !(buf[b + 5] === t.protocol && table === t.table) ? decodeRouteMessage(buf, off, len) : undefined;
    };
    const users: RouteMessage[] = [];
    for (const family of [4, 6] as const) users.push(...(await this.client.dump((b, o, seq) => encodeRouteDump(b, o, seq, { family }), take, `dump routes (nexthop users)`)).items);
    return users;
  }

  drainMonitor(): void {
    this.monitor?.drainNow();
  }

  submit(ops: OpSource): Promise<BatchResult> {
    return this.pipeline.submitSource(ops);
  }

  get full(): boolean {
    return this.pipeline.full;
  }

  drain(): Promise<void> {
    return this.pipeline.drain();
  }

  get backlog(): number {
    return this.pipeline.outstanding;
  }

  closeMonitor(): void {
    this.monitor?.close();
    this.monitor = undefined;
  }

  async close(): Promise<void> {
    this.closeMonitor();
    await this.pipeline.close();
    this.client.close();
  }

  destroy(): void {
    this.closeMonitor();
    this.pipeline.destroy();
    this.client.close();
  }
}

/** The default KernelIoProvider: netlink sockets in the process's namespace or `opts.netns`. */
export const openNetlinkKernelIo: KernelIoProvider = async (opts: KernelIoOptions, events: KernelEvents) => {
  const netns = opts.netns !== undefined ? { netns: opts.netns } : {};
  const monitor = new KernelMonitor({ family: opts.target.family, ...netns, ...(opts.monitorRcvbuf ? { rcvbuf: opts.monitorRcvbuf } : {}) }, events);
  let client: NetlinkClient | undefined;
  try {
    // Dumps are read 1 MiB at a time (the default 4 MiB buffer is RSS once a big dump has filled it).
    client = NetlinkClient.open({ ...netns, recvBufferSize: 1 << 20 });
    // highWater: enough queued to keep the sender busy for a while (about 0.3 s of kernel time), no more: what
    // waits in the sync's own queue instead can still be put in the trie's order when the first feed ends.
    // 1 MiB of answers a read (a fence's ack, failures) is plenty: the default 4 MiB buffer is RSS once touched.
    const pipeline = RoutePipeline.open({ ...netns, highWater: 65536, recvBufferSize: 1 << 20, ...(opts.pipelineWindow ? { window: opts.pipelineWindow } : {}) });
    const io = new NetlinkKernelIo(opts.target, monitor, client, pipeline, opts.filterOwnEchoes ?? true, opts.netns);
    try {
      const links = await client.dumpLinks();
      const addrs = await client.dumpAddrs();
      return { io, links: links.items, addrs: addrs.items };
    } catch (e) {
      io.destroy();
      throw e;
    }
  } catch (e) {
    monitor.close();
    client?.close();
    throw e;
  }
};
