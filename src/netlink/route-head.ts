/**
 * The head of a route notification, read in place: the rtmsg and the few
 * attributes a plain route has (RTA_DST, RTA_TABLE, RTA_PRIORITY,
 * RTA_GATEWAY, RTA_OIF, RTA_PREF; RTA_CACHEINFO is skipped). Nothing is
 * allocated: a caller keeps one RouteHead and reuses it.
 *
 * readRouteHead answers false for anything else (another attribute, a
 * malformed or truncated message, an address family other than IPv4/IPv6):
 * such a message takes the full decoder (decodeRouteMessage), which also
 * says what was wrong. The kernel protocol's echo fallback uses this to
 * recognise the notifications of its own changes without decoding them.
 */
import { AF_INET, AF_INET6 } from '../lib/addr';
import * as C from './constants';
import { RTMSG_LEN } from './route-codec';

export interface RouteHead {
  family: 4 | 6;
  dstLen: number;
  /** RTA_DST's words, host order (the default route: zeros). */
  dst0: number;
  dst1: number;
  dst2: number;
  dst3: number;
  table: number;
  protocol: number;
  scope: number;
  type: number;
  flags: number;
  /** RTA_PRIORITY, or -1 when absent. */
  priority: number;
  hasGateway: boolean;
  gw0: number;
  gw1: number;
  gw2: number;
  gw3: number;
  /** RTA_OIF, or -1 when absent. */
  oif: number;
  /** RTA_PREF, or -1 when absent. */
  pref: number;
}

export function newRouteHead(): RouteHead {
  return { family: 4, dstLen: 0, dst0: 0, dst1: 0, dst2: 0, dst3: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0, priority: -1, hasGateway: false, gw0: 0, gw1: 0, gw2: 0, gw3: 0, oif: -1, pref: -1 };
}

/** Reads the route message at buf[off..off+len) (header included) into `h`; false: not a plain route, decode it in full. */
export function readRouteHead(buf: Buffer, off: number, len: number, h: RouteHead): boolean {
  const b = off + C.NLMSG_HDRLEN;
  const end = off + len;
  if (len < C.NLMSG_HDRLEN + RTMSG_LEN || end > buf.length) return false;
  const af = buf[b]!;
  if (af !== AF_INET && af !== AF_INET6) return false;
  const v6 = af === AF_INET6;
  const addrLen = v6 ? 16 : 4;
  h.family = v6 ? 6 : 4;
  h.dstLen = buf[b + 1]!;
  if (h.dstLen > addrLen * 8 || buf[b + 2] !== 0) return false; // a source prefix: not plain
  h.table = buf[b + 4]!;
  h.protocol = buf[b + 5]!;
  h.scope = buf[b + 6]!;
  h.type = buf[b + 7]!;
  h.flags = buf.readUInt32LE(b + 8);
  h.dst0 = h.dst1 = h.dst2 = h.dst3 = 0;
  h.gw0 = h.gw1 = h.gw2 = h.gw3 = 0;
  h.priority = h.oif = h.pref = -1;
  h.hasGateway = false;
  let hasDst = false;
  for (let p = b + RTMSG_LEN; p + 4 <= end; ) {
    const alen = buf.readUInt16LE(p);
    if (alen < 4 || p + alen > end) return false;
    const t = buf.readUInt16LE(p + 2) & 0x3fff;
    const dl = alen - 4;
    const d = p + 4;
    if (t === C.RTA_DST && dl === addrLen) {
      h.dst0 = buf.readInt32BE(d);
      if (v6) {
        h.dst1 = buf.readInt32BE(d + 4);
        h.dst2 = buf.readInt32BE(d + 8);
        h.dst3 = buf.readInt32BE(d + 12);
      }
      hasDst = true;
    } else if (t === C.RTA_GATEWAY && dl === addrLen) {
      h.gw0 = buf.readInt32BE(d);
      if (v6) {
        h.gw1 = buf.readInt32BE(d + 4);
        h.gw2 = buf.readInt32BE(d + 8);
        h.gw3 = buf.readInt32BE(d + 12);
      }
      h.hasGateway = true;
    } else if (t === C.RTA_TABLE && dl === 4) h.table = buf.readUInt32LE(d);
    else if (t === C.RTA_PRIORITY && dl === 4) h.priority = buf.readUInt32LE(d);
    else if (t === C.RTA_OIF && dl === 4) h.oif = buf.readUInt32LE(d);
    else if (t === C.RTA_PREF && dl >= 1) h.pref = buf[d]!;
    else if (t !== C.RTA_CACHEINFO) return false;
    p += (alen + 3) & ~3;
  }
  return hasDst === h.dstLen > 0;
}
