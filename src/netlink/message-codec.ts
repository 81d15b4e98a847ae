/**
 * Whole messages: NLMSG_ERROR (acks, with extended-ack TLVs), NLMSG_DONE, and
 * the dispatch from a buffer of messages to decoded values.
 *
 * Invariant: decoding never throws. A message whose body is malformed becomes
 * a { kind: 'malformed' } entry carrying a NetlinkDecodeError with its offset,
 * and the walk goes on with the next message; a header that cannot be framed
 * ends the walk with one final malformed entry (nothing after it can be found).
 *
 * struct nlmsgerr: i32 error (negative errno, 0 for an ack), then the request's
 * nlmsghdr, then (without NETLINK_CAP_ACK) the request's payload, then
 * (NLM_F_ACK_TLVS) NLMSGERR_ATTR_* attributes. NLMSG_DONE carries an i32 that
 * is a negative errno when a dump failed, possibly with the same TLVs.
 */
import * as C from './constants';
import { NetlinkDecodeError, NetlinkRequestError } from './errors';
import { AddrMessage, LinkMessage, decodeAddrMessage, decodeLinkMessage } from './link-codec';
import { NexthopMessage, decodeNexthopMessage } from './nexthop-codec';
import { RouteMessage, decodeRouteMessage } from './route-codec';
import { NlHeader, align4, readHeader, readString, walkAttrs, walkMessages } from './wire';

export interface AckInfo {
  /** Sequence number of the request this answers. */
  seq: number;
  /** Positive errno; 0 is success. */
  errno: number;
  /** NLMSGERR_ATTR_MSG: the kernel's explanation. */
  extAck?: string;
  /** NLMSGERR_ATTR_OFFS: offset of the offending attribute in the request. */
  extAckOffset?: number;
  /** NLMSGERR_ATTR_MISS_TYPE: the missing attribute's type. */
  missingType?: number;
}

export type NetlinkMessage =
  | { kind: 'route'; header: NlHeader; deleted: boolean; route: RouteMessage }
  | { kind: 'link'; header: NlHeader; deleted: boolean; link: LinkMessage }
  | { kind: 'addr'; header: NlHeader; deleted: boolean; addr: AddrMessage }
  | { kind: 'nexthop'; header: NlHeader; deleted: boolean; nexthop: NexthopMessage }
  | { kind: 'error'; header: NlHeader; ack: AckInfo }
  | { kind: 'done'; header: NlHeader; ack?: AckInfo }
  | { kind: 'other'; header: NlHeader; bytes: Buffer }
  | { kind: 'malformed'; header?: NlHeader; error: NetlinkDecodeError };

/** The error (or success) an NLMSG_ERROR / NLMSG_DONE at buf[off..off+len) carries. */
export function decodeAck(buf: Buffer, off: number, len: number): AckInfo {
  if (len < C.NLMSG_HDRLEN + 4) throw new NetlinkDecodeError(`error message too short (${len} bytes)`, off);
  const flags = buf.readUInt16LE(off + 6);
  const type = buf.readUInt16LE(off + 4);
  const ack: AckInfo = { seq: buf.readUInt32LE(off + 8), errno: -buf.readInt32LE(off + C.NLMSG_HDRLEN) | 0 };
  if ((flags & C.NLM_F_ACK_TLVS) === 0) return ack;
  let tlv = off + C.NLMSG_HDRLEN + 4;
  if (type === C.NLMSG_ERROR) {
    // The echoed request: its header only when capped, else the whole message.
    if (len < C.NLMSG_HDRLEN + 4 + C.NLMSG_HDRLEN) throw new NetlinkDecodeError('error message without the request header', off);
    tlv += flags & C.NLM_F_CAPPED ? C.NLMSG_HDRLEN : align4(buf.readUInt32LE(tlv));
  }
  walkAttrs(buf, tlv, off + len, (t, d, dl) => {
    if (t === C.NLMSGERR_ATTR_MSG) ack.extAck = readString(buf, d, dl);
    else if (t === C.NLMSGERR_ATTR_OFFS && dl >= 4) ack.extAckOffset = buf.readUInt32LE(d);
    else if (t === C.NLMSGERR_ATTR_MISS_TYPE && dl >= 4) ack.missingType = buf.readUInt32LE(d);
  });
  return ack;
}

/** A failed ack as an error value (for throwing or reporting). */
export function ackError(ack: AckInfo, context?: string): NetlinkRequestError {
  return new NetlinkRequestError(ack.errno, ack.extAck, context);
}

function asDecodeError(e: unknown, off: number): NetlinkDecodeError {
  // Buffer reads past the end throw RangeError; any such slip is still a decode error of this message.
  return e instanceof NetlinkDecodeError ? e : new NetlinkDecodeError(e instanceof Error ? e.message : String(e), off);
}

/** Decodes the one message at buf[off..off+len). Never throws. */
export function decodeMessage(buf: Buffer, off: number, len: number): NetlinkMessage {
  const header = readHeader(buf, off);
  try {
    switch (header.type) {
      case C.RTM_NEWROUTE:
      case C.RTM_DELROUTE:
        return { kind: 'route', header, deleted: header.type === C.RTM_DELROUTE, route: decodeRouteMessage(buf, off, len) };
      case C.RTM_NEWLINK:
      case C.RTM_DELLINK:
        return { kind: 'link', header, deleted: header.type === C.RTM_DELLINK, link: decodeLinkMessage(buf, off, len) };
      case C.RTM_NEWADDR:
      case C.RTM_DELADDR:
        return { kind: 'addr', header, deleted: header.type === C.RTM_DELADDR, addr: decodeAddrMessage(buf, off, len) };
      case C.RTM_NEWNEXTHOP:
      case C.RTM_DELNEXTHOP:
        return { kind: 'nexthop', header, deleted: header.type === C.RTM_DELNEXTHOP, nexthop: decodeNexthopMessage(buf, off, len) };
      case C.NLMSG_ERROR:
        return { kind: 'error', header, ack: decodeAck(buf, off, len) };
      case C.NLMSG_DONE:
        return len >= C.NLMSG_HDRLEN + 4 ? { kind: 'done', header, ack: decodeAck(buf, off, len) } : { kind: 'done', header };
      default:
        return { kind: 'other', header, bytes: Buffer.from(buf.subarray(off, off + len)) };
    }
  } catch (e) {
    return { kind: 'malformed', header, error: asDecodeError(e, off) };
  }
}

/** Decodes every message in buf[start..end). Never throws; see the module comment for malformed input. */
export function decodeMessages(buf: Buffer, start = 0, end = buf.length): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const err = walkMessages(buf, start, end, (off, len) => out.push(decodeMessage(buf, off, len)));
  if (err) out.push({ kind: 'malformed', error: err });
  return out;
}
