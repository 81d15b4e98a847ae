/**
 * The start's contract with a routes file, on one big enough that its load
 * spans many event-loop turns (20,000 lines; the real daemon, iproute2 as the
 * oracle): a restart prunes nothing a source is still to bring (0 kernel
 * changes), and a bad line, even the last, stops the start before any kernel
 * protocol has run. Guards any reordering of the start (docs/benchmarks.md,
 * Round 8, "Cold start levers": a kernel protocol started beside the sources).
 */
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { KrtsyncDaemon, oursByDst } from '../helpers/daemon-fixture';
import { RouteWatcher, until } from '../helpers/kernel-fixture';

const N = 20_000;
const lines = (gw: string): string => Array.from({ length: N }, (_, i) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32 via ${gw}`).join('\n') + '\n';

kernelDescribe(`cold start with a routes file of ${N} routes`, () => {
  let ns: Netns;
  let d: KrtsyncDaemon;

  beforeAll(() => {
    ns = createNetns('krt-cold');
    d = new KrtsyncDaemon(ns, 'krt-cold');
    d.writeConfig(`protocols:
  - { name: static1, type: static, routes_file: ${d.file('routes.txt', lines('192.0.2.2'))} }
  - { name: kernel1, type: kernel, family: ipv4, kernel_table: main }
`);
  });

  afterAll(async () => {
    await d.dispose();
    ns.destroy();
  });

  it('installs every route, and a restart after SIGKILL deletes none of them while the file loads again', async () => {
    await d.startReady();
    expect(oursByDst(ns).size).toBe(N);
    await d.stop('SIGKILL');
    const watcher = new RouteWatcher(ns);
    // Listening once it has seen a marker route (a fixed wait could miss the first deletes on a busy machine).
    let mtu = 1300;
    await until(() => {
      if (!watcher.lines().some((l) => l.includes('192.0.2.200'))) ns.ip('route', 'replace', '192.0.2.200/32', 'dev', 'veth0', 'proto', 'static', 'mtu', String(mtu++));
      return watcher.lines().some((l) => l.includes('192.0.2.200'));
    }, 30000, 100);
    ns.ip('route', 'del', '192.0.2.200/32', 'dev', 'veth0', 'proto', 'static');
    await until(() => watcher.lines().some((l) => l.startsWith('Deleted 192.0.2.200')), 10000);
    const seenBefore = watcher.lines().length;
    await d.startReady();
    const changes = (await watcher.stop()).slice(seenBefore);
    expect(changes).toEqual([]);
    expect(oursByDst(ns).size).toBe(N);
  });

  it('refuses a file with a bad last line before the kernel protocol runs: the kernel stays as it was', async () => {
    await d.stop('SIGKILL');
    const before = oursByDst(ns);
    d.file('routes.txt', lines('192.0.2.3') + 'nonsense\n');
    const logBefore = d.log.length;
    d.start();
    expect(await d.exit()).not.toBe(0);
    const log = d.log.slice(logBefore);
    expect(log).toContain(`routes.txt:${N + 1}:1: "nonsense": not an IPv4 or IPv6 prefix`);
    expect(oursByDst(ns)).toEqual(before);
    expect(log).not.toMatch(/first scan|protocol kernel1/);
  });
});
