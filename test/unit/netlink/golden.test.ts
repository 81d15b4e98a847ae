/**
 * Byte-exact messages, written by hand from the structs in linux/netlink.h,
 * rtnetlink.h, if_link.h and if_addr.h (little-endian host order; addresses
 * in network order). Each test says what the kernel would see.
 */
import { parseAddr, parsePrefix } from '../../../src/lib/addr';
import * as C from '../../../src/netlink/constants';
import { decodeAck, decodeMessages } from '../../../src/netlink/message-codec';
import { decodeLinkMessage, encodeAddrRequest, encodeLinkRequest } from '../../../src/netlink/link-codec';
import { RouteMessage, encodeRouteDump, encodeRouteRequest, routeMessageSize } from '../../../src/netlink/route-codec';
import { hex } from './hex';

function encode(seq: number, cmd: 'add' | 'delete' | 'replace', r: RouteMessage): Buffer {
  const buf = Buffer.alloc(512, 0xaa); // junk: padding must be written, not inherited
  const n = encodeRouteRequest(buf, 0, seq, cmd, r);
  expect(n).toBe(routeMessageSize(r));
  return buf.subarray(0, n);
}

const base = { family: 4 as const, tos: 0, protocol: 99, scope: C.RT_SCOPE_UNIVERSE, type: C.RTN_UNICAST, flags: 0 };

describe('route encoding (golden bytes)', () => {
  it('adds a gateway route with device and metric', () => {
    const msg = encode(1, 'add', { ...base, dst: parsePrefix('203.0.113.0/24'), table: 254, oif: 2, gateway: parseAddr('192.0.2.2'), priority: 100 });
    expect(msg).toEqual(
      hex(`
        44 00 00 00   // nlmsg_len 68
        18 00         // nlmsg_type RTM_NEWROUTE (24)
        05 06         // nlmsg_flags REQUEST|ACK|EXCL|CREATE (0x605)
        01 00 00 00   // nlmsg_seq 1
        00 00 00 00   // nlmsg_pid 0 (kernel)
        02 18 00 00   // rtm_family AF_INET, dst_len 24, src_len 0, tos 0
        fe 63 00 01   // rtm_table 254 (main), protocol 99, scope universe, type RTN_UNICAST
        00 00 00 00   // rtm_flags
        08 00 0f 00  fe 00 00 00   // RTA_TABLE 254
        08 00 01 00  cb 00 71 00   // RTA_DST 203.0.113.0
        08 00 04 00  02 00 00 00   // RTA_OIF 2
        08 00 05 00  c0 00 02 02   // RTA_GATEWAY 192.0.2.2
        08 00 06 00  64 00 00 00   // RTA_PRIORITY 100
      `),
    );
  });

  it('puts a table above 255 in RTA_TABLE only, with rtm_table RT_TABLE_UNSPEC, and encodes multipath weights and onlink', () => {
    const msg = encode(7, 'add', {
      ...base,
      dst: parsePrefix('203.0.113.0/24'),
      table: 1000,
      multipath: [
        { gateway: parseAddr('192.0.2.2'), oif: 2, weight: 1, flags: 0 },
        { gateway: parseAddr('198.51.100.2'), oif: 3, weight: 3, flags: C.RTNH_F_ONLINK },
      ],
    });
    expect(msg).toEqual(
      hex(`
        50 00 00 00  18 00 05 06  07 00 00 00  00 00 00 00   // len 80, RTM_NEWROUTE, add, seq 7
        02 18 00 00   // AF_INET /24
        00 63 00 01   // rtm_table 0: the id does not fit 8 bits
        00 00 00 00
        08 00 0f 00  e8 03 00 00   // RTA_TABLE 1000
        08 00 01 00  cb 00 71 00   // RTA_DST 203.0.113.0
        24 00 09 00                // RTA_MULTIPATH, 36 bytes
          10 00 00 00  02 00 00 00   // rtnexthop len 16, flags 0, hops 0 (weight 1), ifindex 2
          08 00 05 00  c0 00 02 02   //   RTA_GATEWAY 192.0.2.2
          10 00 04 02  03 00 00 00   // rtnexthop len 16, flags RTNH_F_ONLINK, hops 2 (weight 3), ifindex 3
          08 00 05 00  c6 33 64 02   //   RTA_GATEWAY 198.51.100.2
      `),
    );
  });

  it('encodes an IPv4 route via an IPv6 next hop as RTA_VIA (struct rtvia)', () => {
    const msg = encode(2, 'add', { ...base, dst: parsePrefix('203.0.113.0/24'), table: 254, oif: 2, via: parseAddr('2001:db8:1::2') });
    expect(msg).toEqual(
      hex(`
        4c 00 00 00  18 00 05 06  02 00 00 00  00 00 00 00   // len 76
        02 18 00 00  fe 63 00 01  00 00 00 00
        08 00 0f 00  fe 00 00 00   // RTA_TABLE
        08 00 01 00  cb 00 71 00   // RTA_DST
        08 00 04 00  02 00 00 00   // RTA_OIF
        16 00 12 00                // RTA_VIA, len 22 (4 + 2 + 16)
          0a 00                    //   rtvia_family AF_INET6 (10)
          20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 02   // 2001:db8:1::2
          00 00                    //   padding to 4
      `),
    );
  });

  it('encodes RTA_METRICS in RTAX order with the lock bitmask and the congestion control name', () => {
    const msg = encode(3, 'add', {
      ...base,
      scope: C.RT_SCOPE_LINK,
      dst: parsePrefix('203.0.113.0/24'),
      table: 254,
      oif: 2,
      metrics: { lock: 1 << C.RTAX_MTU, mtu: 1400, advmss: 1360, ccAlgo: 'bbr' },
    });
    expect(msg).toEqual(
      hex(`
        58 00 00 00  18 00 05 06  03 00 00 00  00 00 00 00   // len 88
        02 18 00 00  fe 63 fd 01  00 00 00 00                // scope link (253)
        08 00 0f 00  fe 00 00 00
        08 00 01 00  cb 00 71 00
        08 00 04 00  02 00 00 00
        24 00 08 00                // RTA_METRICS, 36 bytes
          08 00 01 00  04 00 00 00   // RTAX_LOCK: bit 1 << RTAX_MTU
          08 00 02 00  78 05 00 00   // RTAX_MTU 1400
          08 00 08 00  50 05 00 00   // RTAX_ADVMSS 1360
          08 00 10 00  62 62 72 00   // RTAX_CC_ALGO "bbr\\0"
      `),
    );
  });

  it('deletes with RTM_DELROUTE and only REQUEST|ACK; IPv6 with RTA_PREF', () => {
    const msg = encode(4, 'delete', {
      ...base,
      family: 6,
      type: C.RTN_UNREACHABLE,
      dst: parsePrefix('2001:db8:3::/48'),
      table: 254,
      priority: 1024,
      pref: C.ICMPV6_ROUTER_PREF_HIGH,
    });
    expect(msg).toEqual(
      hex(`
        48 00 00 00  19 00 05 00  04 00 00 00  00 00 00 00   // len 72, RTM_DELROUTE (25), REQUEST|ACK
        0a 30 00 00  fe 63 00 07  00 00 00 00                // AF_INET6 /48, type RTN_UNREACHABLE (7)
        08 00 0f 00  fe 00 00 00
        14 00 01 00  20 01 0d b8 00 03 00 00 00 00 00 00 00 00 00 00   // RTA_DST 2001:db8:3::
        08 00 06 00  00 04 00 00   // RTA_PRIORITY 1024
        05 00 14 00  01 00 00 00   // RTA_PREF (20), u8 HIGH (1), padding
      `),
    );
  });

  it('asks for a per-table dump filtered by protocol (strict checking)', () => {
    const buf = Buffer.alloc(64, 0xaa);
    const n = encodeRouteDump(buf, 0, 9, { family: 4, table: 1000, protocol: 99 });
    expect(buf.subarray(0, n)).toEqual(
      hex(`
        24 00 00 00  1a 00 01 03  09 00 00 00  00 00 00 00   // len 36, RTM_GETROUTE (26), REQUEST|DUMP (0x301)
        02 00 00 00  00 63 00 00  00 00 00 00                // AF_INET, table via RTA_TABLE, protocol 99
        08 00 0f 00  e8 03 00 00                             // RTA_TABLE 1000
      `),
    );
  });

  it('returns 0 when the message does not fit, leaving the caller to flush', () => {
    const r: RouteMessage = { ...base, dst: parsePrefix('203.0.113.0/24'), table: 254 };
    expect(encodeRouteRequest(Buffer.alloc(routeMessageSize(r) - 1), 0, 1, 'add', r)).toBe(0);
    expect(encodeRouteRequest(Buffer.alloc(100), 100 - routeMessageSize(r) + 1, 1, 'add', r)).toBe(0);
  });
});

describe('links and addresses (golden bytes)', () => {
  it('decodes an RTM_NEWLINK and keeps unknown attributes', () => {
    const msg = hex(`
      44 00 00 00  10 00 00 00  00 00 00 00  00 00 00 00   // len 68, RTM_NEWLINK
      00 00 01 00   // ifi_family AF_UNSPEC, pad, ifi_type ARPHRD_ETHER (1)
      02 00 00 00   // ifi_index 2
      41 00 01 00   // ifi_flags UP|RUNNING|LOWER_UP
      00 00 00 00   // ifi_change
      0a 00 03 00  76 65 74 68 30 00 00 00   // IFLA_IFNAME "veth0\\0", padded
      08 00 04 00  dc 05 00 00               // IFLA_MTU 1500
      05 00 10 00  06 00 00 00               // IFLA_OPERSTATE IF_OPER_UP
      08 00 0d 00  e8 03 00 00               // IFLA_TXQLEN (13): not interpreted
    `);
    expect(decodeLinkMessage(msg, 0, msg.length)).toEqual({
      index: 2,
      linkType: 1,
      flags: 0x10041,
      name: 'veth0',
      mtu: 1500,
      operState: C.IF_OPER_UP,
      unknown: [{ type: 13, bytes: hex('e8 03 00 00') }],
    });
  });

  it('sets a link down by index', () => {
    const buf = Buffer.alloc(64, 0xaa);
    const n = encodeLinkRequest(buf, 0, 5, { op: 'set', index: 3, up: false });
    expect(buf.subarray(0, n)).toEqual(
      hex(`
        20 00 00 00  10 00 05 00  05 00 00 00  00 00 00 00   // len 32, RTM_NEWLINK, REQUEST|ACK
        00 00 00 00  03 00 00 00   // family, pad, type; ifi_index 3
        00 00 00 00  01 00 00 00   // ifi_flags 0 (down); ifi_change IFF_UP
      `),
    );
  });

  it('adds an address with IFA_LOCAL and IFA_ADDRESS', () => {
    const buf = Buffer.alloc(64, 0xaa);
    const n = encodeAddrRequest(buf, 0, 9, 'add', { index: 2, local: parseAddr('192.0.2.1'), prefixLen: 24 });
    expect(buf.subarray(0, n)).toEqual(
      hex(`
        28 00 00 00  14 00 05 06  09 00 00 00  00 00 00 00   // len 40, RTM_NEWADDR (20), add
        02 18 00 00  02 00 00 00   // AF_INET, prefixlen 24, flags 0, scope 0, index 2
        08 00 02 00  c0 00 02 01   // IFA_LOCAL 192.0.2.1
        08 00 01 00  c0 00 02 01   // IFA_ADDRESS 192.0.2.1
      `),
    );
  });
});

describe('acks and errors (golden bytes)', () => {
  const eexist = hex(`
    3c 00 00 00  02 00 00 03  05 00 00 00  d2 04 00 00   // len 60, NLMSG_ERROR, CAPPED|ACK_TLVS, seq 5, pid 1234
    ef ff ff ff                                           // error -17 (EEXIST)
    44 00 00 00  18 00 05 06  05 00 00 00  00 00 00 00   // the request's header only (capped)
    10 00 01 00  46 69 6c 65 20 65 78 69 73 74 73 00     // NLMSGERR_ATTR_MSG "File exists"
    08 00 02 00  20 00 00 00                             // NLMSGERR_ATTR_OFFS 32
  `);

  it('decodes an error with extended-ack text and offset', () => {
    expect(decodeAck(eexist, 0, eexist.length)).toEqual({ seq: 5, errno: 17, extAck: 'File exists', extAckOffset: 32 });
  });

  it('decodes a plain ack as errno 0', () => {
    const ack = hex('24 00 00 00  02 00 00 01  06 00 00 00  00 00 00 00   00 00 00 00   44 00 00 00 18 00 05 06 06 00 00 00 00 00 00 00');
    expect(decodeMessages(ack)).toEqual([{ kind: 'error', header: { len: 36, type: 2, flags: C.NLM_F_CAPPED, seq: 6, pid: 0 }, ack: { seq: 6, errno: 0 } }]);
  });

  it('decodes NLMSG_DONE and sees NLM_F_DUMP_INTR in the header', () => {
    const done = hex('14 00 00 00  03 00 12 00  07 00 00 00  00 00 00 00  00 00 00 00'); // MULTI|DUMP_INTR
    const [m] = decodeMessages(done);
    expect(m).toMatchObject({ kind: 'done', header: { flags: C.NLM_F_MULTI | C.NLM_F_DUMP_INTR, seq: 7 }, ack: { errno: 0 } });
  });

  it('decodes a kernel route notification and keeps RTA_CACHEINFO raw', () => {
    const msg = hex(`
      48 00 00 00  18 00 00 00  00 00 00 00  00 00 00 00   // len 72, RTM_NEWROUTE, notification
      02 18 00 00  fe 04 00 01  00 00 00 00                // /24, main, RTPROT_STATIC, unicast
      08 00 0f 00  fe 00 00 00
      08 00 01 00  cb 00 71 00
      08 00 05 00  c0 00 02 02
      14 00 0c 00  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00   // RTA_CACHEINFO (12), 16 bytes
    `);
    const [m] = decodeMessages(msg);
    expect(m).toEqual({
      kind: 'route',
      header: { len: 72, type: C.RTM_NEWROUTE, flags: 0, seq: 0, pid: 0 },
      deleted: false,
      route: {
        family: 4,
        dst: parsePrefix('203.0.113.0/24'),
        tos: 0,
        table: 254,
        protocol: C.RTPROT_STATIC,
        scope: 0,
        type: C.RTN_UNICAST,
        flags: 0,
        gateway: parseAddr('192.0.2.2'),
        unknown: [{ type: C.RTA_CACHEINFO, bytes: Buffer.alloc(16) }],
      },
    });
  });
});
