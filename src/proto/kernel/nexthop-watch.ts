/**
 * NextHopWatch: feeds a NextHopTracker (src/table/nexthop-tracker.ts) what
 * the kernel says of links and addresses, in one network namespace.
 *
 * The tracker holds no sockets (the table layer must not use netlink); this
 * is its kernel side. Order of work, so no change can be missed:
 *  1. the monitor joins RTNLGRP_LINK, IPV4_IFADDR and IPV6_IFADDR;
 *  2. links and addresses are dumped; notifications that arrive meanwhile
 *     are held and applied after the dump (they are newer);
 *  3. the dump replaces every fact (tracker.resync), then the held ones.
 * After that each wake-up's notifications are applied and the tracker is
 * flushed once, so one link event (a link message, its addresses) is one
 * verdict change. ENOBUFS (notifications lost) or a failed dump means a
 * fresh dump, retried every second until it works.
 *
 * Connected prefixes come from addresses: an address's prefix (the peer's
 * on a point-to-point link) on its device, except addresses with
 * IFA_F_NOPREFIXROUTE, for which the kernel makes no prefix route either.
 * Link facts: IFF_UP is "up", IFF_LOWER_UP is "carrier". With `neighbours`,
 * RTNLGRP_NEIGH too: an entry in NUD_FAILED makes its gateway unusable, any
 * other state (or its deletion) usable again.
 */
import { Prefix } from '../../lib/addr';
import * as C from '../../netlink/constants';
import { NetlinkClient } from '../../netlink/client';
import type { AddrMessage, LinkMessage } from '../../netlink/link-codec';
import type { NetlinkMessage } from '../../netlink/message-codec';
import { decodeNeighMessage, encodeNeighDump, NUD_FAILED, type NeighMessage } from '../../netlink/neigh-codec';
import { NetlinkMonitor } from '../../netlink/monitor';
import type { ConnectedPrefix, NextHopTracker, TrackedLink } from '../../table';
import { nullLogger, type Logger } from '../logger';

/** The kernel makes no prefix route for such an address (linux/if_addr.h). */
const IFA_F_NOPREFIXROUTE = 0x200;

export function trackedLink(l: LinkMessage): TrackedLink {
  return { index: l.index, name: l.name ?? `if${l.index}`, up: (l.flags & C.IFF_UP) !== 0, carrier: (l.flags & C.IFF_LOWER_UP) !== 0 };
}

/** The connected prefix an address gives its device, or undefined when it gives none. */
export function connectedOf(a: AddrMessage): ConnectedPrefix | undefined {
  const addr = a.address ?? a.local;
  if (addr === undefined || (a.flags & IFA_F_NOPREFIXROUTE) !== 0) return undefined;
  return { prefix: Prefix.of(addr, a.prefixLen), ifindex: a.index };
}

export interface NextHopWatchOptions {
  tracker: NextHopTracker;
  /** Network namespace (name or /run/netns path); default: the process's own. */
  netns?: string;
  /** Follow neighbour entries too (NUD_FAILED makes a gateway unusable). */
  neighbours?: boolean;
  /** Monitor receive buffer (bytes); default 1 MiB (links and addresses are few). */
  rcvbuf?: number;
  log?: Logger;
}

export class NextHopWatch {
  private monitor: NetlinkMonitor | undefined;
  private client: NetlinkClient | undefined;
  /** Notifications held while a dump runs. */
  private held: NetlinkMessage[] | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly log: Logger;
  /** Overflows and dumps since open (metrics, tests). */
  readonly stats = { overflows: 0, dumps: 0, events: 0 };

  private constructor(private readonly opts: NextHopWatchOptions) {
    this.log = opts.log ?? nullLogger;
  }

  /** Starts watching; resolves once the first dump is in the tracker. */
  static async open(opts: NextHopWatchOptions): Promise<NextHopWatch> {
    const w = new NextHopWatch(opts);
    const netns = opts.netns !== undefined ? { netns: opts.netns } : {};
    w.monitor = NetlinkMonitor.open(
      {
        onMessages: (messages) => w.onMessages(messages),
        onOverflow: () => w.onOverflow(),
        onError: (_errno, name) => w.log.warn(`next-hop tracking: receive error ${name}`),
      },
      { groups: [C.RTNLGRP_LINK, C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_IPV6_IFADDR, ...(opts.neighbours ? [C.RTNLGRP_NEIGH] : [])], rcvbuf: opts.rcvbuf ?? 1 << 20, ...netns },
    );
    try {
      w.client = NetlinkClient.open({ ...netns, recvBufferSize: 256 << 10 });
      await w.resync();
    } catch (e) {
      w.close();
      throw e;
    }
    return w;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retry);
    this.monitor?.close();
    this.client?.close();
    this.monitor = undefined;
    this.client = undefined;
  }

  /** Dumps links and addresses and replaces the tracker's facts; throws when a dump fails. */
  private async resync(): Promise<void> {
    this.held = [];
    try {
      const links = await this.client!.dumpLinks();
      const addrs = await this.client!.dumpAddrs();
      const failed: { ifindex: number; addr: NonNullable<NeighMessage['dst']> }[] = [];
      if (this.opts.neighbours) {
        const neighs = await this.client!.dump(
          (b, o, s) => encodeNeighDump(b, o, s),
          (b, o, l, t) => (t === C.RTM_NEWNEIGH ? decodeNeighMessage(b, o, l) : undefined),
          'dump neighbours',
        );
        for (const n of neighs.items) if (n.dst && (n.state & NUD_FAILED) !== 0) failed.push({ ifindex: n.ifindex, addr: n.dst });
      }
      if (this.closed) return;
      this.stats.dumps++;
      const connected: ConnectedPrefix[] = [];
      for (const a of addrs.items) {
        const c = connectedOf(a);
        if (c) connected.push(c);
      }
      this.opts.tracker.resync(links.items.map(trackedLink), connected, failed);
      const held = this.held;
      this.held = undefined;
      this.apply(held);
    } finally {
      this.held = undefined;
    }
  }

  private onMessages(messages: NetlinkMessage[]): void {
    if (this.held !== undefined) {
      this.held.push(...messages);
      return;
    }
    this.apply(messages);
  }

  private apply(messages: readonly NetlinkMessage[]): void {
    const t = this.opts.tracker;
    for (const m of messages) {
      if (m.kind === 'link') {
        this.stats.events++;
        if (m.deleted) t.removeLink(m.link.index);
        else t.setLink(trackedLink(m.link));
      } else if (m.kind === 'addr') {
        this.stats.events++;
        const c = connectedOf(m.addr);
        if (c) t.setConnected(c, !m.deleted);
      } else if (m.kind === 'other' && (m.header.type === C.RTM_NEWNEIGH || m.header.type === C.RTM_DELNEIGH)) {
        const n = this.neighbour(m.bytes);
        if (n?.dst) t.setNeighbour(n.ifindex, n.dst, m.header.type === C.RTM_NEWNEIGH && (n.state & NUD_FAILED) !== 0);
      }
    }
    t.flush();
  }

  private neighbour(bytes: Buffer): NeighMessage | undefined {
    try {
      return decodeNeighMessage(bytes, 0, bytes.length);
    } catch (e) {
      this.log.warn(`next-hop tracking: undecodable neighbour message: ${(e as Error).message}`);
      return undefined;
    }
  }

  private onOverflow(): void {
    this.stats.overflows++;
    this.log.warn('next-hop tracking: notifications were lost (ENOBUFS); dumping links and addresses again');
    this.resyncSoon(0);
  }

  private resyncSoon(delayMs: number): void {
    if (this.closed || this.retry !== undefined) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.closed) return;
      this.resync().catch((e: unknown) => {
        this.log.warn(`next-hop tracking: dump failed (${(e as Error).message}); retrying in 1 s`);
        this.resyncSoon(1000);
      });
    }, delayMs);
    this.retry.unref();
  }
}
