/**
 * The pipeline's hand-off to the sender thread (the socket's send queue),
 * against a fake socket: each chunk is queued the moment it is encoded, so the
 * sender always has the whole ring but one chunk's worth in hand; a chunk the
 * sender is done with is encoded again at once; a halted queue (EAGAIN) is
 * cleared and its chunks sent again, in order, once the socket is writable;
 * order and results are kept. After an overflow, a fence's ack no longer
 * settles its send: the re-check (a fake dump) does. (The real kernel runs the same pipeline in
 * test/integration/netlink-routes.test.ts.)
 */
import { Prefix, parseAddr } from '../../../src/lib/addr';
import * as C from '../../../src/netlink/constants';
import { RoutePipeline, type RouteOp } from '../../../src/netlink/pipeline';
import type { RouteDumper } from '../../../src/netlink/pipeline-recheck';
import type { NetlinkSocket } from '../../../src/netlink/socket';

const EAGAIN = 11;
const ENOBUFS = 105;

interface Chunk {
  /** Seqs of every request in the chunk, in order. */
  seqs: number[];
  fences: number[];
}

/** Just enough of NetlinkSocket: a send queue the test runs by hand; every fence sent is answered with a success ack. */
class FakeSocket {
  readonly buffer = Buffer.alloc(1 << 20);
  isClosed = false;
  seq = 0;
  /** Every chunk queued, in order (a cleared one stays here: it is queued again later). */
  readonly queued: Chunk[] = [];
  /** Chunks actually sent, in order. */
  readonly sentChunks: Chunk[] = [];
  private next = 0;
  private halted = 0;
  private onSent: ((sent: number, errno: number) => void) | undefined;
  private buf: Buffer | undefined;
  /** Answers queued for the next receive: seq and errno (0: a success ack). */
  private acks: Array<[number, number]> = [];
  /** The next receive reports an overflow (ENOBUFS) after its answers. */
  private overflow = false;
  private onWritable: (() => void) | undefined;

  start(_onData: unknown, onWritable?: () => void): void {
    this.onWritable = onWritable;
  }
  ref(): void {}
  wantWritable(): void {}
  close(): void {
    this.isClosed = true;
  }
  nextSeq(): number {
    return ++this.seq;
  }
  openSendQueue(buf: Buffer, onSent: (sent: number, errno: number) => void): void {
    this.buf = buf;
    this.onSent = onSent;
  }
  queueSend(off: number, len: number): void {
    const buf = this.buf!;
    const seqs: number[] = [];
    const fences: number[] = [];
    for (let p = off; p < off + len; p += (buf.readUInt32LE(p) + 3) & ~3) {
      seqs.push(buf.readUInt32LE(p + 8));
      if (buf.readUInt16LE(p + 6) & C.NLM_F_ACK) fences.push(buf.readUInt32LE(p + 8));
    }
    this.queued.push({ seqs, fences });
  }
  clearSendQueue(): number {
    if (this.halted === 0) throw new Error('not halted');
    this.halted = 0;
    const dropped = this.queued.length - this.next;
    this.queued.length = this.next; // the pipeline queues them again
    return dropped;
  }
  /** Chunks queued and not sent. */
  get backlog(): number {
    return this.queued.length - this.next;
  }
  /**
   * The sender thread sends its next `n` chunks, then the JS thread's callback runs. Each chunk's fences
   * are answered with a success ack, or with what `answers` says (answers the kernel dropped left out,
   * and `overflow` set: the read reports ENOBUFS).
   */
  send(n: number, answers?: (c: Chunk) => Array<[number, number]>, overflow = false): void {
    for (let i = 0; i < n; i++) {
      const c = this.queued[this.next++]!;
      this.sentChunks.push(c);
      this.acks.push(...(answers ? answers(c) : c.fences.map((seq): [number, number] => [seq, 0])));
    }
    this.overflow ||= overflow;
    this.onSent!(this.next, 0);
  }
  /** The next sendmsg fails with EAGAIN: the queue halts. */
  haltWithEagain(): void {
    this.halted = EAGAIN;
    this.onSent!(this.next, EAGAIN);
  }
  writable(): void {
    this.onWritable!();
  }
  receive(): { bytes: number; errno: number; dry: boolean } {
    let p = 0;
    for (const [seq, errno] of this.acks) {
      this.buffer.writeUInt32LE(36, p);
      this.buffer.writeUInt16LE(C.NLMSG_ERROR, p + 4);
      this.buffer.writeUInt16LE(C.NLM_F_CAPPED, p + 6);
      this.buffer.writeUInt32LE(seq, p + 8);
      this.buffer.writeUInt32LE(0, p + 12);
      this.buffer.writeInt32LE(-errno, p + 16); // 0: success
      this.buffer.fill(0, p + 20, p + 36); // the request's header (capped)
      p += 36;
    }
    this.acks = [];
    const errno = this.overflow ? ENOBUFS : 0;
    this.overflow = false;
    return { bytes: p, errno, dry: true };
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function routes(n: number): RouteOp[] {
  const gateway = parseAddr('192.0.2.2');
  const ops: RouteOp[] = [];
  for (let i = 0; i < n; i++) {
    ops.push({ cmd: 'add', route: { family: 4, dst: Prefix.v4((10 << 24) + i * 256, 24), tos: 0, table: 254, protocol: 144, scope: 0, type: 1, flags: 0, gateway } });
  }
  return ops;
}

function expectEveryOpOnceInOrder(chunks: Chunk[], n: number): void {
  const seqs = chunks.flatMap((c) => c.seqs);
  expect(seqs).toHaveLength(n); // every op once
  expect(seqs.every((q, k) => k === 0 || q > seqs[k - 1]!)).toBe(true); // in order (a seq taken for a request that did not fit is skipped)
}

describe('RoutePipeline hand-off', () => {
  it('queues each chunk to the sender as it is encoded and refills a chunk the moment it is sent', async () => {
    const sock = new FakeSocket();
    const pipe = new RoutePipeline(sock as unknown as NetlinkSocket, { depth: 8, sendChunk: 16384 });
    const result = pipe.submit(routes(20000));
    await tick();
    expect(sock.backlog).toBe(8); // the whole ring, without waiting for the sender

    let refills = 0;
    while (sock.backlog > 0) {
      sock.send(Math.min(3, sock.backlog)); // the sender got through three chunks before the JS thread ran
      // Synchronously in the callback: the sent chunks were encoded again and queued behind the rest.
      if (sock.queued.reduce((n, c) => n + c.seqs.length, 0) < 20000) {
        expect(sock.backlog).toBe(8);
        refills++;
      }
      await tick();
    }
    expect(refills).toBeGreaterThan(2);
    const r = await result;
    expect(r.ok).toBe(20000);
    expect(r.failed).toEqual([]);
    expectEveryOpOnceInOrder(sock.sentChunks, 20000);
  });

  it('after a halt (EAGAIN) clears the queue and sends the same chunks again, in order, once writable', async () => {
    const sock = new FakeSocket();
    const pipe = new RoutePipeline(sock as unknown as NetlinkSocket, { depth: 8, sendChunk: 16384 });
    const result = pipe.submit(routes(20000));
    await tick();
    sock.send(2);
    await tick();
    expect(sock.backlog).toBe(8);
    sock.haltWithEagain();
    expect(sock.backlog).toBe(0); // cleared: nothing is queued again until the socket is writable
    await tick();
    expect(sock.backlog).toBe(0);
    sock.writable();
    await tick();
    expect(sock.backlog).toBe(8); // the same chunks, from the one that failed
    while (sock.backlog > 0) {
      sock.send(sock.backlog);
      await tick();
    }
    const r = await result;
    expect(r.ok).toBe(20000);
    expect(r.failed).toEqual([]);
    expectEveryOpOnceInOrder(sock.sentChunks, 20000);
  });

  it('after an overflow, a fence answered no longer vouches for its send: what came before it is settled by the re-check', async () => {
    // One send of four adds; the kernel answers the second with an error, the queue is full and drops it,
    // then answers the fence. Before, the fence settled the second add as done: a route counted as
    // installed that the kernel refused.
    const ops = routes(4);
    const dumped: number[] = [];
    const dumper = {
      dumpRoutes: (q: { family: 4 | 6; table: number }) => {
        dumped.push(q.table);
        return Promise.resolve({ items: [ops[0]!.route, ops[2]!.route, ops[3]!.route] }); // the second is not there
      },
      close: () => {},
    };
    const sock = new FakeSocket();
    const pipe = new RoutePipeline(sock as unknown as NetlinkSocket, { depth: 8, sendChunk: 16384, maxResends: 0 }, dumper as unknown as RouteDumper);
    const result = pipe.submit(ops);
    await tick();
    expect(sock.backlog).toBe(1);
    sock.send(1, (c) => [[c.fences[0]!, 0]], true); // the fence's ack arrives; the second add's error was dropped
    const r = await result;
    expect(dumped).toEqual([254]);
    expect(r.failed.map((f) => [f.index, f.error.message])).toEqual([[1, expect.stringMatching(/acks lost/)]]);
    expect(r.ok).toBe(3);
    expect(r.rechecked).toBe(2); // the first and third, found in the table; the fence by its own ack
    expect(pipe.stats.overflows).toBe(1);
  });

  it('without an overflow, a fence answered settles every request of its send before it', async () => {
    const ops = routes(4);
    const dumper = { dumpRoutes: () => Promise.reject(new Error('no re-check without an overflow')), close: () => {} };
    const sock = new FakeSocket();
    const pipe = new RoutePipeline(sock as unknown as NetlinkSocket, { depth: 8, sendChunk: 16384 }, dumper as unknown as RouteDumper);
    const result = pipe.submit(ops);
    await tick();
    sock.send(1, (c) => [[c.seqs[1]!, 17], [c.fences[0]!, 0]]); // the second add: EEXIST
    const r = await result;
    expect(r.failed.map((f) => f.index)).toEqual([1]);
    expect(r.ok).toBe(3);
    expect(r.rechecked).toBe(0);
  });
});
