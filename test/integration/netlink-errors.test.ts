/**
 * Kernel refusals come back per change, with the errno name and the kernel's
 * extended-ack text, at the index of the op that failed; the rest of the
 * batch goes through.
 */
import { parseAddr, parsePrefix } from '../../src/lib/addr';
import * as C from '../../src/netlink/constants';
import { NetlinkClient } from '../../src/netlink/client';
import { NetlinkRequestError } from '../../src/netlink/errors';
import { RouteOp, RoutePipeline } from '../../src/netlink/pipeline';
import { RouteMessage } from '../../src/netlink/route-codec';
import { Netns, createNetns, kernelDescribe } from '../helpers/netns';

function route(dst: string, more: Partial<RouteMessage> = {}): RouteMessage {
  const p = parsePrefix(dst);
  return { family: p.family, dst: p, tos: 0, table: 254, protocol: 250, scope: 0, type: C.RTN_UNICAST, flags: 0, ...more };
}

kernelDescribe('netlink errors from the kernel', () => {
  let ns: Netns;
  let pipe: RoutePipeline;
  let client: NetlinkClient;

  beforeAll(() => {
    ns = createNetns('nlerr');
    pipe = RoutePipeline.open({ netns: ns.name });
    client = NetlinkClient.open({ netns: ns.name });
  });
  afterAll(async () => {
    await pipe?.close();
    client?.close();
    ns?.destroy();
  });

  it('reports EEXIST, ESRCH, ENETUNREACH and EINVAL at their index, with the extended-ack text', async () => {
    const gw = parseAddr('192.0.2.2');
    const ops: RouteOp[] = [
      { cmd: 'add', route: route('203.0.113.0/24', { gateway: gw }) },
      { cmd: 'add', route: route('203.0.113.0/24', { gateway: gw }) }, // again: EEXIST
      { cmd: 'delete', route: route('198.51.100.128/25', { type: C.RTN_UNSPEC }) }, // not there: ESRCH
      { cmd: 'add', route: route('203.0.113.64/26', { gateway: parseAddr('203.0.113.9') }) }, // gateway not on a link
      { cmd: 'add', route: route('203.0.113.128/26', { gateway: gw, scope: C.RT_SCOPE_HOST }) }, // host scope with a gateway
      { cmd: 'add', route: route('2001:db8:5::/48', { type: C.RTN_BLACKHOLE }) },
    ];
    const result = await pipe.submit(ops);
    expect(result.ok).toBe(2);
    const failures = result.failed
      .sort((a, b) => a.index - b.index)
      .map((f) => {
        expect(f.error).toBeInstanceOf(NetlinkRequestError);
        const e = f.error as NetlinkRequestError;
        expect(e.code).toBe('KRT_ERR_NETLINK_REQUEST');
        expect(f.op).toBe(ops[f.index]);
        return { index: f.index, errno: e.errnoName, extAck: e.extAck };
      });
    expect(failures).toEqual([
      { index: 1, errno: 'EEXIST', extAck: undefined },
      { index: 2, errno: 'ESRCH', extAck: undefined },
      { index: 3, errno: 'ENETUNREACH', extAck: 'Nexthop has invalid gateway' },
      { index: 4, errno: 'EINVAL', extAck: 'Route with host scope can not have a gateway' },
    ]);
    expect(result.failed.find((f) => f.index === 3)!.error.message).toBe('add 203.0.113.64/26 table 254: ENETUNREACH: Nexthop has invalid gateway');
  });

  it('settles a send whose acked last request fails: the ones before it succeeded', async () => {
    // Only the last request of a send carries NLM_F_ACK; its error must still settle the others as done.
    const gw = parseAddr('192.0.2.2');
    const ops: RouteOp[] = [
      { cmd: 'add', route: route('198.51.100.0/26', { gateway: gw }) },
      { cmd: 'add', route: route('198.51.100.64/26', { gateway: gw }) },
      { cmd: 'add', route: route('198.51.100.0/26', { gateway: gw }) }, // again: EEXIST, and the last of the send
    ];
    const result = await pipe.submit(ops);
    expect(result.ok).toBe(2);
    expect(result.failed.map((f) => [f.index, (f.error as NetlinkRequestError).errnoName])).toEqual([[2, 'EEXIST']]);
    const deleted = await pipe.submit(ops.slice(0, 2).map((op) => ({ cmd: 'delete' as const, route: op.route })));
    expect(deleted).toEqual({ ok: 2, failed: [], rechecked: 0 });
  });

  it('rejects a malformed dump request under strict checking, with the reason', async () => {
    const bad = client.dump(
      (buf, off, seq) => {
        const n = C.NLMSG_HDRLEN + 12;
        buf.fill(0, off, off + n);
        buf.writeUInt32LE(n, off);
        buf.writeUInt16LE(C.RTM_GETROUTE, off + 4);
        buf.writeUInt16LE(C.NLM_F_REQUEST | C.NLM_F_DUMP, off + 6);
        buf.writeUInt32LE(seq, off + 8);
        buf[off + 16] = 2; // AF_INET
        buf[off + 17] = 24; // rtm_dst_len: not allowed in a dump request
        return n;
      },
      () => undefined,
    );
    await expect(bad).rejects.toMatchObject({ errnoName: 'EINVAL', extAck: expect.stringMatching(/header/i) });
  });

  it('single requests: link and address changes, unknown link', async () => {
    const veth1 = ns.ifindex('veth1');
    await client.setLink({ op: 'set', index: veth1, up: false });
    expect((await client.getLink({ name: 'veth1' })).flags & C.IFF_UP).toBe(0);
    await client.setLink({ op: 'set', index: veth1, up: true });
    const link = await client.getLink({ index: veth1 });
    expect(link).toMatchObject({ name: 'veth1', index: veth1 });
    expect(link.flags & C.IFF_UP).toBe(C.IFF_UP);
    await client.changeAddr('add', { index: veth1, local: parseAddr('203.0.113.1'), prefixLen: 28 });
    const addrs = (await client.dumpAddrs(4)).items.filter((a) => a.index === veth1).map((a) => `${a.local}/${a.prefixLen}`);
    expect(addrs).toEqual(expect.arrayContaining(['198.51.100.1/24', '203.0.113.1/28']));
    await expect(client.changeAddr('add', { index: veth1, local: parseAddr('203.0.113.1'), prefixLen: 28 })).rejects.toMatchObject({ errnoName: 'EEXIST' });
    await expect(client.getLink({ name: 'nosuchdev0' })).rejects.toMatchObject({ errnoName: 'ENODEV' });
    const links = (await client.dumpLinks()).items.map((l) => l.name);
    expect(links).toEqual(expect.arrayContaining(['lo', 'veth0', 'veth1']));
  });
});
