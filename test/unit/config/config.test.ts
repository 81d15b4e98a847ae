import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig, readConfigFile, type KernelProtocolConfig, type StaticProtocolConfig, type StreamProtocolConfig } from '../../../src/config/config';
import { DEFAULT_NEXTHOP_DAMPING } from '../../../src/config/nexthop-config';
import { DEFAULT_DAMPING } from '../../../src/table/nexthop-damping';

function issuesOf(text: string): string[] {
  try {
    parseConfig('/etc/krtsync/krtsync.yaml', text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.line}:${i.column}: ${i.message}`);
    throw e;
  }
  throw new Error('expected the config to be rejected');
}

const EXAMPLE = `
control: { socket: /run/krtsync/krtsync.sock, group: krtsync }
protocols:
  - name: static1
    type: static
    routes:
      - 10.10.0.0/16 via 192.0.2.2
      - 10.20.0.0/16 dev eth1
      - blackhole 10.30.0.0/16
      - 10.40.0.0/16 nexthop via 192.0.2.2 weight 1 nexthop via 192.0.2.3 weight 2
    routes_file: routes.txt
  - name: kernel1
    type: kernel
    protocol: 201
    kernel_table: main
    persist: false
    scan_interval: 60s
`;

describe('config', () => {
  it('reads the control socket send timeout, with a floor', () => {
    expect(parseConfig('/x/k.yaml', 'control: { send_timeout: 5s }\nprotocols: []\n').control.sendTimeoutMs).toBe(5000);
    expect(() => parseConfig('/x/k.yaml', 'control: { send_timeout: 10ms }\nprotocols: []\n')).toThrow(/control\.send_timeout/);
  });

  it('reads the example operators write', () => {
    const c = parseConfig('/etc/krtsync/krtsync.yaml', EXAMPLE);
    expect(c.control).toEqual({ socket: '/run/krtsync/krtsync.sock', group: 'krtsync', mode: 0o660, sendTimeoutMs: 30000 });
    expect(c.tables).toEqual([
      { name: 'master4', family: 4 },
      { name: 'master6', family: 6 },
    ]);
    const s = c.protocols[0] as StaticProtocolConfig;
    expect(s.routes.map((r) => `${r.net} ${r.attrs}`)).toEqual([
      '10.10.0.0/16 via 192.0.2.2',
      '10.20.0.0/16 dev eth1',
      '10.30.0.0/16 blackhole',
      '10.40.0.0/16 via 192.0.2.2, via 192.0.2.3 weight 2',
    ]);
    expect(s.routes[1]).toMatchObject({ line: 8, column: 9 });
    expect(s.routesFile).toBe('/etc/krtsync/routes.txt');
    expect(s.tables).toEqual(['master4', 'master6']);
    const k = c.protocols[1] as KernelProtocolConfig;
    expect(k).toMatchObject({ protocol: 201, kernelTable: 'main', persist: false, scanIntervalMs: 60000, tables: ['master4', 'master6'] });
  });

  it('defaults: info logging, the standard socket, the kernel protocol\'s own protocol number', () => {
    const c = parseConfig('x.yaml', 'protocols:\n  - { name: k, type: kernel, family: ipv6, kernel_table: 1000, graceful_restart: 30s }\n');
    expect(c.logLevel).toBe('info');
    expect(c.control.socket).toBe('/run/krtsync/krtsync.sock');
    expect(c.protocols[0]).toMatchObject({ protocol: undefined, kernelTable: 1000, tables: ['master6'], gracefulRestartMs: 30000, scanIntervalMs: 60000 });
  });

  it('attaches static protocols to the tables of their routes families', () => {
    const c = parseConfig('x.yaml', 'protocols:\n  - { name: s, type: static, routes: ["2001:db8:1::/48 via 2001:db8::1"] }\n');
    expect(c.protocols[0]!.tables).toEqual(['master6']);
  });

  it.each([
    ['protocols: [ {name: a, type: static', /^1:1: Flow map/],
    ['', /1:1: the file is empty/],
    ['- a\n- b\n', /1:1: config: expected a mapping/],
    ['frobs: 1\nprotocols: []\n', /^1:1: config: unknown key "frobs" \(expected one of: log, control, metrics, nexthop_tracking, journal_limit, tables, protocols\)/],
    ['nexthop_tracking: yes please\nprotocols: []\n', /^1:19: nexthop_tracking: expected true, false or a mapping with "damping"/],
    ['nexthop_tracking: { damping: { half_life: 5x } }\nprotocols: []\n', /nexthop_tracking.damping.half_life: expected a duration/],
    ['nexthop_tracking: { damping: { suppress: 900 } }\nprotocols: []\n', /nexthop_tracking.damping.reuse: must be below suppress \(900\), got 1000/],
    ['nexthop_tracking: { hold: 1s }\nprotocols: []\n', /nexthop_tracking: unknown key "hold"/],
    ['nexthop_tracking: { damping: { max_hold: 10s } }\nprotocols: []\n', /^1:42: nexthop_tracking.damping.max_hold: 10000 ms is too short to ever hold a next hop down \(.* at least 19829 ms\)/],
    ['protocols:\n  - { name: k, type: kernel, failover: fast }\n', /^2:40: protocol k: failover: expected one of off, objects, backup_routes/],
    ['protocols:\n  - { name: k, type: kernel, nexthop_objects: off, failover: objects }\n', /^2:62: protocol k: failover: objects needs nexthop_objects \(they are off here\)/],
    ['protocols:\n  - { name: k, type: kernel, backup_metric: 5 }\n', /^2:45: protocol k: backup_metric is for failover: backup_routes only/],
    ['protocols:\n  - { name: k, type: kernel, failover: backup_routes, backup_metric: 100, metric: 100 }\n', /protocol k: metric 100 must be below the backup routes' metric \(backup_metric, 100\)/],
    ['protocols:\n  - { name: k, type: kernel, merge_paths: 4, failover: objects }\n', /^2:56: protocol k: failover: objects cannot be combined with merge_paths yet/],
    ['metrics: { listen: localhost:9725 }\nprotocols: []\n', /^1:20: metrics.listen: "localhost" is not an IP address \(names are not resolved/],
    ['metrics: { listen: "::1:9725" }\nprotocols: []\n', /^1:20: metrics.listen: "::1:9725": write an IPv6 address in brackets, like \[::1\]:9725/],
    ['metrics: { listen: "127.0.0.1" }\nprotocols: []\n', /^1:20: metrics.listen: "127.0.0.1": expected an address and a port/],
    ['metrics: { listen: "127.0.0.1:0" }\nprotocols: []\n', /^1:20: metrics.listen: port 0: must be 1..65535/],
    ['metrics: { listen: "[192.0.2.1]:80" }\nprotocols: []\n', /brackets are for IPv6 addresses/],
    ['metrics: { port: 9725 }\nprotocols: []\n', /^1:12: metrics: unknown key "port" \(expected one of: listen\)/],
    ['metrics: {}\nprotocols: []\n', /^1:10: metrics: "listen" is missing/],
    ['log: { level: loud }\nprotocols: []\n', /^1:15: log.level: expected one of error, warn, info, debug/],
    ['control: { socket: relative.sock }\nprotocols: []\n', /control.socket: must be an absolute path/],
    ['protocols:\n  - { type: static }\n', /^2:5: protocol: "name" is missing/],
    ['protocols:\n  - { name: s, type: statik }\n', /^2:22: protocol s: type: expected one of static, kernel/],
    ['protocols:\n  - { name: s, type: static, routes: ["10.0.0.1/8 via 192.0.2.2"] }\n', /^2:40: protocol s: 10.0.0.1\/8: host bits set, did you mean 10.0.0.0\/8\?/],
    ['protocols:\n  - name: s\n    type: static\n    routes:\n      - 10.0.0.0/8 via 192.0.2.2 wibble\n', /^5:34: protocol s: unknown word "wibble"/],
    ['protocols:\n  - { name: k, type: kernel, routes: [] }\n', /^2:30: protocol k: "routes" is not a setting of a kernel protocol/],
    ['protocols:\n  - { name: k, type: kernel, protocol: 300 }\n', /protocol k: protocol: expected an integer 1..255/],
    ['protocols:\n  - { name: k, type: kernel, scan_interval: 5x }\n', /scan_interval: expected a duration/],
    ['protocols:\n  - { name: k, type: kernel, scan_interval: 10ms }\n', /scan_interval: must be between 1000 ms/],
    ['protocols:\n  - { name: k, type: kernel, persist: yes please }\n', /persist: expected true or false/],
    ['protocols:\n  - { name: k, type: kernel, tables: [nope] }\n', /no table named "nope" \(defined: master4, master6\)/],
    ['protocols:\n  - { name: k, type: kernel }\n  - { name: k, type: static }\n', /^3:5: protocol k: the name is already used/],
    ['tables: [ { name: t4 } ]\nprotocols: []\n', /table t4: "family" \(ipv4 or ipv6\) is missing/],
    ['protocols:\n  - { name: k, type: kernel, kernel_table: [1] }\n', /kernel_table: expected a table id/],
    ['protocols: {}\n', /protocols: expected a list/],
  ])('rejects %j with a position', (text, msg) => {
    const issues = issuesOf(text);
    expect(issues.join('\n')).toMatch(msg);
  });

  it('reads the metrics listener: off without it, an IPv4 or a bracketed IPv6 address with a port', () => {
    expect(parseConfig('x.yaml', 'protocols: []\n').metrics).toBeUndefined();
    expect(parseConfig('x.yaml', 'metrics: { listen: 127.0.0.1:9725 }\nprotocols: []\n').metrics).toEqual({ listen: { host: '127.0.0.1', port: 9725, family: 4, text: '127.0.0.1:9725' } });
    expect(parseConfig('x.yaml', 'metrics:\n  listen: "[::]:9100"\nprotocols: []\n').metrics?.listen).toMatchObject({ host: '::', port: 9100, family: 6 });
  });

  it('reads failover: off by default, objects when asked', () => {
    const failover = (m: string) => (parseConfig('x.yaml', `protocols:\n  - { name: k, type: kernel${m} }\n`).protocols[0] as KernelProtocolConfig).failover;
    expect(failover('')).toBe('off');
    expect(failover(', failover: objects')).toBe('objects');
    expect(failover(', nexthop_objects: on, failover: objects')).toBe('objects');
    expect(failover(', failover: backup_routes')).toBe('backup_routes');
    expect(parseConfig('x.yaml', 'nexthop_tracking: true\nprotocols:\n  - { name: k, type: kernel, failover: objects }\n').protocols[0]).toMatchObject({ failover: 'objects' });
    const k = parseConfig('x.yaml', 'protocols:\n  - { name: k, type: kernel, failover: backup_routes, backup_metric: 9000, metric: 20 }\n').protocols[0] as KernelProtocolConfig;
    expect([k.backupMetric, k.metric]).toEqual([9000, 20]);
  });

  it('takes nexthop_objects as given, with next-hop tracking on or off (they work together)', () => {
    const mode = (t: string, m: string) => (parseConfig('x.yaml', `${t}protocols:\n  - { name: k, type: kernel${m} }\n`).protocols[0] as KernelProtocolConfig).nexthopObjects;
    expect(mode('', '')).toBe('auto');
    expect(mode('', ', nexthop_objects: on')).toBe('on');
    expect(mode('nexthop_tracking: true\n', '')).toBe('auto');
    expect(mode('nexthop_tracking: true\n', ', nexthop_objects: on')).toBe('on');
    expect(mode('nexthop_tracking: true\n', ', nexthop_objects: off')).toBe('off');
  });

  it('reads nexthop_tracking: on with default damping without it or with true, damping set or off; false turns it off', () => {
    const nht = (t: string) => parseConfig('x.yaml', `${t}protocols: []\n`).nexthopTracking;
    expect(nht('')).toEqual({ damping: { penalty: 1000, suppress: 2500, reuse: 1000, halfLifeMs: 15000, maxHoldMs: 60000 }, neighbours: false });
    expect(nht('nexthop_tracking: false\n')).toBeUndefined();
    // The config layer cannot import the table's defaults: they are written twice and must agree.
    expect(DEFAULT_NEXTHOP_DAMPING).toEqual(DEFAULT_DAMPING);
    expect(nht('nexthop_tracking: true\n')).toEqual({ damping: { penalty: 1000, suppress: 2500, reuse: 1000, halfLifeMs: 15000, maxHoldMs: 60000 }, neighbours: false });
    expect(nht('nexthop_tracking: { damping: false, neighbours: true }\n')).toEqual({ damping: undefined, neighbours: true });
    expect(nht('nexthop_tracking:\n  damping: { half_life: 2s, max_hold: 10s, suppress: 3000 }\n')).toEqual({
      damping: { penalty: 1000, suppress: 3000, reuse: 1000, halfLifeMs: 2000, maxHoldMs: 10000 },
      neighbours: false,
    });
  });

  it('reads the control socket mode as chmod does: 0660 as documented, 0o660, 660; anything else says what it wants', () => {
    const mode = (m: string): number => parseConfig('/k.yaml', `control: { mode: ${m} }\nprotocols: []\n`).control.mode;
    expect([mode('0660'), mode('0o660'), mode('660'), mode('"0600"'), mode('0')]).toEqual([0o660, 0o660, 0o660, 0o600, 0]);
    expect(issuesOf('control: { mode: 0668 }\nprotocols: []\n')).toEqual(['1:18: control.mode: expected an octal file mode like 0660']);
    expect(issuesOf('control: { mode: 01777 }\nprotocols: []\n')).toEqual(['1:18: control.mode: expected an octal file mode like 0660']);
  });

  it('reads a stream protocol\'s BGP settings, with defaults', () => {
    const c = parseConfig(
      '/x.yaml',
      `protocols:
  - name: bgp
    type: stream
    startup_wait: 20s
    always_compare_med: true
    neighbors:
      - { address: 192.0.2.10, preference: 110, max_routes: 1000 }
      - { address: "2001:db8::/32" }
    limits: { routes: 500000, routes_per_neighbor: 200000, action: disconnect, log: info }
    import: [ { match: { community: "65000:666" }, action: reject } ]
  - { name: plain, type: stream }
`,
    );
    const [bgp, plain] = c.protocols as StreamProtocolConfig[];
    expect(bgp).toMatchObject({ startupWaitMs: 20000, alwaysCompareMed: true, graceMs: 30000, preference: 100 });
    expect(bgp!.neighbors.map((n) => [n.match.toString(), n.preference, n.maxRoutes])).toEqual([['192.0.2.10/32', 110, 1000], ['2001:db8::/32', undefined, undefined]]);
    expect(bgp!.limits).toEqual({ routes: 500000, routesPerClient: undefined, routesPerNeighbor: 200000, neighborsPerClient: 256, action: 'disconnect', log: 'info' });
    expect(bgp!.importFilter).toMatchObject({ value: [{ match: { community: '65000:666' }, action: 'reject' }], line: 10, column: 13 });
    expect(plain).toMatchObject({ startupWaitMs: 10000, alwaysCompareMed: false, neighbors: [], importFilter: undefined, limits: { routes: 10000000, neighborsPerClient: 256, action: 'refuse' } });
  });

  it('names a bad stream setting at its line and column', () => {
    expect(
      issuesOf(`protocols:
  - name: bgp
    type: stream
    neighbors: [ { address: 192.0.2.300 }, { preference: 5 } ]
    limits: { action: drop, neighbors_per_client: 0 }
    startup_wait: forever
`),
    ).toEqual([
      '4:29: protocol bgp: neighbor address: "192.0.2.300": not an IPv4 or IPv6 address',
      '4:44: protocol bgp: neighbor: "address" is missing',
      '5:51: protocol bgp: limits.neighbors_per_client: expected an integer 1..65535',
      '5:23: protocol bgp: limits.action: expected one of refuse, disconnect',
      '6:19: protocol bgp: startup_wait: expected a duration like 500ms, 10s, 5m or 1h',
    ]);
  });

  it('reads a stream protocol\'s damping: on with the defaults, set, or off; a bad value names the key and its line', () => {
    const stream = (extra: string): StreamProtocolConfig => parseConfig('/x/k.yaml', `protocols:\n  - name: bgp\n    type: stream\n${extra}`).protocols[0] as StreamProtocolConfig;
    expect(stream('').damping).toEqual({ ...DEFAULT_DAMPING });
    expect(stream('    damping: false\n').damping).toBeUndefined();
    expect(stream('    damping: { half_life: 5s, max_hold: 20s, suppress: 3000 }\n').damping).toEqual({ penalty: 1000, suppress: 3000, reuse: 1000, halfLifeMs: 5000, maxHoldMs: 20000 });
    expect(
      issuesOf(`protocols:
  - name: bgp
    type: stream
    damping: { half_life: soon, reuse: 3000, penalty: -1, hold: 5s }
  - name: bgp2
    type: stream
    damping: { max_hold: 5s }
  - { name: bgp3, type: stream, damping: maybe }
`),
    ).toEqual([
      '4:59: protocol bgp: damping: unknown key "hold" (expected one of: penalty, suppress, reuse, half_life, max_hold)',
      '4:55: protocol bgp: damping.penalty: expected an integer 0..1000000',
      '4:27: protocol bgp: damping.half_life: expected a duration like 500ms, 10s, 5m or 1h',
      '4:40: protocol bgp: damping.reuse: must be below suppress (2500), got 3000',
      '7:26: protocol bgp2: damping.max_hold: 5000 ms is too short to ever suppress a source (with this half_life, suppress and reuse it needs at least 19829 ms)',
      '8:42: protocol bgp3: damping: expected true, false or a mapping',
    ]);
  });

  it('shows a duplicate name even when the protocol has another mistake (a wrong type)', () => {
    expect(issuesOf('protocols:\n  - { name: k, type: kernel }\n  - { name: k, type: kernal }\n')).toEqual([
      '3:5: protocol k: the name is already used by a table or another protocol',
      '3:22: protocol k: type: expected one of static, kernel, api, stream',
    ]);
  });

  it('reads journal_limit: auto by default, a number for every table or per table', () => {
    const limits = (text: string): Array<number | undefined> => parseConfig('/k.yaml', text).tables.map((t) => t.journalLimit);
    expect(limits('protocols: []\n')).toEqual([undefined, undefined]);
    expect(limits('journal_limit: 50000\nprotocols: []\n')).toEqual([50000, 50000]);
    expect(limits('journal_limit: 50000\ntables: [ { name: a, family: ipv4, journal_limit: auto }, { name: b, family: ipv6 } ]\nprotocols: []\n')).toEqual([undefined, 50000]);
    expect(issuesOf('journal_limit: 10\nprotocols: []\n')).toEqual(['1:16: journal_limit: expected an integer 1000..1000000000']);
    expect(issuesOf('tables: [ { name: a, family: ipv4, journal_limit: lots } ]\nprotocols: []\n')).toEqual(['1:51: table a: journal_limit: expected auto or an integer 1000..1000000000']);
  });

  it('reports every problem at once', () => {
    const issues = issuesOf('protocols:\n  - { name: a, type: kernel, protocol: 0 }\n  - { name: b, type: static, routes: [bad] }\n');
    expect(issues).toHaveLength(2);
  });

  it('names the file when it cannot be read, and reads a real file', () => {
    expect(readConfigFile('/nonexistent/krtsync.yaml')).toEqual({
      config: undefined,
      issues: [{ file: '/nonexistent/krtsync.yaml', line: 1, column: 1, message: expect.stringMatching(/^cannot read: ENOENT/) }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'krt-config-'));
    writeFileSync(join(dir, 'k.yaml'), EXAMPLE);
    expect(readConfigFile(join(dir, 'k.yaml'))).toMatchObject({ config: { protocols: [{ name: 'static1' }, { name: 'kernel1' }] }, issues: [] });
  });
});
