/**
 * NetlinkClient: one-off requests and dumps over one socket, driven by the
 * event loop. Used for table scans, link and address lookups and changes,
 * and by the route pipeline to re-check changes whose acks were lost.
 *
 * Invariants:
 * - One dump at a time per socket (the kernel allows one); dumps queue.
 * - A dump whose messages carry NLM_F_DUMP_INTR (the table changed while it
 *   ran) is thrown away and retried, up to `maxDumpRetries`, then fails with
 *   code KRT_ERR_NETLINK_DUMP_INTR.
 * - Every reply is matched by sequence number; stray replies are ignored.
 * - ENOBUFS on this socket fails the requests and dumps in progress (their
 *   replies may be lost) with a NetlinkSocketError; the socket stays usable.
 */
import { KrtError } from '../lib/errors';
import * as C from './constants';
import { NetlinkDecodeError, NetlinkRequestError, NetlinkSocketError } from './errors';
import { AddrMessage, LinkMessage, LinkRequest, decodeAddrMessage, decodeLinkMessage, encodeAddrDump, encodeAddrRequest, encodeLinkDump, encodeLinkRequest } from './link-codec';
import { decodeAck } from './message-codec';
import { RouteCommand, RouteDumpFilter, RouteMessage, decodeRouteMessage, encodeRouteDump, encodeRouteRequest } from './route-codec';
import { NetlinkSocket, NetlinkSocketOptions, NetlinkTransport } from './socket';
import { Addr, Family } from '../lib/addr';
import { walkMessages } from './wire';

/** Writes one request at buf[0..] with sequence number seq; returns its length (0: does not fit). */
export type RequestEncoder = (buf: Buffer, off: number, seq: number) => number;

/** Decodes one reply message of a dump, or returns undefined to skip it (another message type). */
export type DumpDecoder<T> = (buf: Buffer, off: number, len: number, type: number) => T | undefined;

export interface DumpResult<T> {
  items: T[];
  /** Messages of the dump that could not be decoded (each with its offset); the rest are in items. */
  errors: NetlinkDecodeError[];
  /** How many times the dump was restarted because of NLM_F_DUMP_INTR. */
  retries: number;
}

export class DumpInterruptedError extends KrtError {
  constructor(tries: number) {
    super('KRT_ERR_NETLINK_DUMP_INTR', `dump interrupted (NLM_F_DUMP_INTR) ${tries} times in a row; the table keeps changing`);
  }
}

interface Pending {
  seq: number;
  /** Called per reply message; returns true when the exchange is complete. */
  onMessage(buf: Buffer, off: number, len: number, type: number, flags: number): boolean;
  fail(err: Error): void;
}

export interface NetlinkClientOptions extends NetlinkSocketOptions {
  maxDumpRetries?: number;
}

export class NetlinkClient {
  private readonly pending = new Map<number, Pending>();
  /** Settles when the last dump has; holds no result (a restart's dump of 1M routes is 120 MB). */
  private dumpChain: Promise<void> = Promise.resolve();
  private readonly sendBuf = Buffer.alloc(64 * 1024);
  /** Settles when the last requestOffThread has (they go one at a time). */
  private offThread: Promise<void> = Promise.resolve();
  private readonly maxDumpRetries: number;
  private active = 0;

  constructor(readonly socket: NetlinkTransport, opts: { maxDumpRetries?: number } = {}) {
    this.maxDumpRetries = opts.maxDumpRetries ?? 5;
    socket.start((bytes, errno) => this.onData(bytes, errno));
    socket.ref(false); // only outstanding requests keep the process alive
  }

  static open(opts: NetlinkClientOptions = {}): NetlinkClient {
    return new NetlinkClient(NetlinkSocket.open({ rcvbuf: 32 << 20, ...opts }), opts);
  }

  private onData(bytes: number, errno: number): void {
    const buf = this.socket.buffer;
    walkMessages(buf, 0, bytes, (off, len) => {
      const seq = buf.readUInt32LE(off + 8);
      const p = this.pending.get(seq);
      if (p && p.onMessage(buf, off, len, buf.readUInt16LE(off + 4), buf.readUInt16LE(off + 6))) this.finish(seq);
    });
    if (errno !== 0) {
      const err = new NetlinkSocketError(errno, 'netlink receive (replies may be lost)');
      for (const [seq, p] of [...this.pending]) {
        this.finish(seq);
        p.fail(err);
      }
    }
  }

  private finish(seq: number): void {
    if (this.pending.delete(seq) && --this.active === 0) this.socket.ref(false);
  }

  /** Sends one request and registers its reply handler. */
  private exchange(encode: RequestEncoder, make: (seq: number) => Pending): void {
    if (this.socket.isClosed) throw new NetlinkSocketError(9, 'netlink client is closed');
    const seq = this.socket.nextSeq();
    const n = encode(this.sendBuf, 0, seq);
    if (n === 0) throw new NetlinkSocketError(90, 'request does not fit the send buffer');
    this.pending.set(seq, make(seq));
    if (this.active++ === 0) this.socket.ref(true);
    const r = this.socket.send(this.sendBuf, n);
    if (r < 0) {
      this.finish(seq);
      throw new NetlinkSocketError(-r, 'netlink send');
    }
  }

  /** Sends a request that wants an ack (NLM_F_ACK); resolves on success, rejects with NetlinkRequestError. */
  request(encode: RequestEncoder, context?: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.exchange(encode, (seq) => this.acked(seq, resolve, reject, context));
    });
  }

  private acked(seq: number, resolve: () => void, reject: (err: Error) => void, context: string | undefined): Pending {
    return {
      seq,
      onMessage: (buf, off, len, type) => {
        if (type !== C.NLMSG_ERROR) return false;
        const ack = decodeAck(buf, off, len);
        if (ack.errno === 0) resolve();
        else reject(new NetlinkRequestError(ack.errno, ack.extAck, context));
        return true;
      },
      fail: reject,
    };
  }

  /**
   * request(), sent from a worker thread: the kernel does a request's work inside sendmsg, and
   * some take long (deleting a nexthop object deletes every route on it: about a second for a
   * million), which the JS thread then spends on other work. One at a time (later ones wait their
   * turn); on a transport without sendAsync, the same as request().
   */
  requestOffThread(encode: RequestEncoder, context?: string): Promise<void> {
    const sendAsync = this.socket.sendAsync?.bind(this.socket);
    if (sendAsync === undefined) return this.request(encode, context);
    const run = (): Promise<void> =>
      new Promise((resolve, reject) => {
        if (this.socket.isClosed) return reject(new NetlinkSocketError(9, 'netlink client is closed'));
        const seq = this.socket.nextSeq();
        const buf = Buffer.alloc(this.sendBuf.length); // the shared one may be written while this is sent
        const n = encode(buf, 0, seq);
        if (n === 0) return reject(new NetlinkSocketError(90, 'request does not fit the send buffer'));
        this.pending.set(seq, this.acked(seq, resolve, reject, context));
        if (this.active++ === 0) this.socket.ref(true);
        try {
          sendAsync(buf, Int32Array.of(0, n), 1, (_sent, errno) => {
            if (errno === 0) return;
            this.finish(seq);
            reject(new NetlinkSocketError(errno, 'netlink send'));
          });
        } catch (err) {
          this.finish(seq);
          reject(err as Error);
        }
      });
    const result = this.offThread.then(run, run);
    this.offThread = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Sends a request answered by one message (e.g. RTM_GETLINK of one link); resolves with it decoded. */
  get<T>(encode: RequestEncoder, decode: DumpDecoder<T>, context?: string): Promise<T> {
    return new Promise((resolve, reject) => {
      this.exchange(encode, (seq) => ({
        seq,
        onMessage: (buf, off, len, type) => {
          if (type === C.NLMSG_ERROR) {
            const ack = decodeAck(buf, off, len);
            if (ack.errno === 0) return false; // an ack before the answer: keep waiting
            reject(new NetlinkRequestError(ack.errno, ack.extAck, context));
            return true;
          }
          try {
            const v = decode(buf, off, len, type);
            if (v === undefined) return false;
            resolve(v);
          } catch (e) {
            reject(e);
          }
          return true;
        },
        fail: reject,
      }));
    });
  }

  /**
   * Runs a dump to NLMSG_DONE, retrying when the kernel flags it interrupted. Dumps on one client run one at a time.
   * `onAttempt` runs before each attempt but the first: a decoder that keeps what it decodes itself (returning
   * undefined) starts over there.
   */
  dump<T>(encode: RequestEncoder, decode: DumpDecoder<T>, context = 'dump', onAttempt?: () => void): Promise<DumpResult<T>> {
    const run = async (): Promise<DumpResult<T>> => {
      for (let attempt = 0; attempt <= this.maxDumpRetries; attempt++) {
        if (attempt > 0) onAttempt?.();
        const r = await this.dumpOnce(encode, decode, context);
        if (!r.interrupted) return { items: r.items, errors: r.errors, retries: attempt };
      }
      throw new DumpInterruptedError(this.maxDumpRetries + 1);
    };
    const result = this.dumpChain.then(run, run);
    this.dumpChain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private dumpOnce<T>(encode: RequestEncoder, decode: DumpDecoder<T>, context: string): Promise<{ items: T[]; errors: NetlinkDecodeError[]; interrupted: boolean }> {
    return new Promise((resolve, reject) => {
      const items: T[] = [];
      const errors: NetlinkDecodeError[] = [];
      let interrupted = false;
      this.exchange(encode, (seq) => ({
        seq,
        onMessage: (buf, off, len, type, flags) => {
          if (flags & C.NLM_F_DUMP_INTR) interrupted = true;
          if (type === C.NLMSG_DONE || type === C.NLMSG_ERROR) {
            const ack = len >= C.NLMSG_HDRLEN + 4 ? decodeAck(buf, off, len) : undefined;
            if (ack && ack.errno !== 0) reject(new NetlinkRequestError(ack.errno, ack.extAck, context));
            else if (type === C.NLMSG_DONE) resolve({ items, errors, interrupted });
            else return false; // an ack (errno 0) of the dump request itself
            return true;
          }
          if (interrupted) return false; // will be retried: do not spend time decoding
          try {
            const v = decode(buf, off, len, type);
            if (v !== undefined) items.push(v);
          } catch (e) {
            errors.push(e instanceof NetlinkDecodeError ? e : new NetlinkDecodeError(String(e), off));
          }
          return false;
        },
        fail: reject,
      }));
    });
  }

  // ------------------------------------------------------------ typed helpers

  /** Every route of one family (and, with strict checking, one table/protocol). */
  dumpRoutes(filter: RouteDumpFilter): Promise<DumpResult<RouteMessage>> {
    return this.dump(
      (b, o, s) => encodeRouteDump(b, o, s, filter),
      (b, o, l, t) => (t === C.RTM_NEWROUTE ? decodeRouteMessage(b, o, l) : undefined),
      `dump routes of table ${filter.table ?? 'all'}`,
    );
  }

  dumpLinks(): Promise<DumpResult<LinkMessage>> {
    return this.dump(encodeLinkDump, (b, o, l, t) => (t === C.RTM_NEWLINK ? decodeLinkMessage(b, o, l) : undefined), 'dump links');
  }

  dumpAddrs(family?: Family): Promise<DumpResult<AddrMessage>> {
    return this.dump(
      (b, o, s) => encodeAddrDump(b, o, s, family),
      (b, o, l, t) => (t === C.RTM_NEWADDR ? decodeAddrMessage(b, o, l) : undefined),
      'dump addresses',
    );
  }

  /** One link by index or name (ENODEV when there is none). */
  getLink(key: { index?: number; name?: string }): Promise<LinkMessage> {
    return this.get(
      (b, o, s) => encodeLinkRequest(b, o, s, { op: 'get', ...key }),
      (b, o, l, t) => (t === C.RTM_NEWLINK ? decodeLinkMessage(b, o, l) : undefined),
      `get link ${key.name ?? key.index}`,
    );
  }

  setLink(req: LinkRequest): Promise<void> {
    return this.request((b, o, s) => encodeLinkRequest(b, o, s, req), `${req.op} link ${req.name ?? req.index}`);
  }

  changeAddr(op: 'add' | 'delete', a: { index: number; local: Addr; prefixLen: number; flags?: number }): Promise<void> {
    return this.request((b, o, s) => encodeAddrRequest(b, o, s, op, a), `${op} address ${a.local}/${a.prefixLen}`);
  }

  /** One route change, acked: for small jobs and tests; bulk work goes through RoutePipeline. */
  changeRoute(cmd: RouteCommand, route: RouteMessage): Promise<void> {
    return this.request((b, o, s) => encodeRouteRequest(b, o, s, cmd, route), `${cmd} ${route.dst}`);
  }

  /** Closes the socket; requests still waiting fail. Idempotent. */
  close(): void {
    if (this.socket.isClosed) return;
    this.socket.close();
    const err = new NetlinkSocketError(9, 'netlink client closed');
    for (const p of this.pending.values()) p.fail(err);
    this.pending.clear();
    this.active = 0;
  }
}

/**
 * Whether a route dump with `filter` (strict: the kernel filters by table and protocol) lists
 * anything, asked on a socket of its own that is closed at the first route, so the kernel drops
 * the rest of the dump unsent: a start asks it to tell a kernel holding a million routes of ours
 * (a restart) from one holding none, for the cost of one reply. A table that does not exist
 * (ENOENT) holds nothing. Routes are checked against the filter here too, in case the kernel
 * did not filter.
 */
export async function anyRoute(filter: RouteDumpFilter, opts: NetlinkSocketOptions = {}): Promise<boolean> {
  const client = new NetlinkClient(NetlinkSocket.open({ rcvbuf: 1 << 16, recvBufferSize: 1 << 16, ...opts }), { maxDumpRetries: 0 });
  let found = false;
  const match = (buf: Buffer, off: number, len: number, type: number): undefined => {
    if (found || type !== C.RTM_NEWROUTE) return undefined;
    const r = decodeRouteMessage(buf, off, len);
    if ((filter.table === undefined || r.table === filter.table) && (filter.protocol === undefined || r.protocol === filter.protocol)) {
      found = true;
      client.close(); // the rest of the dump is never read
    }
    return undefined;
  };
  try {
    await client.dump((b, o, seq) => encodeRouteDump(b, o, seq, filter), match, `probe routes of table ${filter.table ?? 'any'}`);
    return found;
  } catch (err) {
    if (found) return true; // the close above failed the dump
    if (err instanceof DumpInterruptedError) return true; // a table that changes while it is read: not known empty
    if (err instanceof NetlinkRequestError && err.errno === 2) return false; // ENOENT: no such table yet
    throw err;
  } finally {
    client.close();
  }
}

