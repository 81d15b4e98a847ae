/**
 * Export filters: parsing from plain values (with errors that say where and
 * what), rule order, matching, and kernel attributes set along the way.
 */
import { type Prefix, parsePrefix } from '../../../src/lib/addr';
import { parseRouteLine } from '../../../src/config/route-syntax';
import { parseAddr } from '../../../src/lib/addr';
import { BgpAttrs, BgpNeighbor, BgpPath, parseCommunity, Route, RouteSource, type BgpPathSpec } from '../../../src/route';
import { FilterError, parseExportFilter, parseImportFilter, runExportFilter, runImportFilter } from '../../../src/proto/filter';

const staticSrc = new RouteSource('static1', 200);
const bgpSrc = new RouteSource('bgp1', 100);

/** A route and its net: runExportFilter's last two arguments. */
function route(line: string, src = staticSrc): [Route, Prefix] {
  const { net, attrs } = parseRouteLine(line);
  return [new Route(src, attrs), net];
}

/** A route with BGP attributes from neighbour 192.0.2.9 (AS 65009). */
function bgpRoute(line: string, path: BgpPathSpec): [Route, Prefix] {
  const { net, attrs } = parseRouteLine(line);
  const bgp = BgpAttrs.of(BgpPath.of(path), BgpNeighbor.of({ address: parseAddr('192.0.2.9'), as: 65009, localAs: 65000 }));
  return [new Route(bgpSrc, attrs.with({ bgp })), net];
}

describe('BGP conditions', () => {
  const on = (match: object, r: [Route, Prefix]): boolean => runExportFilter(parseExportFilter({ rules: [{ match, action: 'accept' }], default: 'reject' }), ...r).accept;
  const r = bgpRoute('10.0.0.0/24 via 192.0.2.9', { asPath: [{ type: 'sequence', asns: [65009, 3356] }, { type: 'set', asns: [64512, 64513] }], communities: [parseCommunity('65009:100')!, parseCommunity('3356:2')!], largeCommunities: [[65009, 7, 1]] });

  it('matches communities, with * for a part', () => {
    expect(on({ community: '65009:100' }, r)).toBe(true);
    expect(on({ community: ['1:1', '3356:*'] }, r)).toBe(true);
    expect(on({ community: '*:666' }, r)).toBe(false);
    expect(on({ large_community: '65009:7:*' }, r)).toBe(true);
    expect(on({ large_community: '65009:8:1' }, r)).toBe(false);
  });

  it('matches the AS path by regular expression (_ for a boundary) and by length', () => {
    expect(on({ as_path: '^65009_' }, r)).toBe(true);
    expect(on({ as_path: '_3356_' }, r)).toBe(true);
    expect(on({ as_path: '_335_' }, r)).toBe(false);
    expect(on({ as_path: '_64513}$' }, r)).toBe(true);
    expect(on({ as_path_length: 3 }, r)).toBe(true);
    expect(on({ as_path_length: { max: 2 } }, r)).toBe(false);
  });

  it('matches the neighbour by address and AS; a route without BGP attributes matches no BGP condition', () => {
    expect(on({ neighbor: '192.0.2.0/24+' }, r)).toBe(true);
    expect(on({ neighbor: '198.51.100.0/24+' }, r)).toBe(false);
    expect(on({ neighbor_as: [65009] }, r)).toBe(true);
    expect(on({ community: '*:*' }, route('10.0.0.0/24 via 192.0.2.9'))).toBe(false);
  });

  it('says what is wrong with a BGP condition, and where', () => {
    expect(() => parseExportFilter([{ match: { community: '65536:1' }, action: 'accept' }], 'export')).toThrow('export[0].match.community: expected a community like 65001:100 (a part may be *), got "65536:1"');
    expect(() => parseExportFilter([{ match: { as_path: '(' }, action: 'accept' }], 'export')).toThrow(/export\[0\].match.as_path: not a regular expression/);
    expect(() => parseImportFilter([{ match: { net: '10.0.0.0/8' }, set: { metric: 5 } }], 'import')).toThrow('import[0].set: an import rule sets nothing: it accepts or rejects');
  });

  it('decides imports before a route exists: first matching rule, else the default', () => {
    const f = parseImportFilter({ rules: [{ match: { community: '65009:100' }, action: 'reject' }], default: 'accept' });
    const [route1, net] = r;
    expect(runImportFilter(f, route1.src, route1.attrs, net)).toBe(false);
    expect(runImportFilter(f, bgpSrc, route1.attrs.with({ bgp: undefined }), net)).toBe(true);
  });
});

describe('export filter', () => {
  it('accepts everything by default and with "accept"', () => {
    expect(runExportFilter(parseExportFilter(undefined), ...route('10.0.0.0/8 via 192.0.2.2'))).toEqual({ accept: true, set: undefined });
    expect(runExportFilter(parseExportFilter('reject'), ...route('10.0.0.0/8 via 192.0.2.2')).accept).toBe(false);
  });

  it('matches prefix ranges with length bounds', () => {
    const f = parseExportFilter({ rules: [{ match: { net: ['10.0.0.0/8{16,24}'] }, action: 'accept' }], default: 'reject' });
    expect(runExportFilter(f, ...route('10.1.0.0/16 via 192.0.2.2')).accept).toBe(true);
    expect(runExportFilter(f, ...route('10.1.2.0/24 via 192.0.2.2')).accept).toBe(true);
    expect(runExportFilter(f, ...route('10.0.0.0/8 via 192.0.2.2')).accept).toBe(false);
    expect(runExportFilter(f, ...route('10.1.2.128/25 via 192.0.2.2')).accept).toBe(false);
    expect(runExportFilter(f, ...route('11.1.0.0/16 via 192.0.2.2')).accept).toBe(false);
  });

  it('matches source, type, family, metric, gateway and device', () => {
    const on = (match: object, r: [Route, Prefix]): boolean => runExportFilter(parseExportFilter({ rules: [{ match, action: 'accept' }], default: 'reject' }), ...r).accept;
    const r = route('10.0.0.0/24 via 192.0.2.2 dev veth0 metric 50');
    expect(on({ source: 'static1' }, r)).toBe(true);
    expect(on({ source: ['bgp1'] }, r)).toBe(false);
    expect(on({ type: 'unicast' }, r)).toBe(true);
    expect(on({ type: ['blackhole', 'prohibit'] }, r)).toBe(false);
    expect(on({ family: 4 }, r)).toBe(true);
    expect(on({ family: 'ipv6' }, r)).toBe(false);
    expect(on({ metric: 50 }, r)).toBe(true);
    expect(on({ metric: { min: 60 } }, r)).toBe(false);
    expect(on({ gateway: '192.0.2.0/24+' }, r)).toBe(true);
    expect(on({ gateway: '198.51.100.0/24+' }, r)).toBe(false);
    expect(on({ dev: 'veth0' }, r)).toBe(true);
    expect(on({ dev: 'veth1', source: 'static1' }, r)).toBe(false);
  });

  it('runs rules in order: the first accept or reject wins, sets accumulate, later sets win', () => {
    const f = parseExportFilter([
      { match: { source: 'bgp1' }, set: { metric: 10, mtu: 1500 } },
      { match: { net: '10.0.0.0/8+' }, set: { mtu: 1400, lock: ['mtu'] }, action: 'accept' },
      'reject',
    ]);
    expect(runExportFilter(f, ...route('10.1.0.0/16 via 192.0.2.2', bgpSrc))).toEqual({
      accept: true,
      set: { metric: 10, metrics: { mtu: 1400 }, locked: ['mtu'] },
    });
    expect(runExportFilter(f, ...route('192.168.0.0/16 via 192.0.2.2', bgpSrc)).accept).toBe(false);
  });

  it('parses every settable kernel attribute', () => {
    const f = parseExportFilter([{ set: { metric: 1, prefsrc: '192.0.2.1', realm: 3, scope: 'link', pref: 'high', advmss: 1360, initcwnd: 10, congctl: 'bbr' }, action: 'accept' }]);
    const set = f.rules[0]!.set!;
    expect(set.prefsrc!.toString()).toBe('192.0.2.1');
    expect(set).toMatchObject({ metric: 1, realm: 3, scope: 253, pref: 'high', metrics: { advmss: 1360, initcwnd: 10 }, congctl: 'bbr' });
  });

  it.each([
    [{ rules: [{ match: { net: ['10.0.0.0/8{4,9}'] }, action: 'accept' }] }, /filter\.rules\[0\]\.match\.net\[0\]: .*lengths/],
    [{ rules: [{ match: { net: '10.0.0.1/8' } }] }, /rules\[0\]\.match\.net: .*host bits/],
    [[{ match: { colour: 'red' }, action: 'accept' }], /filter\[0\]\.match\.colour: unknown key/],
    [[{ action: 'maybe' }], /filter\[0\]\.action: expected accept, reject or continue/],
    [[{ set: { mtu: -1 } }], /filter\[0\]\.set\.mtu: expected an integer/],
    [[{ set: { prefsrc: '192.0.2.300' } }], /filter\[0\]\.set\.prefsrc: .*not an IPv4 or IPv6 address/],
    [[{ set: { lock: ['speed'] } }], /filter\[0\]\.set\.lock\[0\]: "speed" is not a route metric/],
    [[{ match: { type: 'multicast' }, action: 'accept' }], /match\.type: unknown route type "multicast"/],
    [[{ match: { metric: { min: 5, max: 1 } }, action: 'accept' }], /match\.metric: min 5 is above max 1/],
    [[{ match: { source: [] }, action: 'accept' }], /match\.source: an empty list/],
    [[{ match: {}, set: { metric: 1 }, action: 'reject' }], /set: a rejecting rule has nothing to set/],
    [{ rules: 'all' }, /filter\.rules: expected a list of rules/],
    [{ default: 'maybe' }, /filter\.default: expected accept or reject/],
    [42, /expected "accept", "reject"/],
  ])('refuses %j with an error that names the path', (input, message) => {
    expect(() => parseExportFilter(input)).toThrow(FilterError);
    expect(() => parseExportFilter(input)).toThrow(message);
  });

  it('matches IPv6 prefixes', () => {
    const f = parseExportFilter({ rules: [{ match: { net: '2001:db8::/32{48,64}' }, action: 'accept' }], default: 'reject' });
    expect(runExportFilter(f, ...route('2001:db8:1::/48 via 2001:db8:1::2')).accept).toBe(true);
    expect(runExportFilter(f, ...route('2001:db8::/32 via 2001:db8:1::2')).accept).toBe(false);
    expect(parsePrefix('2001:db8:1::/48').family).toBe(6);
  });
});
