/**
 * RouteTemplate: a route message encoded once, without its destination, and
 * written for any net with a copy and a few header fields.
 *
 * The kernel protocol sends a million routes that are a handful of shapes
 * (one gateway, one metric): encoding each field of each route again
 * (sizes, attribute headers, addresses) is work the shape has already done.
 * A template holds the bytes encodeRouteMessage writes for the route with
 * no RTA_DST; encode() writes the header, the rtmsg with this net's length,
 * RTA_TABLE, then RTA_DST, then the rest: byte for byte what
 * encodeRouteRequest writes for the route with that dst (a unit test holds
 * them together), since the encoder puts RTA_DST right after RTA_TABLE.
 * Nets are given as their words (host order, as Prefix and NetIndex keep
 * them), so no Prefix is made per route.
 */
import { Prefix } from '../lib/addr';
import * as C from './constants';
import { RTMSG_LEN, commandHeader, encodeRouteMessage, type RouteCommand, type RouteMessage } from './route-codec';

/** Where RTA_DST goes: after the header, the rtmsg and RTA_TABLE (8 bytes). */
const DST_AT = C.NLMSG_HDRLEN + RTMSG_LEN + 8;

export class RouteTemplate {
  /** The message without RTA_DST (header fields are rewritten per encode). */
  private readonly bytes: Buffer;
  private readonly family: 4 | 6;

  constructor(readonly route: RouteMessage) {
    this.family = route.family;
    const scratch = Buffer.alloc(8192);
    const noDst = new Prefix(route.family, 0, 0);
    const n = encodeRouteMessage(scratch, 0, C.RTM_NEWROUTE, 0, 0, route, noDst);
    if (n === 0) throw new RangeError('route message larger than 8 KiB');
    this.bytes = Buffer.from(scratch.subarray(0, n));
  }

  /** Bytes of a request for a net of length `len` (0: no RTA_DST). */
  size(len: number): number {
    return this.bytes.length + (len === 0 ? 0 : this.family === 4 ? 8 : 20);
  }

  /**
   * Writes `cmd` for the net (words w0..w3, host order; IPv4 uses w0) at buf[off..] with `seq`,
   * without NLM_F_ACK. Returns the bytes written, or 0 when they do not fit.
   */
  encode(buf: Buffer, off: number, seq: number, cmd: RouteCommand, len: number, w0: number, w1 = 0, w2 = 0, w3 = 0): number {
    const size = this.size(len);
    if (off + size > buf.length) return 0;
    const b = this.bytes;
    b.copy(buf, off, 0, DST_AT);
    const h = commandHeader(cmd);
    buf.writeUInt32LE(size, off);
    buf.writeUInt16LE(h.type, off + 4);
    buf.writeUInt16LE(C.NLM_F_REQUEST | h.flags, off + 6);
    buf.writeUInt32LE(seq >>> 0, off + 8);
    buf[off + C.NLMSG_HDRLEN + 1] = len;
    let p = off + DST_AT;
    if (len > 0) {
      if (this.family === 4) {
        buf.writeUInt32LE(8 | (C.RTA_DST << 16), p);
        buf.writeInt32BE(w0, p + 4);
        p += 8;
      } else {
        buf.writeUInt32LE(20 | (C.RTA_DST << 16), p);
        buf.writeInt32BE(w0, p + 4);
        buf.writeInt32BE(w1, p + 8);
        buf.writeInt32BE(w2, p + 12);
        buf.writeInt32BE(w3, p + 16);
        p += 20;
      }
    }
    b.copy(buf, p, DST_AT);
    return size;
  }
}
