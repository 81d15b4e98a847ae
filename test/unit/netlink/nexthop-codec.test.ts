/**
 * Nexthop objects (linux/nexthop.h) as bytes, written by hand from struct
 * nhmsg and struct nexthop_grp; and RTA_NH_ID on a route.
 */
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import * as C from '../../../src/netlink/constants';
import { NetlinkDecodeError } from '../../../src/netlink/errors';
import { decodeNexthopMessage, encodeNexthopDump, encodeNexthopRequest, nexthopMessageSize, type NexthopCommand, type NexthopMessage } from '../../../src/netlink/nexthop-codec';
import { decodeRouteMessage, encodeRouteRequest, routeMessageSize } from '../../../src/netlink/route-codec';
import { hex } from './hex';

function encode(seq: number, cmd: NexthopCommand, m: NexthopMessage): Buffer {
  const buf = Buffer.alloc(256, 0xaa); // junk: padding must be written, not inherited
  const n = encodeNexthopRequest(buf, 0, seq, cmd, m);
  expect(n).toBe(nexthopMessageSize(m, cmd));
  return buf.subarray(0, n);
}

describe('nexthop objects (golden bytes)', () => {
  it('adds a gateway with its device, our protocol, never over an existing id', () => {
    const msg = encode(3, 'add', { id: 0x90000001, family: 4, protocol: 144, scope: 0, flags: 0, oif: 2, gateway: parseAddr('192.0.2.2') });
    expect(msg).toEqual(
      hex(`
        30 00 00 00   // nlmsg_len 48
        68 00         // RTM_NEWNEXTHOP (104)
        05 06         // REQUEST|ACK|EXCL|CREATE
        03 00 00 00  00 00 00 00
        02 00 90 00   // nh_family AF_INET, scope 0, protocol 144, resvd
        00 00 00 00   // nh_flags
        08 00 01 00  01 00 00 90   // NHA_ID 0x90000001
        08 00 05 00  02 00 00 00   // NHA_OIF 2
        08 00 06 00  c0 00 02 02   // NHA_GATEWAY 192.0.2.2
      `),
    );
    expect(decodeNexthopMessage(msg, 0, msg.length)).toEqual({ id: 0x90000001, family: 4, protocol: 144, scope: 0, flags: 0, oif: 2, gateway: parseAddr('192.0.2.2') });
  });

  it('adds an onlink IPv6 gateway (for an IPv4 route: RTA_VIA as an object)', () => {
    const msg = encode(4, 'replace', { id: 7, family: 6, protocol: 144, scope: 0, flags: C.RTNH_F_ONLINK, oif: 3, gateway: parseAddr('2001:db8::1') });
    expect(msg).toEqual(
      hex(`
        3c 00 00 00  68 00 05 05  04 00 00 00  00 00 00 00   // len 60, RTM_NEWNEXTHOP, REQUEST|ACK|REPLACE|CREATE
        0a 00 90 00   // AF_INET6
        04 00 00 00   // RTNH_F_ONLINK
        08 00 01 00  07 00 00 00   // NHA_ID 7
        08 00 05 00  03 00 00 00   // NHA_OIF 3
        14 00 06 00  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01   // NHA_GATEWAY 2001:db8::1
      `),
    );
  });

  it('adds a weighted group (AF_UNSPEC; weight - 1 on the wire) and decodes it back', () => {
    const m: NexthopMessage = {
      id: 9,
      family: undefined,
      protocol: 144,
      scope: 0,
      flags: 0,
      group: [
        { id: 5, weight: 1 },
        { id: 6, weight: 3 },
      ],
    };
    const msg = encode(5, 'add', m);
    expect(msg).toEqual(
      hex(`
        34 00 00 00  68 00 05 06  05 00 00 00  00 00 00 00
        00 00 90 00  00 00 00 00   // AF_UNSPEC, protocol 144
        08 00 01 00  09 00 00 00   // NHA_ID 9
        14 00 02 00                // NHA_GROUP, 2 entries
        05 00 00 00  00 00 00 00   // id 5, weight 1
        06 00 00 00  02 00 00 00   // id 6, weight 3
      `),
    );
    expect(decodeNexthopMessage(msg, 0, msg.length)).toEqual(m);
  });

  it('deletes by id alone and dumps every object', () => {
    expect(encode(6, 'delete', { id: 9, family: 4, protocol: 144, scope: 0, flags: 0, oif: 2 })).toEqual(
      hex(`
        20 00 00 00  69 00 05 00  06 00 00 00  00 00 00 00   // RTM_DELNEXTHOP, REQUEST|ACK
        00 00 00 00  00 00 00 00
        08 00 01 00  09 00 00 00
      `),
    );
    const buf = Buffer.alloc(64, 0xaa);
    const n = encodeNexthopDump(buf, 0, 8);
    expect(buf.subarray(0, n)).toEqual(hex('18 00 00 00  6a 00 01 03  08 00 00 00  00 00 00 00  00 00 00 00  00 00 00 00'));
  });

  it('decodes what the kernel reports: scope, DEAD|LINKDOWN flags, a blackhole, unknown attributes kept', () => {
    const msg = hex(`
      2c 00 00 00  68 00 02 00  01 00 00 00  00 00 00 00
      02 fd 90 00  11 00 00 00   // AF_INET, scope link, protocol 144; DEAD|LINKDOWN
      08 00 01 00  0b 00 00 00   // NHA_ID 11
      04 00 04 00                // NHA_BLACKHOLE
      08 00 63 00  01 02 03 04   // attribute 99: kept
    `);
    expect(decodeNexthopMessage(msg, 0, msg.length)).toEqual({
      id: 11,
      family: 4,
      scope: C.RT_SCOPE_LINK,
      protocol: 144,
      flags: C.RTNH_F_DEAD | C.RTNH_F_LINKDOWN,
      blackhole: true,
      unknown: [{ type: 99, bytes: Buffer.from([1, 2, 3, 4]) }],
    });
  });

  it('refuses malformed messages with NetlinkDecodeError', () => {
    const short = hex('14 00 00 00  68 00 02 00  01 00 00 00  00 00 00 00  02 00 90 00');
    expect(() => decodeNexthopMessage(short, 0, short.length)).toThrow(NetlinkDecodeError);
    const noId = hex('20 00 00 00  68 00 02 00  01 00 00 00  00 00 00 00  02 00 90 00  00 00 00 00  08 00 05 00  02 00 00 00');
    expect(() => decodeNexthopMessage(noId, 0, noId.length)).toThrow(/without NHA_ID/);
    const badGroup = hex('28 00 00 00  68 00 02 00  01 00 00 00  00 00 00 00  00 00 90 00  00 00 00 00  08 00 01 00  01 00 00 00  08 00 02 00  05 00 00 00');
    expect(() => decodeNexthopMessage(badGroup, 0, badGroup.length)).toThrow(/whole number/);
    const badGw = hex('28 00 00 00  68 00 02 00  01 00 00 00  00 00 00 00  02 00 90 00  00 00 00 00  08 00 01 00  01 00 00 00  07 00 06 00  c0 00 02 00');
    expect(() => decodeNexthopMessage(badGw, 0, badGw.length)).toThrow(/NHA_GATEWAY of 3 bytes/);
    const badLen = hex('20 00 00 00  68 00 02 00  01 00 00 00  00 00 00 00  02 00 90 00  00 00 00 00  40 00 01 00  01 00 00 00');
    expect(() => decodeNexthopMessage(badLen, 0, badLen.length)).toThrow(/out of bounds/);
  });

  it('does not write past the buffer (0: does not fit)', () => {
    expect(encodeNexthopRequest(Buffer.alloc(20), 0, 1, 'add', { id: 1, family: 4, protocol: 144, scope: 0, flags: 0, oif: 2 })).toBe(0);
    expect(encodeNexthopDump(Buffer.alloc(10), 0, 1)).toBe(0);
  });
});

describe('routes on nexthop objects', () => {
  it('a route names its object with RTA_NH_ID and carries no gateway', () => {
    const r = { family: 4 as const, dst: parsePrefix('203.0.113.0/24'), tos: 0, table: 254, protocol: 144, scope: 0, type: C.RTN_UNICAST, flags: 0, nhId: 0x90000001 };
    const buf = Buffer.alloc(128, 0xaa);
    const n = encodeRouteRequest(buf, 0, 2, 'replace', r);
    expect(n).toBe(routeMessageSize(r));
    expect(buf.subarray(0, n)).toEqual(
      hex(`
        34 00 00 00  18 00 05 05  02 00 00 00  00 00 00 00   // RTM_NEWROUTE, REQUEST|ACK|REPLACE|CREATE
        02 18 00 00  fe 90 00 01  00 00 00 00
        08 00 0f 00  fe 00 00 00   // RTA_TABLE 254
        08 00 01 00  cb 00 71 00   // RTA_DST
        08 00 1e 00  01 00 00 90   // RTA_NH_ID
      `),
    );
    expect(decodeRouteMessage(buf, 0, n).nhId).toBe(0x90000001);
  });
});
