/**
 * NetlinkClient over an in-memory transport: the kernel's side is scripted,
 * so the cases the real kernel produces only by chance (an interrupted dump,
 * an overflow mid-dump) are tested deterministically.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parsePrefix } from '../../../src/lib/addr';
import { NetlinkClient } from '../../../src/netlink/client';
import * as C from '../../../src/netlink/constants';
import { RouteMessage, decodeRouteMessage, encodeRouteDump, encodeRouteMessage } from '../../../src/netlink/route-codec';
import { NetlinkTransport } from '../../../src/netlink/socket';
import { writeHeader } from '../../../src/netlink/wire';

/** Replies to each request with what `script` returns (a list of messages, each written by a function). */
class ScriptedKernel implements NetlinkTransport {
  readonly buffer = Buffer.alloc(1 << 16);
  isClosed = false;
  requests = 0;
  private seq = 100;
  private onData: ((bytes: number, errno: number) => void) | undefined;
  constructor(private readonly script: (request: number, seq: number) => { replies: Array<(buf: Buffer, off: number) => number>; errno?: number }) {}
  nextSeq(): number {
    return ++this.seq;
  }
  send(buf: Buffer, len: number): number {
    const seq = buf.readUInt32LE(8);
    const { replies, errno } = this.script(this.requests++, seq);
    setImmediate(() => {
      let off = 0;
      for (const write of replies) off += write(this.buffer, off);
      this.onData?.(off, errno ?? 0);
    });
    return len;
  }
  start(onData: (bytes: number, errno: number) => void): void {
    this.onData = onData;
  }
  ref(): void {}
  close(): void {
    this.isClosed = true;
  }
}

const route = (dst: string): RouteMessage => ({ family: 4, dst: parsePrefix(dst), tos: 0, table: 254, protocol: 4, scope: 0, type: 1, flags: 0 });
const routeReply = (seq: number, dst: string, flags = C.NLM_F_MULTI) => (buf: Buffer, off: number) => encodeRouteMessage(buf, off, C.RTM_NEWROUTE, flags, seq, route(dst));
const done = (seq: number, flags = C.NLM_F_MULTI) => (buf: Buffer, off: number) => {
  writeHeader(buf, off, 20, C.NLMSG_DONE, flags, seq);
  buf.writeInt32LE(0, off + 16);
  return 20;
};

describe('NetlinkClient dumps', () => {
  it('throws away a dump the kernel marked NLM_F_DUMP_INTR and runs it again', async () => {
    const kernel = new ScriptedKernel((n, seq) =>
      n === 0
        ? { replies: [routeReply(seq, '192.0.2.0/24'), routeReply(seq, '198.51.100.0/24', C.NLM_F_MULTI | C.NLM_F_DUMP_INTR), done(seq, C.NLM_F_MULTI | C.NLM_F_DUMP_INTR)] }
        : { replies: [routeReply(seq, '192.0.2.0/24'), routeReply(seq, '203.0.113.0/24'), done(seq)] },
    );
    const client = new NetlinkClient(kernel);
    const r = await client.dumpRoutes({ family: 4 });
    expect(r.retries).toBe(1);
    expect(r.items.map((x) => x.dst.toString())).toEqual(['192.0.2.0/24', '203.0.113.0/24']);
    expect(kernel.requests).toBe(2);
  });

  it('gives up with KRT_ERR_NETLINK_DUMP_INTR when every attempt is interrupted', async () => {
    const kernel = new ScriptedKernel((_, seq) => ({ replies: [done(seq, C.NLM_F_MULTI | C.NLM_F_DUMP_INTR)] }));
    const client = new NetlinkClient(kernel, { maxDumpRetries: 2 });
    await expect(client.dumpRoutes({ family: 4 })).rejects.toMatchObject({ code: 'KRT_ERR_NETLINK_DUMP_INTR' });
    expect(kernel.requests).toBe(3);
  });

  it('keeps a malformed message of a dump as a decode error and returns the rest', async () => {
    const broken = (seq: number) => (buf: Buffer, off: number) => {
      const n = encodeRouteMessage(buf, off, C.RTM_NEWROUTE, C.NLM_F_MULTI, seq, route('198.51.100.0/24'));
      buf[off + 16] = 99; // unknown address family
      return n;
    };
    const kernel = new ScriptedKernel((_, seq) => ({ replies: [routeReply(seq, '192.0.2.0/24'), broken(seq), done(seq)] }));
    const r = await new NetlinkClient(kernel).dumpRoutes({ family: 4 });
    expect(r.items.map((x) => x.dst.toString())).toEqual(['192.0.2.0/24']);
    expect(r.errors.map((e) => e.code)).toEqual(['KRT_ERR_NETLINK_DECODE']);
  });

  it('fails a dump whose replies were lost to ENOBUFS instead of waiting forever', async () => {
    const kernel = new ScriptedKernel((_, seq) => ({ replies: [routeReply(seq, '192.0.2.0/24')], errno: 105 }));
    await expect(new NetlinkClient(kernel).dumpRoutes({ family: 4 })).rejects.toMatchObject({ code: 'KRT_ERR_NETLINK_SOCKET', errnoName: 'ENOBUFS' });
  });

  it('runs dumps one at a time, in order', async () => {
    const order: number[] = [];
    const kernel = new ScriptedKernel((n, seq) => {
      order.push(n);
      return { replies: [routeReply(seq, n === 0 ? '192.0.2.0/24' : '203.0.113.0/24'), done(seq)] };
    });
    const client = new NetlinkClient(kernel);
    const [a, b] = await Promise.all([client.dumpRoutes({ family: 4 }), client.dumpRoutes({ family: 4 })]);
    expect([a.items[0]!.dst.toString(), b.items[0]!.dst.toString()]).toEqual(['192.0.2.0/24', '203.0.113.0/24']);
    expect(order).toEqual([0, 1]);
  });

  it('holds no dump result once the caller has dropped it (a restart dump of 1M routes is 120 MB)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const kernel = new ScriptedKernel((_, seq) => ({ replies: [routeReply(seq, '192.0.2.0/24'), done(seq)] }));
    const client = new NetlinkClient(kernel);
    const items = new WeakRef((await client.dumpRoutes({ family: 4 })).items);
    await new Promise((r) => setTimeout(r, 0)); // WeakRef targets live to the end of the job that made them
    gc();
    expect(items.deref()).toBeUndefined();
    // and the next dump still waits for nothing
    expect((await client.dumpRoutes({ family: 4 })).items).toHaveLength(1);
  });

  it('tells a decoder that keeps what it decodes when an interrupted dump starts over', async () => {
    const kernel = new ScriptedKernel((n, seq) =>
      n === 0
        ? { replies: [routeReply(seq, '192.0.2.0/24'), done(seq, C.NLM_F_MULTI | C.NLM_F_DUMP_INTR)] }
        : { replies: [routeReply(seq, '203.0.113.0/24'), done(seq)] },
    );
    let kept: string[] = [];
    const r = await new NetlinkClient(kernel).dump(
      (b, o, seq) => encodeRouteDump(b, o, seq, { family: 4 }),
      (b, o, l, type) => {
        if (type === C.RTM_NEWROUTE) kept.push(decodeRouteMessage(b, o, l).dst.toString());
        return undefined;
      },
      'test dump',
      () => (kept = []),
    );
    expect(r.retries).toBe(1);
    expect(r.items).toEqual([]);
    expect(kept).toEqual(['203.0.113.0/24']);
  });
});

/** The scripted kernel with a worker-thread send: a send's callback comes later, then its answer. */
class ThreadedKernel extends ScriptedKernel {
  running = 0;
  maxRunning = 0;
  order: number[] = [];
  sendErrno = 0;
  sendAsync(buf: Buffer, chunks: Int32Array, count: number, cb: (sent: number, errno: number) => void): void {
    expect(count).toBe(1);
    this.maxRunning = Math.max(this.maxRunning, ++this.running);
    const copy = Buffer.from(buf.subarray(chunks[0]!, chunks[0]! + chunks[1]!));
    setTimeout(() => {
      this.running--;
      this.order.push(copy.readUInt32LE(8));
      if (this.sendErrno !== 0) return cb(0, this.sendErrno);
      this.send(copy, copy.length);
      cb(1, 0);
    }, 5);
  }
}

const ack = (seq: number, errno = 0) => (buf: Buffer, off: number) => {
  writeHeader(buf, off, 36, C.NLMSG_ERROR, 0, seq);
  buf.writeInt32LE(-errno, off + 16);
  buf.fill(0, off + 20, off + 36);
  return 36;
};
const getRoute = (b: Buffer, o: number, seq: number): number => encodeRouteDump(b, o, seq, { family: 4 });

describe('NetlinkClient requests sent off the JS thread', () => {
  it('go one at a time, in order, and take their acks and errors like request()', async () => {
    const kernel = new ThreadedKernel((n, seq) => ({ replies: [ack(seq, n === 1 ? 2 : 0)] }));
    const client = new NetlinkClient(kernel);
    const results = await Promise.allSettled([client.requestOffThread(getRoute, 'first'), client.requestOffThread(getRoute, 'second'), client.requestOffThread(getRoute, 'third')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ errnoName: 'ENOENT' });
    expect(kernel.maxRunning).toBe(1);
    expect(kernel.order).toEqual([...kernel.order].sort((a, b) => a - b));
  });

  it('fail with the send error when the worker could not send', async () => {
    const kernel = new ThreadedKernel((_, seq) => ({ replies: [ack(seq)] }));
    kernel.sendErrno = 105;
    const client = new NetlinkClient(kernel);
    await expect(client.requestOffThread(getRoute, 'x')).rejects.toMatchObject({ errnoName: 'ENOBUFS' });
  });
});
