/**
 * RoutePipeline: pushes route changes into the kernel in bulk
 * (docs/netlink.md has the measurements behind each choice).
 *
 * submit(ops) takes a whole batch and returns ONE promise that settles when
 * every change in it has its result: a count of successes plus each failure
 * with its index, op and error. No promise, closure or result object per
 * successful route. Backpressure: `full` says more than `highWater` changes
 * wait; `await drain()` waits until there is room again.
 *
 * Changes are encoded straight into a ring of large send buffers, many per
 * sendmsg, each with its own sequence number, at most `window` waiting for a
 * result. Only the last request of each sendmsg (the fence) asks for an ack:
 * the kernel answers every failure anyway and processes a send in order, so
 * the fence's ack settles the rest of its send. Answers are matched by seq
 * through a ring indexed by seq & mask; success acks are counted, not decoded.
 *
 * The kernel does a change inside sendmsg, on the sender's thread, so each
 * chunk, once encoded, goes to the socket's send queue (a thread of its own,
 * native/send_queue.c), which sends the chunks in order while the JS thread
 * encodes the next ones and reads answers: the sender never waits for the JS
 * thread while chunks are ready. Answers are handled a read at a time: a read
 * of what is queued, then `beforeAnswers` (the notification drain), then the
 * answers, so every notification of a change made before an answered request
 * is seen first, though later requests may still be inside sendmsg.
 *
 * Overflow: when the receive queue overflowed (ENOBUFS), every request still
 * without an answer was processed but its result is unknown, and so is that
 * of every request before a fence answered from then on (its error may be
 * the answer the kernel dropped; the fence no longer vouches): sending stops,
 * the tables are dumped and each change is settled by what they hold
 * (pipeline-recheck.ts) or sent again, in order, with a halved window.
 *
 * Ops are held by reference until their batch settles: do not mutate them.
 */
import { constants as osConstants } from 'node:os';
import { KrtError } from '../lib/errors';
import { NetlinkClient } from './client';
import * as C from './constants';
import { NetlinkRequestError, NetlinkSocketError } from './errors';
import { decodeAck } from './message-codec';
import { doneByDump, type RouteDumper } from './pipeline-recheck';
import { OpArraySource, opDst, type BatchResult, type OpSource, type RouteOp, type RouteOpFailure } from './route-ops';

export { OpArraySource, opDst, type BatchResult, type OpSource, type RouteOp, type RouteOpFailure, type PipelineStats, type RoutePipelineOptions };
import { NetlinkSocket } from './socket';
import type { PipelineStats, RoutePipelineOptions } from './route-ops';

const { ENOBUFS, EAGAIN, EMSGSIZE, ECANCELED } = osConstants.errno;
/** Requests in flight: room for a whole ring of chunks (8 x 256 KiB, about 40,000 route adds) and then some. */
const DEFAULT_WINDOW = 65536;
/** Chunks the native send queue holds unsent (SENDQ_CAP in native/send_queue.c): the ring is at most this deep. */
const SEND_QUEUE_CAP = 256;

class Batch {
  next = 0;
  settled = 0;
  ok = 0;
  rechecked = 0;
  readonly failed: RouteOpFailure[] = [];
  /** Indices to send again (after a lost ack), before `next`. */
  readonly retry: number[] = [];
  resends?: Map<number, number>;
  constructor(
    /** Submission order: batches go back into the queue in it after a re-check. */
    readonly id: number,
    readonly ops: OpSource,
    readonly resolve: (r: BatchResult) => void,
  ) {}
  get unsent(): number {
    return this.ops.length - this.next + this.retry.length;
  }
}

export class RoutePipeline {
  readonly stats: PipelineStats = { sent: 0, acked: 0, failed: 0, overflows: 0, rechecked: 0, resent: 0 };
  /** `depth` chunks of `chunkSize` bytes, used as a ring: sending, then ready, then free. */
  private readonly sendBuf: Buffer;
  private readonly chunkViews: Buffer[];
  private readonly chunkLen: Int32Array;
  /** Seq of each chunk's fence (its last request, the only one acked). */
  private readonly chunkFence: Uint32Array;
  private readonly chunkSize: number;
  private readonly depth: number;
  /** The ring from `head`: nSending chunks queued to the sender, then nReady encoded, then free ones. */
  private head = 0;
  private nSending = 0;
  private nReady = 0;
  /** Chunks the sender had sent when onSent last ran (its count since the queue was opened). */
  private sentSeen = 0;
  /** Fences of chunks sent whose answers have not been read yet. */
  private readonly sentFences: number[] = [];
  private readonly queue: Batch[] = [];
  private readonly mask: number;
  private readonly slotBatch: (Batch | undefined)[];
  private readonly slotIndex: Int32Array;
  private readonly slotSeq: Uint32Array;
  /** For a fence (the acked last request of a send): the first seq of its send, else 0 with slotFence 0. */
  private readonly slotChunkStart: Uint32Array;
  private readonly slotFence: Uint8Array;
  private readonly maxWindow: number;
  private readonly highWater: number;
  private readonly maxResends: number;
  private window: number;
  private inflight = 0;
  private queued = 0;
  private pumpQueued = false;
  private waitingWritable = false;
  private rechecking = false;
  private overflowSeen = false;
  private batchIds = 0;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private openBatches = 0;
  /**
   * Runs after each read of answers and before they are handled (KernelIo
   * drains its notification socket here, so a notification of a change the
   * kernel made before it answered ours is always seen while ours is still
   * in flight).
   */
  beforeAnswers: (() => void) | undefined;
  constructor(
    readonly socket: NetlinkSocket,
    private readonly opts: RoutePipelineOptions = {},
    /** Dumps the tables for the re-check after an overflow; by default a socket of its own, opened at the first. */
    private checker?: RouteDumper,
  ) {
    this.maxWindow = this.window = Math.max(1, opts.window ?? DEFAULT_WINDOW);
    let ring = 1;
    while (ring < this.maxWindow * 2) ring <<= 1;
    this.mask = ring - 1;
    this.slotBatch = new Array<Batch | undefined>(ring).fill(undefined);
    this.slotIndex = new Int32Array(ring);
    this.slotSeq = new Uint32Array(ring);
    this.slotChunkStart = new Uint32Array(ring);
    this.slotFence = new Uint8Array(ring);
    this.chunkSize = opts.sendChunk ?? 256 * 1024;
    this.depth = Math.min(SEND_QUEUE_CAP, Math.max(1, opts.depth ?? 8));
    this.sendBuf = Buffer.allocUnsafe(this.chunkSize * this.depth);
    this.chunkViews = Array.from({ length: this.depth }, (_, k) => this.sendBuf.subarray(k * this.chunkSize, (k + 1) * this.chunkSize));
    this.chunkLen = new Int32Array(this.depth);
    this.chunkFence = new Uint32Array(this.depth);
    this.highWater = opts.highWater ?? 4 * this.maxWindow;
    this.maxResends = opts.maxResends ?? 3;
    socket.start(
      (bytes, errno) => {
        this.beforeAnswers?.();
        this.onAcks(bytes, errno);
        this.receiveNow();
        this.kick();
      },
      () => {
        this.socket.wantWritable(false);
        this.waitingWritable = false;
        this.kick();
      },
    );
    socket.ref(false);
    socket.openSendQueue(this.sendBuf, this.onSent);
  }

  /**
   * Opens the request socket: receive buffer sized for a full window of acks
   * (an ack costs about 1 KiB of socket memory), send buffer for one chunk.
   */
  static open(opts: RoutePipelineOptions = {}): RoutePipeline {
    const window = opts.window ?? DEFAULT_WINDOW;
    const chunk = opts.sendChunk ?? 256 * 1024;
    const socket = NetlinkSocket.open({
      rcvbuf: Math.max(window * 1536, 4 << 20),
      sndbuf: Math.max(chunk * 2, 1 << 20),
      ...opts,
    });
    return new RoutePipeline(socket, opts);
  }

  /** Queues a batch; the promise settles once every op in it has a result. Never rejects. */
  submit(ops: readonly RouteOp[]): Promise<BatchResult> {
    return this.submitSource(new OpArraySource(ops));
  }

  /** submit() for a compact source: failures carry ops built by `ops.op(index)`. */
  submitSource(ops: OpSource): Promise<BatchResult> {
    return new Promise((resolve) => {
      if (ops.length === 0) return resolve({ ok: 0, failed: [], rechecked: 0 });
      const b = new Batch(this.batchIds++, ops, resolve);
      this.openBatches++;
      if (this.closed) {
        const err = new NetlinkSocketError(ECANCELED, 'route pipeline is closed');
        for (let i = 0; i < ops.length; i++) this.fail(b, i, err);
        return;
      }
      this.queue.push(b);
      this.queued += ops.length;
      if (this.inflight === 0) this.socket.ref(true);
      this.kick();
    });
  }

  /** More than highWater changes wait to be sent: the caller should `await drain()`. */
  get full(): boolean {
    return this.queued >= this.highWater;
  }

  /** Resolves once fewer than highWater changes wait to be sent. */
  drain(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Changes submitted and not yet settled, sent or not. */
  get outstanding(): number {
    return this.queued + this.inflight;
  }

  // ------------------------------------------------------------ sending

  /**
   * Pumps on the next microtask, not inside submit(): submit returns at once
   * (callers can check `full`), and batches submitted in the same tick share
   * send buffers.
   */
  private kick(): void {
    if (this.pumpQueued || this.closed) return;
    this.pumpQueued = true;
    queueMicrotask(() => {
      this.pumpQueued = false;
      this.pump();
    });
  }

  /**
   * Encodes into every free chunk, each queued to the sender the moment it is encoded (the kernel
   * works on it while the next is encoded).
   */
  private pump(): void {
    if (this.closed || this.rechecking) return;
    this.handOver();
    while (this.nSending + this.nReady < this.depth) {
      const k = (this.head + this.nSending + this.nReady) % this.depth;
      if (!this.encodeChunk(k)) break;
      this.nReady++;
      this.handOver();
    }
    this.wakeDrainWaiters();
  }

  /**
   * Queues every ready chunk, in ring order, behind those the sender has; none while the socket is not
   * writable, nor after an overflow (the re-check needs the sender idle).
   */
  private handOver(): void {
    if (this.waitingWritable || this.overflowSeen) return;
    while (this.nReady > 0) {
      const k = (this.head + this.nSending) % this.depth;
      try {
        this.socket.queueSend(k * this.chunkSize, this.chunkLen[k]!);
      } catch (e) {
        this.nReady = 0;
        this.failUnacked(e instanceof KrtError ? e : new NetlinkSocketError(0, `netlink send: ${String(e)}`));
        return;
      }
      this.nSending++;
      this.nReady--;
    }
  }

  /**
   * Encodes as many queued changes as the window and chunk k allow; false if
   * there was nothing to encode. The chunk's last request is its fence.
   */
  private encodeChunk(k: number): boolean {
    const buf = this.chunkViews[k]!;
    let off = 0;
    let firstSeq = 0;
    let lastOff = -1;
    let lastSeq = 0;
    while (this.inflight < this.window && this.queue.length > 0) {
      const b = this.queue[0]!;
      if (b.unsent === 0) {
        this.queue.shift();
        continue;
      }
      const fromRetry = b.retry.length > 0;
      const index = fromRetry ? b.retry[0]! : b.next;
      const seq = this.socket.nextSeq();
      const n = b.ops.encode(buf, off, seq, index);
      if (n === 0) {
        if (off > 0) break; // full: the rest goes into the next chunk
        const op = b.ops.op(index);
        this.consume(b, fromRetry);
        this.fail(b, index, new NetlinkSocketError(EMSGSIZE, `${op.cmd} ${opDst(op)}: message larger than the send chunk`));
        continue;
      }
      this.consume(b, fromRetry);
      const slot = seq & this.mask;
      this.slotBatch[slot] = b;
      this.slotIndex[slot] = index;
      this.slotSeq[slot] = seq;
      this.slotFence[slot] = 0;
      if (lastOff < 0) firstSeq = seq;
      lastOff = off;
      lastSeq = seq;
      this.inflight++;
      off += n;
    }
    if (lastOff < 0) return false;
    // The fence: the chunk's last request asks for an ack (flags are the u16 at offset 6).
    buf.writeUInt16LE(buf.readUInt16LE(lastOff + 6) | C.NLM_F_ACK, lastOff + 6);
    const slot = lastSeq & this.mask;
    this.slotFence[slot] = 1;
    this.slotChunkStart[slot] = firstSeq;
    this.chunkLen[k] = off;
    this.chunkFence[k] = lastSeq;
    return true;
  }

  /**
   * The sender has sent chunks (`sent`: its count since the open): free them, read every answer, pump
   * again. After an error the sender holds until the queue is cleared here.
   */
  private readonly onSent = (sent: number, errno: number): void => {
    if (this.closed) return; // destroy() failed everything still open
    for (; this.sentSeen < sent; this.sentSeen++) {
      this.stats.sent += this.chunkLen[this.head]!;
      this.sentFences.push(this.chunkFence[this.head]!);
      this.head = (this.head + 1) % this.depth;
      this.nSending--;
    }
    if (errno !== 0) {
      this.socket.clearSendQueue();
      this.nReady += this.nSending; // not sent: ready again, in order, at the head
      this.nSending = 0;
      if (errno === EAGAIN) {
        this.waitingWritable = true;
        this.socket.wantWritable(true);
      } else {
        this.nReady = 0;
        this.failUnacked(new NetlinkSocketError(errno, 'netlink send'));
      }
    }
    this.receiveNow();
    if (this.inflight === 0 && this.queued === 0) this.socket.ref(false);
    this.pump();
  };

  private consume(b: Batch, fromRetry: boolean): void {
    if (fromRetry) b.retry.shift();
    else b.next++;
    this.queued--;
  }

  // ------------------------------------------------------------ acks

  /**
   * Reads every ack queued now, each read's notifications drained before its answers are handled;
   * after an overflow, re-checks what stayed unanswered.
   */
  private receiveNow(): void {
    for (;;) {
      const r = this.socket.receive();
      this.beforeAnswers?.();
      this.onAcks(r.bytes, r.errno);
      if (r.dry || this.socket.isClosed) break;
    }
    // The kernel answers a send inside sendmsg: once the socket is drained, a fence still open
    // means its answers were lost (or the kernel stopped reading the send midway). Re-check. (Only
    // chunks counted by onSent are here: their sendmsg returned before this read began.)
    for (const fence of this.sentFences) {
      if (this.slotBatch[fence & this.mask] !== undefined && this.slotSeq[fence & this.mask] === fence) this.overflowSeen = true;
    }
    this.sentFences.length = 0;
    if (this.overflowSeen && !this.rechecking && this.nSending === 0 && this.inflight > 0) void this.recheck();
    else if (this.inflight === 0) this.overflowSeen = false;
  }

  private onAcks(bytes: number, errno: number): void {
    const buf = this.socket.buffer;
    // Known before the answers: a read that met an overflow may hold answers sent after the drop, and
    // from then on until the re-check, a fence's ack no longer vouches for the requests of its send
    // before it (one of them may have failed, its error the answer dropped); they wait for the re-check.
    if (errno === ENOBUFS) this.overflowSeen = true;
    let p = 0;
    while (p + C.NLMSG_HDRLEN <= bytes) {
      const len = buf.readUInt32LE(p);
      if (len < C.NLMSG_HDRLEN || p + len > bytes) break; // cannot be framed; the kernel never sends this
      if (buf.readUInt16LE(p + 4) === C.NLMSG_ERROR && len >= C.NLMSG_HDRLEN + 4) {
        const seq = buf.readUInt32LE(p + 8);
        const slot = seq & this.mask;
        const b = this.slotBatch[slot];
        if (b !== undefined && this.slotSeq[slot] === seq) {
          this.slotBatch[slot] = undefined;
          this.inflight--;
          const index = this.slotIndex[slot]!;
          if (this.slotFence[slot] === 1 && !this.overflowSeen) this.settleBefore(this.slotChunkStart[slot]!, seq);
          if (buf.readInt32LE(p + C.NLMSG_HDRLEN) === 0) {
            b.ok++;
            this.stats.acked++;
            this.settle(b);
          } else {
            const ack = decodeAck(buf, p, len);
            const op = b.ops.op(index);
            this.fail(b, index, new NetlinkRequestError(ack.errno, ack.extAck, `${op.cmd} ${opDst(op)} table ${op.route.table}`));
          }
        }
      }
      p += (len + 3) & ~3;
    }
    if (errno !== 0 && errno !== ENOBUFS) this.failUnacked(new NetlinkSocketError(errno, 'netlink receive'));
    if (this.inflight === 0 && this.queued === 0) this.socket.ref(false);
  }

  /** A fence was answered: every request of its send before it that is still open succeeded. */
  private settleBefore(first: number, fence: number): void {
    for (let seq = first; seq !== fence; seq = (seq + 1) >>> 0) {
      const slot = seq & this.mask;
      const b = this.slotBatch[slot];
      if (b === undefined || this.slotSeq[slot] !== seq) continue;
      this.slotBatch[slot] = undefined;
      this.inflight--;
      b.ok++;
      this.stats.acked++;
      this.settle(b);
    }
  }

  private fail(b: Batch, index: number, error: KrtError): void {
    b.failed.push({ index, op: b.ops.op(index), error });
    this.stats.failed++;
    this.settle(b);
  }

  private settle(b: Batch): void {
    if (++b.settled !== b.ops.length) return;
    b.resolve({ ok: b.ok, failed: b.failed, rechecked: b.rechecked });
    if (--this.openBatches === 0) for (const f of this.idleWaiters.splice(0)) f();
  }

  /** Takes every in-flight change out of the ring. */
  private takeUnacked(): Array<{ b: Batch; index: number }> {
    const out: Array<{ b: Batch; index: number }> = [];
    for (let s = 0; s <= this.mask && this.inflight > 0; s++) {
      const b = this.slotBatch[s];
      if (b === undefined) continue;
      this.slotBatch[s] = undefined;
      this.inflight--;
      out.push({ b, index: this.slotIndex[s]! });
    }
    return out;
  }

  private failUnacked(err: KrtError): void {
    for (const { b, index } of this.takeUnacked()) this.fail(b, index, err);
  }

  // ------------------------------------------------------------ overflow recovery

  private async recheck(): Promise<void> {
    this.rechecking = true;
    this.stats.overflows++;
    this.overflowSeen = false;
    // Chunks encoded but not handed to the sender yet go back to their batches, not counted as resends.
    const requeue = new Set<Batch>();
    for (let i = 0; i < this.nReady; i++) {
      const k = (this.head + i) % this.depth;
      const fence = this.chunkFence[k]!;
      for (let seq = this.slotChunkStart[fence & this.mask]!; ; seq = (seq + 1) >>> 0) {
        const slot = seq & this.mask;
        const b = this.slotBatch[slot];
        if (b !== undefined && this.slotSeq[slot] === seq) {
          this.slotBatch[slot] = undefined;
          this.inflight--;
          b.retry.push(this.slotIndex[slot]!);
          this.queued++;
          requeue.add(b);
        }
        if (seq === fence) break;
      }
    }
    this.nReady = 0;
    const lost = this.takeUnacked();
    this.window = Math.max(64, this.window >> 1);
    try {
      this.checker ??= NetlinkClient.open({ netns: this.opts.netns });
      const done = await doneByDump(
        this.checker,
        lost.map(({ b, index }) => b.ops.op(index)),
      );
      for (const [k, { b, index }] of lost.entries()) {
        const op = b.ops.op(index);
        if (done[k]) {
          b.ok++;
          b.rechecked++;
          this.stats.rechecked++;
          this.settle(b);
          continue;
        }
        const n = (b.resends ??= new Map()).get(index) ?? 0;
        if (n >= this.maxResends) {
          this.fail(b, index, new NetlinkSocketError(ENOBUFS, `${op.cmd} ${opDst(op)}: acks lost ${n + 1} times`));
          continue;
        }
        b.resends.set(index, n + 1);
        b.retry.push(index);
        this.queued++;
        this.stats.resent++;
        requeue.add(b);
      }
    } catch (e) {
      const err = e instanceof KrtError ? e : new NetlinkSocketError(0, `re-check after overflow: ${String(e)}`);
      for (const { b, index } of lost) this.fail(b, index, err);
    } finally {
      // Each batch sends its changes again in their order; batches that had been fully sent come back
      // to the front, in submission order.
      for (const b of requeue) b.retry.sort((x, y) => x - y);
      for (const b of [...requeue].sort((x, y) => y.id - x.id)) if (!this.queue.includes(b)) this.queue.unshift(b);
      this.rechecking = false;
      this.kick();
    }
  }

  private wakeDrainWaiters(): void {
    if (this.full || this.drainWaiters.length === 0) return;
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /** Waits until every submitted change has settled, then closes the sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.openBatches > 0 && !this.closed) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.destroy();
  }

  /** Closes now: changes not yet settled fail with ECANCELED. Idempotent. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new NetlinkSocketError(ECANCELED, 'route pipeline closed');
    this.failUnacked(err);
    for (const b of this.queue) {
      for (const index of b.retry.splice(0)) this.fail(b, index, err);
      while (b.next < b.ops.length) this.fail(b, b.next++, err);
    }
    this.queue.length = 0;
    this.queued = 0;
    this.nReady = 0;
    this.socket.close();
    this.checker?.close();
    this.wakeDrainWaiters();
    for (const f of this.drainWaiters.splice(0)) f();
  }
}
