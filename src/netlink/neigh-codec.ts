/**
 * Neighbour entries (RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH): what
 * next-hop tracking needs of ARP and NDP, the state of a gateway's entry on
 * its device (NUD_FAILED: it stopped answering). Unknown attributes are
 * skipped: nothing here is written back.
 *
 * struct ndmsg (12 bytes): u8 family, u8 pad1, u16 pad2, i32 ifindex, u16 state, u8 flags, u8 type.
 */
import { Addr, afToFamily, type Family } from '../lib/addr';
import * as C from './constants';
import { NetlinkDecodeError } from './errors';
import { encodeFamilyDump } from './link-codec';
import { walkAttrs } from './wire';

export const NDMSG_LEN = 12;
const NDA_DST = 1;
/** NUD_* states (linux/neighbour.h). */
export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;

export interface NeighMessage {
  family: Family;
  ifindex: number;
  /** NUD_* bits. */
  state: number;
  flags: number;
  /** The neighbour's address (NDA_DST); absent in odd entries (bridge FDB), which callers skip. */
  dst?: Addr;
}

/** An IPv4 or IPv6 neighbour entry; undefined for other families (bridge FDB entries share the messages). */
export function decodeNeighMessage(buf: Buffer, off: number, len: number): NeighMessage | undefined {
  const b = off + C.NLMSG_HDRLEN;
  if (len < C.NLMSG_HDRLEN + NDMSG_LEN) throw new NetlinkDecodeError(`neighbour message too short (${len} bytes)`, off);
  const family = afToFamily(buf[b]!);
  if (family === undefined) return undefined;
  const n: NeighMessage = { family, ifindex: buf.readInt32LE(b + 4), state: buf.readUInt16LE(b + 8), flags: buf[b + 10]! };
  const want = family === 4 ? 4 : 16;
  walkAttrs(buf, b + NDMSG_LEN, off + len, (t, d, dl) => {
    if (t !== NDA_DST) return;
    if (dl < want) throw new NetlinkDecodeError(`neighbour address too short (${dl} bytes, want ${want})`, d - 4);
    n.dst = Addr.fromBytes(buf, d, family);
  });
  return n;
}

/** RTM_GETNEIGH dump, optionally of one family. */
export function encodeNeighDump(buf: Buffer, off: number, seq: number, family?: Family): number {
  return encodeFamilyDump(buf, off, seq, C.RTM_GETNEIGH, NDMSG_LEN, family);
}
