/**
 * NetlinkMonitor: route, link and address notifications from the kernel.
 *
 * Joins RTNLGRP_IPV4_ROUTE, IPV6_ROUTE, LINK, IPV4_IFADDR and IPV6_IFADDR (or
 * the groups given) and delivers what arrives as batches: onMessages runs once
 * per event-loop wake-up with every message drained then, decoded.
 *
 * Overflow is an event, not an error: when the kernel could not queue a
 * notification (ENOBUFS), onOverflow runs after the batch that preceded it.
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

  private constructor(readonly socket: NetlinkSocket) {}

  /** Opens and starts the monitor. It does not keep the process alive by itself. */
  static open(handlers: MonitorHandlers, opts: NetlinkSocketOptions = {}): NetlinkMonitor {
    const socket = NetlinkSocket.open({ rcvbuf: 16 << 20, ...opts, groups: opts.groups ?? DEFAULT_MONITOR_GROUPS });
    const m = new NetlinkMonitor(socket);
    socket.start((bytes, errno) => {
      const raw = handlers.onRawRoute;
      if (bytes > 0) {
        if (raw) deliverWithRaw(socket.buffer, bytes, handlers, raw);
        else handlers.onMessages(decodeMessages(socket.buffer, 0, bytes));
      }
      if (errno === ENOBUFS) {
        m.overflows++;
        handlers.onOverflow();
      } else if (errno !== 0) handlers.onError?.(errno, errnoName(errno));
    });
    socket.ref(false);
    return m;
  }

  /** Idempotent. */
  close(): void {
    this.socket.close();
  }
}
