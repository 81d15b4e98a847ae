/**
 * The kernel as the kernel sync sees it: an interface it receives (after
 * FRR's dataplane providers), so its logic runs unchanged against the real
 * kernel (netlink-io.ts) or against a fake one in unit tests
 * (test/helpers/fake-kernel.ts). The real kernel stays the oracle: the
 * integration tests run the same sync through netlink.
 *
 * What an implementation promises:
 *  - events arrive in the order the kernel made them, never inside a call
 *    of the sync (from the event loop);
 *  - a notification of someone else's change made before one of our sends
 *    is delivered before that send's results (the netlink pipeline drains
 *    the monitor before it reads answers);
 *  - with `ownEchoesFiltered`, notifications our own changes cause are
 *    never delivered; without it they are, and the sync matches them;
 *  - an overflow (notifications lost) is reported by onOverflow, after
 *    whatever arrived before it; the sync answers with a scan;
 *  - dumpTable() retries interrupted dumps itself and says how often; a table
 *    that never held a route is an empty dump, not an error.
 */
import type { AddrMessage, LinkMessage } from '../../netlink/link-codec';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import type { BatchResult, OpSource } from '../../netlink/pipeline';
import type { RouteMessage } from '../../netlink/route-codec';
import type { DumpedRouteFn, DumpedRoutes } from '../../netlink/route-dump';
import type { KernelTarget } from './convert';

/** What the kernel tells the sync, in the order it happened. */
export interface KernelEvents {
  /**
   * A route change of our family, any table (`nlFlags`: the notification's NLM_F_REPLACE /
   * NLM_F_APPEND; `port`: its nlmsg_pid, the requester's port, 0 when the kernel changed it on its own).
   */
  onRoute(r: RouteMessage, deleted: boolean, nlFlags?: number, port?: number): void;
  onLink(l: LinkMessage, deleted: boolean): void;
  onAddr(a: AddrMessage, deleted: boolean): void;
  /** A nexthop object was made, changed or deleted (by anyone: changes of objects are not filtered). */
  onNexthop?(m: NexthopMessage, deleted: boolean): void;
  /** A route change of the other family naming a nexthop object in our id block (the kernel filters the rest out). */
  onOtherFamilyRoute?(r: RouteMessage, deleted: boolean, nlFlags?: number): void;
  /** Notifications were lost (ENOBUFS): resync. */
  onOverflow(): void;
  onMalformed(message: string): void;
  /**
   * Offered each route notification before it is decoded, on the raw message (rtnetlink bytes
   * at buf[off..off+len), type RTM_NEWROUTE or RTM_DELROUTE); true: handled, not delivered to
   * onRoute. The echo fallback reads its own notifications here without decoding them.
   */
  onRawRoute?(buf: Buffer, off: number, len: number, type: number): boolean;
}

export interface KernelIoOptions {
  target: KernelTarget;
  /** Network namespace (name or path) to work in; default: the process's own. */
  netns?: string;
  /** Notification socket receive buffer (bytes). */
  monitorRcvbuf?: number;
  /** Changes in flight at most. */
  pipelineWindow?: number;
  /** Drop the notifications of our own changes in the kernel (default true; see ownEchoesFiltered). */
  filterOwnEchoes?: boolean;
}

/** Takes a dump's routes of ours as they arrive, instead of a DumpedRoutes list. */
export interface DumpSink {
  /** A route of ours: its net as words (IPv4: w0) and length; routes of one shape share one RouteMessage. */
  route: DumpedRouteFn;
  /** The dump was interrupted and starts over: forget what it gave so far. */
  restart(): void;
}

export interface TableDump {
  /** Routes of ours, by column (empty when a sink took them); routes of one shape share one RouteMessage (SharedRouteDecoder). */
  ours: DumpedRoutes;
  foreign: RouteMessage[];
  /** NLM_F_DUMP_INTR restarts done. */
  retries: number;
  /** Messages that could not be decoded. */
  undecodable: string[];
}

/** One sync's kernel: its table's routes, notifications and a batched change pipeline. */
export interface KernelIo {
  /**
   * The kernel drops the notifications of our own changes before they reach
   * us: each change is known from its answer instead. False when the filter
   * could not be set up or was not asked for: echoes arrive and are matched.
   */
  readonly ownEchoesFiltered: boolean;
  /**
   * Our routes in our table (to `sink` as they come, if given), and with includeForeign everyone else's there;
   * with `oif`, only routes with a next hop through that device (the kernel filters: device-scan.ts).
   */
  dumpTable(includeForeign: boolean, sink?: DumpSink, oif?: number): Promise<TableDump>;
  /** Whether our table holds any route of ours, for the cost of one reply (a start's restart or cold start). */
  holdsOurs(): Promise<boolean>;
  /** Queues a batch of changes; settles once each has its result. Never rejects. */
  submit(ops: OpSource): Promise<BatchResult>;
  /** More changes wait to be sent than the pipeline wants: `await drain()` before submitting more. */
  readonly full: boolean;
  drain(): Promise<void>;
  /** Changes submitted and not answered yet (sent or not): the kernel's work ahead of it. */
  readonly backlog: number;
  /** Every nexthop object in the namespace; rejects (EOPNOTSUPP, EINVAL...) on a kernel without them. */
  dumpNexthops(): Promise<NexthopMessage[]>;
  /** One nexthop object change, acked (rejects with NetlinkRequestError). */
  changeNexthop(cmd: 'add' | 'replace' | 'delete', m: NexthopMessage): Promise<void>;
  /** Routes other than ours (our protocol in our table) naming a nexthop object `inRange`, in every table of both families. */
  nexthopUsers(inRange: (id: number) => boolean): Promise<RouteMessage[]>;
  /** Delivers every notification queued now (before a change that depends on what others did). */
  drainMonitor(): void;
  /** Stops listening to notifications (shutdown: our own deletes need no repair). */
  closeMonitor(): void;
  /** Waits for every submitted change, then closes everything. */
  close(): Promise<void>;
  /** Closes everything now; changes not yet settled fail. */
  destroy(): void;
}

/** Opens a sync's kernel I/O (listening first, so no change after a dump can be missed) and lists the links. */
export type KernelIoProvider = (opts: KernelIoOptions, events: KernelEvents) => Promise<{ io: KernelIo; links: LinkMessage[]; addrs?: AddrMessage[] }>;
