/**
 * Nexthop objects (Linux 5.3+): RTM_NEWNEXTHOP / RTM_DELNEXTHOP /
 * RTM_GETNEXTHOP, from linux/nexthop.h. A route names one with RTA_NH_ID
 * (route-codec.ts) instead of carrying its gateway.
 *
 * struct nhmsg (8 bytes): u8 family, u8 scope (reported only), u8 protocol,
 * u8 resvd; u32 flags (RTNH_F_*: ONLINK on a request; DEAD and LINKDOWN as
 * the kernel reports them).
 * struct nexthop_grp (8 bytes, NHA_GROUP is an array of them): u32 id; u8
 * weight - 1; u8 weight_high (6.12+, 0 here); u16 reserved.
 *
 * A NexthopMessage is one of: a gateway (with or without a device), a device
 * alone, a blackhole, or a group of other objects with weights. The family
 * is the gateway's (an IPv4 route may use an IPv6 gateway object: RFC 5549);
 * groups are AF_UNSPEC. Unknown attributes are kept raw, like routes'.
 * Decoding throws NetlinkDecodeError only; encoders return 0 when the
 * message does not fit, as the route encoders do.
 */
import { AF_INET, AF_INET6, Addr, afToFamily, type Family } from '../lib/addr';
import * as C from './constants';
import { NetlinkDecodeError } from './errors';
import { encodeFamilyDump } from './link-codec';
import { putAttrAddr, putAttrU32, putRawAttr, rawAttr, rawAttrsSize, readU32, type RawAttr, walkAttrs, writeHeader } from './wire';

export const NHMSG_LEN = 8;
const AF_UNSPEC = 0;

export interface NexthopGroupMember {
  id: number;
  /** 1..256 (the wire holds weight - 1). */
  weight: number;
}

export interface NexthopMessage {
  id: number;
  /** 4 or 6 for a gateway or a device; undefined (AF_UNSPEC) for a group, and for a blackhole made that way. */
  family: Family | undefined;
  protocol: number;
  scope: number;
  /** RTNH_F_* (ONLINK; DEAD, LINKDOWN as reported). */
  flags: number;
  oif?: number;
  gateway?: Addr;
  blackhole?: boolean;
  group?: NexthopGroupMember[];
  /** NEXTHOP_GRP_TYPE_* (0: multipath by hash threshold). */
  groupType?: number;
  /** NHA_FDB: a bridge FDB nexthop (never ours). */
  fdb?: boolean;
  unknown?: RawAttr[];
}

export type NexthopCommand = 'add' | 'replace' | 'delete';

/** Exact encoded length of a nexthop request. */
export function nexthopMessageSize(m: NexthopMessage, cmd: NexthopCommand = 'add'): number {
  let n = C.NLMSG_HDRLEN + NHMSG_LEN + 8; // NHA_ID
  if (cmd === 'delete') return n;
  if (m.group !== undefined) return n + 4 + 8 * m.group.length + (m.groupType ? 8 : 0) + rawAttrsSize(m.unknown);
  if (m.blackhole) n += 4;
  if (m.oif !== undefined) n += 8;
  if (m.gateway !== undefined) n += m.gateway.family === 4 ? 8 : 20;
  return n + rawAttrsSize(m.unknown);
}

/**
 * RTM_NEWNEXTHOP (add: CREATE|EXCL, never over an id someone else holds; replace: CREATE|REPLACE)
 * or RTM_DELNEXTHOP (by id), with NLM_F_ACK.
 */
export function encodeNexthopRequest(buf: Buffer, off: number, seq: number, cmd: NexthopCommand, m: NexthopMessage): number {
  const size = nexthopMessageSize(m, cmd);
  if (off + size > buf.length) return 0;
  const flags = C.NLM_F_REQUEST | C.NLM_F_ACK | (cmd === 'add' ? C.NLM_F_CREATE | C.NLM_F_EXCL : cmd === 'replace' ? C.NLM_F_CREATE | C.NLM_F_REPLACE : 0);
  writeHeader(buf, off, size, cmd === 'delete' ? C.RTM_DELNEXTHOP : C.RTM_NEWNEXTHOP, flags, seq);
  const b = off + C.NLMSG_HDRLEN;
  const del = cmd === 'delete';
  buf[b] = del || m.family === undefined ? AF_UNSPEC : m.family === 4 ? AF_INET : AF_INET6;
  buf[b + 1] = 0; // scope: the kernel's to choose
  buf[b + 2] = del ? 0 : m.protocol;
  buf[b + 3] = 0;
  buf.writeUInt32LE(del ? 0 : m.flags >>> 0, b + 4);
  let p = putAttrU32(buf, b + NHMSG_LEN, C.NHA_ID, m.id);
  if (del) return size;
  if (m.group !== undefined) {
    const len = 4 + 8 * m.group.length;
    buf.writeUInt16LE(len, p);
    buf.writeUInt16LE(C.NHA_GROUP, p + 2);
    p += 4;
    for (const g of m.group) {
      buf.writeUInt32LE(g.id >>> 0, p);
      buf.writeUInt32LE((g.weight - 1) & 0xff, p + 4); // weight - 1, weight_high 0, reserved 0
      p += 8;
    }
    if (m.groupType) {
      buf.writeUInt16LE(6, p);
      buf.writeUInt16LE(C.NHA_GROUP_TYPE, p + 2);
      buf.writeUInt32LE(m.groupType & 0xffff, p + 4);
      p += 8;
    }
  } else {
    if (m.blackhole) {
      buf.writeUInt16LE(4, p);
      buf.writeUInt16LE(C.NHA_BLACKHOLE, p + 2);
      p += 4;
    }
    if (m.oif !== undefined) p = putAttrU32(buf, p, C.NHA_OIF, m.oif);
    if (m.gateway !== undefined) p = putAttrAddr(buf, p, C.NHA_GATEWAY, m.gateway);
  }
  for (const a of m.unknown ?? []) p = putRawAttr(buf, p, a);
  return size;
}

/** RTM_GETNEXTHOP dump of every nexthop object (the kernel filters only by device, master or groups-only). */
export function encodeNexthopDump(buf: Buffer, off: number, seq: number): number {
  return encodeFamilyDump(buf, off, seq, C.RTM_GETNEXTHOP, NHMSG_LEN);
}

/** Decodes an RTM_NEWNEXTHOP / RTM_DELNEXTHOP at buf[off..off+len) (len from the header). */
export function decodeNexthopMessage(buf: Buffer, off: number, len: number): NexthopMessage {
  const end = off + len;
  const b = off + C.NLMSG_HDRLEN;
  if (len < C.NLMSG_HDRLEN + NHMSG_LEN) throw new NetlinkDecodeError(`nexthop message too short (${len} bytes)`, off);
  const af = buf[b]!;
  const family = af === AF_UNSPEC ? undefined : afToFamily(af);
  if (af !== AF_UNSPEC && family === undefined) throw new NetlinkDecodeError(`unsupported nexthop family ${af}`, b);
  const m: NexthopMessage = { id: 0, family, scope: buf[b + 1]!, protocol: buf[b + 2]!, flags: buf.readUInt32LE(b + 4) };
  let sawId = false;
  walkAttrs(buf, b + NHMSG_LEN, end, (t, d, dl) => {
    const p = d - 4;
    switch (t) {
      case C.NHA_ID:
        m.id = readU32(buf, d, dl, p);
        sawId = true;
        break;
      case C.NHA_GROUP: {
        if (dl % 8 !== 0) throw new NetlinkDecodeError(`NHA_GROUP of ${dl} bytes is not a whole number of entries`, p);
        const g: NexthopGroupMember[] = [];
        for (let q = d; q < d + dl; q += 8) g.push({ id: buf.readUInt32LE(q), weight: buf[q + 4]! + 1 + (buf[q + 5]! << 8) });
        m.group = g;
        break;
      }
      case C.NHA_GROUP_TYPE:
        if (dl < 2) throw new NetlinkDecodeError('NHA_GROUP_TYPE too short', p);
        m.groupType = buf.readUInt16LE(d);
        break;
      case C.NHA_BLACKHOLE:
        m.blackhole = true;
        break;
      case C.NHA_FDB:
        m.fdb = true;
        break;
      case C.NHA_OIF:
        m.oif = readU32(buf, d, dl, p);
        break;
      case C.NHA_GATEWAY: {
        const fam: Family | undefined = dl === 4 ? 4 : dl === 16 ? 6 : undefined;
        if (fam === undefined) throw new NetlinkDecodeError(`NHA_GATEWAY of ${dl} bytes`, p);
        m.gateway = Addr.fromBytes(buf, d, fam);
        break;
      }
      default:
        (m.unknown ??= []).push(rawAttr(buf, t, d, dl));
    }
  });
  if (!sawId) throw new NetlinkDecodeError('nexthop message without NHA_ID', off);
  return m;
}
