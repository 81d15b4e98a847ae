/**
 * RoutePipeline: pushes route changes into the kernel in bulk.
 *
 * API shape (built for a million changes): submit(ops[]) takes a whole batch
 * and returns ONE promise that settles when every change in it has its
 * result: a count of successes plus the failures, each with its index in the
 * batch, the op, and the error (errno name, the kernel's extended-ack text).
 * There is no Promise, closure or result object per successful route.
 * Backpressure: `full` says the queue holds more unsent changes than
 * `highWater`; `await drain()` waits until it has room again:
 *
 *   const pending = [];
 *   for (const ops of batches) { pending.push(pipe.submit(ops)); if (pipe.full) await pipe.drain(); }
 *   for (const r of await Promise.all(pending)) for (const f of r.failed) log(f.op.route.dst, f.error.message);
 *
 * Mechanics: changes are encoded straight into a large send buffer (no
 * per-route allocation), many per sendmsg, each with its own sequence
 * number; at most `window` requests wait for their result. Only the last
 * request of each sendmsg (the fence) carries NLM_F_ACK: the kernel always
 * answers a failed request with an NLMSG_ERROR, and it processes the
 * requests of one sendmsg in order, so once the fence's ack is read, every
 * earlier request of that send without an error of its own has succeeded.
 * That halves the messages the kernel builds and we read (an ack per route
 * cost the kernel about 1.5 s per million routes). Answers are matched by
 * seq through a ring indexed by seq & mask. Success acks are counted without
 * decoding; only errors are decoded.
 *
 * Sending beside the JS thread: the kernel processes a netlink request inside
 * sendmsg, on the sender's thread, and that is most of the cost of a route.
 * So the chunks (`depth` of them, `sendChunk` bytes each) are encoded ahead
 * and handed, all that are ready, to a worker thread (native sendAsync) that
 * sends them in order while the JS thread goes on: planning, encoding the
 * next chunks, reading the routes file. One hand-off at a time keeps the
 * order. Answers are read only once the sender is done (the socket's poll
 * is paused meanwhile), so every answer to a chunk is there when it is read,
 * and `beforeAnswers` (the notification drain) still runs before any of them.
 *
 * Overflow: if the socket's receive queue overflows (ENOBUFS) the kernel
 * dropped some acks. Once the socket is drained, every request still without
 * an ack has been processed but its result is unknown: sending stops, the
 * affected tables are dumped, and each such change is settled by what the
 * table holds (an add present with the same type/gateway/device, or a delete
 * absent, is a success) or sent again; then sending resumes with a halved
 * window. Nothing is forgotten and ordering per route is kept (nothing new
 * is sent while re-checking).
 *
 * Ops are held by reference until their batch settles: do not mutate them.
 */
import { constants as osConstants } from 'node:os';
import type { Prefix } from '../lib/addr';
import { KrtError } from '../lib/errors';
import { NetlinkClient } from './client';
import * as C from './constants';
import { NetlinkRequestError, NetlinkSocketError } from './errors';
import { decodeAck } from './message-codec';
import { RouteCommand, RouteMessage, encodeRouteRequest } from './route-codec';
import { NetlinkSocket, NetlinkSocketOptions } from './socket';

const { ENOBUFS, EAGAIN, EMSGSIZE, ECANCELED } = osConstants.errno;
/** Requests in flight: room for a whole ring of chunks (8 x 256 KiB, about 40,000 route adds) and then some. */
const DEFAULT_WINDOW = 65536;

export interface RouteOp {
  cmd: RouteCommand;
  route: RouteMessage;
  /** The net this op is for when `route` is shared by many nets (its own dst is then another's). */
  dst?: Prefix;
}

/** The net an op changes. */
export function opDst(op: RouteOp): Prefix {
  return op.dst ?? op.route.dst;
}

export interface RouteOpFailure {
  /** Index of the op in the submitted array. */
  index: number;
  op: RouteOp;
  /** NetlinkRequestError from the kernel, or NetlinkSocketError / KrtError when it could not be sent or checked. */
  error: KrtError;
}

/**
 * A batch's changes as the pipeline reads them: how many, how to encode one
 * (without NLM_F_ACK: the pipeline sets it on a send's last request), and the
 * op behind an index, built on demand for a failure or a re-check only. An
 * array of RouteOps is one (submit); a compact source (submitSource, e.g.
 * V4DeleteSource) encodes straight from typed arrays, with no object per change.
 */
export interface OpSource {
  readonly length: number;
  encode(buf: Buffer, off: number, seq: number, index: number): number;
  op(index: number): RouteOp;
}

/** An array of RouteOps as an OpSource. */
export class OpArraySource implements OpSource {
  constructor(readonly ops: readonly RouteOp[]) {}
  get length(): number {
    return this.ops.length;
  }
  encode(buf: Buffer, off: number, seq: number, index: number): number {
    const op = this.ops[index]!;
    return encodeRouteRequest(buf, off, seq, op.cmd, op.route, false, opDst(op));
  }
  op(index: number): RouteOp {
    return this.ops[index]!;
  }
}

export interface BatchResult {
  ok: number;
  failed: RouteOpFailure[];
  /** Ops whose ack was lost to an overflow and were settled by a table dump. */
  rechecked: number;
}

export interface RoutePipelineOptions extends NetlinkSocketOptions {
  /** Requests in flight (encoded, not yet answered); their answers must fit the receive buffer. Default 65536. */
  window?: number;
  /** Bytes per sendmsg; default 256 KiB (the socket's sndbuf is raised to fit). */
  sendChunk?: number;
  /**
   * Chunks in the ring; default 8. At most half of them go to the sender thread at once, so the other
   * half is encoded while the kernel works and goes out the moment the sender is back.
   */
  depth?: number;
  /** `full` once this many changes wait to be encoded; default 4 * window. */
  highWater?: number;
  /** Re-sends of one change after lost acks before it fails with ENOBUFS; default 3. */
  maxResends?: number;
}

export interface PipelineStats {
  sent: number;
  acked: number;
  failed: number;
  overflows: number;
  rechecked: number;
  resent: number;
}

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

function routeKey(r: RouteMessage, dst: Prefix = r.dst): string {
  const prio = r.priority ?? (r.family === 6 ? 1024 : 0); // the kernel's defaults when none is given
  return `${r.family}/${r.table}/${dst.key()}/${r.tos}/${prio}`;
}

function sameNextHop(want: RouteMessage, have: RouteMessage): boolean {
  if (want.type !== have.type) return false;
  if (want.oif !== undefined && want.oif !== have.oif) return false;
  if (want.gateway && !(have.gateway && want.gateway.equals(have.gateway))) return false;
  return true;
}

export class RoutePipeline {
  readonly stats: PipelineStats = { sent: 0, acked: 0, failed: 0, overflows: 0, rechecked: 0, resent: 0 };
  /** `depth` chunks of `chunkSize` bytes, used as a ring: sending, then ready, then free. */
  private readonly sendBuf: Buffer;
  private readonly chunkViews: Buffer[];
  private readonly chunkLen: Int32Array;
  /** Seq of each chunk's fence (its last request, the only one acked). */
  private readonly chunkFence: Uint32Array;
  private readonly sendList: Int32Array;
  private readonly chunkSize: number;
  private readonly depth: number;
  /** Chunks handed to the sender thread at once: half the ring. */
  private readonly handoff: number;
  private head = 0;
  private nSending = 0;
  private nReady = 0;
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
   * Runs before any answer is read (KernelIo drains its notification socket
   * here, so a notification of a change made before our send is always seen
   * while our change is still in flight).
   */
  beforeAnswers: (() => void) | undefined;
  private checker: NetlinkClient | undefined;

  constructor(
    readonly socket: NetlinkSocket,
    private readonly opts: RoutePipelineOptions = {},
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
    this.depth = Math.max(1, opts.depth ?? 8);
    this.handoff = Math.max(1, this.depth >> 1);
    this.sendBuf = Buffer.allocUnsafe(this.chunkSize * this.depth);
    this.chunkViews = Array.from({ length: this.depth }, (_, k) => this.sendBuf.subarray(k * this.chunkSize, (k + 1) * this.chunkSize));
    this.chunkLen = new Int32Array(this.depth);
    this.chunkFence = new Uint32Array(this.depth);
    this.sendList = new Int32Array(2 * this.depth);
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
   * Hands what is ready to the sender thread if it is idle, then encodes into every free chunk (while the
   * kernel works on the handed ones), then hands over again if the sender was idle with nothing ready.
   */
  private pump(): void {
    if (this.closed || this.rechecking) return;
    this.handOver();
    while (this.nSending + this.nReady < this.depth) {
      const k = (this.head + this.nSending + this.nReady) % this.depth;
      if (!this.encodeChunk(k)) break;
      this.nReady++;
    }
    this.handOver();
    this.wakeDrainWaiters();
  }

  /** Up to `handoff` ready chunks, in ring order, to the sender thread, if it is idle. */
  private handOver(): void {
    if (this.nSending !== 0 || this.nReady === 0 || this.waitingWritable) return;
    const n = Math.min(this.nReady, this.handoff);
    for (let i = 0; i < n; i++) {
      const k = (this.head + i) % this.depth;
      this.sendList[2 * i] = k * this.chunkSize;
      this.sendList[2 * i + 1] = this.chunkLen[k]!;
    }
    this.nSending = n;
    this.nReady -= n;
    try {
      this.socket.sendAsync(this.sendBuf, this.sendList, n, this.onSent);
    } catch (e) {
      this.nSending = 0;
      this.nReady = 0;
      this.failUnacked(e instanceof KrtError ? e : new NetlinkSocketError(0, `netlink send: ${String(e)}`));
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

  /** The sender thread is done with the chunks it was given: read every answer, then pump again. */
  private readonly onSent = (sent: number, errno: number): void => {
    const given = this.nSending;
    this.nSending = 0;
    if (this.closed) return; // destroy() failed everything still open
    for (let i = 0; i < sent; i++) {
      this.stats.sent += this.chunkLen[this.head]!;
      this.sentFences.push(this.chunkFence[this.head]!);
      this.head = (this.head + 1) % this.depth;
    }
    this.nReady += given - sent; // not sent: ready again, in order, at the head
    this.receiveNow();
    if (errno === EAGAIN) {
      this.waitingWritable = true;
      this.socket.wantWritable(true);
    } else if (errno !== 0) {
      this.nReady = 0;
      this.failUnacked(new NetlinkSocketError(errno, 'netlink send'));
    }
    if (this.inflight === 0 && this.queued === 0) this.socket.ref(false);
    this.pump();
  };

  private consume(b: Batch, fromRetry: boolean): void {
    if (fromRetry) b.retry.shift();
    else b.next++;
    this.queued--;
  }

  // ------------------------------------------------------------ acks

  /** Reads every ack queued now; after an overflow, re-checks what stayed unanswered. */
  private receiveNow(): void {
    this.beforeAnswers?.();
    for (;;) {
      const r = this.socket.receive();
      this.onAcks(r.bytes, r.errno);
      if (r.dry || this.socket.isClosed) break;
    }
    // The kernel answers a send inside sendmsg: once the socket is drained, a fence still open
    // means its answers were lost (or the kernel stopped reading the send midway). Re-check.
    for (const fence of this.sentFences) {
      if (this.slotBatch[fence & this.mask] !== undefined && this.slotSeq[fence & this.mask] === fence) this.overflowSeen = true;
    }
    this.sentFences.length = 0;
    if (this.overflowSeen && !this.rechecking && this.nSending === 0 && this.inflight > 0) void this.recheck();
    else if (this.inflight === 0) this.overflowSeen = false;
  }

  private onAcks(bytes: number, errno: number): void {
    const buf = this.socket.buffer;
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
          if (this.slotFence[slot] === 1) this.settleBefore(this.slotChunkStart[slot]!, seq);
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
    if (errno === ENOBUFS) this.overflowSeen = true;
    else if (errno !== 0) this.failUnacked(new NetlinkSocketError(errno, 'netlink receive'));
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
      const tables = new Map<string, { family: 4 | 6; table: number }>();
      for (const { b, index } of lost) {
        const r = b.ops.op(index).route;
        tables.set(`${r.family}/${r.table}`, { family: r.family, table: r.table });
      }
      const present = new Map<string, RouteMessage>();
      for (const t of tables.values()) {
        const dump = await this.checker.dumpRoutes(t);
        for (const r of dump.items) present.set(routeKey(r), r);
      }
      for (const { b, index } of lost) {
        const op = b.ops.op(index);
        const have = present.get(routeKey(op.route, opDst(op)));
        const done = op.cmd === 'delete' ? have === undefined : have !== undefined && sameNextHop(op.route, have);
        if (done) {
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
