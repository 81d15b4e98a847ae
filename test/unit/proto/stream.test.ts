/**
 * The stream protocol with BGP neighbours: attributes and the decision
 * process, operator control (preference per neighbour, import filter),
 * import limits, bounded state for clients and neighbours that come and go,
 * and the startup hold. Tables are real; the clients are the protocol's own
 * session interface, as the control socket drives it.
 */
import { parseConfig, type StreamProtocolConfig } from '../../../src/config/config';
import { parsePrefix, type Family } from '../../../src/lib/addr';
import { nullLogger, type Logger } from '../../../src/proto/logger';
import { streamOptionIssues } from '../../../src/proto/stream/options';
import { StreamProtocol, type StreamSession } from '../../../src/proto/stream/stream';
import { TableSet } from '../../../src/proto/table-set';
import { Table } from '../../../src/table';
import type { ExportItem } from '../../../src/table/items';
import { NetStore } from '../../../src/table/net-store';
import { Puller } from '../table/puller';

function tables(): { set: TableSet; t4: Table; t6: Table } {
  const t4 = new Table({ name: 'master4' });
  const t6 = new Table({ name: 'master6' });
  return { set: new TableSet('p', new Map<Family, Table>([[4, t4], [6, t6]])), t4, t6 };
}

/** A stream protocol's config: `extra` YAML lines, with a short grace and no startup wait unless they say otherwise. */
function config(extra = ''): StreamProtocolConfig {
  const defaults = ['grace: 200ms', 'startup_wait: 0s'].filter((d) => !extra.includes(d.split(':')[0]!));
  return parseConfig('/x/k.yaml', `protocols:\n  - name: bgp\n    type: stream\n${[...defaults, extra].join('\n').replace(/^/gm, '    ')}\n`).protocols[0] as StreamProtocolConfig;
}

async function started(extra = '', log: Logger = nullLogger): Promise<{ p: StreamProtocol; t4: Table; t6: Table }> {
  const { set, t4, t6 } = tables();
  const p = new StreamProtocol(config(extra), set, log);
  await p.start();
  return { p, t4, t6 };
}

/** A client whose feedback lines are collected, and whose lines are numbered. */
function client(p: StreamProtocol, name: string | undefined, format: 'exabgp' | 'krtsync' = 'exabgp'): { s: StreamSession; replies: Array<{ line: number; error: { code: string; message: string } }>; send(...lines: string[]): void; hungUp: () => boolean } {
  const replies: Array<{ line: number; error: { code: string; message: string } }> = [];
  let hung = false;
  const s = p.connect(name, format, (m) => replies.push(m as never), () => (hung = true));
  let n = 0;
  return { s, replies, send: (...lines) => lines.forEach((l) => s.onLine(l, ++n)), hungUp: () => hung };
}

/** ExaBGP JSON lines, as ExaBGP 4.2 writes them. */
const exa = {
  header: (peer: string, peerAs: number, type: string): string => `{ "exabgp": "4.0.1", "time": 1, "host" : "vm", "pid" : 1, "ppid" : 1, "counter": 1, "type": "${type}", "neighbor": { "address": { "local": "192.0.2.1", "peer": "${peer}" }, "asn": { "local": 65000, "peer": ${peerAs} } `,
  up: (peer: string, peerAs: number): string => `${exa.header(peer, peerAs, 'state')}, "state": "up" } }`,
  down: (peer: string, peerAs: number): string => `${exa.header(peer, peerAs, 'state')}, "state": "down", "reason": "x" } }`,
  open: (peer: string, peerAs: number, rid: string, families = ['ipv4/unicast']): string =>
    `${exa.header(peer, peerAs, 'open')}, "direction": "receive", "open": { "version": 4, "asn": ${peerAs}, "hold_time": 90, "router_id": "${rid}", "capabilities": { "1": { "name": "multiprotocol", "families": [ ${families.map((f) => `"${f}"`).join(', ')} ] }, "65": { "name": "asn4", "asn4": ${peerAs} } } } } }`,
  update: (peer: string, peerAs: number, attrs: string, nets: string[], nh = peer): string =>
    `${exa.header(peer, peerAs, 'update')}, "direction": "receive", "message": { "update": { "attribute": { ${attrs} }, "announce": { "ipv4 unicast": { "${nh}": [ ${nets.map((n) => `{ "nlri": "${n}" }`).join(', ')} ] } } } } } }`,
  withdraw: (peer: string, peerAs: number, nets: string[]): string =>
    `${exa.header(peer, peerAs, 'update')}, "direction": "receive", "message": { "update": { "withdraw": { "ipv4 unicast": [ ${nets.map((n) => `{ "nlri": "${n}" }`).join(', ')} ] } } } } }`,
  eor: (peer: string, peerAs: number, afi = 'ipv4'): string => `${exa.header(peer, peerAs, 'update')}, "direction": "receive", "message": { "eor": { "afi" : "${afi}", "safi" : "unicast" } } } }`,
};

const via = (t: Table, net: string): string | undefined => t.bestRoute(parsePrefix(net))?.attrs.nexthops?.toString();
const nets = (n: number, base = 10): string[] => Array.from({ length: n }, (_, i) => `${base}.${i >> 8}.${i & 255}.0/24`);

describe('stream protocol: BGP neighbours', () => {
  it('picks the shorter AS path, not the neighbour whose address sorts first as a string', async () => {
    const { p, t4 } = await started();
    const c = client(p, 'exabgp');
    c.send(exa.up('10.0.0.10', 65010), exa.up('10.0.0.9', 65009));
    c.send(exa.update('10.0.0.9', 65009, '"origin": "igp", "as-path": [ 65009, 1, 2, 3 ]', ['10.1.0.0/24', '10.2.0.0/24']));
    c.send(exa.update('10.0.0.10', 65010, '"origin": "igp", "as-path": [ 65010 ]', ['10.1.0.0/24']));
    c.send(exa.update('10.0.0.10', 65010, '"origin": "igp", "as-path": [ 65010, 1, 2, 3 ]', ['10.2.0.0/24']));
    expect(via(t4, '10.1.0.0/24')).toBe('via 10.0.0.10');
    // Equal down to the last step: the lower address as a number, 10.0.0.9.
    expect(via(t4, '10.2.0.0/24')).toBe('via 10.0.0.9');
    const best = t4.bestRoute(parsePrefix('10.1.0.0/24'))!;
    expect(best.attrs.bgp!.toJSON()).toMatchObject({ neighbor: '10.0.0.10', neighbor_as: 65010, local_as: 65000, origin: 'igp', as_path: '65010', path_length: 1 });
    expect(c.replies).toEqual([]);
    await p.shutdown();
  });

  it('reads every attribute ExaBGP sends, and the router id from the neighbour\'s OPEN', async () => {
    const { p, t4 } = await started();
    const c = client(p, 'exabgp');
    c.send(exa.open('192.0.2.20', 65020, '10.9.9.9'), exa.open('192.0.2.30', 65030, '10.1.1.1'));
    const attrs = '"origin": "egp", "as-path": [ 65020, 7 ], "as-set": [ 9, 8 ], "confederation-path": [], "local-preference": 150, "med": 20, "community": [ [ 65020, 1 ], [ 65020, 2 ] ], "large-community": [ [ 65020, 0, 1 ] ], "originator-id": "10.0.0.1", "cluster-list": [ "10.0.0.2" ], "atomic-aggregate": false';
    c.send(exa.update('192.0.2.20', 65020, attrs, ['10.5.0.0/24']));
    expect(t4.bestRoute(parsePrefix('10.5.0.0/24'))!.attrs.bgp!.toJSON()).toEqual({
      neighbor: '192.0.2.20',
      neighbor_as: 65020,
      local_as: 65000,
      router_id: '10.9.9.9',
      origin: 'egp',
      as_path: '65020 7 {8 9}',
      path_length: 3,
      local_pref: 150,
      med: 20,
      communities: ['65020:1', '65020:2'],
      large_communities: ['65020:0:1'],
      originator_id: '10.0.0.1',
      cluster_list: ['10.0.0.2'],
    });
    // Equal paths from two ASes: the lower router id (from the OPEN) wins, not the lower address.
    c.send(exa.update('192.0.2.20', 65020, '"origin": "igp", "as-path": [ 65020 ]', ['10.6.0.0/24']));
    c.send(exa.update('192.0.2.30', 65030, '"origin": "igp", "as-path": [ 65030 ]', ['10.6.0.0/24']));
    expect(via(t4, '10.6.0.0/24')).toBe('via 192.0.2.30');
    expect(c.replies).toEqual([]);
    await p.shutdown();
  });

  it('carries BGP attributes in krtsync\'s own format, and a neighbour state', async () => {
    const { p, t4 } = await started();
    const c = client(p, 'ctl', 'krtsync');
    c.send(
      '{"neighbor":{"address":"192.0.2.7","as":65007,"local_as":65000},"bgp":{"as_path":"65007 65100","local_pref":300,"communities":["65007:9"]},"announce":["10.7.0.0/24 via 192.0.2.7"]}',
      '{"neighbor":{"address":"192.0.2.8","as":65008,"local_as":65000},"bgp":{"as_path":[65008],"local_pref":100},"announce":["10.7.0.0/24 via 192.0.2.8"]}',
    );
    expect(via(t4, '10.7.0.0/24')).toBe('via 192.0.2.7');
    expect(t4.bestRoute(parsePrefix('10.7.0.0/24'))!.attrs.bgp!.toJSON()).toMatchObject({ as_path: '65007 65100', local_pref: 300, communities: ['65007:9'] });
    c.send('{"neighbor":{"address":"192.0.2.7"},"state":"down"}');
    expect(via(t4, '10.7.0.0/24')).toBe('via 192.0.2.8');
    c.send('{"bgp":{"med":1},"announce":"10.8.0.0/24 via 192.0.2.1"}', '{"neighbor":{"address":"not an address"},"eor":true}', '{"neighbor":{"address":"192.0.2.9"},"bgp":{"as_path":"65001 x"},"eor":true}');
    expect(c.replies.map((r) => [r.line, r.error.message])).toEqual([
      [4, expect.stringMatching(/"bgp" attributes need a "neighbor"/)],
      [5, expect.stringMatching(/neighbor.address: expected an IPv4 or IPv6 address, got "not an address"/)],
      [6, expect.stringMatching(/bgp.as_path: "x" is not an ASN/)],
    ]);
    await p.shutdown();
  });

  it('gives each configured neighbour its own preference', async () => {
    const { p, t4 } = await started('neighbors:\n  - { address: 192.0.2.20, preference: 150 }\n  - { address: 192.0.2.0/24, preference: 90 }');
    const c = client(p, 'exabgp');
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020, 1, 2, 3, 4 ]', ['10.1.0.0/24']));
    c.send(exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', ['10.1.0.0/24']));
    c.send(exa.update('198.51.100.1', 65040, '"as-path": [ 65040, 1, 2 ]', ['10.1.0.0/24']));
    expect(t4.routes(parsePrefix('10.1.0.0/24')).map((r) => `${r.src.preference} ${r.attrs.bgp!.neighbor.address}`)).toEqual(['150 192.0.2.20', '100 198.51.100.1', '90 192.0.2.30']);
    await p.shutdown();
  });

  it('filters imports by prefix, community and AS path; an update the filter now rejects withdraws the old route', async () => {
    const { p, t4 } = await started(
      'import:\n  - { match: { net: "10.99.0.0/16+" }, action: reject }\n  - { match: { community: "65000:666" }, action: reject }\n  - { match: { as_path: "_64666_" }, action: reject }\n  - accept',
    );
    const c = client(p, 'exabgp');
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', ['10.1.0.0/24', '10.99.1.0/24']));
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ], "community": [ [ 65000, 666 ] ]', ['10.2.0.0/24']));
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020, 64666, 7 ]', ['10.3.0.0/24']));
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020, 646660 ]', ['10.4.0.0/24']));
    expect([...['10.1.0.0/24', '10.99.1.0/24', '10.2.0.0/24', '10.3.0.0/24', '10.4.0.0/24']].map((n) => via(t4, n) !== undefined)).toEqual([true, false, false, false, true]);
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ], "community": [ [ 65000, 666 ] ]', ['10.1.0.0/24']));
    expect(via(t4, '10.1.0.0/24')).toBeUndefined();
    expect(p.stats()[0]).toMatchObject({ filtered: 4, routes: 1 });
    expect(p.summary().limits.filtered).toBe(4);
    await p.shutdown();
  });

  it('puts a bad import filter at its file, line and column', () => {
    const file = '/etc/krtsync/k.yaml';
    const text = `protocols:\n  - name: bgp\n    type: stream\n    import:\n      - match: { net: 10.0.0.0/8+ }\n        action: reject\n      - match: { community: [ "65000:1", "65000:x" ] }\n        action: reject\n`;
    const issues = (t: string): string[] => streamOptionIssues(parseConfig(file, t)).map((i) => `${i.file}:${i.line}:${i.column}: ${i.message}`);
    expect(issues(text)).toEqual([`${file}:7:42: protocol bgp: import[1].match.community[1]: expected a community like 65001:100 (a part may be *), got "65000:x"`]);
    const bad = text.replace('action: reject\n      - match', 'action: reject\n        set: { mtu: 1400 }\n      - match');
    expect(issues(bad)).toEqual([
      `${file}:7:14: protocol bgp: import[0].set: an import rule sets nothing: it accepts or rejects`,
      `${file}:8:42: protocol bgp: import[1].match.community[1]: expected a community like 65001:100 (a part may be *), got "65000:x"`,
    ]);
  });
});

describe('stream protocol: import limits', () => {
  it('refuses routes past a neighbour\'s limit, says how many, and still takes replaces and withdraws', async () => {
    const { p, t4 } = await started('limits: { routes_per_neighbor: 1000 }');
    const c = client(p, 'exabgp');
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(1500)));
    expect(t4.routeTotal).toBe(1000);
    expect(c.replies).toEqual([{ ok: false, line: 1, error: { code: 'KRT_ERR_IMPORT_LIMIT', message: expect.stringMatching(/^500 routes refused: an import limit is reached/) } }]);
    // Re-announcing what it has needs no room; a withdraw makes room for one more.
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020, 1 ]', nets(1000)));
    expect(c.replies).toHaveLength(1);
    c.send(exa.withdraw('192.0.2.20', 65020, ['10.0.0.0/24']), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', ['10.9.0.0/24', '10.9.1.0/24']));
    expect(t4.routeTotal).toBe(1000);
    expect(c.replies[1]).toMatchObject({ line: 4, error: { message: expect.stringMatching(/^1 routes refused/) } });
    // Another neighbour has room of its own.
    c.send(exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', nets(10)));
    expect(t4.routeTotal).toBe(1010);
    expect(p.summary()).toMatchObject({ routes: 1010, limits: { refused: { neighbor: 501, client: 0, protocol: 0 }, disconnects: 0 } });
    expect(p.stats()[0]).toMatchObject({ refused: 501, routes: 1010, neighbors: 2 });
    await p.shutdown();
  });

  it('holds the protocol and each client to their limits too; a neighbour\'s own max_routes wins', async () => {
    const { p, t4 } = await started('neighbors: [ { address: 192.0.2.40, max_routes: 5 } ]\nlimits: { routes: 300, routes_per_client: 200 }');
    const a = client(p, 'a');
    a.send(exa.update('192.0.2.40', 65040, '"as-path": [ 65040 ]', nets(50)));
    expect(t4.routeTotal).toBe(5);
    a.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(500)));
    expect(t4.routeTotal).toBe(200);
    const b = client(p, 'b', 'krtsync');
    b.send(JSON.stringify({ announce: nets(500, 11).map((n) => `${n} via 192.0.2.2`) }));
    expect(t4.routeTotal).toBe(300);
    expect(p.summary().limits.refused).toEqual({ neighbor: 45, client: 305, protocol: 400 });
    await p.shutdown();
  });

  it('drops a client over its limit when the action is disconnect: its routes go and its connection closes', async () => {
    const warnings: string[] = [];
    const log = { ...nullLogger, warn: (m: string) => warnings.push(m) };
    const { p, t4 } = await started('limits: { routes_per_client: 100, action: disconnect }', log);
    const good = client(p, 'good');
    good.send(exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', nets(10, 12)));
    const bad = client(p, 'bad');
    bad.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(50)));
    expect(t4.routeTotal).toBe(60);
    bad.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(200)), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(1, 13)));
    expect(bad.hungUp()).toBe(true);
    expect(t4.routeTotal).toBe(10);
    expect(p.routeCount).toBe(10);
    expect(p.stats().map((s) => s.client)).toEqual(['good']);
    expect(p.summary().limits.disconnects).toBe(1);
    expect(warnings.some((w) => /stream client bad dropped: over its import limit \(limits.routes_per_client\)/.test(w))).toBe(true);
    await p.shutdown();
  });

  it('counts staged routes against the limits while the startup hold keeps them', async () => {
    const { set, t4 } = tables();
    const p = new StreamProtocol({ ...config('limits: { routes_per_neighbor: 100 }'), startupWaitMs: 60000 }, set, nullLogger);
    await p.start();
    const c = client(p, 'exabgp');
    c.send(exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(300)));
    expect(t4.routeTotal).toBe(0);
    expect(p.routeCount).toBe(100);
    c.send(exa.eor('192.0.2.20', 65020), exa.eor('192.0.2.20', 65020, 'ipv6'));
    expect(t4.routeTotal).toBe(100);
    expect(p.routeCount).toBe(100);
    await p.shutdown();
  });
});

describe('stream protocol: bounded state', () => {
  it('refuses a neighbour that is not an address, and quotes it cut short', async () => {
    const { p } = await started();
    const c = client(p, 'exabgp');
    c.send(exa.up('x'.repeat(100000), 65001));
    expect(c.replies[0]!.error.message).toMatch(/neighbor.address.peer: expected an IPv4 or IPv6 address, got "x{48}"\.\.\. \(100000 characters\)$/);
    expect(c.replies[0]!.error.message.length).toBeLessThan(200);
    expect(p.stats()[0]!.neighbors).toBe(0);
    await p.shutdown();
  });

  it('limits neighbours per client, and forgets one that went down with nothing left', async () => {
    const { p, t4 } = await started('limits: { neighbors_per_client: 3 }');
    const c = client(p, 'exabgp');
    for (const n of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) c.send(exa.update(n, 65001, '"as-path": [ 65001 ]', ['10.1.0.0/24']));
    expect(c.replies).toEqual([{ ok: false, line: 4, error: { code: 'KRT_ERR_TOO_MANY_NEIGHBORS', message: expect.stringMatching(/has 3 neighbours already \(limits.neighbors_per_client\); neighbor 192.0.2.4 ignored/) } }]);
    expect(t4.routes(parsePrefix('10.1.0.0/24'))).toHaveLength(3);
    c.send(exa.down('192.0.2.1', 65001), exa.update('192.0.2.4', 65001, '"as-path": [ 65001 ]', ['10.1.0.0/24']));
    expect(c.replies).toHaveLength(1);
    expect(p.stats()[0]!.neighbors).toBe(3);
    await p.shutdown();
  });

  it('leaves nothing behind after thousands of short-lived clients and neighbour names', async () => {
    const { p, t4 } = await started('grace: 0s');
    for (let i = 0; i < 3000; i++) {
      const c = client(p, undefined, i % 2 ? 'exabgp' : 'krtsync');
      if (i % 2) c.send(exa.update(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 65001, '"as-path": [ 65001 ]', ['10.1.0.0/24']), exa.down(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 65001));
      else c.send('{"announce":"10.2.0.0/24 via 192.0.2.2"}', '{"withdraw":"10.2.0.0/24"}');
      c.s.onClose();
    }
    expect(p.stats()).toEqual([]);
    expect(t4.sourceCount).toBe(0);
    expect(t4.netCount).toBe(0);
    // With routes, a client stays for its grace, then goes with them.
    const kept = client(p, 'kept');
    kept.send(exa.update('192.0.2.9', 65001, '"as-path": [ 65001 ]', nets(5)));
    kept.s.onClose();
    await new Promise((r) => setTimeout(r, 20));
    expect(p.stats()).toEqual([]);
    expect(t4.sourceCount).toBe(0);
    await p.shutdown();
  });

  it('costs a neighbour going down what it had, not a walk of the table', async () => {
    const { p, t4 } = await started();
    const c = client(p, 'exabgp');
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(20000)));
    c.send(exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', nets(3, 20)));
    const walk = jest.spyOn(NetStore.prototype, 'forEachEntry');
    try {
      c.send(exa.down('192.0.2.30', 65030), exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(5)), exa.eor('192.0.2.20', 65020));
      expect(walk).not.toHaveBeenCalled();
    } finally {
      walk.mockRestore();
    }
    expect(t4.routeTotal).toBe(5);
    await p.shutdown();
  });
});

describe('stream protocol: startup hold', () => {
  /** Counts best-route updates per net as a kernel protocol's reader takes them: reading all along, between lines. */
  async function bestChanges(t: Table, run: () => Promise<void>): Promise<Map<string, number>> {
    const reader = new Puller<ExportItem>(t.best.subscribe({ name: 'kernel' }));
    await reader.drain();
    const seen = new Map<string, number>();
    const take = (b: readonly ExportItem[] | 'idle' | 'done'): void => {
      if (typeof b !== 'string') for (const it of b) if (it.kind === 'update') seen.set(it.net.toString(), (seen.get(it.net.toString()) ?? 0) + 1);
    };
    let live = true;
    const reading = (async () => {
      while (live) take(await reader.poll(1));
    })();
    await run();
    live = false;
    await reading;
    for (const b of await reader.drain()) take(b);
    return seen;
  }

  /** Two neighbours load the same prefixes at once, in interleaved chunks; the second has the shorter path for half of them. */
  async function load(wait: string, neighbors = ''): Promise<{ changes: Map<string, number>; t4: Table }> {
    const { set, t4 } = tables();
    const p = new StreamProtocol(config(`startup_wait: ${wait}\n${neighbors}`), set, nullLogger);
    await p.start();
    const changes = await bestChanges(t4, async () => {
      const c = client(p, 'exabgp');
      c.send(exa.open('192.0.2.20', 65020, '10.0.0.20'), exa.open('192.0.2.30', 65030, '10.0.0.30'));
      const all = nets(2000);
      for (let i = 0; i < all.length; i += 250) {
        c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020, 1 ]', all.slice(i, i + 250)));
        await new Promise((r) => setImmediate(r)); // the reader runs between chunks, as it would between lines
        c.send(exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', all.slice(i, i + 250).filter((_, j) => j % 2 === 0)));
        c.send(exa.update('192.0.2.30', 65030, '"as-path": [ 65030, 1, 2 ]', all.slice(i, i + 250).filter((_, j) => j % 2 === 1)));
        await new Promise((r) => setImmediate(r));
      }
      c.send(exa.eor('192.0.2.20', 65020), exa.eor('192.0.2.30', 65030));
    });
    await p.shutdown();
    return { changes, t4 };
  }

  it('gives one best change per prefix when two neighbours load at once (each neighbour\'s OPEN says IPv4 only)', async () => {
    const { changes } = await load('30s');
    expect(changes.size).toBe(2000);
    expect([...changes.values()].every((n) => n === 1)).toBe(true);
  });

  it('without the hold, the same load changes the best route of many prefixes twice', async () => {
    const { changes } = await load('0s');
    expect(changes.size).toBe(2000);
    expect([...changes.values()].filter((n) => n > 1).length).toBeGreaterThan(500);
  });

  it('waits for a configured neighbour that has not come up, until the wait runs out', async () => {
    const { set, t4 } = tables();
    const infos: string[] = [];
    const p = new StreamProtocol(config('startup_wait: 300ms\nneighbors: [ { address: 192.0.2.99 } ]'), set, { ...nullLogger, info: (m: string) => infos.push(m) });
    await p.start();
    const c = client(p, 'exabgp');
    c.send(exa.open('192.0.2.20', 65020, '10.0.0.20'), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(10)), exa.eor('192.0.2.20', 65020));
    expect(t4.routeTotal).toBe(0);
    // Routes of a client without a neighbour are never held.
    const plain = client(p, 'plain', 'krtsync');
    plain.send('{"announce":"10.200.0.0/24 via 192.0.2.2"}');
    expect(t4.routeTotal).toBe(1);
    await new Promise((r) => setTimeout(r, 400));
    expect(t4.routeTotal).toBe(11);
    expect(infos.some((m) => /IPv4: startup wait of 300 ms over: 10 routes of 1 neighbours go in at once; not done: 192.0.2.99/.test(m))).toBe(true);
    // After the release, routes go straight in.
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(1, 30)));
    expect(t4.routeTotal).toBe(12);
    await p.shutdown();
  });

  it('drops the staged routes of a neighbour that goes down during the hold, and stops waiting for it', async () => {
    const { set, t4 } = tables();
    const p = new StreamProtocol(config('startup_wait: 60s'), set, nullLogger);
    await p.start();
    const c = client(p, 'exabgp');
    c.send(exa.open('192.0.2.20', 65020, '10.0.0.20'), exa.open('192.0.2.30', 65030, '10.0.0.30'));
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(10)), exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', nets(10, 11)));
    c.send(exa.withdraw('192.0.2.20', 65020, nets(2)), exa.eor('192.0.2.20', 65020));
    expect(t4.routeTotal).toBe(0);
    c.send(exa.down('192.0.2.30', 65030));
    expect(t4.routeTotal).toBe(8);
    expect(p.routeCount).toBe(8);
    await p.shutdown();
  });
});

describe('stream protocol: reload', () => {
  it('keeps an open refresh cycle across a reload: end-of-RIB still prunes exactly what was not re-announced', async () => {
    const { set, t4 } = tables();
    const p = new StreamProtocol(config(), set, nullLogger);
    await p.start();
    const c = client(p, 'exabgp');
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(10)));
    c.send(exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(4)));
    expect(p.reconfigure(config('neighbors: [ { address: 192.0.2.20, preference: 150 } ]'))).toBe(true);
    expect(t4.bestRoute(parsePrefix('10.0.9.0/24'))!.src.preference).toBe(150);
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', nets(6).slice(4)), exa.eor('192.0.2.20', 65020));
    expect(t4.routeTotal).toBe(6);
    expect(p.routeCount).toBe(6);
    await p.shutdown();
  });

  it('moves routes to new preferences and a new import filter in place, without dropping the client', async () => {
    const { set, t4 } = tables();
    const p = new StreamProtocol(config(), set, nullLogger);
    await p.start();
    const c = client(p, 'exabgp');
    c.send(exa.update('192.0.2.20', 65020, '"as-path": [ 65020, 1 ]', ['10.1.0.0/24', '10.2.0.0/24']), exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', ['10.1.0.0/24', '10.2.0.0/24']));
    expect(via(t4, '10.1.0.0/24')).toBe('via 192.0.2.30');
    expect(p.reconfigure(config('neighbors: [ { address: 192.0.2.20, preference: 200 } ]\nimport: [ { match: { net: 10.2.0.0/24 }, action: reject } ]'))).toBe(true);
    expect(via(t4, '10.1.0.0/24')).toBe('via 192.0.2.20');
    expect(via(t4, '10.2.0.0/24')).toBeUndefined();
    expect(p.routeCount).toBe(2);
    expect(c.hungUp()).toBe(false);
    c.send(exa.update('192.0.2.30', 65030, '"as-path": [ 65030 ]', ['10.3.0.0/24']));
    expect(p.routeCount).toBe(3);
    await p.shutdown();
    expect(c.hungUp()).toBe(true);
    expect(t4.routeTotal).toBe(0);
  });
});

describe('stream protocol: flap damping of a source', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 5_000_000 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  /** A neighbour whose session goes down and comes back with its routes, `times` times, a second apart. */
  function flap(c: ReturnType<typeof client>, list: string[], times: number): void {
    for (let i = 0; i < times; i++) {
      c.send(exa.down('192.0.2.20', 65020));
      jest.advanceTimersByTime(1000);
      c.send(exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', list), exa.eor('192.0.2.20', 65020));
    }
  }

  it('returns at once after one or two failures; from the third on its routes stay out of the table until reuse, then go in once', async () => {
    const warns: string[] = [];
    const { p, t4 } = await started('', { ...nullLogger, warn: (m) => warns.push(m) });
    const c = client(p, 'exabgp');
    const list = nets(50);
    c.send(exa.up('192.0.2.30', 65030), exa.update('192.0.2.30', 65030, '"as-path": [ 65030, 1 ]', list)); // the backup
    c.send(exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', list), exa.eor('192.0.2.20', 65020));
    expect(via(t4, '10.0.7.0/24')).toBe('via 192.0.2.20');
    flap(c, list, 2);
    expect(via(t4, '10.0.7.0/24')).toBe('via 192.0.2.20'); // two flaps: each return immediate
    // Table work is counted where the protocol does it: each route into the table is an announce.
    const announced = jest.spyOn(t4, 'announce');
    flap(c, list, 3);
    expect(announced).not.toHaveBeenCalled();
    // Suppressed: the backup is best, the primary's routes are not in the table, but counted and shown.
    expect(via(t4, '10.0.7.0/24')).toBe('via 192.0.2.30');
    expect(t4.routeTotal).toBe(50);
    expect(p.routeCount).toBe(100);
    expect(c.replies).toEqual([]);
    const damping = p.summary().damping!;
    expect(damping).toMatchObject({ suppressed: 1, failures: 5, sources: [{ source: 'bgp/exabgp/192.0.2.20', state: 'suppressed', flaps: 5, routes: 50 }] });
    const shown: string[] = [];
    p.forEachSuppressed(parsePrefix('10.0.7.0/24'), (r) => shown.push(`${r.source} ${r.attrs.nexthops}`));
    expect(shown).toEqual(['bgp/exabgp/192.0.2.20 via 192.0.2.20']);
    // Each change of state logged once, not per net: suppressed at the third and at each later return.
    expect(warns.filter((m) => m.includes('is flapping'))).toHaveLength(3);
    // A withdrawal and an announcement while suppressed change the staged routes only.
    c.send(exa.withdraw('192.0.2.20', 65020, ['10.0.7.0/24']), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', ['10.9.0.0/24']));
    expect(p.routeCount).toBe(100);
    expect(t4.routeTotal).toBe(50);
    expect(announced).not.toHaveBeenCalled();
    jest.advanceTimersByTime(damping.sources[0]!.suppressedUntil! - Date.now());
    expect(via(t4, '10.0.7.0/24')).toBe('via 192.0.2.30');
    expect(via(t4, '10.0.8.0/24')).toBe('via 192.0.2.20');
    expect(via(t4, '10.9.0.0/24')).toBe('via 192.0.2.20');
    expect(t4.routeTotal).toBe(100);
    expect(p.routeCount).toBe(100);
    expect(p.summary().damping!.suppressed).toBe(0);
    expect(announced).toHaveBeenCalledTimes(49 + 1);
    await p.shutdown();
  });

  it('a failure while suppressed drops the staged routes with no table work; damping: false follows every flap', async () => {
    const { p, t4 } = await started();
    const c = client(p, 'exabgp');
    const list = nets(20);
    c.send(exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', list));
    flap(c, list, 2);
    c.send(exa.down('192.0.2.20', 65020), exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', list));
    expect(t4.routeTotal).toBe(0);
    expect(p.routeCount).toBe(20);
    c.send(exa.down('192.0.2.20', 65020));
    expect(p.routeCount).toBe(0);
    expect(p.summary().damping).toMatchObject({ suppressed: 0, sources: [{ state: 'down', flaps: 4, routes: 0 }] });
    // Suppressed with nothing announced yet, and down again: still a failure (the session flapped).
    c.send(exa.up('192.0.2.20', 65020), exa.down('192.0.2.20', 65020));
    expect(p.summary().damping).toMatchObject({ suppressed: 0, sources: [{ state: 'down', flaps: 5, routes: 0 }] });
    jest.advanceTimersByTime(120_000);
    expect(t4.routeTotal).toBe(0);
    await p.shutdown();

    const off = await started('damping: false');
    const c2 = client(off.p, 'exabgp');
    c2.send(exa.up('192.0.2.20', 65020), exa.update('192.0.2.20', 65020, '"as-path": [ 65020 ]', list));
    flap(c2, list, 5);
    expect(off.t4.routeTotal).toBe(20);
    expect(off.p.summary().damping).toBeUndefined();
    await off.p.shutdown();
  });

  it('a client dropped after its grace is a failure of each of its sources; one that reconnects in time is not', async () => {
    const { p, t4 } = await started('grace: 1s');
    const list = nets(10);
    for (let i = 0; i < 3; i++) {
      const c = client(p, 'feeder', 'krtsync');
      c.send(`{"announce": [${list.map((n) => `"${n} via 192.0.2.2"`).join(', ')}]}`);
      c.s.onClose();
      jest.advanceTimersByTime(1001);
      expect(t4.routeTotal).toBe(0);
    }
    const c = client(p, 'feeder', 'krtsync');
    c.send(`{"announce": [${list.map((n) => `"${n} via 192.0.2.2"`).join(', ')}]}`);
    expect(t4.routeTotal).toBe(0);
    expect(p.summary().damping).toMatchObject({ suppressed: 1, sources: [{ source: 'bgp/feeder', state: 'suppressed', routes: 10 }] });
    // A reconnect within grace: a refresh, not a failure; the staged routes are stale and re-announced.
    c.s.onClose();
    const again = client(p, 'feeder', 'krtsync');
    again.send(`{"announce": [${list.slice(0, 4).map((n) => `"${n} via 192.0.2.2"`).join(', ')}], "eor": true}`);
    expect(p.routeCount).toBe(4);
    expect(p.summary().damping).toMatchObject({ suppressed: 1, failures: 3 });
    jest.advanceTimersByTime(60_000);
    expect(t4.routeTotal).toBe(4);
    await p.shutdown();
  });
});
