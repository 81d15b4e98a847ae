/**
 * The native socket layer: ENOBUFS is a value, never an abort; a pipeline
 * whose acks overflow recovers every result; sockets open inside a named
 * namespace and the thread comes back to its own; close is safe with data
 * queued; AF_UNIX datagrams (sd_notify, journal) go out and come in, with a
 * memfd passed along.
 *
 * And the addon's guards (issue 22): datagrams a process forges are dropped,
 * a send uses the chunk table it checked, buffers too small for a datagram
 * are refused, failed setups leak no fd or poll handle, received fds are
 * close-on-exec and closed when their datagram is dropped, and a socket
 * collected while a send runs does not pull the memory from under it.
 *
 * The send queue (native/send_queue.c): chunks go in the order queued, an
 * error halts it until cleared, close stops its thread mid-send.
 */
import { readdirSync, readFileSync, readlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prefix, parseAddr } from '../../src/lib/addr';
import * as C from '../../src/netlink/constants';
import { NetlinkClient } from '../../src/netlink/client';
import { NetlinkSocketError } from '../../src/netlink/errors';
import { type OpSource, RouteOp, RoutePipeline } from '../../src/netlink/pipeline';
import { encodeRouteRequest } from '../../src/netlink/route-codec';
import { native } from '../../src/netlink/native';
import { NetlinkSocket, UnixDatagram, UnixDatagramSocket, closeFd } from '../../src/netlink/socket';
import { readHeader, writeHeader } from '../../src/netlink/wire';
import { Netns, createNetns, kernelDescribe } from '../helpers/netns';

const ENOBUFS = 105;
const EMSGSIZE = 90;
const O_CLOEXEC = 0o2000000;

/** Our open fds, as their link targets. */
function openFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.push(readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      /* the fd of the directory listing itself */
    }
  }
  return out;
}

/** `n` NLMSG_NOOP requests with NLM_F_ACK, seq first..first+n-1, 16 bytes each: the kernel acks each one. */
function noops(n: number, first: number): Buffer {
  const b = Buffer.alloc(16 * n);
  for (let i = 0; i < n; i++) writeHeader(b, 16 * i, 16, C.NLMSG_NOOP, C.NLM_F_REQUEST | C.NLM_F_ACK, first + i);
  return b;
}

/** The seqs of every ack queued on `s` now. */
function ackedSeqs(s: NetlinkSocket): number[] {
  const seqs: number[] = [];
  for (;;) {
    const r = s.receive();
    for (let off = 0; off < r.bytes; ) {
      const h = readHeader(s.buffer, off);
      if (h.type === C.NLMSG_ERROR) seqs.push(h.seq);
      off += (h.len + 3) & ~3;
    }
    if (r.dry) return seqs;
  }
}

function routes(n: number, cmd: 'add' | 'delete'): RouteOp[] {
  const gateway = parseAddr('192.0.2.2');
  const ops: RouteOp[] = [];
  for (let i = 0; i < n; i++) {
    ops.push({ cmd, route: { family: 4, dst: Prefix.v4((10 << 24) | (i << 8), 24), tos: 0, table: 300, protocol: 250, scope: 0, type: 1, flags: 0, gateway } });
  }
  return ops;
}

kernelDescribe('native sockets', () => {
  let ns: Netns;
  beforeAll(() => {
    ns = createNetns('nlnat');
  });
  afterAll(() => ns?.destroy());
  // The tests share table 300: one that fails half way must not leave its routes to the next.
  afterEach(() => {
    try {
      ns.ip('route', 'flush', 'table', '300');
    } catch {
      // the table does not exist yet (or any more): nothing to flush
    }
  });

  it('hands ENOBUFS to JS as a value and the socket keeps working', () => {
    const s = NetlinkSocket.open({ netns: ns.name, groups: [C.RTNLGRP_IPV4_ROUTE], rcvbuf: 1024, recvBufferSize: 65536 });
    try {
      ns.ipBatch(Array.from({ length: 500 }, (_, i) => `route add 10.1.${i >> 8}.${i & 255}/32 via 192.0.2.2 table 301`));
      const errnos: number[] = [];
      for (let i = 0; i < 100; i++) {
        const r = s.receive();
        errnos.push(r.errno);
        if (r.dry) break;
      }
      expect(errnos).toContain(ENOBUFS);
      ns.ip('route', 'add', '203.0.113.0/24', 'via', '192.0.2.2', 'table', '301');
      const r = s.receive();
      expect(r.errno).toBe(0);
      expect(r.bytes).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  });

  it('recovers every result when the pipeline overflows its own ack buffer', async () => {
    // Only failures and the last request of each send are answered, so the answers that overflow are
    // errors: each add of a new route is followed by a delete of a route that is not there (ESRCH),
    // with a receive buffer that holds a handful of answers and a window of thousands.
    const pipe = RoutePipeline.open({ netns: ns.name, rcvbuf: 4096, window: 4096 });
    const client = NetlinkClient.open({ netns: ns.name });
    try {
      const adds = routes(3000, 'add');
      const absent = routes(6000, 'delete').slice(3000);
      const ops = adds.flatMap((op, i) => [op, absent[i]!]);
      const r = await pipe.submit(ops);
      expect(pipe.stats.overflows).toBeGreaterThan(0);
      expect(r.rechecked).toBeGreaterThan(0);
      expect(r.ok + r.failed.length).toBe(6000);
      // Every add succeeded; a delete either failed with ESRCH or, its error lost, was found done by the re-check.
      for (const f of r.failed) {
        expect(f.op.cmd).toBe('delete');
        expect(f.error.message).toMatch(/ESRCH|No such process/);
      }
      expect((await client.dumpRoutes({ family: 4, table: 300 })).items).toHaveLength(3000);
      const deleted = await pipe.submit(routes(3000, 'delete'));
      expect(deleted.failed).toEqual([]);
      expect(deleted.ok).toBe(3000);
      expect((await client.dumpRoutes({ family: 4, table: 300 })).items).toHaveLength(0);
    } finally {
      await pipe.close();
      client.close();
    }
  });

  it('settles a send the kernel stopped reading midway (its fence never answered) instead of waiting forever', async () => {
    // The last request claims to be longer than the send: the kernel stops at it without a word,
    // so nothing answers the fence. The requests before it were done; the broken one fails.
    const ops = routes(3, 'add');
    const src: OpSource = {
      length: ops.length,
      encode: (buf, off, seq, index) => {
        const n = encodeRouteRequest(buf, off, seq, 'add', ops[index]!.route, false);
        if (index === ops.length - 1) buf.writeUInt32LE(n + 4096, off);
        return n;
      },
      op: (index) => ops[index]!,
    };
    const pipe = RoutePipeline.open({ netns: ns.name, maxResends: 1 });
    try {
      const res = await pipe.submitSource(src);
      expect(res.ok).toBe(2);
      expect(res.rechecked).toBe(2);
      expect(res.failed.map((f) => [f.index, f.error.message])).toEqual([[2, expect.stringMatching(/lost/)]]);
      expect((await pipe.submit(ops.slice(0, 2).map((op) => ({ cmd: 'delete' as const, route: op.route })))).ok).toBe(2);
    } finally {
      await pipe.close();
    }
  });

  it('sends chunks on a worker thread in order, one job at a time; close waits for the job', async () => {
    const s = NetlinkSocket.open({ netns: ns.name });
    const client = NetlinkClient.open({ netns: ns.name });
    try {
      // Chunk 0 adds 200 routes, chunk 1 deletes them: sent out of order, the deletes would fail and the adds stay.
      const buf = Buffer.alloc(64 * 1024);
      let off = 0;
      for (const op of routes(200, 'add')) off += encodeRouteRequest(buf, off, s.nextSeq(), 'add', op.route, false);
      const split = off;
      for (const op of routes(200, 'delete')) off += encodeRouteRequest(buf, off, s.nextSeq(), 'delete', op.route, false);
      const chunks = new Int32Array([0, split, split, off - split]);
      const done = new Promise<[number, number]>((resolve) => s.sendAsync(buf, chunks, 2, (sent, errno) => resolve([sent, errno])));
      expect(() => s.sendAsync(buf, chunks, 2, () => undefined)).toThrow(/already running/);
      s.close(); // deferred until the worker is done with the fd
      expect(await done).toEqual([2, 0]);
      expect((await client.dumpRoutes({ family: 4, table: 300 })).items).toHaveLength(0);
      const other = NetlinkSocket.open({ netns: ns.name });
      try {
        expect(() => other.sendAsync(buf, new Int32Array([buf.length - 4, 8]), 1, () => undefined)).toThrow(/outside the buffer/);
        expect(() => other.sendAsync(buf, new Int32Array([0, 16]), 2, () => undefined)).toThrow(/pairs/);
      } finally {
        other.close();
      }
    } finally {
      s.close();
      client.close();
    }
  });

  it('send queue: sends queued chunks in order while more are queued; halts on an error until cleared', async () => {
    const s = NetlinkSocket.open({ netns: ns.name, sndbuf: 4096 }); // the kernel doubles it: 8 KiB
    try {
      const n = 250; // the queue holds 256 chunks not yet sent
      const buf = Buffer.concat([noops(n, 1), Buffer.alloc(16 * 1024)]);
      let progress: Array<[number, number]> = [];
      let wake: () => void = () => undefined;
      s.openSendQueue(buf, (sent, errno) => {
        progress.push([sent, errno]);
        wake();
      });
      const until = (f: () => boolean): Promise<void> =>
        new Promise((resolve) => {
          wake = () => f() && resolve();
          wake();
        });
      expect(() => s.openSendQueue(buf, () => undefined)).toThrow(/send queue already/);
      expect(() => s.sendAsync(buf, Int32Array.of(0, 16), 1, () => undefined)).toThrow(/send queue/);
      expect(() => s.clearSendQueue()).toThrow(/not halted/);
      expect(() => s.queueSend(buf.length - 8, 16)).toThrow(/outside the buffer/);
      // 250 one-request chunks, queued while the thread sends: acked in the order queued.
      for (let i = 0; i < n; i++) s.queueSend(16 * i, 16);
      await until(() => progress.at(-1)?.[0] === n);
      expect(progress.every(([, errno]) => errno === 0)).toBe(true);
      expect(ackedSeqs(s)).toEqual(Array.from({ length: n }, (_, i) => i + 1));

      // A chunk larger than the send buffer fails (EMSGSIZE): the queue halts there and sends nothing
      // after it, though a good chunk is queued behind it, until JS clears it.
      progress = [];
      s.queueSend(0, 16);
      s.queueSend(16 * n, 16 * 1024);
      s.queueSend(16, 16);
      await until(() => progress.at(-1)?.[1] === EMSGSIZE);
      expect(progress.at(-1)).toEqual([n + 1, EMSGSIZE]);
      await new Promise((r) => setTimeout(r, 50));
      expect(ackedSeqs(s)).toEqual([1]); // the one before the failed chunk, nothing after it
      // Halted, it holds what is queued: 256 chunks at most, then a push is refused.
      for (let i = 2; i < 256; i++) s.queueSend(16, 16);
      expect(() => s.queueSend(16, 16)).toThrow(/queue full/);
      expect(s.clearSendQueue()).toBe(256); // the failed chunk and every one behind it
      s.queueSend(16, 16);
      await until(() => progress.at(-1)?.[0] === n + 2);
      expect(progress.at(-1)).toEqual([n + 2, 0]);
      expect(ackedSeqs(s)).toEqual([2]);
    } finally {
      s.close();
    }
    expect(() => s.queueSend(0, 16)).toThrow(/closed/);
  });

  it('send queue: close stops the thread while it sends, and later progress is never delivered', async () => {
    for (let round = 0; round < 20; round++) {
      const s = NetlinkSocket.open({ netns: ns.name });
      const n = 2000;
      const buf = noops(n, 1);
      let calls = 0;
      s.openSendQueue(buf, () => calls++);
      for (let i = 0; i < 200; i++) s.queueSend(160 * (i % (n / 10)), 160);
      await new Promise((r) => setImmediate(r));
      const before = calls;
      s.close(); // waits for the sendmsg the thread is inside, then for nothing else
      await new Promise((r) => setTimeout(r, 5));
      expect(calls).toBe(before);
    }
  });

  it('applies backpressure: full once highWater changes wait, drain() resolves when they are sent', async () => {
    const pipe = RoutePipeline.open({ netns: ns.name, window: 256, highWater: 512 });
    try {
      const done = pipe.submit(routes(2000, 'add'));
      expect(pipe.full).toBe(true);
      await pipe.drain();
      expect(pipe.full).toBe(false);
      expect((await done).ok).toBe(2000);
      expect((await pipe.submit(routes(2000, 'delete'))).ok).toBe(2000);
    } finally {
      await pipe.close();
    }
  });

  it('drops what a process sends to our port or our groups; what the kernel sends arrives', () => {
    const monitor = NetlinkSocket.open({ netns: ns.name, groups: [C.RTNLGRP_IPV4_ROUTE] });
    const forger = NetlinkSocket.open({ netns: ns.name });
    try {
      // A forged RTM_DELROUTE, as a root process could send it: unicast to our port, and to the group.
      const buf = Buffer.alloc(4096);
      const len = encodeRouteRequest(buf, 0, 1, 'delete', routes(1, 'delete')[0]!.route, false);
      expect(forger.sendTo(buf, len, monitor.portId)).toBe(len);
      expect(forger.sendTo(buf, len, 0, 1 << (C.RTNLGRP_IPV4_ROUTE - 1))).toBe(len);
      ns.ip('route', 'add', '203.0.113.0/24', 'via', '192.0.2.2', 'table', '302');
      const r = monitor.receive();
      const types: number[] = [];
      for (let off = 0; off < r.bytes; ) {
        const h = readHeader(monitor.buffer, off);
        types.push(h.type);
        off += (h.len + 3) & ~3;
      }
      expect(types).toEqual([C.RTM_NEWROUTE]); // the kernel's notification, and nothing forged
      expect(monitor.foreign).toEqual({ dropped: 2, lastPort: forger.portId });
    } finally {
      monitor.close();
      forger.close();
      ns.ip('route', 'flush', 'table', '302');
    }
  });

  it('sends the chunks it checked, whatever JS writes into the chunk table afterwards', async () => {
    const s = NetlinkSocket.open({ netns: ns.name });
    try {
      const n = 4000;
      const buf = noops(n, 1);
      const chunks = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) chunks.set([16 * i, 16], 2 * i);
      const done = new Promise<[number, number]>((resolve) => s.sendAsync(buf, chunks, n, (sent, errno) => resolve([sent, errno])));
      // While the worker sends: point every chunk at the first request (and one outside the buffer).
      for (let i = 0; i < n; i++) chunks.set([0, 16], 2 * i);
      chunks.set([buf.length + 4096, 16], 2 * (n - 1));
      expect(await done).toEqual([n, 0]);
      expect(ackedSeqs(s)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    } finally {
      s.close();
    }
  });

  it('refuses a receive buffer smaller than one datagram (it could never make progress)', () => {
    const s = NetlinkSocket.open({ netns: ns.name });
    try {
      const status = new Int32Array(2);
      expect(() => native.recv((s as unknown as { sock: never }).sock, Buffer.alloc(1024), status)).toThrow(/too small/);
      expect(() => native.start((s as unknown as { sock: never }).sock, Buffer.alloc(1024), () => undefined)).toThrow(/too small/);
    } finally {
      s.close();
    }
  });

  it('leaks no fd or poll handle when a setup call fails', async () => {
    const before = openFds().length;
    for (let i = 0; i < 50; i++) expect(() => native.netlinkOpen(C.NETLINK_ROUTE, 42 as never, null)).toThrow(/array/);
    for (let i = 0; i < 50; i++) expect(() => native.netlinkOpen(C.NETLINK_ROUTE, ['x'] as never, null)).toThrow();
    for (let i = 0; i < 50; i++) expect(() => native.unixOpen(`/${'x'.repeat(300)}`)).toThrow(/ENAMETOOLONG|name too long/i);
    expect(openFds().length).toBe(before);
    // start with a bad callback: refused before the poll handle exists; a good start then works.
    const s = NetlinkSocket.open({ netns: ns.name, groups: [C.RTNLGRP_LINK] });
    try {
      expect(() => native.start((s as unknown as { sock: never }).sock, s.buffer, 42 as never)).toThrow(/callback/);
      let got = 0;
      s.start((bytes) => (got += bytes));
      ns.ip('link', 'set', 'veth1', 'down');
      ns.ip('link', 'set', 'veth1', 'up');
      for (let i = 0; i < 100 && got === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(got).toBeGreaterThan(0);
    } finally {
      s.close();
    }
  });

  it('survives sockets collected while their send runs (a worker thread torn down mid-send)', async () => {
    const addon = join(__dirname, '..', '..', 'native', 'build', 'Release', 'krtsync_native.node');
    const code = `
      const { workerData } = require('node:worker_threads');
      const n = require(workerData.addon);
      const buf = Buffer.alloc(16 * 20000);
      const chunks = new Int32Array(2 * 20000);
      for (let i = 0; i < 20000; i++) { buf.writeUInt32LE(16, 16 * i); buf.writeUInt16LE(1, 16 * i + 4); buf.writeUInt16LE(1, 16 * i + 6); chunks[2 * i] = 16 * i; chunks[2 * i + 1] = 16; }
      for (let k = 0; k < 4; k++) n.sendAsync(n.netlinkOpen(0, [], workerData.ns), buf, chunks, 20000, () => {});
      // And sockets with a send queue, its thread sending, one of them polling too.
      for (let k = 0; k < 2; k++) {
        const s = n.netlinkOpen(0, [], workerData.ns);
        if (k === 0) n.start(s, Buffer.alloc(1 << 20), () => {});
        n.sendQueueOpen(s, buf, () => {});
        for (let i = 0; i < 200; i++) n.sendQueuePush(s, 16 * 100 * i, 16 * 100);
      }
      process.exit(0);`;
    for (let i = 0; i < 10; i++) {
      const w = new Worker(code, { eval: true, workerData: { addon, ns: `/run/netns/${ns.name}` } });
      await new Promise((resolve, reject) => {
        w.on('exit', resolve);
        w.on('error', reject);
      });
    }
    // Still alive, and the addon still works here.
    const s = NetlinkSocket.open({ netns: ns.name });
    s.close();
  });

  it('opens a socket inside a named namespace and leaves the thread in its own', () => {
    const before = readlinkSync('/proc/thread-self/ns/net');
    const s = NetlinkSocket.open({ netns: ns.name });
    s.close();
    expect(readlinkSync('/proc/thread-self/ns/net')).toBe(before);
    expect(() => NetlinkSocket.open({ netns: 'krtsync-no-such-netns' })).toThrow(NetlinkSocketError);
    expect(readlinkSync('/proc/thread-self/ns/net')).toBe(before);
  });

  it('closes safely with data queued and while polling, twice', async () => {
    const s = NetlinkSocket.open({ netns: ns.name, groups: [C.RTNLGRP_LINK] });
    let calls = 0;
    s.start(() => calls++);
    ns.ip('link', 'set', 'veth1', 'down');
    ns.ip('link', 'set', 'veth1', 'up');
    s.close();
    s.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(s.isClosed).toBe(true);
    expect(s.fd).toBe(-1);
    expect(calls).toBe(0); // closed before the event loop could deliver
  });
});

describe('AF_UNIX datagrams', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'krtsync-unix-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function receiver(path: string): { sock: UnixDatagramSocket; got: UnixDatagram[] } {
    const sock = UnixDatagramSocket.open(path);
    const got: UnixDatagram[] = [];
    sock.start((d) => got.push(...d));
    return { sock, got };
  }

  async function until(pred: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 5));
  }

  it('sends datagrams to a bound path and to an abstract address, boundaries kept', async () => {
    const path = join(dir, 'notify');
    const rx = receiver(path);
    const abstract = receiver(`@krtsync-test-${process.pid}`);
    const tx = UnixDatagramSocket.open();
    try {
      expect(tx.send(path, Buffer.from('READY=1'))).toBe(7);
      expect(tx.send(path, Buffer.from('STATUS=syncing\nWATCHDOG=1'))).toBe(25);
      expect(tx.send(`@krtsync-test-${process.pid}`, Buffer.from('STOPPING=1'))).toBe(10);
      await until(() => rx.got.length === 2 && abstract.got.length === 1);
      expect(rx.got.map((d) => d.data.toString())).toEqual(['READY=1', 'STATUS=syncing\nWATCHDOG=1']);
      expect(abstract.got.map((d) => d.data.toString())).toEqual(['STOPPING=1']);
      expect(tx.send(join(dir, 'nobody'), Buffer.from('x'))).toBe(-2); // -ENOENT, not an exception
    } finally {
      tx.close();
      rx.sock.close();
      abstract.sock.close();
    }
  });

  it('receives passed fds close-on-exec, and closes those of a datagram it drops', async () => {
    const path = join(dir, 'fds');
    const errnos: number[] = [];
    const got: UnixDatagram[] = [];
    const rx = UnixDatagramSocket.open(path);
    rx.start((d, errno) => {
      got.push(...d);
      if (errno) errnos.push(errno);
    });
    const tx = UnixDatagramSocket.open();
    const name = `krtsync-fdtest-${process.pid}`;
    const memfds = (): number => openFds().filter((l) => l.includes(name)).length;
    try {
      const fd = native.memfdFromBuffer(name, Buffer.from('hello'));
      expect(tx.send(path, Buffer.from('small'), fd)).toBe(5);
      // Larger than the receiver's 64 KiB slot: cut short, so dropped, with the fd it carried.
      expect(tx.send(path, Buffer.alloc(100_000, 'x'), fd)).toBe(100_000);
      closeFd(fd);
      await until(() => got.length === 1 && errnos.length === 1);
      expect(errnos).toEqual([EMSGSIZE]);
      const passed = got[0]!.fd!;
      const flags = parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${passed}`, 'utf8'))![1]!, 8);
      expect(flags & O_CLOEXEC).toBe(O_CLOEXEC);
      expect(memfds()).toBe(1); // the kept one; the dropped datagram's copy is closed
      closeFd(passed);
      expect(memfds()).toBe(0);
    } finally {
      tx.close();
      rx.close();
    }
  });

  it('passes a sealed memfd for an entry too large for one datagram', async () => {
    const path = join(dir, 'journal');
    const rx = receiver(path);
    const tx = UnixDatagramSocket.open();
    try {
      const big = Buffer.alloc(300_000, 'x');
      expect(tx.send(path, big)).toBeLessThan(0); // EMSGSIZE: too large for a datagram
      expect(tx.sendMemfd(path, big)).toBe(0);
      await until(() => rx.got.length === 1);
      const fd = rx.got[0]!.fd!;
      expect(fd).toBeGreaterThanOrEqual(0);
      expect(readFileSync(`/proc/self/fd/${fd}`).equals(big)).toBe(true);
      closeFd(fd);
    } finally {
      tx.close();
      rx.sock.close();
    }
  });
});
