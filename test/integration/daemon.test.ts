/**
 * The whole daemon, as an operator runs it: `krtsync run` inside a scratch
 * namespace (ip netns exec), driven through the real CLI and control socket,
 * with sd_notify going to a test-side receiver and iproute2 as the oracle.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnixDatagramSocket } from '../../src/netlink/socket';
import { createNetns, dropNhid, kernelDescribe, type Netns } from '../helpers/netns';
import { showMarker } from '../helpers/kernel-fixture';

const ROOT = join(__dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'krtsync');
const PROTO = '144';

function cli(args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 30000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

/** What to show when a wait times out (the daemon's log, once it runs). */
let context: () => string = () => '';

async function until(what: string, test: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n--- krtsync's log, last 30 lines ---\n${context().split('\n').slice(-31).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

kernelDescribe('krtsync run (end to end)', () => {
  let ns: Netns;
  let dir: string;
  let daemon: ChildProcess | undefined;
  let notify: UnixDatagramSocket;
  const notes: string[] = [];
  let log = '';

  const ours = (fam: '-4' | '-6' = '-4'): string[] =>
    ns
      .ip(fam, 'route', 'show', 'proto', PROTO)
      .trim()
      .split('\n')
      .filter((l) => l && !l.startsWith('\t'))
      .map((l) => dropNhid(l.trim()));
  const sock = (): string[] => ['--socket', join(dir, 'krtsync.sock')];

  beforeAll(() => {
    context = () => log;
    ns = createNetns('krt-e2e');
    dir = mkdtempSync(join(tmpdir(), 'krt-e2e-'));
    notify = UnixDatagramSocket.open(join(dir, 'notify'));
    notify.start((dgs) => dgs.forEach((d) => notes.push(d.data.toString())));
    writeFileSync(join(dir, 'routes.txt'), '# from a routes file\n10.50.0.0/16 via 192.0.2.2\n10.51.0.0/16 via 192.0.2.2 metric 20\n');
    writeFileSync(
      join(dir, 'krtsync.yaml'),
      `log: { level: info }
control: { socket: ${join(dir, 'krtsync.sock')} }
protocols:
  - name: static1
    type: static
    routes:
      - 10.10.0.0/16 via 192.0.2.2
      - blackhole 10.30.0.0/16
      - 2001:db8:30::/48 via 2001:db8:1::2
    routes_file: routes.txt
  - name: bgp
    type: stream
    grace: 1h
  - name: kernel1
    type: kernel
    kernel_table: main
`,
    );
    // The feed clients' routes stay after they disconnect (grace) until the SIGKILL restart, where nothing
    // announces them again and they go: never at a moment of a timer's choosing (at 5 s, under load, the grace
    // ended inside the reload test, between its before and after, or before the restart test took its baseline).
    // The ExaBGP capture's next hops (198.51.100.1, 2001:db8:1::1) must be neighbors here, not our own addresses.
    ns.ipBatch(['addr del 198.51.100.1/24 dev veth1', 'addr add 198.51.100.2/24 dev veth1', 'addr del 2001:db8:1::1/64 dev veth0', 'addr add 2001:db8:1::3/64 dev veth0 nodad']);
    // A foreign route on a prefix we also install, and one we don't: neither may ever change.
    ns.ip('route', 'add', '10.10.0.0/16', 'via', '192.0.2.9', 'proto', 'static', 'metric', '50');
    ns.ip('route', 'add', '198.51.100.128/25', 'via', '192.0.2.9', 'proto', 'static');
  });

  afterAll(() => {
    daemon?.kill('SIGKILL');
    notify.close();
    ns.destroy();
  });

  it('rejects a bad config with file, line and column before touching anything (exit 2)', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'protocols:\n  - name: s\n    type: static\n    routes: ["10.0.0.1/8 via 192.0.2.2"]\n');
    const r = cli(['check', '--config', bad]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`${bad}:4:15: protocol s: 10.0.0.1/8: host bits set, did you mean 10.0.0.0/8?`);
    const run = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, BIN, 'run', '--config', bad], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^<3>\S+ cannot start: invalid config:\\n.*:4:15: protocol s: 10.0.0.1\/8: host bits set/m);
    // Every problem in one run: a wrong type, a duplicate name, an unknown kernel table name.
    writeFileSync(bad, 'protocols:\n  - { name: s, type: statik }\n  - { name: s, type: kernel, kernel_table: nowhere }\n');
    const all = cli(['check', '--config', bad]);
    expect(all.code).toBe(2);
    expect(all.err.trim().split('\n')).toEqual([
      `krtsync: ${bad}:2:22: protocol s: type: expected one of static, kernel, api, stream`,
      `${bad}:3:5: protocol s: the name is already used by a table or another protocol`,
      `${bad}:3:44: protocol s: kernel table "nowhere": no such name in rt_tables or rt_tables.d (use a number, or add the name there)`,
      '3 problems',
    ]);
    expect(ours()).toEqual([]);
    expect(cli(['check', '--config', join(dir, 'krtsync.yaml')])).toMatchObject({ code: 0 });
  });

  it('starts, installs the configured routes, then says READY=1 with a status', async () => {
    daemon = spawn('ip', ['netns', 'exec', ns.name, process.execPath, BIN, 'run', '--config', join(dir, 'krtsync.yaml')], {
      env: { ...process.env, NOTIFY_SOCKET: join(dir, 'notify') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr!.on('data', (c) => (log += String(c)));
    await until('READY=1', () => notes.some((n) => n.startsWith('READY=1')));
    expect(notes.find((n) => n.startsWith('READY=1'))).toMatch(/STATUS=5 routes in 2 tables; 5 installed in the kernel/);
    expect(ours().sort()).toEqual(['10.10.0.0/16 via 192.0.2.2 dev veth0', '10.50.0.0/16 via 192.0.2.2 dev veth0', '10.51.0.0/16 via 192.0.2.2 dev veth0 metric 20', 'blackhole 10.30.0.0/16']);
    expect(ours('-6')).toEqual(['2001:db8:30::/48 via 2001:db8:1::2 dev veth0 metric 1024 pref medium']);
    // The line is logged right after READY=1 is sent; the pipe may bring it a moment after the datagram.
    await until('the ready log line', () => /^<6>\S+Z krtsync ready/m.test(log));
  });

  it('shows status, protocols and routes, as tables and as JSON', () => {
    const status = cli(['show', 'status', ...sock()]);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(/ready/);
    const routes = JSON.parse(cli(['show', 'routes', '10.0.0.0/8', '--json', ...sock()]).out) as Array<{ prefix: string; source: string }>;
    expect(routes.map((r) => r.prefix)).toEqual(['10.10.0.0/16', '10.30.0.0/16', '10.50.0.0/16', '10.51.0.0/16']);
    const human = cli(['show', 'routes', '2001:db8::/32', ...sock()]).out;
    expect(human).toMatch(/^PREFIX +BEST +ROUTE/);
    expect(human).toMatch(/2001:db8:30::\/48 +\* +via 2001:db8:1::2 +static1/);
    const protos = JSON.parse(cli(['show', 'protocols', '--json', ...sock()]).out) as Array<{ name: string; state: string }>;
    expect(protos.map((p) => `${p.name} ${p.state}`)).toEqual(['static1 up', 'bgp up', 'api up', 'kernel1 up']);
    const kernel = JSON.parse(cli(['show', 'kernel', '--json', ...sock()]).out) as Array<{ net: string; state: string }>;
    expect(kernel.filter((k) => k.state === 'installed')).toHaveLength(5);
    // Nexthop objects (on by default): 192.0.2.2 on veth0 for three IPv4 nets, 2001:db8:1::2 for one IPv6 net; the
    // blackhole has none. The ids are what the kernel holds.
    const nexthops = JSON.parse(cli(['show', 'kernel', '--nexthops', '--json', ...sock()]).out) as Array<{ id: number; family: number; kind: string; gateway: string; dev: string; routes: number; state: string }>;
    expect(nexthops.map((n) => ({ family: n.family, kind: n.kind, gateway: n.gateway, dev: n.dev, routes: n.routes, state: n.state }))).toEqual([
      { family: 4, kind: 'gateway', gateway: '192.0.2.2', dev: 'veth0', routes: 3, state: 'live' },
      { family: 6, kind: 'gateway', gateway: '2001:db8:1::2', dev: 'veth0', routes: 1, state: 'live' },
    ]);
    expect(nexthops.map((n) => n.id).sort()).toEqual(ns.ipJson<Array<{ id: number }>>('nexthop', 'show').map((o) => o.id).sort());
    expect(cli(['show', 'kernel', '--nexthops', ...sock()]).out).toMatch(/^ID +PROTOCOL +FAMILY +NEXT HOP +ROUTES +STATE\n\d+ +kernel1 +ipv4 +via 192\.0\.2\.2 dev veth0 +3 +live\n/);
  });

  it('adds and deletes routes through the CLI; a bad route is refused and changes nothing', async () => {
    expect(cli(['route', 'add', '203.0.113.0/24', 'via', '192.0.2.5', ...sock()])).toMatchObject({ code: 0, out: 'added 203.0.113.0/24 via 192.0.2.5\n' });
    await until('the api route in the kernel', () => ours().includes('203.0.113.0/24 via 192.0.2.5 dev veth0'));
    const bad = cli(['route', 'add', '203.0.113.0/24', 'via', 'nowhere', ...sock()]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/gateway "nowhere": not an IPv4 or IPv6 address/);
    expect(ours()).toContain('203.0.113.0/24 via 192.0.2.5 dev veth0');
    expect(cli(['route', 'del', '203.0.113.0/24', ...sock()]).code).toBe(0);
    await until('the api route gone', () => !ours().some((l) => l.startsWith('203.0.113.0/24')));
  });

  it('feeds ExaBGP JSON from a process, as ExaBGP would run it', async () => {
    const capture = readFileSync(join(ROOT, 'test', 'fixtures', 'exabgp-4.2.21-receive.jsonl'), 'utf8').trim().split('\n');
    // The capture up to the second round's end-of-RIB: the neighbor is up with 3 IPv4 and 1 IPv6 routes.
    const r = cli(['feed', '--format', 'exabgp', '--client', 'exabgp', ...sock()], capture.slice(0, 12).join('\n') + '\n');
    expect(r).toMatchObject({ code: 0, err: '' });
    await until('the BGP routes in the kernel', () => ours().includes('10.1.0.0/24 via 198.51.100.1 dev veth1'), 5000);
    expect(ours('-6')).toContain('2001:db8:100::/48 via 2001:db8:1::1 dev veth0 metric 1024 pref medium');
    const bad = cli(['feed', ...sock()], '{"announce":"10.60.0.0/24 via 192.0.2.2"}\nnot json\n');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/line 2: not JSON/);
    await until('the good line of a feed with a bad one', () => ours().includes('10.60.0.0/24 via 192.0.2.2 dev veth0'));
  });

  it('reloads in place: changed routes change, a bad file changes nothing', async () => {
    const cfg = join(dir, 'krtsync.yaml');
    const good = readFileSync(cfg, 'utf8');
    writeFileSync(cfg, good.replace('blackhole 10.30.0.0/16', 'unreachable 10.31.0.0/16'));
    const r = cli(['reload', ...sock()]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/protocol static1 reloaded/);
    await until('the reloaded routes', () => ours().includes('unreachable 10.31.0.0/16') && !ours().includes('blackhole 10.30.0.0/16'));
    writeFileSync(cfg, good.replace('kernel_table: main', 'kernel_table: [main]'));
    const before = ours();
    const badReload = cli(['reload', ...sock()]);
    expect(badReload.code).toBe(2); // a bad config, as `krtsync check` and start say it
    expect(badReload.err).toMatch(/krtsync\.yaml:\d+:\d+: protocol kernel1: kernel_table/);
    expect(ours()).toEqual(before);
    // SIGHUP reloads too.
    writeFileSync(cfg, good.replace('10.10.0.0/16 via 192.0.2.2', '10.10.0.0/16 via 192.0.2.3'));
    daemon!.kill('SIGHUP'); // ip netns exec execs the daemon: same pid
    // The whole reload, not its first change: the next test takes the kernel's state as its baseline.
    await until('the SIGHUP reload', () => {
      const now = ours();
      return now.includes('10.10.0.0/16 via 192.0.2.3 dev veth0') && now.includes('blackhole 10.30.0.0/16') && !now.includes('unreachable 10.31.0.0/16');
    });
  });

  it('restarts after SIGKILL without touching a route still wanted; removes what nothing wants any more', async () => {
    const before = ours().sort();
    // `ip -n` (setns only), not `ip netns exec` (which also remounts /sys for the command).
    const monitor = spawn('ip', ['-n', ns.name, 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let events = '';
    let monitorErr = '';
    monitor.stdout!.on('data', (c) => (events += String(c)));
    monitor.stderr!.on('data', (c) => (monitorErr += String(c)));
    // Listening once it shows a change of our own (a foreign marker route, changed until seen, then deleted): a
    // fixed wait could miss the first deletes when the machine is busy.
    await showMarker(ns, '192.0.2.200', 'veth0', () => events.includes('192.0.2.200')).catch((e: Error) => {
      throw new Error(`ip monitor to listen: ${e.message}; ip monitor: exit ${monitor.exitCode ?? 'none yet'}, stderr ${JSON.stringify(monitorErr)}, stdout ${JSON.stringify(events.slice(-500))}\n${context()}`);
    });
    await until('the marker route gone', () => events.includes('Deleted 192.0.2.200'));
    events = '';
    const killed = new Promise((r) => daemon!.on('exit', r));
    daemon!.kill('SIGKILL');
    await killed;
    expect(ours().sort()).toEqual(before); // a crash leaves the kernel as it was
    const readyBefore = notes.filter((n) => n.startsWith('READY=1')).length;
    daemon = spawn('ip', ['netns', 'exec', ns.name, process.execPath, BIN, 'run', '--config', join(dir, 'krtsync.yaml')], {
      env: { ...process.env, NOTIFY_SOCKET: join(dir, 'notify') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr!.on('data', (c) => (log += String(c)));
    await until('READY=1 after the restart', () => notes.filter((n) => n.startsWith('READY=1')).length > readyBefore);
    // READY=1 follows the first sync's answers, and the kernel queues a change's notification to listeners
    // before it answers: a marker changed now reaches the monitor after every change of the restart, and
    // the monitor prints in order, so once it shows the marker it has printed them all (a fixed wait after
    // READY=1 missed a delete under load).
    await showMarker(ns, '192.0.2.201', 'veth0', () => events.includes('192.0.2.201'));
    monitor.kill();
    // The stream clients' routes are not wanted after a restart (no client has reconnected): they go.
    // Nothing else may change: no delete, re-add or replace of a static route.
    const streamed = ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24', '10.60.0.0/24', '2001:db8:100::/48'];
    const changes = events
      .split('\n')
      .filter((l) => l && !l.startsWith('\t'))
      .filter((l) => !l.includes('192.0.2.201'));
    expect(changes.filter((l) => !streamed.some((p) => l.startsWith(`Deleted ${p} `)))).toEqual([]);
    expect(changes).toHaveLength(streamed.length);
    expect(ours().sort()).toEqual(before.filter((l) => !streamed.some((p) => l.startsWith(`${p} `))));
  });

  it('withdraws every route of ours on SIGTERM before it exits, and leaves foreign routes alone', async () => {
    expect(ours().length).toBeGreaterThan(0);
    expect(daemon!.exitCode).toBeNull(); // still running (a restart that failed above would otherwise leave this waiting)
    const exited = new Promise<number | null>((r) => daemon!.on('exit', (code) => r(code)));
    daemon!.kill('SIGTERM');
    expect(await exited).toBe(0);
    daemon = undefined;
    expect(ours()).toEqual([]);
    expect(ours('-6')).toEqual([]);
    expect(ns.ip('route', 'show', 'proto', 'static').trim().split('\n').map((l) => l.trim())).toEqual([
      '10.10.0.0/16 via 192.0.2.9 dev veth0 metric 50',
      '198.51.100.128/25 via 192.0.2.9 dev veth0',
    ]);
    expect(notes.some((n) => n.startsWith('STOPPING=1'))).toBe(true);
    expect(log).toMatch(/krtsync stopped/);
  });
});
