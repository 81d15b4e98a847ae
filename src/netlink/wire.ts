/**
 * Netlink framing shared by the codecs: the message header (struct nlmsghdr),
 * attributes (struct rtattr / nlattr, 4-byte aligned TLVs) and the walk over a
 * buffer of messages. Pure functions over Buffer, no I/O.
 *
 * Byte order: netlink headers and most attributes are host order; addresses
 * are network order. This layer writes host order as little-endian and refuses
 * to load on a big-endian host (the check below), rather than carrying two
 * code paths nobody tests.
 *
 * Writers take (buf, off) and return the offset after what they wrote; the
 * caller has checked the room (encoders compute their size first, FRR style:
 * "bytes written, or 0 when it does not fit").
 */
import { endianness } from 'node:os';
import { InvariantError } from '../lib/errors';
import { NLMSG_HDRLEN } from './constants';
import { NetlinkDecodeError } from './errors';

if (endianness() !== 'LE') throw new InvariantError('krtsync netlink codec supports little-endian hosts only');

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** An attribute this codec does not interpret, kept verbatim (a copy, never a view of a receive buffer). */
export interface RawAttr {
  readonly type: number;
  readonly bytes: Buffer;
}

export interface NlHeader {
  readonly len: number;
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
}

export function writeHeader(buf: Buffer, off: number, len: number, type: number, flags: number, seq: number): void {
  buf.writeUInt32LE(len, off);
  buf.writeUInt16LE(type, off + 4);
  buf.writeUInt16LE(flags, off + 6);
  buf.writeUInt32LE(seq >>> 0, off + 8);
  buf.writeUInt32LE(0, off + 12); // nlmsg_pid 0: addressed to the kernel
}

export function readHeader(buf: Buffer, off: number): NlHeader {
  return {
    len: buf.readUInt32LE(off),
    type: buf.readUInt16LE(off + 4),
    flags: buf.readUInt16LE(off + 6),
    seq: buf.readUInt32LE(off + 8),
    pid: buf.readUInt32LE(off + 12),
  };
}

// ------------------------------------------------------------ attribute writers

export function putAttrU32(buf: Buffer, off: number, type: number, v: number): number {
  buf.writeUInt32LE(8, off); // rta_len 8 | rta_type (u16 each, little-endian)
  buf.writeUInt16LE(type, off + 2);
  buf.writeUInt32LE(v >>> 0, off + 4);
  return off + 8;
}

export function putAttrU8(buf: Buffer, off: number, type: number, v: number): number {
  buf.writeUInt16LE(5, off);
  buf.writeUInt16LE(type, off + 2);
  buf.writeUInt32LE(v & 0xff, off + 4); // value byte plus 3 zero padding bytes
  return off + 8;
}

/** An address attribute: 4 or 16 bytes in network order. */
export function putAttrAddr(buf: Buffer, off: number, type: number, w: { family: 4 | 6; w0: number; w1: number; w2: number; w3: number }): number {
  const n = w.family === 4 ? 4 : 16;
  buf.writeUInt16LE(4 + n, off);
  buf.writeUInt16LE(type, off + 2);
  buf.writeInt32BE(w.w0, off + 4);
  if (n === 4) return off + 8;
  buf.writeInt32BE(w.w1, off + 8);
  buf.writeInt32BE(w.w2, off + 12);
  buf.writeInt32BE(w.w3, off + 16);
  return off + 20;
}

export function putAttrBytes(buf: Buffer, off: number, type: number, bytes: Uint8Array): number {
  const len = 4 + bytes.length;
  buf.writeUInt16LE(len, off);
  buf.writeUInt16LE(type, off + 2);
  buf.set(bytes, off + 4);
  const end = off + align4(len);
  buf.fill(0, off + len, end);
  return end;
}

/** A NUL-terminated string attribute (IFLA_IFNAME, RTAX_CC_ALGO). */
export function putAttrString(buf: Buffer, off: number, type: number, s: string): number {
  const n = Buffer.byteLength(s);
  const len = 4 + n + 1;
  buf.writeUInt16LE(len, off);
  buf.writeUInt16LE(type, off + 2);
  buf.write(s, off + 4, n, 'utf8');
  const end = off + align4(len);
  buf.fill(0, off + 4 + n, end);
  return end;
}

export function attrStringSize(s: string): number {
  return align4(4 + Buffer.byteLength(s) + 1);
}

/** Opens a nested attribute; close it with endNest(buf, start, end). */
export function beginNest(buf: Buffer, off: number, type: number): number {
  buf.writeUInt16LE(type, off + 2);
  return off + 4;
}

export function endNest(buf: Buffer, start: number, end: number): number {
  buf.writeUInt16LE(end - start, start);
  return end;
}

// ------------------------------------------------------------ attribute reading

/** Attribute type without the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits. */
export const NLA_TYPE_MASK = 0x3fff;

/**
 * Walks the attributes in [off, end): calls visit(type, dataOff, dataLen) for
 * each. A length that runs past `end` or is below 4 is a decode error; trailing
 * bytes shorter than an attribute header are ignored, as the kernel does.
 */
export function walkAttrs(buf: Buffer, off: number, end: number, visit: (type: number, dataOff: number, dataLen: number) => void): void {
  let p = off;
  while (p + 4 <= end) {
    const len = buf.readUInt16LE(p);
    if (len < 4 || p + len > end) throw new NetlinkDecodeError(`attribute length ${len} out of bounds`, p);
    visit(buf.readUInt16LE(p + 2) & NLA_TYPE_MASK, p + 4, len - 4);
    p += align4(len);
  }
}

export function rawAttr(buf: Buffer, type: number, off: number, len: number): RawAttr {
  return { type, bytes: Buffer.from(buf.subarray(off, off + len)) };
}

export function readU32(buf: Buffer, off: number, len: number, at: number): number {
  if (len < 4) throw new NetlinkDecodeError(`attribute too short (${len} bytes, want 4)`, at);
  return buf.readUInt32LE(off);
}

export function readU8(buf: Buffer, off: number, len: number, at: number): number {
  if (len < 1) throw new NetlinkDecodeError('attribute too short (0 bytes, want 1)', at);
  return buf[off]!;
}

/** A string attribute: up to the first NUL, or the whole payload. */
export function readString(buf: Buffer, off: number, len: number): string {
  let e = off;
  const end = off + len;
  while (e < end && buf[e] !== 0) e++;
  return buf.toString('utf8', off, e);
}

/** Writes a raw attribute back (unknown attributes survive a decode-encode round trip). */
export function putRawAttr(buf: Buffer, off: number, a: RawAttr): number {
  return putAttrBytes(buf, off, a.type, a.bytes);
}

export function rawAttrsSize(attrs: readonly RawAttr[] | undefined): number {
  if (!attrs) return 0;
  let n = 0;
  for (const a of attrs) n += align4(4 + a.bytes.length);
  return n;
}

// ------------------------------------------------------------ message walk

/**
 * Calls visit(off, len) for each message in [start, end). A message whose
 * header claims less than a header or more than what is left ends the walk:
 * the rest of the buffer cannot be framed. Returns undefined, or that error.
 */
export function walkMessages(buf: Buffer, start: number, end: number, visit: (off: number, len: number) => void): NetlinkDecodeError | undefined {
  let p = start;
  while (p < end) {
    if (end - p < NLMSG_HDRLEN) return new NetlinkDecodeError(`truncated message header (${end - p} bytes)`, p);
    const len = buf.readUInt32LE(p);
    if (len < NLMSG_HDRLEN || len > end - p) return new NetlinkDecodeError(`message length ${len} out of bounds`, p);
    visit(p, len);
    p += align4(len);
  }
  return undefined;
}
