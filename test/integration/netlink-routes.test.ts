/**
 * Routes of every kind through the pipeline into a scratch namespace, checked
 * against iproute2 (the independent oracle) and against our own dump.
 */
import { parseAddr, parsePrefix } from '../../src/lib/addr';
import * as C from '../../src/netlink/constants';
import { NetlinkClient, anyRoute } from '../../src/netlink/client';
import { RoutePipeline } from '../../src/netlink/pipeline';
import { RouteMessage } from '../../src/netlink/route-codec';
import { IpRoute, Netns, createNetns, kernelDescribe, kernelRoutes } from '../helpers/netns';

const PROTO = 250;

function route(dst: string, more: Partial<RouteMessage> = {}): RouteMessage {
  const p = parsePrefix(dst);
  return { family: p.family, dst: p, tos: 0, table: C.RT_TABLE_MAIN, protocol: PROTO, scope: C.RT_SCOPE_UNIVERSE, type: C.RTN_UNICAST, flags: 0, ...more };
}

kernelDescribe('netlink routes against the kernel', () => {
  let ns: Netns;
  let client: NetlinkClient;
  let pipe: RoutePipeline;
  let cases: Array<{ name: string; route: RouteMessage; ip: Partial<IpRoute> & Record<string, unknown> }>;

  beforeAll(() => {
    ns = createNetns('nlroute');
    client = NetlinkClient.open({ netns: ns.name });
    pipe = RoutePipeline.open({ netns: ns.name });
    const veth0 = ns.ifindex('veth0');
    const veth1 = ns.ifindex('veth1');
    const gw = parseAddr('192.0.2.2');
    cases = [
      { name: 'gateway', route: route('203.0.113.0/24', { gateway: gw, priority: 10 }), ip: { gateway: '192.0.2.2', dev: 'veth0', metric: 10 } },
      { name: 'device', route: route('203.0.113.0/26', { oif: veth1, scope: C.RT_SCOPE_LINK }), ip: { dev: 'veth1', scope: 'link' } },
      {
        name: 'onlink',
        route: route('203.0.113.64/26', { gateway: parseAddr('198.51.100.200'), oif: veth0, flags: C.RTNH_F_ONLINK }),
        ip: { gateway: '198.51.100.200', dev: 'veth0', flags: ['onlink'] },
      },
      {
        name: 'multipath with weights',
        route: route('203.0.113.128/26', {
          multipath: [
            { gateway: gw, oif: veth0, weight: 1, flags: 0 },
            { gateway: parseAddr('198.51.100.2'), oif: veth1, weight: 3, flags: 0 },
          ],
        }),
        ip: {
          nexthops: [
            { gateway: '192.0.2.2', dev: 'veth0', weight: 1, flags: [] },
            { gateway: '198.51.100.2', dev: 'veth1', weight: 3, flags: [] },
          ],
        },
      },
      {
        name: 'IPv4 via an IPv6 next hop',
        route: route('203.0.113.192/27', { via: parseAddr('2001:db8:1::2'), oif: veth0 }),
        ip: { via: { family: 'inet6', host: '2001:db8:1::2' }, dev: 'veth0' },
      },
      { name: 'blackhole', route: route('203.0.113.224/28', { type: C.RTN_BLACKHOLE }), ip: { type: 'blackhole' } },
      { name: 'unreachable', route: route('203.0.113.240/29', { type: C.RTN_UNREACHABLE }), ip: { type: 'unreachable' } },
      { name: 'prohibit', route: route('203.0.113.248/30', { type: C.RTN_PROHIBIT }), ip: { type: 'prohibit' } },
      {
        name: 'mtu and advmss with lock',
        route: route('203.0.113.252/31', { gateway: gw, metrics: { lock: 1 << C.RTAX_MTU, mtu: 1400, advmss: 1360, ccAlgo: 'reno' } }),
        ip: { gateway: '192.0.2.2', metrics: [{ mtu: 1400, advmss: 1360, congestion: 'reno' }] },
      },
      { name: 'prefsrc', route: route('203.0.113.254/32', { gateway: gw, prefsrc: parseAddr('192.0.2.1') }), ip: { gateway: '192.0.2.2', prefsrc: '192.0.2.1' } },
      { name: 'realm', route: route('203.0.113.255/32', { gateway: gw, flow: 7 }), ip: { gateway: '192.0.2.2', flow: { to: '7' } } },
      {
        name: 'IPv6 with router preference',
        route: route('2001:db8:100::/48', { gateway: parseAddr('2001:db8:1::2'), pref: C.ICMPV6_ROUTER_PREF_HIGH }),
        ip: { gateway: '2001:db8:1::2', dev: 'veth0', pref: 'high', metric: 1024 },
      },
      {
        name: 'IPv6 device with metric',
        route: route('2001:db8:200::/48', { oif: veth1, priority: 300 }),
        ip: { dev: 'veth1', metric: 300 },
      },
      { name: 'table above 255', route: route('203.0.113.0/24', { gateway: gw, table: 1000 }), ip: { gateway: '192.0.2.2', table: '1000' } },
    ];
  });

  afterAll(async () => {
    await pipe?.close();
    client?.close();
    ns?.destroy();
  });

  function oracle(r: RouteMessage): IpRoute | undefined {
    const all = kernelRoutes(ns, r.family === 4 ? '-4' : '-6');
    const dst = r.dst.len === r.dst.maxLen ? r.dst.addr.toString() : r.dst.toString();
    const table = r.table === C.RT_TABLE_MAIN ? undefined : String(r.table);
    return all.find((x) => x.dst === dst && x.table === table && x.protocol === String(PROTO));
  }

  it('installs one route of every kind in one batch', async () => {
    const result = await pipe.submit(cases.map((c) => ({ cmd: 'add' as const, route: c.route })));
    expect(result.failed.map((f) => `${f.op.route.dst}: ${f.error.message}`)).toEqual([]);
    expect(result.ok).toBe(cases.length);
  });

  it('holds each route as iproute2 sees it', () => {
    for (const c of cases) expect({ name: c.name, ip: oracle(c.route) }).toEqual({ name: c.name, ip: expect.objectContaining(c.ip) });
  });

  it('locks the mtu (iproute2 text output)', () => {
    expect(ns.ip('route', 'show', '203.0.113.252/31')).toMatch(/mtu lock 1400 advmss 1360 congctl reno/);
  });

  it('dumps each route back as it was sent', async () => {
    const dumped = [...(await client.dumpRoutes({ family: 4, protocol: PROTO })).items, ...(await client.dumpRoutes({ family: 6, protocol: PROTO })).items];
    for (const c of cases) {
      const got = dumped.find((d) => d.dst.equals(c.route.dst) && d.table === c.route.table);
      expect({ name: c.name, got }).toEqual({ name: c.name, got: expect.objectContaining(sentFields(c.route)) });
    }
  });

  it('dumps one table only, above 255 too, with strict checking', async () => {
    const { items } = await client.dumpRoutes({ family: 4, table: 1000 });
    expect(items.map((r) => `${r.dst} ${r.table}`)).toEqual(['203.0.113.0/24 1000']);
  });

  it('deletes every route it installed', async () => {
    const result = await pipe.submit(cases.map((c) => ({ cmd: 'delete' as const, route: c.route })));
    expect(result.failed.map((f) => f.error.message)).toEqual([]);
    expect(cases.map((c) => oracle(c.route))).toEqual(cases.map(() => undefined));
  });
});

kernelDescribe('anyRoute: whether a filtered dump lists anything, read to its first route', () => {
  let ns: Netns;
  let pipe: RoutePipeline;

  beforeAll(() => {
    ns = createNetns('nlprobe');
    pipe = RoutePipeline.open({ netns: ns.name });
  });

  afterAll(async () => {
    await pipe.close();
    ns.destroy();
  });

  const probe = (family: 4 | 6, table: number, protocol: number): Promise<boolean> => anyRoute({ family, table, protocol }, { netns: ns.name });

  it('says no for a table that never held a route (ENOENT) and for an empty main table', async () => {
    expect(await probe(4, 1001, PROTO)).toBe(false);
    expect(await probe(4, C.RT_TABLE_MAIN, PROTO)).toBe(false);
    expect(await probe(6, C.RT_TABLE_MAIN, PROTO)).toBe(false);
  });

  it('says yes for a table holding thousands of routes of the protocol, and no for another protocol, table or family', async () => {
    const ops = Array.from({ length: 5000 }, (_, i) => ({ cmd: 'add' as const, route: route(`10.${1 + (i >> 8)}.${i & 255}.0/24`, { table: 1001, type: C.RTN_BLACKHOLE }) }));
    ops.push({ cmd: 'add' as const, route: route('203.0.113.0/24', { table: 1002, protocol: PROTO + 1, type: C.RTN_BLACKHOLE }) });
    expect((await pipe.submit(ops)).failed).toEqual([]);
    expect(await probe(4, 1001, PROTO)).toBe(true);
    expect(await probe(4, 1001, PROTO + 1)).toBe(false);
    expect(await probe(4, 1002, PROTO)).toBe(false);
    expect(await probe(4, 1002, PROTO + 1)).toBe(true);
    expect(await probe(6, 1001, PROTO)).toBe(false);
  });
});

/** The fields a dump must give back unchanged (the kernel adds others: oif for gateways, default metrics, cache info). */
function sentFields(r: RouteMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { type: r.type, protocol: r.protocol, table: r.table, scope: r.scope };
  for (const k of ['gateway', 'via', 'prefsrc', 'flow', 'pref', 'multipath'] as const) if (r[k] !== undefined) out[k] = r[k];
  if (r.oif !== undefined) out.oif = r.oif;
  if (r.priority !== undefined) out.priority = r.priority;
  if (r.metrics) out.metrics = expect.objectContaining(r.metrics);
  if (r.flags & C.RTNH_F_ONLINK) out.flags = expect.any(Number);
  return out;
}

