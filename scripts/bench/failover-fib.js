// The control-plane half of bench:failover's forwarding measure: which uplink each of the N
// probed nets forwards through, per the router namespace's kernel FIB, at every moment.
//
// A mirror of the main table's routes for those nets, of the nexthop objects and of the uplinks'
// state: loaded from netlink dumps (the project's codec, src/netlink), then kept current from
// notifications (RTNLGRP_IPV4_ROUTE, RTNLGRP_NEXTHOP, RTNLGRP_LINK), so the instant at which every
// net resolves to the backup is known to the millisecond without a dump of a million routes in
// the way. A net resolves the way the kernel's lookup does: among its routes (one per metric), the
// lowest metric with a usable next hop; a route's next hop is its gateway and device, its
// multipath hops, or its nexthop object (RTA_NH_ID) and that object's gateway or group members.
// The kernel changes some of this without a notification, which the mirror models from the link
// notifications that cause it:
// - a device losing carrier or going down deletes its nexthop objects, empties the groups that
//   held them (a group left empty is deleted), and so removes every route using them;
// - plain gateway routes on a device without carrier stay, marked linkdown, and keep forwarding
//   into the dead link unless `ignore_routes_with_linkdown` is set (read at load);
// - on a device going down they are flushed.
// verify() checks the model against a fresh dump; bench:failover prints any difference.
'use strict';
const { NetlinkClient, NetlinkMonitor, decodeNexthopMessage, decodeRouteMessage, encodeNexthopDump, encodeRouteDump } = require('../../dist/netlink');
const C = require('../../dist/netlink/constants');
const { RTMSG_LEN } = require('../../dist/netlink/route-codec');
const { AF_INET } = require('../../dist/lib/addr');

const { RT_TABLE_MAIN } = C;

/** Resolution bits: the net forwards via uplink 1, uplink 2, something else (another device, a blackhole). */
const VIA1 = 1;
const VIA2 = 2;
const OTHER = 4;

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
/** count()'s counter names, by kind and deleted. */
const KINDS = { route: ['route_new', 'route_del'], nexthop: ['nexthop_new', 'nexthop_del'] };

/** A nexthop object as the FIB mirror keeps it, from the project's decoded message (src/netlink/nexthop-codec.ts). */
function objectOf(x) {
  return { id: x.id, protocol: x.protocol, oif: x.oif ?? 0, gateway: x.gateway?.family === 4 ? x.gateway.w0 >>> 0 : 0, group: x.group?.map((g) => g.id), blackhole: x.blackhole === true };
}

/** Routes, nexthop objects and links of one moment, and how each of the N nets resolves. */
class FibState {
  /** @param {{ links: Map, objects: Map, hops: object[], routes: number[] }} s a dump's content (routes: net index, metric, hop index, ...) */
  constructor(n, uplinks, ignoreLinkdown, s) {
    this.n = n;
    this.uplinks = uplinks;
    this.ignoreLinkdown = ignoreLinkdown;
    this.links = s.links; // ifindex -> { up, carrier }
    this.objects = s.objects; // nexthop id -> decoded object
    // Per net: the route at its lowest metric seen first (most nets have one route), others in `more`.
    this.prio = new Int32Array(n).fill(-1);
    this.hop = new Int32Array(n);
    this.more = new Map(); // net index -> [{ prio, hop }]
    this.val = new Uint8Array(n);
    this.counts = new Int32Array(8);
    // Next hops as seen on routes, interned, with their resolution cached until something changes.
    this.hops = s.hops;
    this.hopIds = new Map(s.hops.map((h, id) => [hopKey(h), id]));
    this.hopVal = s.hops.map(() => -1);
    this.byObject = new Map();
    const r = s.routes;
    for (let k = 0; k < r.length; k += 3) this.setRoute(r[k], r[k + 1], r[k + 2], false);
    this.recountAll();
  }

  internHop(h) {
    const key = hopKey(h);
    let id = this.hopIds.get(key);
    if (id === undefined) {
      id = this.hops.length;
      this.hops.push(h);
      this.hopIds.set(key, id);
      this.hopVal.push(-1);
    }
    return id;
  }

  /** The interned hop of nexthop object `nhId` (internHop's, without its key string per route). */
  objectHop(nhId) {
    let id = this.byObject.get(nhId);
    if (id === undefined) this.byObject.set(nhId, (id = this.internHop({ nhId, hops: [] })));
    return id;
  }

  linkBit(oif) {
    return oif === this.uplinks[0] ? VIA1 : oif === this.uplinks[1] ? VIA2 : OTHER;
  }

  /** Whether a plain next hop on `oif` forwards now (a device without carrier does, unless ignore_routes_with_linkdown). */
  usable(oif) {
    const l = this.links.get(oif);
    if (!l) return true; // a device we know nothing of: trust the route
    return l.up && (l.carrier || !this.ignoreLinkdown);
  }

  objectVal(id, depth = 0) {
    const o = this.objects.get(id);
    if (!o || depth > 2) return 0;
    if (o.blackhole) return OTHER;
    if (o.group) return o.group.reduce((v, m) => v | this.objectVal(m, depth + 1), 0);
    return this.usable(o.oif) ? this.linkBit(o.oif) : 0;
  }

  valueOfHop(id) {
    let v = this.hopVal[id];
    if (v >= 0) return v;
    const h = this.hops[id];
    if (h.nhId) v = this.objectVal(h.nhId);
    else if (h.reject) v = OTHER;
    else v = h.hops.reduce((acc, x) => (x.dead || !this.usable(x.oif) ? acc : acc | this.linkBit(x.oif)), 0);
    this.hopVal[id] = v;
    return v;
  }

  setRoute(i, prio, hop, recount = true) {
    if (this.prio[i] < 0 || this.prio[i] === prio) {
      this.prio[i] = prio;
      this.hop[i] = hop;
    } else {
      const list = this.more.get(i) ?? [];
      const at = list.findIndex((x) => x.prio === prio);
      if (at >= 0) list[at].hop = hop;
      else list.push({ prio, hop });
      this.more.set(i, list);
    }
    if (recount) this.recount(i);
  }

  deleteRoute(i, prio) {
    const list = this.more.get(i);
    if (this.prio[i] === prio) {
      const next = list?.shift();
      this.prio[i] = next ? next.prio : -1;
      if (next) this.hop[i] = next.hop;
    } else if (list) {
      const at = list.findIndex((x) => x.prio === prio);
      if (at >= 0) list.splice(at, 1);
    }
    if (list && !list.length) this.more.delete(i);
    this.recount(i);
  }

  /** The kernel's choice for net i: the lowest metric whose next hop is usable. */
  resolve(i) {
    if (this.prio[i] < 0) return 0;
    let v = this.valueOfHop(this.hop[i]);
    const list = this.more.get(i);
    if (list) {
      let best = v === 0 ? Infinity : this.prio[i];
      for (const x of list) {
        const xv = this.valueOfHop(x.hop);
        if (xv !== 0 && x.prio < best) {
          best = x.prio;
          v = xv;
        }
      }
    }
    return v;
  }

  recount(i) {
    const v = this.resolve(i);
    this.counts[this.val[i]]--;
    this.counts[v]++;
    this.val[i] = v;
  }

  recountAll() {
    this.hopVal.fill(-1);
    this.counts.fill(0);
    for (let i = 0; i < this.n; i++) {
      const v = this.resolve(i);
      this.val[i] = v;
      this.counts[v]++;
    }
  }

  /** What the kernel does, silently, to the nexthop objects of a device that lost carrier or went down. */
  flushObjectsOn(oif) {
    for (const [id, o] of this.objects) if (!o.group && o.oif === oif) this.objects.delete(id);
    for (const [id, o] of this.objects) {
      if (!o.group) continue;
      o.group = o.group.filter((m) => this.objects.has(m));
      if (!o.group.length) this.objects.delete(id);
    }
  }

  /** How the N nets resolve now. */
  tally() {
    const c = this.counts;
    return { via1: c[VIA1], via2: c[VIA2], both: c[VIA1 | VIA2], none: c[0], other: this.n - c[VIA1] - c[VIA2] - c[VIA1 | VIA2] - c[0] };
  }
}

class FibMirror {
  /**
   * @param {{ ns: string, n: number, netIndex: (word: number, len: number) => number, uplinks: [number, number] }} o
   *   netIndex: the probed net's index (0..n-1) for a destination, or -1; uplinks: ifindex of uplink 1 and 2.
   */
  constructor(o) {
    this.n = o.n;
    this.netIndex = o.netIndex;
    this.uplinks = o.uplinks;
    this.state = undefined;
    this.changes = new Map(); // protocol -> { route: {new, del}, nexthop: {new, del} } notifications
    this.lastChange = new Map(); // protocol -> nowMs() of its last notification
    this.overflows = 0;
    this.watch = undefined;
    this.queued = undefined; // notifications that arrive while a load's dump runs
    this.client = NetlinkClient.open({ netns: o.ns, rcvbuf: 64 << 20, recvBufferSize: 8 << 20 });
    this.monitor = NetlinkMonitor.open(
      {
        onMessages: (msgs) => this.onMessages(msgs, nowMs()),
        onRawRoute: (buf, off, len, type) => this.onRawRoute(buf, off, len, type),
        onOverflow: () => this.overflows++,
      },
      { netns: o.ns, groups: [C.RTNLGRP_LINK, C.RTNLGRP_IPV4_ROUTE], rcvbuf: 1 << 30, recvBufferSize: 8 << 20 },
    );
    this.monitor.socket.addMembership(C.RTNLGRP_NEXTHOP);
  }

  /** Dumps links, nexthop objects and routes and rebuilds the mirror (notifications meanwhile are applied after). */
  async load(ignoreLinkdown) {
    this.queued = [];
    try {
      this.state = new FibState(this.n, this.uplinks, ignoreLinkdown, await this.dumpState());
    } finally {
      const q = this.queued;
      this.queued = undefined;
      for (const [msgs, at] of q) this.onMessages(msgs, at);
    }
  }

  async dumpState() {
    const links = new Map();
    for (const l of (await this.client.dumpLinks()).items) links.set(l.index, { up: (l.flags & C.IFF_UP) !== 0, carrier: (l.flags & C.IFF_LOWER_UP) !== 0 });
    const objects = new Map();
    const nh = await this.client.dump(
      encodeNexthopDump,
      (buf, off, len, type) => (type === C.RTM_NEWNEXTHOP ? objectOf(decodeNexthopMessage(buf, off, len)) : undefined),
      'dump nexthop objects',
    );
    for (const o of nh.items) objects.set(o.id, o);
    // Routes are kept as (net index, metric, hop index) only: a million decoded messages need not live at once.
    const routes = [];
    const hops = [];
    const hopIds = new Map();
    const r = await this.client.dump(
      (buf, off, seq) => encodeRouteDump(buf, off, seq, { family: 4, table: RT_TABLE_MAIN }),
      (buf, off, len, type) => {
        if (type !== C.RTM_NEWROUTE) return undefined;
        const m = decodeRouteMessage(buf, off, len);
        const i = m.table === RT_TABLE_MAIN ? this.netIndex(m.dst.w0 >>> 0, m.dst.len) : -1;
        if (i < 0) return undefined;
        const h = hopOf(m);
        const key = hopKey(h);
        let id = hopIds.get(key);
        if (id === undefined) {
          hopIds.set(key, (id = hops.length));
          hops.push(h);
        }
        routes.push(i, m.priority ?? 0, id);
        return undefined;
      },
      'dump routes',
      () => (routes.length = 0), // an interrupted dump starts over
    );
    if (r.errors.length) throw new Error(`route dump: ${r.errors.length} messages could not be decoded: ${r.errors[0].message}`);
    return { links, objects, hops, routes };
  }

  count(proto, at, what, deleted) {
    let c = this.changes.get(proto);
    if (!c) this.changes.set(proto, (c = { route_new: 0, route_del: 0, nexthop_new: 0, nexthop_del: 0 }));
    c[KINDS[what][deleted ? 1 : 0]]++;
    this.lastChange.set(proto, at);
  }

  onMessages(msgs, at) {
    if (this.queued) {
      this.queued.push([msgs, at]);
      return;
    }
    const st = this.state;
    let all = false;
    for (const m of msgs) {
      if (m.kind === 'route') {
        const r = m.route;
        this.count(r.protocol, at, 'route', m.deleted);
        if (!st || r.family !== 4 || r.table !== RT_TABLE_MAIN) continue;
        const i = this.netIndex(r.dst.w0 >>> 0, r.dst.len);
        if (i < 0) continue;
        if (m.deleted) st.deleteRoute(i, r.priority ?? 0);
        else st.setRoute(i, r.priority ?? 0, st.internHop(hopOf(r)));
      } else if (m.kind === 'link') {
        if (!st) continue;
        const l = m.link;
        const was = st.links.get(l.index);
        const now = { up: !m.deleted && (l.flags & C.IFF_UP) !== 0, carrier: !m.deleted && (l.flags & C.IFF_LOWER_UP) !== 0 };
        st.links.set(l.index, now);
        if (was && (was.up !== now.up || was.carrier !== now.carrier)) {
          if (!now.up || !now.carrier) st.flushObjectsOn(l.index);
          all = true;
        }
      } else if (m.kind === 'nexthop') {
        const o = objectOf(m.nexthop);
        this.count(o.protocol, at, 'nexthop', m.deleted);
        if (!st) continue;
        if (m.deleted) st.objects.delete(o.id);
        else st.objects.set(o.id, o);
        all = true;
      }
    }
    if (all) st.recountAll();
    this.check(at);
  }

  /**
   * A route notification on a nexthop object (RTA_NH_ID), read in place: the million notifications of a
   * failover were decoded in full (a Prefix, a hop object and its key string each), 4-5 s of CPU on the
   * two cores the daemon and the kernel's adds share, and the mirror stamped the last change up to a
   * second after it happened. Anything else (no object, another family, a malformed message) takes the
   * full decoder in onMessages; the result is the same (verify() compares it with a dump).
   */
  onRawRoute(buf, off, len, type) {
    const b = off + C.NLMSG_HDRLEN;
    const end = off + len;
    if (len < C.NLMSG_HDRLEN + RTMSG_LEN || end > buf.length || buf[b] !== AF_INET) return false;
    const dstLen = buf[b + 1];
    let table = buf[b + 4];
    const protocol = buf[b + 5];
    let dst = 0;
    let prio = 0;
    let nhId = 0;
    for (let p = b + RTMSG_LEN; p + 4 <= end; ) {
      const alen = buf.readUInt16LE(p);
      if (alen < 4 || p + alen > end) return false;
      const t = buf.readUInt16LE(p + 2) & 0x3fff;
      if (t === C.RTA_DST && alen === 8) dst = buf.readUInt32BE(p + 4);
      else if (t === C.RTA_TABLE && alen === 8) table = buf.readUInt32LE(p + 4);
      else if (t === C.RTA_PRIORITY && alen === 8) prio = buf.readUInt32LE(p + 4);
      else if (t === C.RTA_NH_ID && alen === 8) nhId = buf.readUInt32LE(p + 4);
      p += (alen + 3) & ~3;
    }
    if (nhId === 0) return false;
    if (this.queued) return false; // a load's dump runs: queued, decoded, in order
    const at = nowMs();
    const deleted = type === C.RTM_DELROUTE;
    this.count(protocol, at, 'route', deleted);
    const st = this.state;
    if (!st || table !== RT_TABLE_MAIN) return true;
    const i = this.netIndex(dst, dstLen);
    if (i < 0) return true;
    if (deleted) st.deleteRoute(i, prio);
    else st.setRoute(i, prio, st.objectHop(nhId));
    this.check(at);
    return true;
  }

  /** How the N nets resolve now. */
  tally() {
    return this.state.tally();
  }

  /**
   * Resolves with the time (ms, monotonic) at which every net forwards via uplink `link` (1 or 2) alone;
   * progress() says when half, 90 % and 99 % of them did.
   */
  until(link) {
    const bit = link === 1 ? VIA1 : VIA2;
    return new Promise((resolve) => {
      this.watch = { bit, resolve, marks: [0.5, 0.9, 0.99].map((f) => ({ f, at: undefined })) };
      this.progressMarks = this.watch.marks;
      this.check(nowMs());
    });
  }

  /** When the last watch saw each share of the nets on its link: [{ f, at }]. */
  progress() {
    return this.progressMarks ?? [];
  }

  cancel() {
    this.watch = undefined;
  }

  check(at) {
    const w = this.watch;
    if (!w || !this.state) return;
    for (const m of w.marks) if (m.at === undefined && this.state.counts[w.bit] >= m.f * this.n) m.at = at;
    if (this.state.counts[w.bit] === this.n) {
      this.watch = undefined;
      w.resolve(at);
    }
  }

  /** Notifications of `proto` so far, by kind; subtract an earlier answer to count a phase's. */
  changesOf(proto) {
    return { route_new: 0, route_del: 0, nexthop_new: 0, nexthop_del: 0, ...this.changes.get(proto) };
  }

  lastChangeOf(proto) {
    return this.lastChange.get(proto) ?? 0;
  }

  /** A fresh dump resolved the same way, compared net by net with the mirror. */
  async verify() {
    const fresh = new FibState(this.n, this.uplinks, this.state.ignoreLinkdown, await this.dumpState());
    let mismatches = 0;
    for (let i = 0; i < this.n; i++) if (fresh.val[i] !== this.state.val[i]) mismatches++;
    return { mismatches, tally: fresh.tally() };
  }

  close() {
    this.watch = undefined;
    this.monitor.close();
    this.client.close();
  }
}

function hopKey(h) {
  return h.nhId ? `nh${h.nhId}` : h.reject ? 'reject' : h.hops.map((x) => `${x.gw}@${x.oif}${x.dead ? 'd' : ''}`).join(',');
}

/** A route's next hop as the mirror interns it: its nexthop object, its hops, or a reject type. */
function hopOf(r) {
  if (r.nhId) return { nhId: r.nhId, hops: [] };
  if (r.type !== C.RTN_UNICAST) return { reject: true, hops: [] };
  const dead = (f) => (f & C.RTNH_F_DEAD) !== 0;
  if (r.multipath) return { hops: r.multipath.map((h) => ({ oif: h.oif, gw: h.gateway ? String(h.gateway) : '', dead: dead(h.flags ?? 0) })) };
  return { hops: [{ oif: r.oif ?? 0, gw: r.gateway ? String(r.gateway) : '', dead: dead(r.flags) }] };
}

module.exports = { FibMirror, VIA1, VIA2, OTHER, nowMs };
