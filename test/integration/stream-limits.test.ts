/**
 * Hostile or buggy stream clients against the real daemon (issue 22's
 * findings 3 and 4): a 10M-prefix feed against the import limit, and
 * thousands of short-lived clients with neighbour names of their own.
 *
 * Promises checked, with iproute2 and /proc as the oracles: the kernel holds
 * exactly the routes under the limit (the first ones announced) and every
 * static route; the refused routes are counted; the daemon's memory stays
 * bounded while it refuses millions of routes; clients, neighbours and table
 * sources that went leave nothing behind; the daemon answers throughout.
 */
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { controlConnection, KrtsyncDaemon, mapDiff, memoryOf, oursByDst, soakScale, until } from '../helpers/daemon-fixture';

const FEED = soakScale(10_000_000, 10_000_000);
const LIMIT = 100_000;
const PER_LINE = 2000;
const CLIENTS = soakScale(4000, 20000);
const STATIC = 1000;

const host = (base: number, i: number): string => `${base + (i >>> 24)}.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`;

/** One ExaBGP update line announcing `nets` from neighbour `peer`, as ExaBGP 4.2 writes it. */
function update(peer: string, nets: string[]): string {
  let list = '';
  for (const n of nets) list += list === '' ? `{ "nlri": "${n}" }` : `, { "nlri": "${n}" }`;
  return `{ "exabgp": "4.0.1", "time": 1, "host" : "r", "pid" : 1, "ppid" : 1, "counter": 1, "type": "update", "neighbor": { "address": { "local": "192.0.2.1", "peer": "${peer}" }, "asn": { "local": 65000, "peer": 65001 } , "direction": "receive", "message": { "update": { "attribute": { "origin": "igp", "as-path": [ 65001 ] }, "announce": { "ipv4 unicast": { "192.0.2.3": [ ${list} ] } } } } } }`;
}

kernelDescribe('stream clients against the limits (whole daemon)', () => {
  let ns: Netns;
  let d: KrtsyncDaemon;
  const want = new Map<string, string>();
  const protocol = (): { routes: number; clients: unknown[]; limits: { refused: Record<string, number> } } =>
    (JSON.parse(d.cli(['show', 'protocols', '--json']).out) as Array<{ name: string }>).find((p) => p.name === 'bgp') as never;
  const sources = (): number => (JSON.parse(d.cli(['show', 'status', '--json']).out) as { tables: Array<{ name: string; sources: number }> }).tables.find((t) => t.name === 'master4')!.sources;

  beforeAll(async () => {
    ns = createNetns('krt-lim');
    d = new KrtsyncDaemon(ns, 'krt-lim');
    for (let i = 0; i < STATIC; i++) want.set(host(172, i), 'via 192.0.2.2');
    d.file('routes.txt', [...want.keys()].map((h) => `${h}/32 via 192.0.2.2`).join('\n') + '\n');
    d.writeConfig(`protocols:
  - { name: static1, type: static, routes_file: routes.txt }
  - name: bgp
    type: stream
    grace: 1s
    startup_wait: 0s
    limits: { routes: ${LIMIT}, neighbors_per_client: 4 }
  - { name: kernel1, type: kernel, family: ipv4 }
`);
    await d.startReady();
  });

  afterAll(async () => {
    await d?.dispose();
    ns?.destroy();
  });

  it(`refuses ${FEED} prefixes past a limit of ${LIMIT}, in bounded memory, losing nothing`, async () => {
    const pid = d.proc!.pid!;
    const before = memoryOf(pid);
    const c = await controlConnection(d.socket);
    c.sock.write('{"id":1,"command":"feed","args":{"format":"exabgp","client":"flood"}}\n');
    let answered = 0;
    for (let i = 0; i < FEED; i += PER_LINE) {
      const nets: string[] = [];
      for (let j = i; j < i + PER_LINE && j < FEED; j++) nets.push(`${host(10, j)}/32`);
      if (!c.sock.write(update('198.51.100.7', nets) + '\n')) await new Promise((r) => c.sock.once('drain', r));
      // The daemon answers while it refuses (a status request on another connection).
      if (i % 2_000_000 === 0 && d.cli(['show', 'status']).code === 0) answered++;
    }
    // Every line read: the refusals of the last line are answered.
    await until('the last line answered', () => c.got.some((l) => l.includes(`"line":${FEED / PER_LINE}`)), 120000, 100);
    const after = memoryOf(pid);
    const p = protocol();
    expect(p.routes).toBe(LIMIT);
    expect(p.limits.refused).toEqual({ protocol: FEED - LIMIT, client: 0, neighbor: 0 });
    expect(answered).toBe(Math.ceil(FEED / 2_000_000));
    const refusedLines = c.got.filter((l) => l.includes('KRT_ERR_IMPORT_LIMIT')).length;
    expect(refusedLines).toBe(FEED / PER_LINE - LIMIT / PER_LINE);
    // The first LIMIT prefixes, and every static route: exactly.
    const expected = new Map(want);
    for (let i = 0; i < LIMIT; i++) expected.set(host(10, i), 'via 192.0.2.3');
    await until('the kernel to hold exactly what is under the limit', () => mapDiff(expected, oursByDst(ns)).length === 0, 60000, 200);
    process.stdout.write(`limit: ${FEED} prefixes fed, ${LIMIT} taken; daemon RSS ${before.rss} MiB before, peak ${after.peak} MiB\n`);
    // Bounded: the peak is what LIMIT routes and a few lines in flight cost, not what FEED would.
    expect(after.peak - before.rss).toBeLessThan(250);
    c.sock.destroy();
    await until('the flood withdrawn after its grace', () => mapDiff(want, oursByDst(ns)).length === 0 && protocol().routes === 0, 60000, 200);
    expect(sources()).toBe(1); // static1
  }, 600000);

  it(`leaves nothing behind after ${CLIENTS} short-lived clients, each with neighbours of its own`, async () => {
    const pid = d.proc!.pid!;
    const steady = await controlConnection(d.socket);
    steady.sock.write('{"id":1,"command":"feed","args":{"format":"exabgp","client":"steady"}}\n');
    steady.sock.write(update('192.0.2.200', ['10.200.0.0/24']) + '\n');
    const expected = new Map(want).set('10.200.0.0/24', 'via 192.0.2.3');
    await until('the steady client\'s route', () => mapDiff(expected, oursByDst(ns)).length === 0);
    const before = memoryOf(pid);
    for (let i = 0; i < CLIENTS; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, async (_, k) => {
          const n = i + k;
          const c = await controlConnection(d.socket);
          const name = n % 2 ? `,"client":"short-${n}"` : '';
          // Its own neighbours (five names: one over the per-client limit), a route each, then gone.
          const peers = Array.from({ length: 5 }, (_, j) => host(100, n * 8 + j));
          c.sock.write(`{"id":1,"command":"feed","args":{"format":"exabgp"${name}}}\n${peers.map((p) => update(p, [`${host(30, n)}/32`])).join('\n')}\n`);
          await until('its lines answered', () => c.got.some((l) => l.includes('KRT_ERR_TOO_MANY_NEIGHBORS')), 30000, 20);
          c.sock.destroy();
          await c.closed;
        }),
      );
    }
    await until('every short-lived client gone after its grace', () => protocol().clients.length === 1 && protocol().routes === 1, 60000, 200);
    expect(mapDiff(expected, oursByDst(ns))).toEqual([]);
    expect(sources()).toBe(2); // static1, and the steady client's neighbour
    const after = memoryOf(pid);
    process.stdout.write(`clients: ${CLIENTS} short-lived, daemon RSS ${before.rss} MiB before, ${after.rss} MiB after\n`);
    expect(after.rss - before.rss).toBeLessThan(100);
    steady.sock.destroy();
  }, 600000);
});
