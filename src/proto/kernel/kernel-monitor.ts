/**
 * The notification socket: route changes of one family, link changes,
 * address changes and nexthop objects, decoded and handed to the kernel sync;
 * and route changes of the other family that name a nexthop object of ours
 * (a foreign route on one of our objects, nexthop-users.ts): the kernel's
 * filter (ignorePort) lets only those through. Without the filter every one
 * of them arrives and is decoded.
 *
 * A receive-buffer overflow (ENOBUFS) means the kernel dropped notifications
 * we will never see: it is reported once per occurrence through onOverflow,
 * and the sync answers with a full resync. The socket stays open.
 */
import { AF_INET, AF_INET6, type Family } from '../../lib/addr';
import * as C from '../../netlink/constants';
import { NetlinkMonitor } from '../../netlink/monitor';
import type { KernelEvents } from './kernel-io';

export interface KernelMonitorOptions {
  family: Family;
  netns?: string;
  /** SO_RCVBUFFORCE bytes; default 32 MiB (bulk changes of our own echo back here). */
  rcvbuf?: number;
}

export class KernelMonitor {
  private readonly monitor: NetlinkMonitor;
  private readonly family: Family;

  constructor(opts: KernelMonitorOptions, handlers: KernelEvents) {
    this.family = opts.family;
    const groups =
      opts.family === 4
        ? [C.RTNLGRP_IPV4_ROUTE, C.RTNLGRP_LINK, C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_NEXTHOP, C.RTNLGRP_IPV6_ROUTE]
        : [C.RTNLGRP_IPV6_ROUTE, C.RTNLGRP_LINK, C.RTNLGRP_IPV6_IFADDR, C.RTNLGRP_NEXTHOP, C.RTNLGRP_IPV4_ROUTE];
    this.monitor = NetlinkMonitor.open(
      {
        onMessages: (messages) => {
          for (const m of messages) {
            switch (m.kind) {
              case 'route':
                if (m.route.family === opts.family) handlers.onRoute(m.route, m.deleted, m.header.flags, m.header.pid);
                else handlers.onOtherFamilyRoute?.(m.route, m.deleted, m.header.flags);
                break;
              case 'link':
                handlers.onLink(m.link, m.deleted);
                break;
              case 'addr':
                handlers.onAddr(m.addr, m.deleted);
                break;
              case 'nexthop':
                handlers.onNexthop?.(m.nexthop, m.deleted);
                break;
              case 'malformed':
                handlers.onMalformed(m.error.message);
                break;
              default:
                break;
            }
          }
        },
        onOverflow: () => handlers.onOverflow(),
        onError: (_errno, name) => handlers.onMalformed(`receive error ${name}`),
        onForeign: (n, port) => handlers.onMalformed(`${n} message(s) sent by a process (netlink port ${port}), not by the kernel: dropped`),
        ...(handlers.onRawRoute ? { onRawRoute: handlers.onRawRoute } : {}),
      },
      // The kernel queues up to rcvbuf for us; each read takes up to 1 MiB of it (the drain reads on).
      { groups, rcvbuf: opts.rcvbuf ?? 32 << 20, recvBufferSize: 1 << 20, ...(opts.netns !== undefined ? { netns: opts.netns } : {}) },
    );
  }

  /**
   * Drops, in the kernel, the notifications our own sockets cause, and the other family's route
   * notifications but those naming an object in our id block (NetlinkMonitor.ignorePort).
   */
  ignorePort(portIds: number | readonly number[], nhIdHigh16: number): void {
    this.monitor.ignorePort(portIds, { family: this.family === 4 ? AF_INET : AF_INET6, nhIdHigh16 });
  }

  /** Delivers whatever is queued now. */
  drainNow(): void {
    this.monitor.drainNow();
  }

  close(): void {
    this.monitor.close();
  }
}
