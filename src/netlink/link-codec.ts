/**
 * Links (RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK) and addresses
 * (RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR): what the kernel protocol needs
 * to map ifname <-> index, follow up/down and operational state, and know the
 * local addresses. Unknown attributes are kept raw, as for routes.
 *
 * struct ifinfomsg (16 bytes): u8 family, u8 pad, u16 type, i32 index, u32 flags, u32 change.
 * struct ifaddrmsg (8 bytes): u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index.
 */
import { AF_INET, AF_INET6, Addr, Family, afToFamily } from '../lib/addr';
import * as C from './constants';
import { NetlinkDecodeError } from './errors';
import { RawAttr, attrStringSize, putAttrAddr, putAttrString, putAttrU32, rawAttr, readString, readU32, readU8, walkAttrs, writeHeader } from './wire';

export const IFINFOMSG_LEN = 16;
export const IFADDRMSG_LEN = 8;

export interface LinkMessage {
  index: number;
  /** ARPHRD_* device type. */
  linkType: number;
  /** IFF_* flags. */
  flags: number;
  name?: string;
  mtu?: number;
  /** IF_OPER_* (RFC 2863); IF_OPER_UP means usable. */
  operState?: number;
  /** Hardware address (IFLA_ADDRESS). */
  address?: Buffer;
  /** Index of the master device (bridge, VRF). */
  master?: number;
  unknown?: RawAttr[];
}

/** Administratively up (IFF_UP). */
export function linkIsUp(l: LinkMessage): boolean {
  return (l.flags & C.IFF_UP) !== 0;
}

const OPER_NAMES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;
export function operStateName(s: number | undefined): string {
  return (s === undefined ? undefined : OPER_NAMES[s]) ?? 'unknown';
}

export function decodeLinkMessage(buf: Buffer, off: number, len: number): LinkMessage {
  const b = off + C.NLMSG_HDRLEN;
  if (len < C.NLMSG_HDRLEN + IFINFOMSG_LEN) throw new NetlinkDecodeError(`link message too short (${len} bytes)`, off);
  const l: LinkMessage = { linkType: buf.readUInt16LE(b + 2), index: buf.readInt32LE(b + 4), flags: buf.readUInt32LE(b + 8) };
  walkAttrs(buf, b + IFINFOMSG_LEN, off + len, (t, d, dl) => {
    switch (t) {
      case C.IFLA_IFNAME:
        l.name = readString(buf, d, dl);
        break;
      case C.IFLA_MTU:
        l.mtu = readU32(buf, d, dl, d - 4);
        break;
      case C.IFLA_OPERSTATE:
        l.operState = readU8(buf, d, dl, d - 4);
        break;
      case C.IFLA_ADDRESS:
        l.address = Buffer.from(buf.subarray(d, d + dl));
        break;
      case C.IFLA_MASTER:
        l.master = readU32(buf, d, dl, d - 4);
        break;
      default:
        (l.unknown ??= []).push(rawAttr(buf, t, d, dl));
    }
  });
  return l;
}

/** RTM_GETLINK dump of every link. */
export function encodeLinkDump(buf: Buffer, off: number, seq: number): number {
  return encodeFamilyDump(buf, off, seq, C.RTM_GETLINK, IFINFOMSG_LEN);
}

export interface LinkRequest {
  /** 'get' looks a link up by index or name; 'set' changes IFF_UP; 'delete' removes it. */
  op: 'get' | 'set' | 'delete';
  index?: number;
  name?: string;
  /** For 'set': administratively up or down. */
  up?: boolean;
}

/** RTM_GETLINK (one link) / RTM_NEWLINK (set up/down) / RTM_DELLINK, with NLM_F_ACK except for get. */
export function encodeLinkRequest(buf: Buffer, off: number, seq: number, req: LinkRequest): number {
  const size = C.NLMSG_HDRLEN + IFINFOMSG_LEN + (req.name !== undefined ? attrStringSize(req.name) : 0);
  if (off + size > buf.length) return 0;
  const type = req.op === 'get' ? C.RTM_GETLINK : req.op === 'set' ? C.RTM_NEWLINK : C.RTM_DELLINK;
  writeHeader(buf, off, size, type, C.NLM_F_REQUEST | (req.op === 'get' ? 0 : C.NLM_F_ACK), seq);
  const b = off + C.NLMSG_HDRLEN;
  buf.fill(0, b, b + IFINFOMSG_LEN);
  buf.writeInt32LE(req.index ?? 0, b + 4);
  if (req.op === 'set' && req.up !== undefined) {
    buf.writeUInt32LE(req.up ? C.IFF_UP : 0, b + 8); // ifi_flags
    buf.writeUInt32LE(C.IFF_UP, b + 12); // ifi_change: only IFF_UP changes
  }
  if (req.name !== undefined) putAttrString(buf, b + IFINFOMSG_LEN, C.IFLA_IFNAME, req.name);
  return size;
}

// ------------------------------------------------------------ addresses

export interface AddrMessage {
  family: Family;
  prefixLen: number;
  /** IFA_F_* (IFA_FLAGS wins over the 8-bit ifa_flags when present). */
  flags: number;
  scope: number;
  index: number;
  /** IFA_ADDRESS: the peer on point-to-point links, else the same as local. */
  address?: Addr;
  local?: Addr;
  label?: string;
  unknown?: RawAttr[];
}

export function decodeAddrMessage(buf: Buffer, off: number, len: number): AddrMessage {
  const b = off + C.NLMSG_HDRLEN;
  if (len < C.NLMSG_HDRLEN + IFADDRMSG_LEN) throw new NetlinkDecodeError(`address message too short (${len} bytes)`, off);
  const family = afToFamily(buf[b]!);
  if (family === undefined) throw new NetlinkDecodeError(`unsupported address family ${buf[b]}`, b);
  const want = family === 4 ? 4 : 16;
  const a: AddrMessage = { family, prefixLen: buf[b + 1]!, flags: buf[b + 2]!, scope: buf[b + 3]!, index: buf.readUInt32LE(b + 4) };
  const addr = (d: number, dl: number): Addr => {
    if (dl < want) throw new NetlinkDecodeError(`address attribute too short (${dl} bytes, want ${want})`, d - 4);
    return Addr.fromBytes(buf, d, family);
  };
  walkAttrs(buf, b + IFADDRMSG_LEN, off + len, (t, d, dl) => {
    switch (t) {
      case C.IFA_ADDRESS:
        a.address = addr(d, dl);
        break;
      case C.IFA_LOCAL:
        a.local = addr(d, dl);
        break;
      case C.IFA_LABEL:
        a.label = readString(buf, d, dl);
        break;
      case C.IFA_FLAGS:
        a.flags = readU32(buf, d, dl, d - 4);
        break;
      default:
        (a.unknown ??= []).push(rawAttr(buf, t, d, dl));
    }
  });
  return a;
}

/** RTM_GETADDR dump, optionally of one family. */
export function encodeAddrDump(buf: Buffer, off: number, seq: number, family?: Family): number {
  return encodeFamilyDump(buf, off, seq, C.RTM_GETADDR, IFADDRMSG_LEN, family);
}

/** A dump request (`type`) whose header (`headerLen` bytes, zeroed) starts with a family byte: links, addresses, neighbours, nexthop objects. */
export function encodeFamilyDump(buf: Buffer, off: number, seq: number, type: number, headerLen: number, family?: Family): number {
  const size = C.NLMSG_HDRLEN + headerLen;
  if (off + size > buf.length) return 0;
  writeHeader(buf, off, size, type, C.NLM_F_REQUEST | C.NLM_F_DUMP, seq);
  buf.fill(0, off + C.NLMSG_HDRLEN, off + size);
  if (family !== undefined) buf[off + C.NLMSG_HDRLEN] = family === 4 ? AF_INET : AF_INET6;
  return size;
}

/** RTM_NEWADDR (add, NLM_F_CREATE|NLM_F_EXCL) or RTM_DELADDR of `local`/prefixLen on link `index`, with NLM_F_ACK. */
export function encodeAddrRequest(buf: Buffer, off: number, seq: number, op: 'add' | 'delete', a: { index: number; local: Addr; prefixLen: number; flags?: number }): number {
  const al = a.local.family === 4 ? 8 : 20;
  const size = C.NLMSG_HDRLEN + IFADDRMSG_LEN + 2 * al + (a.flags !== undefined ? 8 : 0);
  if (off + size > buf.length) return 0;
  const flags = C.NLM_F_REQUEST | C.NLM_F_ACK | (op === 'add' ? C.NLM_F_CREATE | C.NLM_F_EXCL : 0);
  writeHeader(buf, off, size, op === 'add' ? C.RTM_NEWADDR : C.RTM_DELADDR, flags, seq);
  const b = off + C.NLMSG_HDRLEN;
  buf[b] = a.local.family === 4 ? AF_INET : AF_INET6;
  buf[b + 1] = a.prefixLen;
  buf[b + 2] = (a.flags ?? 0) & 0xff;
  buf[b + 3] = 0;
  buf.writeUInt32LE(a.index, b + 4);
  let p = putAttrAddr(buf, b + IFADDRMSG_LEN, C.IFA_LOCAL, a.local);
  p = putAttrAddr(buf, p, C.IFA_ADDRESS, a.local);
  if (a.flags !== undefined) putAttrU32(buf, p, C.IFA_FLAGS, a.flags);
  return size;
}
