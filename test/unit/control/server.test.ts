import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, unlinkSync, watch, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { ControlClient } from '../../../src/control/client';
import { ControlError, MAX_REQUEST_BYTES, parseRequest } from '../../../src/control/protocol';
import { LineSplitter } from '../../../src/lib/line-splitter';
import { ControlServer, groupId, type ControlHandler } from '../../../src/control/server';
import { UnixDatagramSocket } from '../../../src/netlink/socket';
import { deafClient } from '../../helpers/deaf-client';

function socketPath(): string {
  return join(mkdtempSync(join(tmpdir(), 'krt-ctl-')), 'krtsync.sock');
}

/** A raw client: write bytes, read answer lines. */
function raw(path: string): Promise<{ sock: Socket; lines: () => Promise<string[]>; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    let buf = '';
    const waiters: Array<() => void> = [];
    sock.on('data', (c) => {
      buf += String(c);
      waiters.splice(0).forEach((w) => w());
    });
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    const lines = async (): Promise<string[]> => {
      while (!buf.includes('\n')) await new Promise<void>((r) => waiters.push(r));
      const out = buf.split('\n');
      buf = out.pop()!;
      return out;
    };
    sock.once('connect', () => resolve({ sock, lines, closed }));
    sock.once('error', reject);
  });
}

const echo: ControlHandler = async (req, ctx) => {
  switch (req.command) {
    case 'echo':
      return req.args;
    case 'slow':
      await new Promise((r) => setTimeout(r, Number(req.args.ms ?? 50)));
      return 'slow done';
    case 'big':
      for (let i = 0; i < 5; i++) await ctx.more([i * 2, i * 2 + 1]);
      return { total: 10 };
    case 'fail':
      throw new ControlError('KRT_ERR_TEST', 'asked to fail');
    case 'feed': {
      const got: string[] = [];
      ctx.takeOver({
        onLine: (line, n) => {
          got.push(line);
          ctx.send({ line: n, echo: line });
        },
        onClose: () => closedFeeds.push(got),
      });
      return 'feeding';
    }
    default:
      throw new ControlError('KRT_ERR_UNKNOWN_COMMAND', `unknown command ${req.command}`);
  }
};
const closedFeeds: string[][] = [];

/** A reader in its own process (argv: socket path, mark file): see the late-loop stall test. */
const READER = `
const net = require('node:net');
const fs = require('node:fs');
const [path, mark] = process.argv.slice(1);
const s = net.connect(path, () => s.write('{"id":1,"command":"stream","args":{"n":200}}\\n'));
s.pause();
let n = 0;
let tail = '';
process.stdin.once('data', () => {
  s.on('data', (c) => {
    n += c.length;
    fs.writeFileSync(mark, String(n));
    tail = (tail + c.toString('latin1')).slice(-200);
    if (tail.includes('"result":"all sent"')) process.exit(0);
  });
  s.resume();
});
s.on('close', () => process.exit(3));
`;

describe('control protocol', () => {
  it('validates requests and says what is wrong', () => {
    expect(parseRequest('{"id":1,"command":"show-status"}')).toEqual({ id: 1, command: 'show-status', args: {} });
    expect(() => parseRequest('nope')).toThrow(/not JSON/);
    expect(() => parseRequest('[1]')).toThrow(/JSON object/);
    expect(() => parseRequest('{"command":"x","extra":1}')).toThrow(/unknown field "extra"/);
    expect(() => parseRequest('{"command":5}')).toThrow(/"command" must be/);
    expect(() => parseRequest('{"command":"x","args":[]}')).toThrow(/"args" must be a JSON object/);
    expect(() => parseRequest('{"command":"x","id":{}}')).toThrow(/"id" must be/);
  });

  it('splits lines and skips an oversized one without losing the next', () => {
    const lines: string[] = [];
    let overflows = 0;
    const s = new LineSplitter(10, (l) => lines.push(l), () => overflows++);
    s.push(Buffer.from('abc\r\nde'));
    s.push(Buffer.from('f\n0123456789ABCDEF'));
    s.push(Buffer.from('GHIJ\nok\n'));
    expect(lines).toEqual(['abc', 'def', 'ok']);
    expect(overflows).toBe(1);
  });

  it('resolves group names from the group file', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'krt-grp-')), 'group');
    writeFileSync(f, 'root:x:0:\nkrtsync:x:998:alice\n');
    expect(groupId('krtsync', f)).toBe(998);
    expect(groupId('nobody-here', f)).toBeUndefined();
    expect(groupId('42', f)).toBe(42);
  });
});

/** POSIX only, like the whole daemon. */
const egid = process.getegid!();

describe('control server', () => {
  let path: string;
  let server: ControlServer;
  beforeEach(async () => {
    path = socketPath();
    // Our own group: what the systemd unit arranges (Group=), so no chown is needed.
    server = new ControlServer({ path, mode: 0o660, group: String(egid), requestTimeoutMs: 300 }, echo);
    await server.listen();
  });
  afterEach(async () => server.close());

  it('listens with mode 0660 and the configured group', () => {
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(egid);
  });

  // Root may give the socket to any group; anyone else only to a group they are in (and the unit's
  // syscall filter forbids chown altogether): then listen() fails with what to change, not a crash.
  const root = process.geteuid!() === 0;
  const otherGroup = root ? 65534 : process.getgroups!().find((g) => g !== egid);
  it(`gives the socket to another group${root || otherGroup !== undefined ? '' : ' only where it may: refused here with a clear error'}`, async () => {
    const p = socketPath();
    const target = otherGroup ?? [1, 2, 3, 4, 5].find((g) => g !== egid)!;
    const s = new ControlServer({ path: p, group: String(target) }, echo);
    if (otherGroup === undefined) {
      await expect(s.listen()).rejects.toMatchObject({ code: 'KRT_ERR_CONTROL_GROUP', message: expect.stringMatching(/cannot give it to group "\d+" \(EPERM\).*Group=/) });
      expect(existsSync(p)).toBe(false);
      return;
    }
    await s.listen();
    expect(statSync(p).gid).toBe(target);
    await s.close();
  });

  it('answers requests in order, with partial results and errors', async () => {
    const c = await ControlClient.connect(path);
    const [a, b, big, failed] = await Promise.allSettled([
      c.request('slow', { ms: 30 }),
      c.request('echo', { x: 1 }),
      c.request('big'),
      c.request('fail'),
    ]);
    expect(a).toMatchObject({ status: 'fulfilled', value: { result: 'slow done' } });
    expect(b).toMatchObject({ status: 'fulfilled', value: { result: { x: 1 } } });
    expect(big).toMatchObject({ status: 'fulfilled', value: { result: { total: 10 }, more: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] } });
    expect(failed.status === 'rejected' && (failed.reason as ControlError).code).toBe('KRT_ERR_TEST');
    c.close();
  });

  it('answers garbage with an error and keeps the connection and other clients working', async () => {
    const r = await raw(path);
    const other = await ControlClient.connect(path);
    r.sock.write('this is not json\n{"command":"echo","args":{"ok":true},"id":7}\n');
    const lines: string[] = [];
    while (lines.length < 2) lines.push(...(await r.lines()));
    expect(JSON.parse(lines[0]!)).toMatchObject({ id: null, ok: false, error: { code: 'KRT_ERR_BAD_REQUEST' } });
    expect(JSON.parse(lines[1]!)).toEqual({ id: 7, ok: true, result: { ok: true } });
    expect((await other.request('echo', { y: 2 })).result).toEqual({ y: 2 });
    r.sock.destroy();
    other.close();
  });

  it('skips a huge request line with an error and answers the next', async () => {
    const r = await raw(path);
    r.sock.write('{"command":"echo","args":{"pad":"' + 'x'.repeat(MAX_REQUEST_BYTES + 10) + '"}}\n{"id":2,"command":"echo"}\n');
    const lines: string[] = [];
    while (lines.length < 2) lines.push(...(await r.lines()));
    expect(JSON.parse(lines[0]!).error.code).toBe('KRT_ERR_LINE_TOO_LONG');
    expect(JSON.parse(lines[1]!)).toEqual({ id: 2, ok: true, result: {} });
    r.sock.destroy();
  });

  it('disconnects a client that does not finish its request in time', async () => {
    const r = await raw(path);
    r.sock.write('{"command":"ec');
    const lines = await r.lines();
    expect(JSON.parse(lines[0]!).error.code).toBe('KRT_ERR_REQUEST_TIMEOUT');
    await r.closed;
  });

  it('closes a connection that sends no request for the idle timeout, but not one still being answered', async () => {
    const idlePath = socketPath();
    const idleServer = new ControlServer({ path: idlePath, idleTimeoutMs: 150 }, echo);
    await idleServer.listen();
    try {
      const r = await raw(idlePath);
      r.sock.write('{"id":1,"command":"slow","args":{"ms":300}}\n');
      const lines: string[] = [];
      while (lines.length < 2) lines.push(...(await r.lines()));
      expect(JSON.parse(lines[0]!)).toEqual({ id: 1, ok: true, result: 'slow done' }); // 300 ms of work outlived a 150 ms idle limit
      expect(JSON.parse(lines[1]!).error.code).toBe('KRT_ERR_IDLE_TIMEOUT');
      await r.closed;
    } finally {
      await idleServer.close();
    }
  });

  it('does not call a client idle whose request arrived in time but was read late (the daemon\'s loop was busy)', async () => {
    const idlePath = socketPath();
    const idleServer = new ControlServer({ path: idlePath, idleTimeoutMs: 150 }, echo);
    await idleServer.listen();
    try {
      const r = await raw(idlePath);
      await until(() => idleServer.clientCount === 1); // accepted: its idle timer runs
      r.sock.write('{"id":1,"command":"echo","args":{"x":1}}\n');
      // The loop blocked past the idle limit, with the request already in the socket: the idle timer
      // then fires in the same turn that reads the request, and before it.
      const t0 = Date.now();
      while (Date.now() - t0 < 300);
      expect(JSON.parse((await r.lines())[0]!)).toEqual({ id: 1, ok: true, result: { x: 1 } });
      expect(idleServer.stats().disconnected.idle).toBe(0);
      r.sock.destroy();
    } finally {
      await idleServer.close();
    }
  });

  it('serves 100 concurrent clients', async () => {
    const clients = await Promise.all(Array.from({ length: 100 }, () => ControlClient.connect(path)));
    const results = await Promise.all(clients.map((c, i) => c.request('echo', { i })));
    expect(results.map((r) => (r.result as { i: number }).i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    clients.forEach((c) => c.close());
  });

  it('hands a connection over to a stream consumer after "feed", in order, until it closes', async () => {
    const r = await raw(path);
    r.sock.write('{"id":1,"command":"feed"}\nfirst line\nsecond line\n');
    const lines: string[] = [];
    while (lines.length < 3) lines.push(...(await r.lines()));
    expect(JSON.parse(lines[0]!)).toEqual({ id: 1, ok: true, result: 'feeding' });
    expect(JSON.parse(lines[1]!)).toEqual({ line: 1, echo: 'first line' });
    expect(JSON.parse(lines[2]!)).toEqual({ line: 2, echo: 'second line' });
    r.sock.end();
    await r.closed;
    await new Promise((res) => setTimeout(res, 20));
    expect(closedFeeds).toContainEqual(['first line', 'second line']);
  });

  it('refuses to start over a live daemon and leaves its socket alone; replaces a stale socket', async () => {
    const second = new ControlServer({ path }, echo);
    await expect(second.listen()).rejects.toThrow(/already listening/);
    await second.close(); // a failed start's stop path: must not remove the live daemon's socket
    expect(lstatSync(path).isSocket()).toBe(true);
    expect((await (await ControlClient.connect(path)).request('echo', { live: 1 })).result).toEqual({ live: 1 });
    await server.close();
    UnixDatagramSocket.open(path).close(); // a stale socket file: nobody listens on it
    expect(lstatSync(path).isSocket()).toBe(true);
    await second.listen();
    expect((await (await ControlClient.connect(path)).request('echo', { z: 1 })).result).toEqual({ z: 1 });
    await second.close();
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a path that holds something other than a socket, and leaves it as it was', async () => {
    await server.close();
    const dir = mkdtempSync(join(tmpdir(), 'krt-ctl-'));
    const file = join(dir, 'file.sock');
    writeFileSync(file, 'precious');
    const sub = join(dir, 'dir.sock');
    mkdirSync(sub);
    const link = join(dir, 'link.sock');
    symlinkSync(file, link);
    for (const [p, what] of [[file, 'a regular file'], [sub, 'a directory'], [link, 'a symbolic link']] as const) {
      const s = new ControlServer({ path: p }, echo);
      await expect(s.listen()).rejects.toThrow(`holds ${what}, not a socket`);
      await s.close();
    }
    expect(readFileSync(file, 'utf8')).toBe('precious');
    expect(lstatSync(sub).isDirectory()).toBe(true);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['dir.sock', 'file.sock', 'link.sock']); // no private directory left behind
  });

  it('does not remove a socket that replaced its own', async () => {
    await server.close();
    const mine = new ControlServer({ path }, echo);
    await mine.listen();
    unlinkSync(path); // someone removed ours and another daemon took the path
    const other = new ControlServer({ path }, echo);
    await other.listen();
    await mine.close();
    expect((await (await ControlClient.connect(path)).request('echo', { other: 1 })).result).toEqual({ other: 1 });
    await other.close();
  });

  it('makes the socket appear at its path with its final mode and group, whatever the umask', async () => {
    await server.close();
    // As root, a group that needs a chown; otherwise our own.
    const group = process.geteuid!() === 0 ? 65534 : egid;
    const s = new ControlServer({ path, mode: 0o660, group: String(group) }, echo);
    // inotify tells creation ("rename") from a later chmod/chown ("change"): the socket must
    // never be reachable at its path before its mode and group are set.
    const events: string[] = [];
    const watcher = watch(dirname(path), (type, name) => name === basename(path) && events.push(type));
    const mask = process.umask(0);
    try {
      await s.listen();
    } finally {
      process.umask(mask);
    }
    await new Promise((r) => setTimeout(r, 100));
    watcher.close();
    expect(events).toEqual(['rename']);
    const st = statSync(path);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(group);
    await s.close();
  });

  it('tells the CLI user why it cannot connect', async () => {
    await expect(ControlClient.connect('/nonexistent/krtsync.sock')).rejects.toThrow(/is krtsync running/);
  });
});

async function until(test: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!test()) {
    if (Date.now() - t0 > ms) throw new Error(`not true within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('control server: clients that do not read', () => {
  const KB32 = 'x'.repeat(32 * 1024);
  let calls = 0;
  let released = 0;
  const handler: ControlHandler = async (req, ctx) => {
    calls++;
    if (req.command === 'blob') return KB32;
    if (req.command === 'stream') {
      try {
        const n = Number(req.args.n ?? 10_000);
        for (let i = 0; i < n; i++) await ctx.more([KB32]);
        return 'all sent';
      } finally {
        released++;
      }
    }
    if (req.command === 'feed') {
      ctx.takeOver({ onLine: (_line, n) => ctx.send({ line: n, error: KB32 }), onClose: () => undefined });
      return 'feeding';
    }
    throw new ControlError('KRT_ERR_UNKNOWN_COMMAND', req.command);
  };
  let path: string;
  let server: ControlServer;
  const disconnects: string[] = [];
  beforeEach(async () => {
    calls = 0;
    released = 0;
    disconnects.length = 0;
    path = socketPath();
    // Request and idle timeouts shorter than the send timeout: waiting for a client to read is neither.
    server = new ControlServer({ path, sendTimeoutMs: 300, requestTimeoutMs: 100, idleTimeoutMs: 150, outputHighWater: 256 * 1024, onDisconnect: (_id, reason) => disconnects.push(reason) }, handler);
    await server.listen();
  });
  afterEach(async () => server.close());

  it('stops answering a pipelining client that does not read, then disconnects it and frees its output', async () => {
    const c = await deafClient(path);
    c.write('{"command":"blob"}\n'.repeat(4000)); // 4,000 answers of 32 KiB: 128 MiB if all were queued
    await until(() => server.clientCount === 0);
    c.destroy();
    // Answered: what fits in the output bound plus the kernel's socket buffers, not 4,000.
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(100);
    expect(disconnects).toEqual(['stalled']);
    const st = server.stats();
    expect(st).toMatchObject({ clients: 0, unreadBytes: 0, disconnected: { stalled: 1, idle: 0, 'request-timeout': 0 } });
  });

  it('a streamed answer that is never read waits at its first unread chunk and is released at the disconnect', async () => {
    const c = await deafClient(path);
    c.write('{"command":"stream"}\n');
    await until(() => server.clientCount === 0);
    c.destroy();
    await new Promise((r) => setImmediate(r));
    expect(calls).toBe(1);
    expect(released).toBe(1); // the handler unwound: whatever it held (a table feeder) is free
    expect(disconnects).toEqual(['stalled']);
  });

  it('releases a streaming handler as soon as its client goes away', async () => {
    // A send timeout no test waits for: only the client's leaving can release the handler.
    const longPath = socketPath();
    const long = new ControlServer({ path: longPath, sendTimeoutMs: 600_000, outputHighWater: 256 * 1024 }, handler);
    await long.listen();
    try {
      const c = await deafClient(longPath);
      c.write('{"command":"stream"}\n');
      await until(() => calls === 1 && long.stats().unreadBytes > 0); // streaming, and waiting for the client
      expect(released).toBe(0);
      c.destroy();
      await until(() => released === 1);
      expect(long.stats().disconnected.stalled).toBe(0); // it left by itself
    } finally {
      await long.close();
    }
  });

  it('keeps a slow client that reads, however long the answer takes', async () => {
    // Its own server: a send timeout far above the client's pauses (40 ms) but below the whole
    // answer's time (about 2.5 s), so only progress, not speed, keeps the client.
    const slowPath = socketPath();
    // Its own list: a late event of this server's connection must not land in the next test's.
    const slowDisconnects: string[] = [];
    const slow = new ControlServer({ path: slowPath, sendTimeoutMs: 1500, requestTimeoutMs: 100, idleTimeoutMs: 150, outputHighWater: 256 * 1024, onDisconnect: (_id, reason) => slowDisconnects.push(reason) }, handler);
    await slow.listen();
    try {
      const sock = createConnection(slowPath);
      let got = 0;
      const done = new Promise<boolean>((resolve) => {
        const splitter = new LineSplitter(1 << 20, (line) => {
          const m = JSON.parse(line) as { more?: unknown[]; result?: unknown };
          if (m.more) got += m.more.length;
          if (m.result !== undefined) resolve(true);
        }, () => undefined);
        sock.on('data', (chunk: Buffer) => {
          splitter.push(chunk);
          // Read in bursts with pauses, each much shorter than the send timeout.
          sock.pause();
          setTimeout(() => sock.resume(), 40);
        });
        sock.on('close', () => resolve(false));
      });
      sock.write('{"id":1,"command":"stream","args":{"n":120}}\n'); // 3.75 MiB, read in 64 KiB bursts 40 ms apart
      expect(await done).toBe(true);
      sock.destroy();
      expect(got).toBe(120);
      expect(slowDisconnects.filter((r) => r !== 'idle')).toEqual([]); // idle only once the answer was all read
    } finally {
      await slow.close();
    }
  }, 30_000);

  it("does not call a client stalled that read in time, when the daemon's loop was too busy to see it", async () => {
    const latePath = socketPath();
    const lateDisconnects: string[] = [];
    const late = new ControlServer({ path: latePath, sendTimeoutMs: 300, outputHighWater: 256 * 1024, onDisconnect: (_id, reason) => lateDisconnects.push(reason) }, handler);
    await late.listen();
    const mark = join(dirname(latePath), 'read');
    writeFileSync(mark, '0');
    // The client is another process, so that it reads while this loop is blocked: it asks for 6 MiB, reads
    // nothing until told on stdin, then reads all of it, noting in `mark` how much it has.
    const client = spawn(process.execPath, ['-e', READER, latePath, mark], { stdio: ['pipe', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((r) => client.on('exit', (code) => r(code)));
    try {
      // The answers wait for the client: the send timer runs from (about) now.
      while (late.stats().unreadBytes === 0) await new Promise((r) => setImmediate(r));
      const armed = Date.now();
      client.stdin!.write('go\n');
      // The loop blocked past the send timeout, while the client read: the timer then fires in the turn
      // that would write into the room it made, and before it.
      while (Date.now() - armed < 400 || Number(readFileSync(mark, 'utf8')) === 0) if (Date.now() - armed > 20_000) throw new Error('the reader never read');
      expect(await exited).toBe(0); // it read the whole answer
      expect(lateDisconnects).toEqual([]);
    } finally {
      client.kill();
      await late.close();
    }
  });

  it('a stream client that never reads its feedback is paused, then disconnected', async () => {
    const c = await deafClient(path);
    c.write('{"command":"feed"}\n');
    let written = 0;
    // Bad lines as fast as the socket takes them; each is answered with 32 KiB of feedback.
    const pump = (): void => {
      while (!c.destroyed && c.write('bad line\n'.repeat(100))) written += 100;
    };
    c.on('drain', pump);
    pump();
    await until(() => server.clientCount === 0);
    c.destroy();
    expect(disconnects).toEqual(['stalled']);
    expect(server.stats().unreadBytes).toBe(0);
    expect(written).toBeLessThan(1_000_000);
  });
});
