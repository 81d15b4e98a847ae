/**
 * SIGKILL at random points, then a restart: the kernel converges exactly to
 * what the config wants, no stale route of ours survives, and no foreign
 * route is ever touched, whatever the daemon was doing when it died.
 *
 * The real daemon (`krtsync run`) on a routes file of N routes (30,000 here,
 * 200,000 under `npm run soak`). The kill point is drawn uniformly over the
 * measured length of the phase (install, shutdown, reload), with a seed the
 * test prints (KRTSYNC_SEED repeats a run). iproute2 is the oracle; the
 * expected sets are computed here from the files the test wrote.
 */
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { foreign, KrtsyncDaemon, mapDiff, oursByDst, prng, seed, sleep, soakScale, until } from '../helpers/daemon-fixture';

const N = soakScale(30_000, 200_000);
const ROUNDS = soakScale(2, 6);

/** Route i of a version: A has every i; B drops every third, moves every third to another gateway, adds N/3 new. */
function version(v: 'A' | 'B'): Map<string, string> {
  const m = new Map<string, string>();
  const host = (i: number, base: number): string => `10.${base + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
  for (let i = 0; i < N; i++) {
    if (v === 'B' && i % 3 === 0) continue;
    m.set(host(i, 100), `via 192.0.2.${v === 'B' && i % 3 === 1 ? 3 : 2}`);
  }
  if (v === 'B') for (let i = 0; i < N / 3; i++) m.set(host(i, 120), 'via 192.0.2.2');
  return m;
}
const routesFile = (m: Map<string, string>): string => [...m].map(([dst, rest]) => `${dst}/32 ${rest}`).join('\n') + '\n';

kernelDescribe(`SIGKILL at random points, then a restart (${N} routes, seed ${seed})`, () => {
  let ns: Netns;
  let d: KrtsyncDaemon;
  let foreignBefore: string[];
  const rand = prng(seed);
  const A = version('A');
  const B = version('B');

  /** Every route of ours in the kernel is one that some version wanted, exactly as that version wanted it. */
  const onlyWanted = (...versions: Array<Map<string, string>>): string[] => {
    const bad: string[] = [];
    for (const [dst, rest] of oursByDst(ns)) if (!versions.some((v) => v.get(dst) === rest)) bad.push(`${dst} ${rest}`);
    return bad.slice(0, 10);
  };
  const use = (m: Map<string, string>): void => void d.file('routes.txt', routesFile(m));

  /** After a kill: nothing foreign touched, nothing of ours that no version wanted; a restart converges to `want`. */
  async function recover(want: Map<string, string>, ...seen: Array<Map<string, string>>): Promise<void> {
    expect(foreign(ns)).toEqual(foreignBefore);
    expect(onlyWanted(...seen)).toEqual([]);
    await d.startReady();
    expect(mapDiff(want, oursByDst(ns))).toEqual([]);
  }

  beforeAll(() => {
    ns = createNetns('krt-kill');
    // Foreign routes on our prefixes (another metric), beside them, in another table, IPv6: none may ever change.
    const batch: string[] = [];
    for (let i = 0; i < 300; i++) batch.push(`route add 10.100.${(i >> 8) & 255}.${i & 255}/32 via 192.0.2.9 proto static metric 50`);
    for (let i = 0; i < 100; i++) batch.push(`route add 10.99.0.${i}/32 via 192.0.2.9 proto bird`, `route add 10.100.0.${i}/32 via 192.0.2.9 table 100 proto 144`);
    batch.push('route add 2001:db8:99::/48 via 2001:db8:1::9 proto static');
    ns.ipBatch(batch);
    foreignBefore = foreign(ns);
    d = new KrtsyncDaemon(ns, 'krt-kill');
    d.writeConfig(`protocols:
  - name: static1
    type: static
    routes_file: routes.txt
  - name: kernel1
    type: kernel
    family: ipv4
`);
  });

  afterAll(async () => {
    await d?.dispose();
    ns?.destroy();
  });

  afterEach(() => {
    // Checked after every test, even a failing one: the daemon never touches what is not its own.
    expect(foreign(ns)).toEqual(foreignBefore);
  });

  it('converges after a kill at a random point of the first install', async () => {
    use(A);
    const tInstall = await d.startReady();
    expect(mapDiff(A, oursByDst(ns))).toEqual([]);
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(oursByDst(ns).size).toBe(0);
    for (let round = 0; round < ROUNDS; round++) {
      d.start();
      await sleep(Math.floor(rand() * tInstall));
      await d.stop('SIGKILL');
      await recover(A, A);
      await d.stop('SIGTERM');
      expect(oursByDst(ns).size).toBe(0);
    }
  });

  it('converges after a kill at a random point of the shutdown, with no stale route left', async () => {
    use(A);
    await d.startReady();
    const t0 = Date.now();
    await d.stop('SIGTERM');
    const tStop = Date.now() - t0;
    for (let round = 0; round < ROUNDS; round++) {
      await d.startReady();
      d.proc!.kill('SIGTERM');
      await sleep(Math.floor(rand() * tStop));
      await d.stop('SIGKILL');
      // Whatever the half-done shutdown left, the restart puts back exactly A.
      await recover(A, A);
      await d.stop('SIGTERM');
    }
    expect(oursByDst(ns).size).toBe(0);
  });

  it('converges after a kill at a random point of a reload; the restart prunes what neither version wants', async () => {
    use(A);
    await d.startReady();
    let cur = A;
    let reloadMs = 0;
    for (let round = 0; round < ROUNDS + 1; round++) {
      const next = cur === A ? B : A;
      use(next);
      const t0 = Date.now();
      d.proc!.kill('SIGHUP');
      if (round === 0) {
        // The first reload runs to the end: it measures how long a reload takes.
        await until('the first reload', () => mapDiff(next, oursByDst(ns)).length === 0, 60000, 100);
        reloadMs = Date.now() - t0;
      } else {
        await sleep(Math.floor(rand() * reloadMs));
        await d.stop('SIGKILL');
        await recover(next, A, B);
      }
      expect(mapDiff(next, oursByDst(ns))).toEqual([]);
      cur = next;
    }
    await d.stop('SIGTERM');
    expect(oursByDst(ns).size).toBe(0);
  });
});

