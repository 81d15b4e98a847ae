/**
 * RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE codec (struct rtmsg + rtattrs).
 *
 * RouteMessage is the decoded form and the input of the encoders: every field
 * the kernel can send is typed, every other attribute is kept in `unknown` as
 * raw bytes and written back verbatim, so encode(decode(m)) reproduces m.
 *
 * Invariants:
 * - `table` is the real table id: RTA_TABLE wins over rtm_table (which is
 *   only 8 bits); the encoder writes rtm_table = table when it fits in 8 bits,
 *   else RT_TABLE_UNSPEC, and always writes RTA_TABLE.
 * - Encoders write into a caller-owned buffer and return the bytes written,
 *   or 0 when the message does not fit (nothing meaningful was written): the
 *   batcher flushes and retries with an empty buffer. No allocation per route.
 * - Decoding never throws anything but NetlinkDecodeError.
 *
 * struct rtmsg (12 bytes): u8 family, dst_len, src_len, tos, table, protocol,
 * scope, type; u32 flags.
 * struct rtnexthop (8 bytes): u16 len, u8 flags, u8 hops (weight - 1), i32 ifindex; then attributes.
 * struct rtvia: u16 family (__kernel_sa_family_t), address bytes.
 */
import { Addr, AF_INET, AF_INET6, Family, Prefix, afToFamily } from '../lib/addr';
import * as C from './constants';
import { NetlinkDecodeError } from './errors';
import {
  RawAttr,
  align4,
  attrStringSize,
  beginNest,
  endNest,
  putAttrAddr,
  putAttrU32,
  putAttrU8,
  putAttrString,
  putRawAttr,
  rawAttr,
  rawAttrsSize,
  readString,
  readU32,
  readU8,
  writeHeader,
} from './wire';

export const RTMSG_LEN = 12;

/** RTA_METRICS: every RTAX value by name; `lock` is the RTAX_LOCK bitmask (bit 1 << RTAX_x locks metric x). */
export interface RouteMetrics {
  lock?: number;
  mtu?: number;
  window?: number;
  rtt?: number;
  rttvar?: number;
  ssthresh?: number;
  cwnd?: number;
  advmss?: number;
  reordering?: number;
  hoplimit?: number;
  initcwnd?: number;
  features?: number;
  rtoMin?: number;
  initrwnd?: number;
  quickack?: number;
  /** RTAX_CC_ALGO: congestion control name, e.g. "bbr". */
  ccAlgo?: string;
  fastopenNoCookie?: number;
  unknown?: RawAttr[];
}

/** Numeric metrics in RTAX order; index = RTAX number. ccAlgo (16) is the string one. */
export const METRIC_NAMES = [
  undefined,
  'lock',
  'mtu',
  'window',
  'rtt',
  'rttvar',
  'ssthresh',
  'cwnd',
  'advmss',
  'reordering',
  'hoplimit',
  'initcwnd',
  'features',
  'rtoMin',
  'initrwnd',
  'quickack',
  'ccAlgo',
  'fastopenNoCookie',
] as const;
type NumericMetric = Exclude<(typeof METRIC_NAMES)[number], undefined | 'ccAlgo'>;

/** One hop of RTA_MULTIPATH. */
export interface RouteNextHop {
  gateway?: Addr;
  /** RTA_VIA: a gateway of the other family (IPv4 route via an IPv6 next hop). */
  via?: Addr;
  oif: number;
  /** 1..256 (rtnh_hops + 1). */
  weight: number;
  /** RTNH_F_* (ONLINK, and DEAD/LINKDOWN as the kernel reports them). */
  flags: number;
  /** Per-hop realm (RTA_FLOW). */
  flow?: number;
  unknown?: RawAttr[];
}

export interface RouteMessage {
  family: Family;
  dst: Prefix;
  /** Source prefix (RTA_SRC, IPv6 source routing); absent when rtm_src_len is 0. */
  src?: Prefix;
  tos: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  /** rtm_flags (RTM_F_*, and RTNH_F_* for a single next hop, e.g. ONLINK). */
  flags: number;
  oif?: number;
  iif?: number;
  gateway?: Addr;
  via?: Addr;
  /** Metric (RTA_PRIORITY). */
  priority?: number;
  prefsrc?: Addr;
  metrics?: RouteMetrics;
  multipath?: RouteNextHop[];
  /** Realm (RTA_FLOW): to-realm in the low 16 bits, from-realm in the high 16 bits. */
  flow?: number;
  /** IPv6 router preference (RTA_PREF): ICMPV6_ROUTER_PREF_LOW/MEDIUM/HIGH. */
  pref?: number;
  nhId?: number;
  /** Attributes this codec does not interpret (RTA_CACHEINFO, RTA_EXPIRES, ...), in arrival order. */
  unknown?: RawAttr[];
}

export type RouteCommand = 'add' | 'replace' | 'append' | 'delete';

const COMMAND_HEADERS: Readonly<Record<RouteCommand, { readonly type: number; readonly flags: number }>> = {
  add: { type: C.RTM_NEWROUTE, flags: C.NLM_F_CREATE | C.NLM_F_EXCL },
  replace: { type: C.RTM_NEWROUTE, flags: C.NLM_F_CREATE | C.NLM_F_REPLACE },
  append: { type: C.RTM_NEWROUTE, flags: C.NLM_F_CREATE | C.NLM_F_APPEND },
  delete: { type: C.RTM_DELROUTE, flags: 0 },
};

/** nlmsg_type and nlmsg_flags (besides REQUEST|ACK) of each command; shared objects, no allocation. */
export function commandHeader(cmd: RouteCommand): { readonly type: number; readonly flags: number } {
  return COMMAND_HEADERS[cmd];
}

// ------------------------------------------------------------ sizes

function addrAttrSize(a: Addr | Prefix | undefined): number {
  return a === undefined ? 0 : a.family === 4 ? 8 : 20;
}

function viaSize(a: Addr | undefined): number {
  return a === undefined ? 0 : align4(4 + 2 + a.byteLength);
}

function metricsSize(m: RouteMetrics | undefined): number {
  if (!m) return 0;
  let n = 4;
  for (let t = 1; t < METRIC_NAMES.length; t++) {
    const name = METRIC_NAMES[t]!;
    if (name === 'ccAlgo') n += m.ccAlgo === undefined ? 0 : attrStringSize(m.ccAlgo);
    else if (m[name] !== undefined) n += 8;
  }
  return n + rawAttrsSize(m.unknown);
}

function hopSize(h: RouteNextHop): number {
  return 8 + addrAttrSize(h.gateway) + viaSize(h.via) + (h.flow === undefined ? 0 : 8) + rawAttrsSize(h.unknown);
}

/** Exact encoded length of a route message (header included). */
export function routeMessageSize(r: RouteMessage, dst: Prefix = r.dst): number {
  let n = C.NLMSG_HDRLEN + RTMSG_LEN + 8; // RTA_TABLE always
  if (dst.len > 0) n += addrAttrSize(dst);
  if (r.src && r.src.len > 0) n += addrAttrSize(r.src);
  if (r.oif !== undefined) n += 8;
  if (r.iif !== undefined) n += 8;
  n += addrAttrSize(r.gateway) + viaSize(r.via) + addrAttrSize(r.prefsrc);
  if (r.priority !== undefined) n += 8;
  if (r.flow !== undefined) n += 8;
  if (r.pref !== undefined) n += 8;
  if (r.nhId !== undefined) n += 8;
  n += metricsSize(r.metrics);
  if (r.multipath) {
    n += 4;
    for (const h of r.multipath) n += hopSize(h);
  }
  return n + rawAttrsSize(r.unknown);
}

// ------------------------------------------------------------ encoding

function putVia(buf: Buffer, off: number, type: number, a: Addr): number {
  const len = 4 + 2 + a.byteLength;
  buf.writeUInt16LE(len, off);
  buf.writeUInt16LE(type, off + 2);
  buf.writeUInt16LE(a.family === 4 ? AF_INET : AF_INET6, off + 4);
  a.writeTo(buf, off + 6);
  const end = off + align4(len);
  buf.fill(0, off + len, end);
  return end;
}

function putMetrics(buf: Buffer, off: number, m: RouteMetrics): number {
  const start = off;
  let p = beginNest(buf, off, C.RTA_METRICS);
  for (let t = 1; t < METRIC_NAMES.length; t++) {
    const name = METRIC_NAMES[t]!;
    if (name === 'ccAlgo') {
      if (m.ccAlgo !== undefined) p = putAttrString(buf, p, t, m.ccAlgo);
    } else {
      const v = m[name];
      if (v !== undefined) p = putAttrU32(buf, p, t, v);
    }
  }
  if (m.unknown) for (const a of m.unknown) p = putRawAttr(buf, p, a);
  return endNest(buf, start, p);
}

function putMultipath(buf: Buffer, off: number, hops: readonly RouteNextHop[]): number {
  const start = off;
  let p = beginNest(buf, off, C.RTA_MULTIPATH);
  for (const h of hops) {
    const hs = p;
    buf.writeUInt8(h.flags & 0xff, p + 2);
    buf.writeUInt8((h.weight - 1) & 0xff, p + 3);
    buf.writeInt32LE(h.oif | 0, p + 4);
    p += 8;
    if (h.gateway) p = putAttrAddr(buf, p, C.RTA_GATEWAY, h.gateway);
    if (h.via) p = putVia(buf, p, C.RTA_VIA, h.via);
    if (h.flow !== undefined) p = putAttrU32(buf, p, C.RTA_FLOW, h.flow);
    if (h.unknown) for (const a of h.unknown) p = putRawAttr(buf, p, a);
    buf.writeUInt16LE(p - hs, hs);
  }
  return endNest(buf, start, p);
}

/**
 * Encodes one route message at buf[off..]: `type` is RTM_NEWROUTE, RTM_DELROUTE
 * (or RTM_GETROUTE), `flags` the full nlmsg_flags. `dst` replaces r.dst (a
 * route shared by many nets, sent for one of them). Returns bytes written, or
 * 0 when it does not fit before buf.length.
 */
export function encodeRouteMessage(buf: Buffer, off: number, type: number, flags: number, seq: number, r: RouteMessage, dst: Prefix = r.dst): number {
  const size = routeMessageSize(r, dst);
  if (off + size > buf.length) return 0;
  writeHeader(buf, off, size, type, flags, seq);
  let p = off + C.NLMSG_HDRLEN;
  buf[p] = r.family === 4 ? AF_INET : AF_INET6;
  buf[p + 1] = dst.len;
  buf[p + 2] = r.src ? r.src.len : 0;
  buf[p + 3] = r.tos;
  buf[p + 4] = r.table < 256 ? r.table : C.RT_TABLE_UNSPEC;
  buf[p + 5] = r.protocol;
  buf[p + 6] = r.scope;
  buf[p + 7] = r.type;
  buf.writeUInt32LE(r.flags >>> 0, p + 8);
  p += RTMSG_LEN;
  p = putAttrU32(buf, p, C.RTA_TABLE, r.table);
  if (dst.len > 0) p = putAttrAddr(buf, p, C.RTA_DST, dst);
  if (r.src && r.src.len > 0) p = putAttrAddr(buf, p, C.RTA_SRC, r.src);
  if (r.iif !== undefined) p = putAttrU32(buf, p, C.RTA_IIF, r.iif);
  if (r.oif !== undefined) p = putAttrU32(buf, p, C.RTA_OIF, r.oif);
  if (r.gateway) p = putAttrAddr(buf, p, C.RTA_GATEWAY, r.gateway);
  if (r.via) p = putVia(buf, p, C.RTA_VIA, r.via);
  if (r.priority !== undefined) p = putAttrU32(buf, p, C.RTA_PRIORITY, r.priority);
  if (r.prefsrc) p = putAttrAddr(buf, p, C.RTA_PREFSRC, r.prefsrc);
  if (r.metrics) p = putMetrics(buf, p, r.metrics);
  if (r.multipath) p = putMultipath(buf, p, r.multipath);
  if (r.flow !== undefined) p = putAttrU32(buf, p, C.RTA_FLOW, r.flow);
  if (r.pref !== undefined) p = putAttrU8(buf, p, C.RTA_PREF, r.pref);
  if (r.nhId !== undefined) p = putAttrU32(buf, p, C.RTA_NH_ID, r.nhId);
  if (r.unknown) for (const a of r.unknown) p = putRawAttr(buf, p, a);
  return p - off;
}

/** A route change request: NLM_F_REQUEST, the command's flags, and NLM_F_ACK unless `ack` is false 
 * (the kernel then answers only a failure). */
export function encodeRouteRequest(buf: Buffer, off: number, seq: number, cmd: RouteCommand, r: RouteMessage, ack = true, dst: Prefix = r.dst): number {
  const h = commandHeader(cmd);
  return encodeRouteMessage(buf, off, h.type, C.NLM_F_REQUEST | (ack ? C.NLM_F_ACK : 0) | h.flags, seq, r, dst);
}

export interface RouteDumpFilter {
  family: Family;
  /** With NETLINK_GET_STRICT_CHK the kernel returns only this table (ids above 255 too, via RTA_TABLE). */
  table?: number;
  /** With strict checking, only routes of this rtm_protocol. */
  protocol?: number;
  /** With strict checking, only routes with a next hop through this device (RTA_OIF; nexthop objects too). */
  oif?: number;
}

/** RTM_GETROUTE dump request, filtered by table and protocol when the socket has strict checking on. */
export function encodeRouteDump(buf: Buffer, off: number, seq: number, f: RouteDumpFilter): number {
  const size = C.NLMSG_HDRLEN + RTMSG_LEN + (f.table !== undefined ? 8 : 0) + (f.oif !== undefined ? 8 : 0);
  if (off + size > buf.length) return 0;
  writeHeader(buf, off, size, C.RTM_GETROUTE, C.NLM_F_REQUEST | C.NLM_F_DUMP, seq);
  const p = off + C.NLMSG_HDRLEN;
  buf.fill(0, p, p + RTMSG_LEN);
  buf[p] = f.family === 4 ? AF_INET : AF_INET6;
  buf[p + 4] = f.table !== undefined && f.table < 256 ? f.table : 0;
  buf[p + 5] = f.protocol ?? 0;
  let at = p + RTMSG_LEN;
  if (f.table !== undefined) at = putAttrU32(buf, at, C.RTA_TABLE, f.table);
  if (f.oif !== undefined) putAttrU32(buf, at, C.RTA_OIF, f.oif);
  return size;
}

// ------------------------------------------------------------ decoding

function familyOf(af: number, at: number): Family {
  const f = afToFamily(af);
  if (f === undefined) throw new NetlinkDecodeError(`unsupported address family ${af}`, at);
  return f;
}

function readAddr(buf: Buffer, off: number, len: number, family: Family, at: number): Addr {
  const want = family === 4 ? 4 : 16;
  if (len < want) throw new NetlinkDecodeError(`address attribute too short (${len} bytes, want ${want})`, at);
  return Addr.fromBytes(buf, off, family);
}

export function readPrefix(buf: Buffer, off: number, len: number, family: Family, plen: number, at: number): Prefix {
  if (plen > (family === 4 ? 32 : 128)) throw new NetlinkDecodeError(`prefix length ${plen} too long`, at);
  if (family === 4) {
    if (len < 4) throw new NetlinkDecodeError(`address attribute too short (${len} bytes, want 4)`, at);
    return Prefix.v4(buf.readInt32BE(off), plen); // no Addr allocation on the dump hot path
  }
  return Prefix.of(readAddr(buf, off, len, family, at), plen);
}

function readVia(buf: Buffer, off: number, len: number, at: number): Addr {
  if (len < 2) throw new NetlinkDecodeError('RTA_VIA too short', at);
  const fam = familyOf(buf.readUInt16LE(off), at);
  return readAddr(buf, off + 2, len - 2, fam, at);
}

function decodeMetrics(buf: Buffer, off: number, end: number): RouteMetrics {
  const m: RouteMetrics = {};
  let p = off;
  while (p + 4 <= end) {
    const len = buf.readUInt16LE(p);
    if (len < 4 || p + len > end) throw new NetlinkDecodeError(`attribute length ${len} out of bounds`, p);
    const t = buf.readUInt16LE(p + 2) & 0x3fff;
    const name = METRIC_NAMES[t];
    if (name === 'ccAlgo') m.ccAlgo = readString(buf, p + 4, len - 4);
    else if (name !== undefined) m[name as NumericMetric] = readU32(buf, p + 4, len - 4, p);
    else (m.unknown ??= []).push(rawAttr(buf, t, p + 4, len - 4));
    p += align4(len);
  }
  return m;
}

function decodeMultipath(buf: Buffer, off: number, end: number, family: Family): RouteNextHop[] {
  const hops: RouteNextHop[] = [];
  let p = off;
  while (p + 8 <= end) {
    const len = buf.readUInt16LE(p);
    if (len < 8 || p + len > end) throw new NetlinkDecodeError(`rtnexthop length ${len} out of bounds`, p);
    const h: RouteNextHop = { oif: buf.readInt32LE(p + 4), weight: buf[p + 3]! + 1, flags: buf[p + 2]! };
    let q = p + 8;
    const hend = p + len;
    while (q + 4 <= hend) {
      const alen = buf.readUInt16LE(q);
      if (alen < 4 || q + alen > hend) throw new NetlinkDecodeError(`attribute length ${alen} out of bounds`, q);
      const t = buf.readUInt16LE(q + 2) & 0x3fff;
      if (t === C.RTA_GATEWAY) h.gateway = readAddr(buf, q + 4, alen - 4, family, q);
      else if (t === C.RTA_VIA) h.via = readVia(buf, q + 4, alen - 4, q);
      else if (t === C.RTA_FLOW) h.flow = readU32(buf, q + 4, alen - 4, q);
      else (h.unknown ??= []).push(rawAttr(buf, t, q + 4, alen - 4));
      q += align4(alen);
    }
    hops.push(h);
    p += align4(len);
  }
  return hops;
}

/**
 * Decodes the body of a route message at buf[off..off+len) (len from the
 * header, header included). Throws NetlinkDecodeError only.
 */
export function decodeRouteMessage(buf: Buffer, off: number, len: number): RouteMessage {
  const end = off + len;
  const b = off + C.NLMSG_HDRLEN;
  if (len < C.NLMSG_HDRLEN + RTMSG_LEN) throw new NetlinkDecodeError(`route message too short (${len} bytes)`, off);
  const family = familyOf(buf[b]!, b);
  const dstLen = buf[b + 1]!;
  const srcLen = buf[b + 2]!;
  const r: RouteMessage = {
    family,
    dst: undefined as unknown as Prefix, // set below: RTA_DST, or the default route
    tos: buf[b + 3]!,
    table: buf[b + 4]!,
    protocol: buf[b + 5]!,
    scope: buf[b + 6]!,
    type: buf[b + 7]!,
    flags: buf.readUInt32LE(b + 8),
  };
  let p = b + RTMSG_LEN;
  while (p + 4 <= end) {
    const alen = buf.readUInt16LE(p);
    if (alen < 4 || p + alen > end) throw new NetlinkDecodeError(`attribute length ${alen} out of bounds`, p);
    const t = buf.readUInt16LE(p + 2) & 0x3fff;
    const d = p + 4;
    const dl = alen - 4;
    switch (t) {
      case C.RTA_DST:
        r.dst = readPrefix(buf, d, dl, family, dstLen, p);
        break;
      case C.RTA_SRC:
        r.src = readPrefix(buf, d, dl, family, srcLen, p);
        break;
      case C.RTA_TABLE:
        r.table = readU32(buf, d, dl, p);
        break;
      case C.RTA_OIF:
        r.oif = readU32(buf, d, dl, p);
        break;
      case C.RTA_IIF:
        r.iif = readU32(buf, d, dl, p);
        break;
      case C.RTA_GATEWAY:
        r.gateway = readAddr(buf, d, dl, family, p);
        break;
      case C.RTA_VIA:
        r.via = readVia(buf, d, dl, p);
        break;
      case C.RTA_PRIORITY:
        r.priority = readU32(buf, d, dl, p);
        break;
      case C.RTA_PREFSRC:
        r.prefsrc = readAddr(buf, d, dl, family, p);
        break;
      case C.RTA_METRICS:
        r.metrics = decodeMetrics(buf, d, d + dl);
        break;
      case C.RTA_MULTIPATH:
        r.multipath = decodeMultipath(buf, d, d + dl, family);
        break;
      case C.RTA_FLOW:
        r.flow = readU32(buf, d, dl, p);
        break;
      case C.RTA_PREF:
        r.pref = readU8(buf, d, dl, p);
        break;
      case C.RTA_NH_ID:
        r.nhId = readU32(buf, d, dl, p);
        break;
      default:
        (r.unknown ??= []).push(rawAttr(buf, t, d, dl));
    }
    p += align4(alen);
  }
  if (r.dst === undefined) {
    if (dstLen !== 0) throw new NetlinkDecodeError(`rtm_dst_len ${dstLen} without RTA_DST`, b + 1);
    r.dst = family === 4 ? Prefix.v4(0, 0) : new Prefix(6, 0, 0);
  }
  return r;
}
