/**
 * The native socket layer: ENOBUFS is a value, never an abort; a pipeline
 * whose acks overflow recovers every result; sockets open inside a named
 * namespace and the thread comes back to its own; close is safe with data
 * queued; AF_UNIX datagrams (sd_notify, journal) go out and come in, with a
 * memfd passed along.
 */
import { readFileSync, readlinkSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prefix, parseAddr } from '../../src/lib/addr';
import * as C from '../../src/netlink/constants';
import { NetlinkClient } from '../../src/netlink/client';
import { NetlinkSocketError } from '../../src/netlink/errors';
import { type OpSource, RouteOp, RoutePipeline } from '../../src/netlink/pipeline';
import { encodeRouteRequest } from '../../src/netlink/route-codec';
import { NetlinkSocket, UnixDatagram, UnixDatagramSocket, closeFd } from '../../src/netlink/socket';
import { Netns, createNetns, kernelDescribe } from '../helpers/netns';

const ENOBUFS = 105;

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
