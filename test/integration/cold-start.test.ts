/**
 * The start's contract with a routes file, on one big enough that its load
 * spans many event-loop turns (20,000 lines; the real daemon, iproute2 as the
 * oracle). On a cold start the kernel protocol starts beside the file's load
 * and follows it in its first feed; on a restart (the kernel holds routes of
 * ours) its first dump waits for the load (docs/architecture.md, "The
 * daemon"). Either way a restart prunes nothing a source is still to bring (0
 * kernel changes), and a bad line, even the last, stops the start before any
 * kernel change, on a restart and on a cold start alike. A routes file that is
 * a FIFO, written half, shows which order each start takes.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { KrtsyncDaemon, oursByDst } from '../helpers/daemon-fixture';
import { RouteWatcher, showMarker, until } from '../helpers/kernel-fixture';

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
    await showMarker(ns, '192.0.2.200', 'veth0', () => watcher.lines().some((l) => l.includes('192.0.2.200')));
    await until(() => watcher.lines().some((l) => l.startsWith('Deleted 192.0.2.200')), 10000);
    const seenBefore = watcher.lines().length;
    const logBefore = d.log.length;
    await d.startReady();
    const changes = (await watcher.stop()).slice(seenBefore);
    expect(changes).toEqual([]);
    expect(oursByDst(ns).size).toBe(N);
    expect(d.log.slice(logBefore)).toContain('the kernel holds routes of ours: the first dump waits for the sources to load');
  });

  /** A cold kernel: our nexthop objects first (the routes on them go with them; a route flush refuses them), then any route of ours left. */
  const flushOurs = (): void => {
    ns.ip('nexthop', 'flush', 'proto', '144');
    ns.ip('route', 'flush', 'proto', '144');
    expect(oursByDst(ns).size).toBe(0);
  };

  /** Watches the kernel's route changes around `fn` (stopped whatever happens); returns ours. */
  const watching = async (fn: () => Promise<void>): Promise<string[]> => {
    const watcher = new RouteWatcher(ns);
    let seen: string[] = [];
    try {
      await watcher.ready();
      await fn();
    } finally {
      seen = await watcher.stop();
    }
    return ourChanges(seen);
  };

  /** Lines of ours among `ip monitor`'s (our routes are under 10.100.0.0/15). */
  const ourChanges = (lines: readonly string[]): string[] => lines.filter((l) => /\b10\.10[01]\./.test(l));

  it('refuses a file with a bad last line with the kernel as it was, though the kernel protocol ran beside the load', async () => {
    await d.stop('SIGKILL');
    const before = oursByDst(ns);
    d.file('routes.txt', lines('192.0.2.3') + 'nonsense\n');
    const logBefore = d.log.length;
    const changes = await watching(async () => {
      d.start();
      expect(await d.exit()).toBe(2);
    });
    const log = d.log.slice(logBefore);
    expect(log).toContain(`routes.txt:${N + 1}:1: "nonsense": not an IPv4 or IPv6 prefix`);
    expect(changes).toEqual([]);
    expect(oursByDst(ns)).toEqual(before);
  });

  it('adds nothing on a cold start whose file has a bad last line', async () => {
    flushOurs();
    const changes = await watching(async () => {
      d.start();
      expect(await d.exit()).toBe(2);
    });
    expect(changes).toEqual([]);
    expect(oursByDst(ns).size).toBe(0);
  });

  describe('with the routes file a FIFO, written half and then the rest', () => {
    const fifo = (): string => join(d.dir, 'routes.fifo');
    let writer: ReturnType<typeof spawn> | undefined;

    beforeAll(() => {
      execFileSync('mkfifo', [fifo()]);
      d.writeConfig(`protocols:
  - { name: static1, type: static, routes_file: ${fifo()} }
  - { name: kernel1, type: kernel, family: ipv4, kernel_table: main }
`);
    });

    afterEach(async () => {
      writer?.kill();
      if (d.running) await d.stop('SIGKILL');
    });

    /** Starts the daemon on the FIFO and a writer that writes `text`, and holds the FIFO open unless `end`. */
    const startWriting = (text: string, end: boolean): void => {
      d.start();
      writer = spawn('sh', ['-c', `exec cat > ${fifo()}`], { stdio: ['pipe', 'ignore', 'ignore'] });
      if (end) writer.stdin!.end(text);
      else writer.stdin!.write(text);
    };

    /** A daemon that installed the whole file on a cold start, then killed: the kernel holds routes of ours. */
    const installedThenKilled = async (): Promise<void> => {
      flushOurs();
      const n = d.readyCount;
      startWriting(lines('192.0.2.2'), true);
      await d.waitReady(n);
      expect(oursByDst(ns).size).toBe(N);
      await d.stop('SIGKILL');
    };

    /** Starts the daemon on the FIFO, writes the first half of `text`'s lines, and waits for the kernel protocol's first scan. */
    const startHalf = async (text: string): Promise<{ rest: string; logBefore: number }> => {
      flushOurs();
      const all = text.split('\n');
      const half = all.slice(0, N / 2).join('\n') + '\n';
      const logBefore = d.log.length;
      startWriting(half, false);
      await until(() => /first scan: 0 routes of ours/.test(d.log.slice(logBefore)), 30000, 50);
      return { rest: all.slice(N / 2).join('\n'), logBefore };
    };

    it('runs the kernel protocol while the file loads, sends nothing before its end, then installs it all', async () => {
      const n = d.readyCount;
      const { rest, logBefore } = await startHalf(lines('192.0.2.2'));
      // The kernel protocol is in its first feed, following a load that has not ended: nothing sent.
      expect(d.readyCount).toBe(n);
      expect(oursByDst(ns).size).toBe(0);
      expect(d.log.slice(logBefore)).not.toMatch(/protocol static1 \(static\) up/);
      writer!.stdin!.end(rest);
      await d.waitReady(n);
      expect(oursByDst(ns).size).toBe(N);
      await d.stop('SIGTERM');
      expect(oursByDst(ns).size).toBe(0);
    });

    it('on a restart, dumps the kernel only once the file is in, and changes nothing', async () => {
      await installedThenKilled();
      const all = lines('192.0.2.2').split('\n');
      const logBefore = d.log.length;
      const changes = await watching(async () => {
        const n = d.readyCount;
        startWriting(all.slice(0, N / 2).join('\n') + '\n', false);
        await until(() => /the kernel holds routes of ours/.test(d.log.slice(logBefore)), 30000, 50);
        // Waiting for the rest of the file: no dump taken yet.
        expect(d.log.slice(logBefore)).not.toMatch(/first scan/);
        writer!.stdin!.end(all.slice(N / 2).join('\n'));
        await d.waitReady(n);
      });
      const log = d.log.slice(logBefore);
      expect(log.indexOf(`loaded ${N} routes`)).toBeGreaterThan(0);
      expect(log.indexOf(`first scan: ${N} routes of ours`)).toBeGreaterThan(log.indexOf(`loaded ${N} routes`));
      expect(changes).toEqual([]);
      expect(oursByDst(ns).size).toBe(N);
    });

    it('on a restart, a SIGTERM while the first dump waits for the file stops at once: ours withdrawn, objects too, foreign routes kept', async () => {
      await installedThenKilled();
      expect(ns.ip('nexthop', 'show', 'proto', '144')).not.toBe('');
      // Someone else's routes on the same prefixes (another protocol, another metric) and beside them.
      ns.ip('route', 'add', '10.100.0.5/32', 'via', '192.0.2.2', 'proto', 'static', 'metric', '50');
      ns.ip('route', 'add', '10.101.0.0/16', 'via', '192.0.2.2', 'proto', 'static');
      const foreignBefore = ns.ip('route', 'show', 'proto', 'static');
      const logBefore = d.log.length;
      const n = d.readyCount;
      // Half the file, held open: the load never ends by itself.
      startWriting(lines('192.0.2.2').split('\n').slice(0, N / 2).join('\n') + '\n', false);
      await until(() => /the kernel holds routes of ours/.test(d.log.slice(logBefore)), 30000, 50);
      // The shutdown does not wait for the file, and the process exits with the writer still there:
      // the FIFO is read on the event loop, not by a read blocked in libuv's thread pool (joined at exit).
      d.proc!.kill('SIGTERM');
      expect(await d.exit(20000)).toBe(0);
      expect(d.log.slice(logBefore)).toContain('krtsync stopped');
      expect(writer!.exitCode).toBeNull();
      expect(d.readyCount).toBe(n);
      expect(d.log.slice(logBefore)).not.toMatch(/first scan/);
      expect(oursByDst(ns).size).toBe(0);
      expect(ns.ip('nexthop', 'show', 'proto', '144')).toBe('');
      expect(ns.ip('route', 'show', 'proto', 'static')).toBe(foreignBefore);
      ns.ip('route', 'del', '10.100.0.5/32', 'proto', 'static', 'metric', '50');
      ns.ip('route', 'del', '10.101.0.0/16', 'proto', 'static');
    });

    it('stops the start on a bad last line that comes after the kernel protocol has read the first half: nothing added', async () => {
      flushOurs();
      const changes = await watching(async () => {
        const { rest } = await startHalf(lines('192.0.2.2'));
        writer!.stdin!.end(rest + 'nonsense\n');
        expect(await d.exit()).toBe(2);
      });
      expect(changes).toEqual([]);
      expect(oursByDst(ns).size).toBe(0);
    });
  });
});
