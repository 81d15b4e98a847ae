/**
 * Load and abuse against the real daemon: another process churning 100,000
 * foreign routes while we sync ours (a notification storm), stream clients
 * that drop mid-feed, reconnect, or send a flood of routes and vanish, and the
 * control socket under garbage, oversized and slow requests and 100 clients
 * at once.
 *
 * Promises checked: after each storm the kernel holds exactly the routes the
 * test computed (ours) and exactly the foreign routes the churner left; a
 * client's half-sent line is dropped, never half-applied; a vanished client's
 * routes go after its grace period; abuse of the control socket changes no
 * route and never stops the daemon from answering others.
 */
import { spawn } from 'node:child_process';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { controlConnection, foreign, KrtsyncDaemon, mapDiff, oursByDst, sleep, soakScale, until } from '../helpers/daemon-fixture';

const OURS = soakScale(20_000, 100_000);
const CHURN = soakScale(100_000, 300_000);
const FLOOD = soakScale(100_000, 1_000_000);

/** `ip -batch` as a separate process, so it runs while the daemon works. */
function batch(ns: Netns, lines: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns.name, 'ip', '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    p.on('error', reject);
    p.on('exit', () => resolve());
    p.stdin.end(lines.join('\n') + '\n');
  });
}

const connect = controlConnection;

const host = (base: number, i: number): string => `10.${base + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

kernelDescribe('load and abuse (whole daemon)', () => {
  let ns: Netns;
  let d: KrtsyncDaemon;
  const want = new Map<string, string>();

  beforeAll(() => {
    ns = createNetns('krt-load');
    d = new KrtsyncDaemon(ns, 'krt-load');
    for (let i = 0; i < OURS; i++) want.set(host(100, i), 'via 192.0.2.2');
    d.file('routes.txt', [...want.keys()].map((h) => `${h}/32 via 192.0.2.2`).join('\n') + '\n');
    d.writeConfig(`protocols:
  - name: static1
    type: static
    routes_file: routes.txt
  - name: bgp
    type: stream
    grace: 2s
  - name: kernel1
    type: kernel
    family: ipv4
`);
  });

  afterAll(async () => {
    await d?.dispose();
    ns?.destroy();
  });

  it(`converges exactly while another process churns ${CHURN} foreign routes and deletes some of ours`, async () => {
    const churn: string[] = [];
    for (let i = 0; i < CHURN; i++) churn.push(`route add ${host(180, i)}/32 via 192.0.2.9 proto static`);
    for (let i = 0; i < CHURN; i++) if (i % 100 !== 0) churn.push(`route del ${host(180, i)}/32 proto static`);
    const stormDone = batch(ns, churn);
    await d.startReady(120000);
    // Some of ours, deleted behind our back while the storm goes on. (A separate batch: after one failed
    // command, iproute2 6.1's batch mode fails every later "route del ... proto X".)
    const deletes = batch(ns, Array.from({ length: 200 }, (_, i) => `route del ${host(100, i * 7)}/32 proto 144`));
    await Promise.all([stormDone, deletes]);
    // Quiescence: the kernel holds exactly what we want, whatever was lost in the storm.
    await until('exact convergence after the storm', () => mapDiff(want, oursByDst(ns)).length === 0, 60000, 200);
    const left = foreign(ns).filter((l) => / via 192\.0\.2\.9 /.test(l));
    expect(left).toHaveLength(CHURN / 100);
    const overflows = (d.log.match(/notification socket overflowed/g) ?? []).length;
    process.stdout.write(`storm: ${CHURN} foreign adds + deletes, ${OURS} ours; overflow log lines: ${overflows}\n`);
  });

  it('drops a half-sent line of a client that vanishes mid-feed; its reconnect with end-of-RIB leaves exactly what it re-announced', async () => {
    const c1 = await connect(d.socket);
    c1.sock.write('{"id":1,"command":"feed","args":{"client":"c1"}}\n');
    const first = Array.from({ length: 1000 }, (_, i) => `{"announce":"${host(60, i)}/32 via 192.0.2.3"}`);
    c1.sock.write(first.join('\n') + '\n{"announce":"10.61.0.0/24 via 192.');
    await until('the first 1000 stream routes', () => oursByDst(ns).size === OURS + 1000, 20000);
    c1.sock.destroy();
    await sleep(100);
    const c2 = await connect(d.socket);
    c2.sock.write('{"id":1,"command":"feed","args":{"client":"c1"}}\n');
    const second = Array.from({ length: 500 }, (_, i) => `{"announce":"${host(60, i * 2)}/32 via 192.0.2.3"}`);
    c2.sock.write(second.join('\n') + '\n{"eor":true}\n');
    const expected = new Map(want);
    for (let i = 0; i < 500; i++) expected.set(host(60, i * 2), 'via 192.0.2.3');
    await until('exactly the re-announced routes', () => mapDiff(expected, oursByDst(ns)).length === 0, 20000);
    await until('the answer to the reconnect', () => c2.got.length > 0, 5000);
    expect(c2.got.map((l) => JSON.parse(l) as { ok: boolean })).toEqual([{ id: 1, ok: true, result: expect.anything() }]);
    c2.sock.destroy();
    await until('c1 routes gone after its grace period', () => mapDiff(want, oursByDst(ns)).length === 0, 20000);
  });

  const streamRoutes = (): number => (JSON.parse(d.cli(['show', 'protocols', '--json']).out) as Array<{ name: string; routes: number }>).find((p) => p.name === 'bgp')!.routes;

  it(`takes ${FLOOD} routes from a client that then vanishes, withdraws them after its grace period, and keeps answering`, async () => {
    if (!d.running) await d.startReady(); // when run alone (-t)
    const c = await connect(d.socket);
    c.sock.write('{"id":1,"command":"feed","args":{"client":"flood"}}\n');
    const chunk: string[] = [];
    for (let i = 0; i < FLOOD; i++) {
      chunk.push(`{"announce":"${host(20, i)}/32 via 192.0.2.3"}`);
      if (chunk.length === 10000) {
        if (!c.sock.write(chunk.join('\n') + '\n')) await new Promise((r) => c.sock.once('drain', r));
        chunk.length = 0;
      }
    }
    c.sock.write(chunk.join('\n') + '\n');
    await new Promise<void>((r) => c.sock.end(r));
    c.sock.destroy();
    // While the flood is digested the daemon still answers.
    expect(d.cli(['show', 'status']).code).toBe(0);
    // The client is gone; after its grace period only the static routes remain.
    const t0 = Date.now();
    await until('the flood withdrawn', () => mapDiff(want, oursByDst(ns)).length === 0 && streamRoutes() === 0, 240000, 500);
    process.stdout.write(`flood: ${FLOOD} routes, withdrawn ${Date.now() - t0} ms after the client left\n`);
    expect(errorsOf(d.log)).toEqual([]);
  }, 300000);

  it('changes no route and keeps serving under garbage, oversized and slow requests and 100 clients at once', async () => {
    const before = oursByDst(ns);
    const garbage = await Promise.all(Array.from({ length: 5 }, () => connect(d.socket)));
    garbage.forEach((g, i) => g.sock.write(`${'\u0000\u00ff{'.repeat(i + 1)}not json\n{"command":"route-add","args":{"route":"10.0.0.0/8 via nowhere"}}\n{"command":"route-del","args":{"prefix":"10.100.0.0/16x"}}\n`));
    const big = await connect(d.socket);
    big.sock.write(`{"command":"route-add","args":{"route":"${'9'.repeat(2 << 20)}"}}\n{"id":2,"command":"show-status"}\n`);
    const slow = await Promise.all(Array.from({ length: 3 }, () => connect(d.socket)));
    const slowWrite = (async () => {
      for (const ch of '{"id":9,"command":"show-st') {
        slow.forEach((s) => s.sock.write(ch));
        await sleep(20);
      }
    })();
    const clients = await Promise.all(Array.from({ length: 100 }, () => connect(d.socket)));
    clients.forEach((c, i) => c.sock.write(`{"id":${i},"command":"show-status"}\n`));
    await until('100 answers', () => clients.every((c) => c.got.length === 1), 20000);
    expect(clients.map((c) => (JSON.parse(c.got[0]!) as { id: number; ok: boolean }).ok)).toEqual(Array(100).fill(true));
    await until('garbage answered', () => garbage.every((g) => g.got.length === 3), 10000);
    for (const g of garbage) expect(g.got.map((l) => (JSON.parse(l) as { error?: { code: string } }).error?.code)).toEqual(['KRT_ERR_BAD_REQUEST', expect.any(String), expect.any(String)]);
    await until('oversized answered', () => big.got.length === 2, 10000);
    expect(JSON.parse(big.got[0]!).error.code).toBe('KRT_ERR_LINE_TOO_LONG');
    expect(JSON.parse(big.got[1]!)).toMatchObject({ id: 2, ok: true });
    await slowWrite;
    expect(mapDiff(before, oursByDst(ns))).toEqual([]);
    for (const s of [...garbage, big, ...slow, ...clients]) s.sock.destroy();
    expect(d.cli(['show', 'status']).code).toBe(0);
  });

  it('withdraws everything on SIGTERM, leaving what the churner left', async () => {
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(oursByDst(ns).size).toBe(0);
    expect(foreign(ns).filter((l) => / via 192\.0\.2\.9 /.test(l))).toHaveLength(CHURN / 100);
  });
});

/** Error-level log lines (`<3>`), which a correct run under load must not have. */
function errorsOf(log: string): string[] {
  return log.split('\n').filter((l) => l.startsWith('<3>'));
}
