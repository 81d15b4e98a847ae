/**
 * Socket wrappers over the native addon: NetlinkSocket (NETLINK_ROUTE) and
 * UnixDatagramSocket (sd_notify, journal, and a test-side receiver).
 *
 * A NetlinkSocket owns one receive buffer. Data is read either synchronously
 * with receive() (the pipeline drains acks right after a send: the kernel has
 * processed a netlink request by the time sendmsg returns) or from the event
 * loop with start(). Both fill the same buffer, so a consumer must finish with
 * the bytes before returning; decoders copy what they keep.
 *
 * Errors: setup failures throw NetlinkSocketError; send returns -errno so the
 * hot path does not throw; a receive error is passed along with the data
 * (ENOBUFS: the kernel dropped messages, the socket stays usable).
 */
import * as C from './constants';
import { NetlinkSocketError } from './errors';
import { NativeSocket, native } from './native';

export interface NetlinkSocketOptions {
  /** Multicast groups to join (RTNLGRP_*). */
  groups?: readonly number[];
  /** Open the socket inside this network namespace: a name under /run/netns or an absolute path. */
  netns?: string;
  /** SO_RCVBUFFORCE bytes (the kernel doubles it); default 4 MiB. */
  rcvbuf?: number;
  /** SO_SNDBUFFORCE bytes; must exceed the largest single send. Default 4 MiB. */
  sndbuf?: number;
  /** NETLINK_EXT_ACK (default on): errors carry the kernel's explanation. */
  extAck?: boolean;
  /** NETLINK_CAP_ACK (default on): error replies do not echo the request. */
  capAck?: boolean;
  /** NETLINK_GET_STRICT_CHK (default on): dumps are filtered by the kernel, bad requests refused. */
  strictCheck?: boolean;
  /** NETLINK_NO_ENOBUFS (default off): never report overflows. Only for sockets that do not care. */
  noEnobufs?: boolean;
  /** Size of the receive buffer handed to the native drain; default 4 MiB. */
  recvBufferSize?: number;
}

export function netnsPath(netns: string): string {
  return netns.startsWith('/') ? netns : `/run/netns/${netns}`;
}

function wrapNative<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const errno = (e as { errno?: number }).errno;
    throw new NetlinkSocketError(typeof errno === 'number' ? errno : 0, `${what}: ${(e as Error).message}`, { cause: e });
  }
}

export interface ReceiveResult {
  /** Bytes of whole messages now at the start of `buffer`. */
  bytes: number;
  /** ENOBUFS when the kernel dropped messages (the drain read on past it), another errno that ended the drain, or 0. */
  errno: number;
  /** True when the socket had nothing more queued. */
  dry: boolean;
}

/**
 * What the client needs from a socket; NetlinkSocket is the real one, tests
 * use an in-memory one where the kernel is not the thing under test.
 */
export interface NetlinkTransport {
  readonly buffer: Buffer;
  readonly isClosed: boolean;
  nextSeq(): number;
  send(buf: Buffer, len: number, off?: number): number;
  /** Sends from a worker thread (NetlinkSocket.sendAsync); without it, requests are sent on the JS thread. */
  sendAsync?(buf: Buffer, chunks: Int32Array, count: number, cb: (sent: number, errno: number) => void): void;
  start(onData: (bytes: number, errno: number) => void): void;
  ref(ref: boolean): void;
  close(): void;
}

export class NetlinkSocket implements NetlinkTransport {
  readonly buffer: Buffer;
  private readonly status = new Int32Array(2);
  private seq: number;
  private closed = false;
  private polling = false;

  private constructor(private readonly sock: NativeSocket, recvBufferSize: number) {
    this.buffer = Buffer.allocUnsafe(recvBufferSize);
    // Random start: replies to an earlier process's requests cannot be mistaken for ours.
    this.seq = (Math.random() * 0x3fffffff) >>> 0;
  }

  static open(opts: NetlinkSocketOptions = {}): NetlinkSocket {
    const s = wrapNative('netlink socket', () => native.netlinkOpen(C.NETLINK_ROUTE, opts.groups ?? [], opts.netns ? netnsPath(opts.netns) : null));
    const ns = new NetlinkSocket(s, Math.max(opts.recvBufferSize ?? 4 << 20, 65536));
    try {
      ns.setOption(C.SOL_SOCKET, C.SO_RCVBUFFORCE, opts.rcvbuf ?? 4 << 20);
      ns.setOption(C.SOL_SOCKET, C.SO_SNDBUFFORCE, opts.sndbuf ?? 4 << 20);
      ns.setOption(C.SOL_NETLINK, C.NETLINK_EXT_ACK, opts.extAck === false ? 0 : 1);
      ns.setOption(C.SOL_NETLINK, C.NETLINK_CAP_ACK, opts.capAck === false ? 0 : 1);
      ns.setOption(C.SOL_NETLINK, C.NETLINK_GET_STRICT_CHK, opts.strictCheck === false ? 0 : 1);
      if (opts.noEnobufs) ns.setOption(C.SOL_NETLINK, C.NETLINK_NO_ENOBUFS, 1);
    } catch (e) {
      ns.close();
      throw e;
    }
    return ns;
  }

  /** The next sequence number (32-bit, wrapping). */
  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  setOption(level: number, name: number, value: number): void {
    wrapNative(`setsockopt(${level}, ${name})`, () => native.setsockoptInt(this.sock, level, name, value));
  }

  getOption(level: number, name: number): number {
    return wrapNative(`getsockopt(${level}, ${name})`, () => native.getsockoptInt(this.sock, level, name));
  }

  addMembership(group: number): void {
    this.setOption(C.SOL_NETLINK, C.NETLINK_ADD_MEMBERSHIP, group);
  }

  dropMembership(group: number): void {
    this.setOption(C.SOL_NETLINK, C.NETLINK_DROP_MEMBERSHIP, group);
  }

  /** Sends buf[off..off+len) (any number of whole messages): bytes sent, or -errno (-EAGAIN: wait for writability). */
  send(buf: Buffer, len: number, off = 0): number {
    return native.send(this.sock, buf, off, len);
  }

  /**
   * Sends chunks of buf (chunks = [off, len, ...], `count` pairs) in order, on a worker thread: the
   * kernel processes netlink requests inside sendmsg, so its work runs beside the JS thread. cb gets
   * the number of chunks sent and the errno that stopped the rest (0 if none). One at a time; the
   * poll is paused until cb, so every answer to these requests is read after it, never midway.
   */
  sendAsync(buf: Buffer, chunks: Int32Array, count: number, cb: (sent: number, errno: number) => void): void {
    wrapNative('sendAsync', () => native.sendAsync(this.sock, buf, chunks, count, cb));
  }

  /**
   * Starts the send queue (native/send_queue.c): chunks of buf queued with queueSend are sent in
   * order, one sendmsg each, by a thread of the socket's own, which goes on while the JS thread queues
   * more. onSent(sent, errno) runs on the JS thread after chunks went (coalesced): the chunks sent
   * since the open, and the errno that halted the queue (0 if none; then clearSendQueue()). The poll
   * keeps running: answers may be read while the thread sends. Closing the socket stops the thread.
   */
  openSendQueue(buf: Buffer, onSent: (sent: number, errno: number) => void): void {
    wrapNative('send queue', () => native.sendQueueOpen(this.sock, buf, onSent));
  }

  /** Queues buf[off..off+len) (the buffer given to openSendQueue) behind every chunk queued before. */
  queueSend(off: number, len: number): void {
    wrapNative('send queue', () => native.sendQueuePush(this.sock, off, len));
  }

  /** After a halt: drops every chunk not sent (the failed one first) and resumes; how many were dropped. */
  clearSendQueue(): number {
    return wrapNative('send queue', () => native.sendQueueClear(this.sock));
  }

  /** Drains what is queued now into `buffer`, synchronously. */
  receive(): ReceiveResult {
    const bytes = native.recv(this.sock, this.buffer, this.status);
    return { bytes, errno: this.status[0]!, dry: this.status[1] === 1 };
  }

  /**
   * Delivers data from the event loop: onData(bytes, errno) once per wake-up,
   * bytes at the start of `buffer`, then the errno (0, or e.g. ENOBUFS).
   * `onWritable` runs when wantWritable(true) was asked and the socket can send.
   */
  start(onData: (bytes: number, errno: number) => void, onWritable?: () => void): void {
    if (this.polling) throw new NetlinkSocketError(22, 'socket is already started');
    this.polling = true;
    native.start(this.sock, this.buffer, (bytes, errno, writable) => {
      if (bytes > 0 || errno !== 0) onData(bytes, errno);
      if (writable && onWritable && !this.closed) onWritable();
    });
  }

  wantWritable(want: boolean): void {
    if (!this.closed) native.wantWritable(this.sock, want);
  }

  /** A started socket keeps the process alive unless unref'd (a monitor should not). */
  ref(ref: boolean): void {
    if (!this.closed) native.ref(this.sock, ref);
  }

  get fd(): number {
    return native.fd(this.sock);
  }

  /** The netlink port id the kernel bound this socket to (nlmsg_pid of what it sends, for notifications it causes). */
  get portId(): number {
    return wrapNative('getsockname', () => native.portId(this.sock));
  }

  /**
   * Datagrams dropped on receive because a process sent them (nl_pid != 0):
   * only the kernel speaks on our sockets, and root can forge a
   * notification or an ack to our port or groups. `lastPort` names the sender.
   */
  get foreign(): { dropped: number; lastPort: number } {
    if (this.closed) return { dropped: 0, lastPort: 0 };
    const [dropped, lastPort] = native.foreign(this.sock);
    return { dropped, lastPort };
  }

  /** Sends buf[off..off+len) to another netlink port or to multicast groups (bitmask of group - 1): bytes, or -errno. */
  sendTo(buf: Buffer, len: number, portId: number, groups = 0, off = 0): number {
    return native.send(this.sock, buf, off, len, portId, groups);
  }

  /** Attaches a classic BPF socket filter (sock_filter array, 8 bytes per instruction). */
  attachFilter(program: Uint8Array): void {
    wrapNative('SO_ATTACH_FILTER', () => native.attachFilter(this.sock, program));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Idempotent; safe with data queued and from inside a data callback. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.close(this.sock);
  }
}

/** A datagram received by a UnixDatagramSocket, with the fd passed along (SCM_RIGHTS) if any. */
export interface UnixDatagram {
  data: Buffer;
  /** A received fd; the receiver owns it and must closeFd() it. */
  fd?: number;
}

/**
 * AF_UNIX datagrams: sd_notify and the journal's native protocol send this
 * way (Node's dgram has no AF_UNIX); bound, it is also a receiver for tests.
 */
export class UnixDatagramSocket {
  private closed = false;

  private constructor(private readonly sock: NativeSocket) {}

  /** An unbound sender, or a receiver bound to `bindPath` ('@name' for an abstract address). */
  static open(bindPath?: string): UnixDatagramSocket {
    return new UnixDatagramSocket(wrapNative('unix socket', () => native.unixOpen(bindPath ?? null)));
  }

  /** Sends one datagram to `path`; returns bytes sent or -errno (e.g. -EMSGSIZE: use sendMemfd). */
  send(path: string, data: Buffer, fd = -1): number {
    return native.unixSend(this.sock, path, data, 0, data.length, fd);
  }

  /** Sends `data` as a sealed memfd (the journal's way for entries too large for a datagram). */
  sendMemfd(path: string, data: Buffer): number {
    const fd = wrapNative('memfd', () => native.memfdFromBuffer('krtsync-journal', data));
    try {
      return native.unixSend(this.sock, path, Buffer.alloc(0), 0, 0, fd);
    } finally {
      native.closeFd(fd);
    }
  }

  /** Receives datagrams from the event loop, a batch per wake-up. */
  start(onDatagrams: (datagrams: UnixDatagram[], errno: number) => void): void {
    const buf = Buffer.allocUnsafe(1 << 20); // the native side holds a reference while polling
    native.start(this.sock, buf, (bytes, errno) => {
      const out: UnixDatagram[] = [];
      let p = 0;
      while (p + 8 <= bytes) {
        const len = buf.readUInt32LE(p);
        const fd = buf.readInt32LE(p + 4);
        const data = Buffer.from(buf.subarray(p + 8, p + 8 + len));
        out.push(fd >= 0 ? { data, fd } : { data });
        p += 8 + ((len + 3) & ~3);
      }
      if (out.length > 0 || errno !== 0) onDatagrams(out, errno);
    });
  }

  get fd(): number {
    return native.fd(this.sock);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.close(this.sock);
  }
}

/** Closes an fd received with a datagram. */
export function closeFd(fd: number): void {
  native.closeFd(fd);
}
