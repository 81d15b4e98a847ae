/**
 * BGP with real peers: two BIRD 2 speakers announce the same prefixes to
 * ExaBGP (two iBGP neighbours), whose API process is `krtsync feed --format
 * exabgp`; krtsync runs in the router namespace and the kernel there is the
 * oracle. Each speaker lives in a namespace of its own, linked to the router
 * by a veth pair; the test makes and deletes all three.
 *
 *   speaker 1: 192.0.2.10 (router id 192.0.2.10)       speaker 2: 198.51.100.2 (router id 198.51.100.2)
 *   router: 192.0.2.1 / 198.51.100.1, ExaBGP local-as 65000, krtsync
 *
 * Speaker 1's address sorts first as a string, so a tie broken by source
 * name (the old behaviour) would pick it everywhere. Per prefix range, the
 * speakers' attributes make one step of the decision process decide:
 *
 *   10.1/16  AS path 4 long (1) against 1 long (2)           -> speaker 2 (AS path length)
 *   10.2/16  local preference 200 (1, path 4) against 100    -> speaker 1 (local preference)
 *   10.3/16  both via AS 65030; MED 50 (1) against 10 (2)     -> speaker 2 (MED)
 *   10.4/16  AS 65041 MED 50 (1), AS 65042 MED 10 (2)         -> speaker 1 (router id: MED of two ASes not compared)
 *   10.5/16  AS 65051 (1), AS 65052 (2), nothing else        -> speaker 1 (router id); multipath: both
 *
 * Kernel protocol kernel1 installs the best routes into table main;
 * kernel2 installs the same table into kernel table 100 with merge_paths
 * (multipath). The startup wait makes the two neighbours' simultaneous
 * load give one kernel add per prefix, counted with `ip monitor`
 * (KRT_TEST_STARTUP_WAIT=0s runs the same without it: that test then fails,
 * some prefixes are installed via the first neighbour and replaced).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ensureBgpPackages, startBird, startExabgp, type BirdSpeaker, type Exabgp } from '../helpers/bgp-peers';
import { KrtsyncDaemon, PROTO, until } from '../helpers/daemon-fixture';
import { showMarker } from '../helpers/kernel-fixture';
import { createNetns, kernelDescribe, linkNetns, type Netns } from '../helpers/netns';

const PER_RANGE = 400;
const RANGES = [1, 2, 3, 4, 5];
const prefixes = (r: number): string[] => Array.from({ length: PER_RANGE }, (_, i) => `10.${r}.${i >> 2}.${(i & 3) * 64}/26`);
const ALL = RANGES.flatMap(prefixes);

/** Per route: the gateways of our route in `table`, sorted ("192.0.2.10,198.51.100.2" for multipath). */
function gateways(ns: Netns, table: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of ns.ipJson<Array<{ dst: string; gateway?: string; nexthops?: Array<{ gateway: string }> }>>('-4', 'route', 'show', 'table', table, 'proto', PROTO)) {
    m.set(r.dst, r.gateway ?? (r.nexthops ?? []).map((h) => h.gateway).sort().join(','));
  }
  return m;
}

/** How many prefixes of range `r` have `gw` in `got`, and how many have something else (for messages that say what is wrong). */
function tally(got: Map<string, string>, r: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of prefixes(r)) {
    const g = got.get(p) ?? 'none';
    out[g] = (out[g] ?? 0) + 1;
  }
  return out;
}

kernelDescribe('BGP between real neighbours: BIRD 2 speakers, ExaBGP, krtsync feed', () => {
  let router: Netns;
  let s1ns: Netns;
  let s2ns: Netns;
  let d: KrtsyncDaemon;
  let s1: BirdSpeaker | undefined;
  let s2: BirdSpeaker | undefined;
  let exa: Exabgp | undefined;
  let monitor: ChildProcess | undefined;
  let events = '';

  const S1 = '192.0.2.10';
  const S2 = '198.51.100.2';
  const context = (): string => `\n--- krtsync ---\n${d.log.slice(-3000)}\n--- exabgp ---\n${exa?.log().slice(-3000) ?? ''}`;

  beforeAll(async () => {
    ensureBgpPackages();
    router = createNetns('krt-bgp-r', { bare: true });
    s1ns = createNetns('krt-bgp-s1', { bare: true });
    s2ns = createNetns('krt-bgp-s2', { bare: true });
    linkNetns(router, 's1', '192.0.2.1/24', s1ns, 'r', `${S1}/24`);
    linkNetns(router, 's2', '198.51.100.1/24', s2ns, 'r', `${S2}/24`);
    d = new KrtsyncDaemon(router, 'krt-bgp');
    // What each speaker sends per range (the table in the header): AS path, local preference, MED.
    type Attrs = { path: number[]; lp?: number; med?: number };
    const sends: Record<'s1' | 's2', Record<number, Attrs>> = {
      s1: { 1: { path: [65010, 65011, 65012, 65013] }, 2: { path: [65010, 65011, 65012, 65013], lp: 200 }, 3: { path: [65030], med: 50 }, 4: { path: [65041], med: 50 }, 5: { path: [65051] } },
      s2: { 1: { path: [65020] }, 2: { path: [65020], lp: 100 }, 3: { path: [65030], med: 10 }, 4: { path: [65042], med: 10 }, 5: { path: [65052] } },
    };
    const exportFilter = (by: Record<number, Attrs>): string =>
      RANGES.map((r) => {
        const a = by[r]!;
        const sets = [...[...a.path].reverse().map((x) => `bgp_path.prepend(${x});`), a.lp !== undefined ? `bgp_local_pref = ${a.lp};` : '', a.med !== undefined ? `bgp_med = ${a.med};` : ''];
        return `  if net ~ [10.${r}.0.0/16+] then { ${sets.join(' ')} }`;
      }).join('\n');
    const speaker = (ns: Netns, name: 's1' | 's2', address: string, neighbor: string): Promise<BirdSpeaker> =>
      startBird({ ns, dir: d.dir, name, address, routerId: address, as: 65000, neighbor, neighborAs: 65000, routes: ALL, exportFilter: exportFilter(sends[name]) });
    s1 = await speaker(s1ns, 's1', S1, '192.0.2.1');
    s2 = await speaker(s2ns, 's2', S2, '198.51.100.1');
    d.writeConfig(`protocols:
  - name: bgp
    type: stream
    startup_wait: ${process.env.KRT_TEST_STARTUP_WAIT ?? '60s'}
    neighbors: [ { address: ${S1} }, { address: ${S2} } ]
  - { name: kernel1, type: kernel, kernel_table: main, family: ipv4 }
  - { name: kernel2, type: kernel, kernel_table: 100, family: ipv4, merge_paths: 8 }
`);
    await d.startReady();
    // Every add to the kernel from here on: the two neighbours load at once once ExaBGP is up.
    // A 32 MiB receive buffer: routes on nexthop objects go in fast enough to overflow ip monitor's default one
    // under load (it then loses notifications, and the count below comes out short).
    monitor = spawn('ip', ['-rcvbuf', String(32 << 20), '-n', router.name, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
    monitor.stdout!.on('data', (c) => (events += String(c)));
    await marker('192.0.2.200');
    exa = startExabgp(router, d.dir, d.socket, [
      { address: S1, localAddress: '192.0.2.1', routerId: '192.0.2.1', localAs: 65000, peerAs: 65000 },
      { address: S2, localAddress: '198.51.100.1', routerId: '192.0.2.1', localAs: 65000, peerAs: 65000 },
    ]);
    // Loaded: every prefix in place with its final next hop (the first test checks which), and every
    // notification of that read (a foreign marker route after them comes after them).
    const settled = (): boolean => {
      const main = gateways(router, 'main');
      return main.size === ALL.length && [1, 3].every((r) => tally(main, r)[S2] === PER_RANGE) && [2, 4, 5].every((r) => tally(main, r)[S1] === PER_RANGE);
    };
    await until(`all ${ALL.length} prefixes in table main via their best neighbour${context()}`, settled, 60000, 200);
    await marker('192.0.2.201');
  }, 180000);

  /** A foreign route added (until ip monitor shows it) and deleted: whatever the kernel notified before it has been read. */
  const marker = (dst: string): Promise<void> => showMarker(router, dst, 's1', () => events.includes(dst));

  afterAll(async () => {
    monitor?.kill();
    await exa?.stop();
    await d?.stop().catch(() => undefined);
    await d?.dispose();
    await s1?.stop();
    await s2?.stop();
    for (const ns of [router, s1ns, s2ns]) ns?.destroy();
  });

  it('decides by AS path length, local preference and MED as BGP does, and by router id where MED does not compare', () => {
    const main = gateways(router, 'main');
    expect(tally(main, 1)).toEqual({ [S2]: PER_RANGE });
    expect(tally(main, 2)).toEqual({ [S1]: PER_RANGE });
    expect(tally(main, 3)).toEqual({ [S2]: PER_RANGE });
    expect(tally(main, 4)).toEqual({ [S1]: PER_RANGE });
    expect(tally(main, 5)).toEqual({ [S1]: PER_RANGE });
  });

  it('installs each prefix once while both neighbours load at once', () => {
    const adds = new Map<string, number>();
    for (const l of events.split('\n')) {
      if (!l.startsWith('10.') || !l.includes(`proto ${PROTO}`) || l.includes('table 100')) continue;
      const dst = l.split(' ')[0]!;
      adds.set(dst, (adds.get(dst) ?? 0) + 1);
    }
    expect(adds.size).toBe(ALL.length);
    expect([...adds.values()].filter((n) => n !== 1)).toEqual([]);
    expect(events.split('\n').filter((l) => l.startsWith('Deleted 10.'))).toEqual([]);
  });

  it('shows the attributes and why the best route won', () => {
    const routes = JSON.parse(d.cli(['show', 'routes', '10.3.0.0/26', '--all', '--json']).out) as Array<{ best: boolean; reason?: string; bgp?: { neighbor: string; med?: number; router_id?: string; as_path: string } }>;
    expect(routes.map((r) => [r.best, r.bgp?.neighbor, r.bgp?.med, r.bgp?.as_path, r.reason])).toEqual([
      [true, S2, 10, '65030', 'MED'],
      [false, S1, 50, '65030', 'MED'],
    ]);
    expect(routes[0]!.bgp!.router_id).toBe(S2); // from the neighbour's OPEN
    const human = d.cli(['show', 'routes', '10.1.0.0/26', '--all']).out;
    expect(human).toMatch(/^PREFIX +BEST +ROUTE +SOURCE +PREF +TABLE +BGP +WHY/);
    expect(human).toMatch(new RegExp(`10\\.1\\.0\\.0/26 +\\* +via ${S2.replace(/\./g, '\\.')} +bgp/exabgp/${S2.replace(/\./g, '\\.')} +100 +master4 +\\[65020\\] .* +AS path length`));
  });

  it('merges routes equal down to the router id into one multipath route (merge_paths)', async () => {
    await until('table 100 complete', () => gateways(router, '100').size === ALL.length, 30000);
    const t100 = gateways(router, '100');
    expect(tally(t100, 5)).toEqual({ [`${S1},${S2}`]: PER_RANGE });
    // MED of two ASes is not compared: equal down to the router id as well (as BIRD's merge paths does).
    expect(tally(t100, 4)).toEqual({ [`${S1},${S2}`]: PER_RANGE });
    expect(tally(t100, 1)).toEqual({ [S2]: PER_RANGE });
    expect(tally(t100, 2)).toEqual({ [S1]: PER_RANGE });
    expect(tally(t100, 3)).toEqual({ [S2]: PER_RANGE });
  });

  it('hands over to the other neighbour when one goes down', async () => {
    s1!.birdc('disable', 'exa');
    await until(`speaker 1's routes gone${context()}`, () => [...gateways(router, 'main').values()].every((g) => g === S2), 30000, 200);
    const main = gateways(router, 'main');
    expect(main.size).toBe(ALL.length);
    for (const r of RANGES) expect(tally(main, r)).toEqual({ [S2]: PER_RANGE });
    await until('table 100 down to speaker 2', () => [...gateways(router, '100').values()].every((g) => g === S2), 30000, 200);
    s1!.birdc('enable', 'exa');
    await until(`speaker 1 back as best for 10.2/16${context()}`, () => tally(gateways(router, 'main'), 2)[S1] === PER_RANGE, 60000, 200);
  });
});
