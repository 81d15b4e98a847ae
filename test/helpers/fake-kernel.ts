/**
 * A fake kernel for unit tests of the kernel sync: an in-memory routing
 * table with the kernel's rules, notifications, per-route errors, ENOBUFS
 * and interrupted dumps. It plugs into the sync as its KernelIoProvider
 * (src/proto/kernel/kernel-io.ts), so the sync's logic runs without root.
 * The real kernel stays the oracle: the integration tests run the same sync
 * through netlink.
 *
 * What it does like Linux (6.x), and where the sync depends on it:
 *  - routes are keyed by (family, table, dst, tos, metric); IPv6 routes
 *    without a metric get 1024 and a router preference of medium; a gateway
 *    sent without a device gets the device of the link whose connected
 *    prefix covers it (no such link, and not onlink: ENETUNREACH, "Nexthop
 *    has invalid gateway"); a device that does not exist: ENODEV; one that is
 *    down: ENETDOWN;
 *  - add (NLM_F_EXCL): EEXIST when any route, of any protocol, is at that
 *    key; replace: the route at that key, whatever its protocol, or a new
 *    one; delete: the first route matching dst, table, tos, and the metric,
 *    protocol, type and scope when given (0 / RTN_UNSPEC /
 *    RT_SCOPE_NOWHERE are wildcards), else ESRCH;
 *  - every change is notified to every monitor of its family, stamped with
 *    the port of the socket that made it; a monitor that filters its own
 *    pipeline's port never gets those; the pipeline delivers what is queued
 *    on the monitors before it hands over results (the real pipeline drains
 *    the monitor before it reads answers);
 *  - a link going down drops the routes through it without a notification;
 *  - nexthop objects as in fake-nexthops.ts.
 * A test may hold requests before the kernel takes them (holdNexthops), or
 * the answers to requests it has taken (holdAnswers: the sync reads them
 * after what the kernel did meanwhile).
 *
 * Requests are what the sync really encodes: each change is encoded by the
 * sync's OpSource into bytes and decoded here, so the codec is exercised too.
 * Without the filter, notifications are offered on the raw bytes first
 * (onRawRoute), as the netlink monitor does.
 */
import { constants as osConstants } from 'node:os';
import { AF_INET, Addr, Prefix, parseAddr, parsePrefix, type Family } from '../../src/lib/addr';
import * as C from '../../src/netlink/constants';
import { DumpInterruptedError, type DumpResult } from '../../src/netlink/client';
import { NetlinkRequestError, NetlinkSocketError } from '../../src/netlink/errors';
import type { AddrMessage, LinkMessage } from '../../src/netlink/link-codec';
import type { BatchResult, OpSource, RouteOpFailure } from '../../src/netlink/pipeline';
import { decodeRouteMessage, encodeRouteMessage, type RouteMessage } from '../../src/netlink/route-codec';
import type { DumpSink, KernelEvents, KernelIo, KernelIoOptions, KernelIoProvider, TableDump } from '../../src/proto/kernel/kernel-io';
import { TableDumpCollector } from '../../src/proto/kernel/table-dump';
import type { NexthopMessage } from '../../src/netlink/nexthop-codec';
import { FakeNexthops } from './fake-nexthops';
import { idRange } from '../../src/proto/kernel/nexthop-objects';

const { EEXIST, ESRCH, ENETUNREACH, ENODEV, ENETDOWN, ECANCELED } = osConstants.errno;

export interface FakeLink {
  index: number;
  name: string;
  up: boolean;
  /** Connected prefixes (addresses on the link): gateways inside them resolve to it. */
  connected: Prefix[];
}

/** A route someone else makes (the `ip` tool): defaults protocol static, main table. */
export interface ForeignRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  metric?: number;
  protocol?: number;
  table?: number;
  type?: number;
  /** A nexthop object (RTA_NH_ID) instead of gateway and dev. */
  nhid?: number;
}

/** The kernel's refusal of one change, if any (a test's rule on top of the built-in ones). */
export type Rejecter = (r: RouteMessage, cmd: 'add' | 'replace' | 'delete') => { errno: number; extAck?: string } | undefined;

type Notice =
  | { kind: 'route'; msg: RouteMessage; deleted: boolean; port: number; nlFlags: number }
  | { kind: 'link'; link: LinkMessage; deleted: boolean }
  | { kind: 'addr'; addr: AddrMessage; deleted: boolean }
  | { kind: 'nexthop'; nh: NexthopMessage; deleted: boolean };

const FOREIGN_PORT = 1;

function effectiveMetric(r: RouteMessage): number {
  return r.priority ?? (r.family === 6 ? 1024 : 0);
}

function keyOf(r: RouteMessage): string {
  return `${r.family}|${r.table}|${r.dst.toString()}|${r.tos}|${effectiveMetric(r)}`;
}

export class FakeKernel {
  readonly links = new Map<number, FakeLink>();
  /** Routes by key, in the order they were made (a dump lists them so). */
  private readonly routes = new Map<string, RouteMessage>();
  private readonly ios = new Set<FakeKernelIo>();
  private nextPort = 1000;
  /** Changes made, by whom. */
  readonly changes = { ours: 0, foreign: 0 };
  /** Every change made, in order: `add 10.0.0.0/24 ...`, `del ...` (ours: made by a sync). */
  readonly log: { change: string; ours: boolean }[] = [];
  /** A test's own rule for the syncs' changes, asked before the built-in ones. */
  reject: Rejecter | undefined;
  /** The next dumps are interrupted this many times (over 5 in one dump: the dump fails). */
  interruptDumps = 0;
  /** Dumps taken, for tests. */
  dumps = 0;
  /** Every route dump taken: the device it was filtered by (RTA_OIF), and how many routes it returned. */
  readonly dumpLog: Array<{ oif: number | undefined; routes: number }> = [];
  /** Dumps of every route for foreign users of nexthop objects (KernelIo.nexthopUsers), for tests. */
  usersDumps = 0;
  /** Nexthop objects. */
  readonly nexthops = new FakeNexthops(this.links);

  constructor(links: readonly { name: string; up?: boolean; connected?: string[] }[] = [{ name: 'veth0', connected: ['192.0.2.0/24', '2001:db8:1::/64'] }, { name: 'veth1', connected: ['198.51.100.0/24'] }]) {
    this.links.set(1, { index: 1, name: 'lo', up: true, connected: [] });
    let i = 2;
    for (const l of links) this.links.set(i, { index: i++, name: l.name, up: l.up ?? true, connected: (l.connected ?? []).map((p) => parsePrefix(p)) });
  }

  /** Batches of route changes the syncs have submitted so far. */
  get batches(): number {
    let n = 0;
    for (const io of this.ios) n += io.batches;
    return n;
  }

  /** The sync's KernelIoProvider. */
  readonly provider: KernelIoProvider = async (opts, events) => {
    const io = new FakeKernelIo(this, opts, events, this.nextPort++);
    this.ios.add(io);
    await Promise.resolve();
    const addrs: AddrMessage[] = [];
    for (const l of this.links.values()) for (const p of l.connected) addrs.push({ family: p.family, prefixLen: p.len, flags: 0, scope: 0, index: l.index, local: p.addr });
    return { io, links: [...this.links.values()].map(linkMessage), addrs };
  };

  /** A nexthop object change (ours through a sync's io, or someone else's with port FOREIGN_PORT); the kernel's answer. */
  changeNexthop(cmd: 'add' | 'replace' | 'delete', m: NexthopMessage, port = FOREIGN_PORT): { errno: number; extAck?: string } | undefined {
    const before = this.nexthops.objects.get(m.id);
    const err = this.nexthops.apply(cmd, m, (ids) => this.silentDelete((r) => r.nhId !== undefined && ids.has(r.nhId)));
    if (err) return err;
    this.count(port, `${cmd} nexthop ${m.id}`);
    const now = this.nexthops.objects.get(m.id);
    for (const io of this.ios) io.queue({ kind: 'nexthop', nh: cmd === 'delete' ? before! : now!, deleted: cmd === 'delete' });
    return undefined;
  }

  /** Someone else's nexthop object change (throws the kernel's refusal). */
  foreignNexthop(cmd: 'add' | 'replace' | 'delete', m: Partial<NexthopMessage> & { id: number }): void {
    this.check(this.changeNexthop(cmd, { family: 4, protocol: C.RTPROT_STATIC, scope: 0, flags: 0, ...m }));
  }

  /** Every route in the kernel, as `ip route` would print it (family, table and protocol given: only those). */
  lines(f: { family?: Family; table?: number; protocol?: number } = {}): string[] {
    const out: string[] = [];
    for (const r of this.routes.values()) {
      if (f.family !== undefined && r.family !== f.family) continue;
      if (f.table !== undefined && r.table !== f.table) continue;
      if (f.protocol !== undefined && r.protocol !== f.protocol) continue;
      out.push(routeLine(r, this.links));
    }
    return out.sort();
  }

  /** The kernel's routes (copies of the objects it holds are not made: do not change them). */
  all(): RouteMessage[] {
    return [...this.routes.values()];
  }

  // ---------------------------------------------------------------- someone else's changes

  foreignAdd(f: ForeignRoute): void {
    this.check(this.apply('add', this.foreignMessage(f), FOREIGN_PORT));
  }

  foreignReplace(f: ForeignRoute): void {
    this.check(this.apply('replace', this.foreignMessage(f), FOREIGN_PORT));
  }

  foreignDelete(f: ForeignRoute): void {
    this.check(this.apply('delete', this.foreignMessage(f), FOREIGN_PORT));
  }

  /** Deletes routes without a notification (the kernel flushing them, a lost message). */
  silentDelete(test: (r: RouteMessage) => boolean): number {
    let n = 0;
    for (const [k, r] of [...this.routes]) {
      if (!test(r)) continue;
      this.routes.delete(k);
      n++;
    }
    return n;
  }

  /**
   * The kernel deletes the routes `test` picks on its own, telling of each as its own doing (port 0,
   * as IPv6 does), and nothing else: a path whose cause the sync does not hear. `objects`: it deletes
   * these nexthop objects too, silently.
   */
  kernelDeletes(test: (r: RouteMessage) => boolean, objects: readonly number[] = []): number {
    for (const r of this.all()) if (test(r)) this.notify(r, true, 0, 0);
    for (const id of objects) this.nexthops.objects.delete(id);
    return this.silentDelete(test);
  }

  /** Runs `changes` with every notification lost, then reports the overflow to every monitor. */
  overflow(changes: () => void = () => undefined): void {
    for (const io of this.ios) io.lose = true;
    try {
      changes();
    } finally {
      for (const io of this.ios) {
        io.lose = false;
        io.queueOverflow();
      }
    }
  }

  /**
   * A link goes down (routes through it vanish silently) or comes back. `ipv6`: the routes on the
   * objects it flushes are told of, one delete each from the kernel itself (port 0), before the
   * link's notification (docs/failover.md, "IPv6"); `linkLater`: that notification is queued only
   * when the returned function is called, or before the kernel takes any request (a busy kernel that
   * sends it after the monitor has read the deletes, but under the same RTNL lock: whatever asks the
   * kernel anything after them hears it first; takeLock).
   */
  setLink(name: string, up: boolean, opts: { ipv6?: boolean; linkLater?: boolean } = {}): () => void {
    const l = [...this.links.values()].find((x) => x.name === name);
    if (!l) throw new Error(`no link ${name}`);
    let told = false;
    const tell = (): void => {
      if (told) return;
      told = true;
      if (this.underLock === tell) this.underLock = undefined;
      for (const io of this.ios) io.queue({ kind: 'link', link: linkMessage(l), deleted: false });
    };
    if (l.up === up) return () => undefined;
    l.up = up;
    if (!up) {
      this.silentDelete((r) => usesLink(r, l.index));
      this.nexthops.linkDown(l.index, (ids) => {
        const onThem = (r: RouteMessage): boolean => r.nhId !== undefined && ids.has(r.nhId);
        if (opts.ipv6) for (const r of this.all()) if (onThem(r)) this.notify(r, true, 0, 0);
        this.silentDelete(onThem);
      });
    }
    if (opts.linkLater) return (this.underLock = tell);
    tell();
    return () => undefined;
  }

  /** What the kernel still sends under the RTNL lock it holds for a change of its own (setLink's linkLater). */
  private underLock: (() => void) | undefined;

  /** A request reaches the kernel: it takes the RTNL lock, so what the kernel sends under it is queued first. */
  takeLock(): void {
    this.underLock?.();
  }

  /** A new link appears. */
  addLink(name: string, connected: string[] = []): FakeLink {
    const index = Math.max(...this.links.keys()) + 1;
    const l: FakeLink = { index, name, up: true, connected: connected.map((p) => parsePrefix(p)) };
    this.links.set(index, l);
    for (const io of this.ios) io.queue({ kind: 'link', link: linkMessage(l), deleted: false });
    return l;
  }

  /** Nexthop changes sent and held (holdNexthops), not yet taken. */
  nexthopsWaiting = 0;

  /** Holds every nexthop change sent from now (in flight, taken in order) until the returned function is called. */
  holdNexthops(): () => void {
    return this.holdOnEachIo('nexthopsHeld');
  }

  /** Answers taken and held (holdAnswers), not yet handed to the sync. */
  answersWaiting = 0;

  /**
   * Holds the answer to every change the kernel takes from now (route batches and nexthop object
   * changes: made or refused at once, as the kernel does inside sendmsg) until the returned function
   * is called: answers the sync reads late, after what the kernel sends meanwhile (a link coming back)
   * has reached it. holdNexthops holds the request instead, before the kernel judges it.
   */
  holdAnswers(): () => void {
    return this.holdOnEachIo('answersHeld');
  }

  /** Sets a hold on every sync's io; the returned function lifts it (only where it is still this hold). */
  private holdOnEachIo(hold: 'nexthopsHeld' | 'answersHeld'): () => void {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    for (const io of this.ios) io[hold] = held;
    return () => {
      for (const io of this.ios) if (io[hold] === held) io[hold] = undefined;
      release();
    };
  }

  /** Delivers every queued notification now (tests that want the order pinned down). */
  deliverAll(): void {
    for (const io of this.ios) io.deliver();
  }

  // ---------------------------------------------------------------- the kernel's rules

  /** Applies one change as the kernel would; returns the error it would answer, if any. */
  apply(cmd: 'add' | 'replace' | 'delete', sent: RouteMessage, port: number): { errno: number; extAck?: string } | undefined {
    const refused = port === FOREIGN_PORT ? undefined : this.reject?.(sent, cmd);
    if (refused) return refused;
    if (cmd === 'delete') {
      for (const [k, r] of this.routes) {
        if (!deleteMatches(sent, r)) continue;
        this.routes.delete(k);
        this.count(port, `del ${routeLine(r, this.links)}`);
        this.notify(r, true, port, 0);
        return undefined;
      }
      return { errno: ESRCH, extAck: 'No such route' };
    }
    const r = this.asStored(sent);
    if ('errno' in r) return r;
    const k = keyOf(r);
    const there = this.routes.get(k);
    if (there !== undefined && cmd === 'add') return { errno: EEXIST, extAck: 'File exists' };
    if (there !== undefined) this.routes.delete(k); // replaced: the new one goes last, as a dump shows it
    this.routes.set(k, r);
    this.count(port, `${there === undefined ? 'add' : 'replace'} ${routeLine(r, this.links)}`);
    this.notify(r, false, port, there === undefined ? 0 : C.NLM_F_REPLACE);
    return undefined;
  }

  private count(port: number, change: string): void {
    if (port === FOREIGN_PORT) this.changes.foreign++;
    else this.changes.ours++;
    this.log.push({ change, ours: port !== FOREIGN_PORT });
  }

  /** The changes made by syncs since `from` (an index into log). */
  ourChanges(from = 0): string[] {
    return this.log.slice(from).filter((c) => c.ours).map((c) => c.change);
  }

  private check(err: { errno: number; extAck?: string } | undefined): void {
    if (err) throw new NetlinkRequestError(err.errno, err.extAck, 'fake kernel');
  }

  /** The route as the kernel keeps (and reports) it, or the kernel's refusal. */
  private asStored(sent: RouteMessage): RouteMessage | { errno: number; extAck?: string } {
    const r: RouteMessage = { ...sent, dst: sent.dst };
    if (r.family === 6) {
      r.priority ??= 1024;
      r.pref ??= C.ICMPV6_ROUTER_PREF_MEDIUM;
      r.scope = C.RT_SCOPE_UNIVERSE;
    } else if (r.priority === 0) delete r.priority;
    if (r.nhId !== undefined) return this.nexthops.stored(r);
    if (r.type !== C.RTN_UNICAST) return r;
    const hops = r.multipath ?? [{ gateway: r.gateway, via: r.via, oif: r.oif ?? 0, flags: r.flags, weight: 1 }];
    const out = [];
    for (const h of hops) {
      const gw = h.gateway ?? h.via;
      let oif = h.oif;
      if (oif === 0) {
        const link = gw === undefined ? undefined : [...this.links.values()].find((l) => l.up && l.connected.some((p) => p.contains(gw)));
        if (link === undefined) return { errno: ENETUNREACH, extAck: 'Nexthop has invalid gateway' };
        oif = link.index;
      }
      const l = this.links.get(oif);
      if (l === undefined) return { errno: ENODEV, extAck: 'No such device' };
      if (!l.up) return { errno: ENETDOWN, extAck: 'Nexthop device is not up' };
      if (gw !== undefined && !(h.flags & C.RTNH_F_ONLINK) && !l.connected.some((p) => p.contains(gw))) return { errno: ENETUNREACH, extAck: 'Nexthop has invalid gateway' };
      out.push({ ...h, oif });
    }
    if (r.multipath) r.multipath = out;
    else r.oif = out[0]!.oif;
    return r;
  }

  private foreignMessage(f: ForeignRoute): RouteMessage {
    const dst = parsePrefix(f.dst);
    const r: RouteMessage = {
      family: dst.family,
      dst,
      tos: 0,
      table: f.table ?? C.RT_TABLE_MAIN,
      protocol: f.protocol ?? C.RTPROT_STATIC,
      scope: C.RT_SCOPE_UNIVERSE,
      type: f.type ?? C.RTN_UNICAST,
      flags: 0,
    };
    if (f.metric !== undefined) r.priority = f.metric;
    if (f.nhid !== undefined) r.nhId = f.nhid;
    if (f.gateway !== undefined) r.gateway = parseAddr(f.gateway);
    if (f.dev !== undefined) {
      const l = [...this.links.values()].find((x) => x.name === f.dev);
      r.oif = l?.index ?? 999;
      if (f.gateway === undefined && dst.family === 4) r.scope = C.RT_SCOPE_LINK;
    }
    return r;
  }

  /** To every monitor of the route's family; of the other family, to those whose id block the route's object is in (their kernel filter). */
  private notify(r: RouteMessage, deleted: boolean, port: number, nlFlags: number): void {
    for (const io of this.ios) if (io.family === r.family || (r.nhId !== undefined && io.nhBlock === r.nhId >>> 16)) io.queue({ kind: 'route', msg: r, deleted, port, nlFlags });
  }

  /** A dump of `family`'s table as the kernel would stream it, through `decode`. */
  /** Whether any route of `protocol` is in `table` (the I/O's holdsOurs). */
  holds(family: Family, table: number, protocol: number): boolean {
    for (const r of this.routes.values()) if (r.family === family && r.table === table && r.protocol === protocol) return true;
    return false;
  }

  dump(family: Family, table: number, protocol: number | undefined, collect: TableDumpCollector, oif?: number): DumpResult<RouteMessage> {
    this.dumps++;
    let retries = 0;
    while (this.interruptDumps > 0) {
      this.interruptDumps--;
      collect.reset();
      if (++retries > 5) throw new DumpInterruptedError(retries);
    }
    const items: RouteMessage[] = [];
    const buf = Buffer.alloc(4096);
    let returned = 0;
    for (const r of this.routes.values()) {
      if (r.family !== family || r.table !== table || (protocol !== undefined && r.protocol !== protocol)) continue;
      if (oif !== undefined && !this.usesDev(r, oif)) continue;
      const n = encodeRouteMessage(buf, 0, C.RTM_NEWROUTE, C.NLM_F_MULTI, 1, r);
      const v = collect.decode(buf, 0, n, C.RTM_NEWROUTE);
      if (v !== undefined) items.push(v);
      returned++;
    }
    this.dumpLog.push({ oif, routes: returned });
    return { items, errors: [], retries };
  }

  /** Whether a route has a next hop through device `oif` (its own, a hop's, its object's or a member's), as the kernel's RTA_OIF dump filter asks. */
  private usesDev(r: RouteMessage, oif: number): boolean {
    if (r.nhId !== undefined) {
      const objectUses = (id: number): boolean => {
        const o = this.nexthops.objects.get(id);
        return o !== undefined && (o.group ? o.group.some((g) => objectUses(g.id)) : o.oif === oif);
      };
      return objectUses(r.nhId);
    }
    return r.oif === oif || (r.multipath ?? []).some((h) => h.oif === oif);
  }

  detach(io: FakeKernelIo): void {
    this.ios.delete(io);
  }
}

/** One sync's view of the fake kernel. */
export class FakeKernelIo implements KernelIo {
  readonly ownEchoesFiltered: boolean;
  readonly family: Family;
  /** The top 16 bits of the sync's nexthop object ids (the other family's routes on them reach this monitor). */
  readonly nhBlock: number;
  private notices: Notice[] = [];
  private overflowDue = false;
  private listening = true;
  private delivering = false;
  private scheduled = false;
  private pending = 0;
  /** Route changes submitted and not answered yet (backlog). */
  private unanswered = 0;
  private closed = false;
  private idle: Array<() => void> = [];
  private readonly scratch = Buffer.alloc(64 * 1024);
  /** Notifications are being lost (FakeKernel.overflow). */
  lose = false;
  /** Batches submitted (for tests). */
  batches = 0;

  constructor(
    private readonly kernel: FakeKernel,
    private readonly opts: KernelIoOptions,
    private readonly events: KernelEvents,
    readonly port: number,
  ) {
    this.family = opts.target.family;
    this.nhBlock = idRange(opts.target).first >>> 16;
    this.ownEchoesFiltered = opts.filterOwnEchoes ?? true;
  }

  queue(n: Notice): void {
    if (!this.listening || this.lose) return;
    if (n.kind === 'route' && n.port === this.port && this.ownEchoesFiltered) return;
    this.notices.push(n);
    this.schedule();
  }

  queueOverflow(): void {
    if (!this.listening) return;
    this.notices = [];
    this.overflowDue = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  /** Hands every queued notification to the sync, in order (then the overflow, if one happened). */
  deliver(): void {
    if (this.delivering) return; // a handler that ends up here again: the outer loop goes on
    this.delivering = true;
    try {
      while (this.notices.length > 0 && this.listening) {
        const n = this.notices.shift()!;
        if (n.kind === 'link') this.events.onLink(n.link, n.deleted);
        else if (n.kind === 'addr') this.events.onAddr(n.addr, n.deleted);
        else if (n.kind === 'nexthop') this.events.onNexthop?.(n.nh, n.deleted);
        else if (n.msg.family !== this.family) this.events.onOtherFamilyRoute?.(n.msg, n.deleted, n.nlFlags);
        else this.deliverRoute(n.msg, n.deleted, n.nlFlags, n.port);
      }
      if (this.overflowDue && this.listening) {
        this.overflowDue = false;
        this.events.onOverflow();
      }
    } finally {
      this.delivering = false;
    }
  }

  private deliverRoute(msg: RouteMessage, deleted: boolean, nlFlags: number, port: number): void {
    const type = deleted ? C.RTM_DELROUTE : C.RTM_NEWROUTE;
    const len = encodeRouteMessage(this.scratch, 0, type, nlFlags, 0, msg);
    if (this.events.onRawRoute?.(this.scratch, 0, len, type)) return;
    this.events.onRoute(decodeRouteMessage(this.scratch, 0, len), deleted, nlFlags, port);
  }

  async dumpTable(includeForeign: boolean, sink?: DumpSink, oif?: number): Promise<TableDump> {
    if (this.closed) throw new NetlinkSocketError(ECANCELED, 'fake kernel io closed');
    const t = this.opts.target;
    const collect = new TableDumpCollector(t, includeForeign, sink);
    this.kernel.takeLock();
    const res = this.kernel.dump(t.family, t.table, includeForeign ? undefined : t.protocol, collect, oif);
    await new Promise((r) => setImmediate(r));
    return collect.finish(res);
  }

  async holdsOurs(): Promise<boolean> {
    if (this.closed) throw new NetlinkSocketError(ECANCELED, 'fake kernel io closed');
    await new Promise((r) => setImmediate(r));
    const t = this.opts.target;
    return this.kernel.holds(t.family, t.table, t.protocol);
  }

  async dumpNexthops(): Promise<NexthopMessage[]> {
    await new Promise((r) => setImmediate(r));
    this.kernel.takeLock();
    if (!this.kernel.nexthops.supported) throw new NetlinkRequestError(osConstants.errno.EOPNOTSUPP, undefined, 'dump nexthop objects');
    return [...this.kernel.nexthops.objects.values()];
  }

  /** While set, the answers to changes the kernel has taken wait for it (FakeKernel.holdAnswers). */
  answersHeld: Promise<void> | undefined;

  /** An answer the kernel has made waits for its hold, if any; then what the monitor queued meanwhile is read first. */
  private async answerLater(): Promise<void> {
    const held = this.answersHeld;
    if (held === undefined) return;
    this.kernel.answersWaiting++;
    await held.finally(() => this.kernel.answersWaiting--);
    this.deliver();
  }

  /** While set, nexthop changes wait for it before the kernel takes them (still in the order sent): a change in flight. */
  nexthopsHeld: Promise<void> | undefined;

  async changeNexthop(cmd: 'add' | 'replace' | 'delete', m: NexthopMessage): Promise<void> {
    if (this.closed) throw new NetlinkSocketError(ECANCELED, 'fake kernel io closed');
    if (this.nexthopsHeld !== undefined) {
      this.kernel.nexthopsWaiting++;
      await this.nexthopsHeld.finally(() => this.kernel.nexthopsWaiting--);
    }
    await new Promise((r) => setImmediate(r));
    this.kernel.takeLock();
    const err = this.kernel.changeNexthop(cmd, m, this.port + 100000);
    await this.answerLater();
    if (err) throw new NetlinkRequestError(err.errno, err.extAck, `${cmd} nexthop ${m.id}`);
  }

  async nexthopUsers(inRange: (id: number) => boolean): Promise<RouteMessage[]> {
    this.kernel.usersDumps++;
    await new Promise((r) => setImmediate(r));
    const t = this.opts.target;
    return this.kernel.all().filter((r) => r.nhId !== undefined && inRange(r.nhId) && !(r.protocol === t.protocol && r.table === t.table));
  }

  drainMonitor(): void {
    this.deliver();
  }

  submit(ops: OpSource): Promise<BatchResult> {
    this.batches++;
    this.pending++;
    this.unanswered += ops.length;
    return new Promise((resolve) => {
      setImmediate(() => {
        this.kernel.takeLock();
        this.unanswered -= ops.length;
        const failed: RouteOpFailure[] = [];
        let ok = 0;
        for (let i = 0; i < ops.length; i++) {
          if (this.closed) {
            failed.push({ index: i, op: ops.op(i), error: new NetlinkSocketError(ECANCELED, 'route pipeline closed') });
            continue;
          }
          const n = ops.encode(this.scratch, 0, 1, i);
          const type = this.scratch.readUInt16LE(4);
          const flags = this.scratch.readUInt16LE(6);
          const cmd = type === C.RTM_DELROUTE ? 'delete' : flags & C.NLM_F_REPLACE ? 'replace' : 'add';
          const err = this.kernel.apply(cmd, decodeRouteMessage(this.scratch, 0, n), this.port);
          if (err === undefined) ok++;
          else failed.push({ index: i, op: ops.op(i), error: new NetlinkRequestError(err.errno, err.extAck, `${cmd} ${ops.op(i).dst ?? ops.op(i).route.dst}`) });
        }
        // As the netlink pipeline: whatever the monitor has queued is read before the answers.
        this.deliver();
        const answer = (): void => {
          resolve({ ok, failed, rechecked: 0 });
          if (--this.pending === 0) for (const f of this.idle.splice(0)) f();
        };
        if (this.answersHeld === undefined) answer();
        else void this.answerLater().then(answer);
      });
    });
  }

  get full(): boolean {
    return false;
  }

  get backlog(): number {
    return this.unanswered;
  }

  drain(): Promise<void> {
    return Promise.resolve();
  }

  closeMonitor(): void {
    this.listening = false;
    this.notices = [];
  }

  async close(): Promise<void> {
    this.closeMonitor();
    if (this.pending > 0) await new Promise<void>((r) => this.idle.push(r));
    this.closed = true;
    this.kernel.detach(this);
  }

  destroy(): void {
    this.closeMonitor();
    this.closed = true;
    this.kernel.detach(this);
  }
}

function linkMessage(l: FakeLink): LinkMessage {
  return { index: l.index, linkType: 1, flags: l.up ? C.IFF_UP | C.IFF_LOWER_UP : 0, name: l.name };
}

/** A route through device `index` that the kernel deletes with it: one on a nexthop object goes only with its object (FakeNexthops.linkDown). */
function usesLink(r: RouteMessage, index: number): boolean {
  if (r.nhId !== undefined) return false;
  return r.oif === index || (r.multipath?.some((h) => h.oif === index) ?? false);
}

function deleteMatches(want: RouteMessage, r: RouteMessage): boolean {
  if (want.family !== r.family || want.table !== r.table || want.tos !== r.tos || !want.dst.equals(r.dst)) return false;
  if (want.priority !== undefined && want.priority !== effectiveMetric(r)) return false;
  if (want.protocol !== 0 && want.protocol !== r.protocol) return false;
  if (want.type !== C.RTN_UNSPEC && want.type !== r.type) return false;
  if (want.family === 4 && want.scope !== C.RT_SCOPE_NOWHERE && want.scope !== r.scope) return false;
  return true;
}

/** `ip route`-like text of a route: enough to compare what the kernel holds. */
export function routeLine(r: RouteMessage, links?: ReadonlyMap<number, FakeLink>): string {
  const parts: string[] = [];
  const type = { [C.RTN_BLACKHOLE]: 'blackhole', [C.RTN_UNREACHABLE]: 'unreachable', [C.RTN_PROHIBIT]: 'prohibit' }[r.type];
  if (type) parts.push(type);
  parts.push(r.dst.toString());
  const dev = (i: number | undefined): string | undefined => (i === undefined ? undefined : (links?.get(i)?.name ?? `if${i}`));
  if (r.multipath) {
    for (const h of r.multipath) parts.push(`nexthop via ${(h.gateway ?? h.via)?.toString() ?? '-'} dev ${dev(h.oif)} weight ${h.weight}`);
  } else {
    const gw = r.gateway ?? r.via;
    if (gw) parts.push(`via ${gw.toString()}`);
    if (r.oif !== undefined && r.type === C.RTN_UNICAST) parts.push(`dev ${dev(r.oif)}`);
  }
  parts.push(`proto ${r.protocol}`);
  if (r.priority !== undefined) parts.push(`metric ${r.priority}`);
  if (r.metrics?.mtu !== undefined) parts.push(`mtu ${r.metrics.mtu}`);
  if (r.prefsrc) parts.push(`src ${r.prefsrc.toString()}`);
  if (r.flags & C.RTNH_F_ONLINK) parts.push('onlink');
  return parts.join(' ');
}

export { AF_INET, Addr, Prefix };
