/**
 * NetlinkMonitor: route, link and address notifications from the kernel.
 *
 * Joins RTNLGRP_IPV4_ROUTE, IPV6_ROUTE, LINK, IPV4_IFADDR and IPV6_IFADDR (or
 * the groups given) and delivers what arrives as batches: onMessages runs once
 * per event-loop wake-up with every message drained then, decoded.
 *
 * Only the kernel's messages are delivered: one sent by a process (root may
 * send to the route groups) is dropped by the native drain and reported
 * through onForeign, never decoded.
 *
 * Overflow is an event, not an error: when the kernel could not queue a
 * notification (ENOBUFS), onOverflow runs after the batch read with it (the
 * drain reads on past the error, so by then the socket is listening again).
 * Notifications were lost and nobody knows which, so the caller resyncs (dumps
 * what it cares about). The monitor keeps running. The receive buffer is
 * large by default so this is rare; tests shrink it to force it.
 */
import { constants as osConstants } from 'node:os';
import * as C from './constants';
import { errnoName } from './errors';
import { NetlinkMessage, decodeMessage, decodeMessages } from './message-codec';
import { NetlinkSocket, NetlinkSocketOptions } from './socket';
import { walkMessages } from './wire';

const { ENOBUFS } = osConstants.errno;

export const DEFAULT_MONITOR_GROUPS: readonly number[] = [
  C.RTNLGRP_IPV4_ROUTE,
  C.RTNLGRP_IPV6_ROUTE,
  C.RTNLGRP_LINK,
  C.RTNLGRP_IPV4_IFADDR,
  C.RTNLGRP_IPV6_IFADDR,
];

export interface MonitorHandlers {
  /** Decoded notifications in arrival order (kind route / link / addr, or malformed with its offset). */
  onMessages(messages: NetlinkMessage[]): void;
  /** The kernel dropped notifications (ENOBUFS): resync. */
  onOverflow(): void;
  /** Any other receive error; the monitor keeps running. */
  onError?(errno: number, name: string): void;
  /** Messages were dropped because a process, not the kernel, sent them (`dropped` since the last call; the last sender's port). */
  onForeign?(dropped: number, port: number): void;
  /**
   * Optional fast path: offered every RTM_NEWROUTE/DELROUTE (type) at buf[off..off+len) before it
   * is decoded; true means it was handled and is not decoded or delivered. Order is kept: messages
   * decoded before it are delivered first. The buffer is only valid during the call.
   */
  onRawRoute?(buf: Buffer, off: number, len: number, type: number): boolean;
}

/** One wake-up's messages with onRawRoute offered each route message first, in arrival order. */
function deliverWithRaw(buf: Buffer, bytes: number, handlers: MonitorHandlers, raw: NonNullable<MonitorHandlers['onRawRoute']>): void {
  let pending: NetlinkMessage[] = [];
  const err = walkMessages(buf, 0, bytes, (off, len) => {
    const type = buf.readUInt16LE(off + 4);
    if (type === C.RTM_NEWROUTE || type === C.RTM_DELROUTE) {
      if (pending.length > 0) {
        handlers.onMessages(pending);
        pending = [];
      }
      if (raw(buf, off, len, type)) return;
    }
    pending.push(decodeMessage(buf, off, len));
  });
  if (err) pending.push({ kind: 'malformed', error: err });
  if (pending.length > 0) handlers.onMessages(pending);
}

export class NetlinkMonitor {
  /** Overflows seen since open. */
  overflows = 0;
  /** Datagrams from processes dropped since open (see NetlinkSocket.foreign). */
  private foreignSeen = 0;

  private constructor(
    readonly socket: NetlinkSocket,
    private readonly handlers: MonitorHandlers,
  ) {}

  /** Opens and starts the monitor. It does not keep the process alive by itself. */
  static open(handlers: MonitorHandlers, opts: NetlinkSocketOptions = {}): NetlinkMonitor {
    const socket = NetlinkSocket.open({ rcvbuf: 16 << 20, ...opts, groups: opts.groups ?? DEFAULT_MONITOR_GROUPS });
    const m = new NetlinkMonitor(socket, handlers);
    socket.start((bytes, errno) => m.deliver(bytes, errno));
    socket.ref(false);
    return m;
  }

  private deliver(bytes: number, errno: number): void {
    const raw = this.handlers.onRawRoute;
    if (bytes > 0) {
      if (raw) deliverWithRaw(this.socket.buffer, bytes, this.handlers, raw);
      else this.handlers.onMessages(decodeMessages(this.socket.buffer, 0, bytes));
    }
    if (errno === ENOBUFS) {
      this.overflows++;
      this.handlers.onOverflow();
    } else if (errno !== 0) this.handlers.onError?.(errno, errnoName(errno));
    const f = this.socket.foreign;
    if (f.dropped !== this.foreignSeen) {
      const n = f.dropped - this.foreignSeen;
      this.foreignSeen = f.dropped;
      this.handlers.onForeign?.(n, f.lastPort);
    }
  }

  /**
   * Has the kernel drop every notification caused by the socket with netlink
   * port `portId` before it is queued here (a socket filter on nlmsg_pid,
   * which a notification carries from the request that caused it): the
   * kernel protocol's own changes, which it knows from their acks. More
   * ports: any of them (a nexthop replace's port is stamped on the route
   * notifications of every route on the object). Throws when the kernel
   * refuses the filter.
   */
  ignorePort(...portIds: number[]): void {
    this.socket.attachFilter(dropFromPortProgram(...portIds));
  }

  /** Reads and delivers whatever is queued now, before the poll would (see KernelIo). */
  drainNow(): void {
    if (this.socket.isClosed) return;
    for (;;) {
      const r = this.socket.receive();
      this.deliver(r.bytes, r.errno);
      if (r.dry || this.socket.isClosed) break;
    }
  }

  /** Idempotent. */
  close(): void {
    this.socket.close();
  }
}

/**
 * Classic BPF: drop a message whose nlmsg_pid (offset 12) is `portId`, accept
 * anything else whole. BPF loads words in network order; nlmsg_pid is in
 * host (little-endian) order, so the constant is byte-swapped.
 */
export function dropFromPortProgram(...portIds: number[]): Buffer {
  const BPF_LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
  const BPF_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
  const BPF_RET_K = 0x06; // BPF_RET | BPF_K
  const n = portIds.length;
  // Port i equal: jump over the rest of the tests and the accept, to the drop at the end.
  const insns: Array<[number, number, number, number]> = [
    [BPF_LD_W_ABS, 0, 0, 12],
    ...portIds.map((p, i): [number, number, number, number] => [BPF_JEQ_K, n - i, 0, swap32(p)]),
    [BPF_RET_K, 0, 0, 0xffffffff], // accept, whole
    [BPF_RET_K, 0, 0, 0], // drop
  ];
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    b.writeUInt16LE(code, i * 8);
    b[i * 8 + 2] = jt;
    b[i * 8 + 3] = jf;
    b.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return b;
}

function swap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | ((x >>> 24) & 0xff)) >>> 0;
}
