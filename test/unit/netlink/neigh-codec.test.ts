import { parseAddr } from '../../../src/lib/addr';
import * as C from '../../../src/netlink/constants';
import { NetlinkDecodeError } from '../../../src/netlink/errors';
import { decodeNeighMessage, encodeNeighDump, NDMSG_LEN, NUD_FAILED } from '../../../src/netlink/neigh-codec';

/** An RTM_NEWNEIGH as the kernel sends it: ndmsg, then NDA_DST (and NDA_LLADDR, skipped). */
function neigh(family: number, ifindex: number, state: number, dst?: Buffer): Buffer {
  const attrs: Buffer[] = [];
  const attr = (type: number, data: Buffer): Buffer => {
    const b = Buffer.alloc(4 + ((data.length + 3) & ~3));
    b.writeUInt16LE(4 + data.length, 0);
    b.writeUInt16LE(type, 2);
    data.copy(b, 4);
    return b;
  };
  if (dst) attrs.push(attr(1, dst));
  attrs.push(attr(2, Buffer.from([2, 0, 0, 0, 0, 2])));
  const body = Buffer.concat([Buffer.alloc(NDMSG_LEN), ...attrs]);
  body[0] = family;
  body.writeInt32LE(ifindex, 4);
  body.writeUInt16LE(state, 8);
  const h = Buffer.alloc(C.NLMSG_HDRLEN);
  h.writeUInt32LE(C.NLMSG_HDRLEN + body.length, 0);
  h.writeUInt16LE(C.RTM_NEWNEIGH, 4);
  return Buffer.concat([h, body]);
}

describe('neighbour codec', () => {
  it('decodes an IPv4 and an IPv6 entry with their state, and skips other families (bridge FDB)', () => {
    const v4 = neigh(2, 3, NUD_FAILED, Buffer.from([192, 0, 2, 2]));
    expect(decodeNeighMessage(v4, 0, v4.length)).toEqual({ family: 4, ifindex: 3, state: NUD_FAILED, flags: 0, dst: parseAddr('192.0.2.2') });
    const v6 = neigh(10, 4, 4, Buffer.from(parseAddr('2001:db8::2').toBytes()));
    expect(decodeNeighMessage(v6, 0, v6.length)?.dst?.toString()).toBe('2001:db8::2');
    const bridge = neigh(7, 5, 0x80);
    expect(decodeNeighMessage(bridge, 0, bridge.length)).toBeUndefined();
  });

  it('refuses a short message or address with an error naming it', () => {
    const short = neigh(2, 3, 0).subarray(0, 20);
    expect(() => decodeNeighMessage(short, 0, short.length)).toThrow(NetlinkDecodeError);
    const bad = neigh(2, 3, 0, Buffer.from([192, 0]));
    expect(() => decodeNeighMessage(bad, 0, bad.length)).toThrow(/neighbour address too short \(2 bytes, want 4\)/);
  });

  it('encodes a dump request, or nothing when it does not fit', () => {
    const b = Buffer.alloc(64, 0xff);
    expect(encodeNeighDump(b, 0, 7, 6)).toBe(C.NLMSG_HDRLEN + NDMSG_LEN);
    expect(b.readUInt16LE(4)).toBe(C.RTM_GETNEIGH);
    expect(b[C.NLMSG_HDRLEN]).toBe(10);
    expect(encodeNeighDump(Buffer.alloc(10), 0, 7)).toBe(0);
  });
});
