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
import { RTMSG_LEN } from './route-codec';
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
   * notification of every route on the object). Throws when the kernel
   * refuses the filter.
   */
  ignorePort(portId: number | readonly number[], otherFamily?: OtherFamilyRoutes): void {
    const ports = typeof portId === 'number' ? [portId] : portId;
    this.socket.attachFilter(otherFamily === undefined ? dropFromPortProgram(...ports) : monitorFilterProgram(ports, otherFamily));
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

/** Route notifications of the other family that pass the filter: only those naming a nexthop object in one id block. */
export interface OtherFamilyRoutes {
  /** The family whose route notifications all pass (AF_INET or AF_INET6). */
  family: number;
  /** The top 16 bits of the RTA_NH_ID values that let a route of another family through. */
  nhIdHigh16: number;
}

const BPF = {
  LD_W_ABS: 0x20,
  LD_H_ABS: 0x28,
  LD_B_ABS: 0x30,
  LD_H_IND: 0x48,
  LD_B_IND: 0x50,
  LD_MEM: 0x60,
  LDX_IMM: 0x01,
  STX: 0x03,
  ST: 0x02,
  ALU_ADD_K: 0x04,
  ALU_ADD_X: 0x0c,
  ALU_AND_K: 0x54,
  ALU_LSH_K: 0x64,
  JEQ_K: 0x15,
  RET_K: 0x06,
  TAX: 0x07,
} as const;
type Insn = [number, number, number, number];
const ACCEPT: Insn = [BPF.RET_K, 0, 0, 0xffffffff];
const DROP: Insn = [BPF.RET_K, 0, 0, 0];
/** Attributes a route message is searched for RTA_NH_ID (the kernel puts it within the first dozen). */
const NH_ID_SEARCH = 32;

/**
 * Classic BPF: drop what the socket with netlink port `portId` caused; pass
 * every other message, except route notifications of a family other than
 * `o.family`, which pass only when they carry an RTA_NH_ID whose top 16 bits
 * are `o.nhIdHigh16` (a route of another family on one of our nexthop
 * objects: IPv4 routes may use IPv6 objects and IPv6 routes IPv4 device or
 * blackhole objects). The attribute walk is unrolled (classic BPF has no
 * backward jumps); a load past the message's end ends the program with 0
 * (drop). Words load in network order, netlink's fields are little-endian:
 * constants are byte-swapped.
 */
export function monitorFilterProgram(portIds: number | readonly number[], o: OtherFamilyRoutes): Buffer {
  const p: Insn[] = [
    ...dropPorts(typeof portIds === 'number' ? [portIds] : portIds),
    [BPF.LD_H_ABS, 0, 0, 4], // nlmsg_type
    [BPF.JEQ_K, 2, 0, swap16(C.RTM_NEWROUTE)],
    [BPF.JEQ_K, 1, 0, swap16(C.RTM_DELROUTE)],
    ACCEPT,
    [BPF.LD_B_ABS, 0, 0, C.NLMSG_HDRLEN], // rtm_family
    [BPF.JEQ_K, 0, 1, o.family],
    ACCEPT,
    [BPF.LDX_IMM, 0, 0, C.NLMSG_HDRLEN + RTMSG_LEN], // the first attribute
  ];
  for (let i = 0; i < NH_ID_SEARCH; i++) {
    p.push(
      [BPF.LD_H_IND, 0, 0, 2], // nla_type
      [BPF.JEQ_K, 0, 4, swap16(C.RTA_NH_ID)],
      [BPF.LD_H_IND, 0, 0, 6], // the high half of the id
      [BPF.JEQ_K, 0, 1, swap16(o.nhIdHigh16)],
      ACCEPT,
      DROP,
      // X += NLA_ALIGN(nla_len)
      [BPF.STX, 0, 0, 0],
      [BPF.LD_B_IND, 0, 0, 0],
      [BPF.ST, 0, 0, 1],
      [BPF.LD_B_IND, 0, 0, 1],
      [BPF.ALU_LSH_K, 0, 0, 8],
      [BPF.TAX, 0, 0, 0],
      [BPF.LD_MEM, 0, 0, 1],
      [BPF.ALU_ADD_X, 0, 0, 0],
      [BPF.ALU_ADD_K, 0, 0, 3],
      [BPF.ALU_AND_K, 0, 0, 0xfffffffc],
      [BPF.JEQ_K, 0, 1, 0],
      DROP,
      [BPF.TAX, 0, 0, 0],
      [BPF.LD_MEM, 0, 0, 0],
      [BPF.ALU_ADD_X, 0, 0, 0],
      [BPF.TAX, 0, 0, 0],
    );
  }
  p.push(DROP);
  return assemble(p);
}

function assemble(insns: readonly Insn[]): Buffer {
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    b.writeUInt16LE(code, i * 8);
    b[i * 8 + 2] = jt;
    b[i * 8 + 3] = jf;
    b.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return b;
}

function swap16(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
}

/**
 * Classic BPF: drop a message whose nlmsg_pid (offset 12) is one of `portIds`,
 * accept anything else whole. BPF loads words in network order; nlmsg_pid is
 * in host (little-endian) order, so the constants are byte-swapped.
 */
export function dropFromPortProgram(...portIds: number[]): Buffer {
  return assemble([...dropPorts(portIds), ACCEPT]);
}

/** Loads nlmsg_pid and drops the message when it is one of `ports`; falls through after the drop otherwise. */
function dropPorts(ports: readonly number[]): Insn[] {
  const n = ports.length;
  // Insns 1..n test a port each; a match jumps to the drop at n + 1, no match of the last skips it.
  const tests = ports.map((port, k): Insn => (k === n - 1 ? [BPF.JEQ_K, 0, 1, swap32(port)] : [BPF.JEQ_K, n - 1 - k, 0, swap32(port)]));
  return [[BPF.LD_W_ABS, 0, 0, 12], ...tests, DROP];
}

function swap32(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | ((x >>> 24) & 0xff)) >>> 0;
}
