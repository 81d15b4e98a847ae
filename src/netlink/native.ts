/**
 * The one place that loads the native addon (native/krtsync_native.c) and
 * types it. Sockets only: no message logic lives in C. Hot-path calls (send,
 * recv) return negative errno values instead of throwing; setup calls throw
 * an Error with `code` (errno name) and `errno`, which socket.ts wraps.
 */
import { join } from 'node:path';

/** Opaque handle of a native socket (an N-API external). */
export interface NativeSocket {
  readonly __nativeSocket: unique symbol;
}

export interface NativeAddon {
  /** AF_NETLINK socket (non-blocking, bound, joined to `groups`), inside the namespace at nsPath when given. */
  netlinkOpen(protocol: number, groups: readonly number[], nsPath: string | null): NativeSocket;
  /** AF_UNIX SOCK_DGRAM socket, bound to bindPath when given ('@name' is abstract). */
  unixOpen(bindPath: string | null): NativeSocket;
  setsockoptInt(s: NativeSocket, level: number, name: number, value: number): void;
  getsockoptInt(s: NativeSocket, level: number, name: number): number;
  /** sendmsg of buf[off..off+len) to the kernel (or to a netlink port and/or multicast groups bitmask): bytes sent or -errno. */
  send(s: NativeSocket, buf: Uint8Array, off: number, len: number, portId?: number, groups?: number): number;
  /**
   * sendmsg of each chunk (chunks = [off0, len0, off1, len1, ...], `count` pairs) on a worker thread,
   * in order; cb(sent, errno) on the JS thread: chunks sent, and the errno that stopped the rest or 0.
   * One at a time per socket; the socket's poll is paused meanwhile; buf and chunks must stay untouched.
   */
  sendAsync(s: NativeSocket, buf: Uint8Array, chunks: Int32Array, count: number, cb: (sent: number, errno: number) => void): void;
  /**
   * Starts the socket's send queue (native/send_queue.c): a thread of its own that sends queued chunks
   * of buf in order, one sendmsg each. cb(sent, errno) on the JS thread after chunks were sent
   * (coalesced): chunks sent since the open, and the errno that halted the queue or 0.
   */
  sendQueueOpen(s: NativeSocket, buf: Buffer, cb: (sent: number, errno: number) => void): void;
  /** Queues buf[off..off+len) (at most 256 queued and not sent). */
  sendQueuePush(s: NativeSocket, off: number, len: number): void;
  /** Only when halted by an error: drops every chunk not sent, resumes; returns how many it dropped. */
  sendQueueClear(s: NativeSocket): number;
  /** sendmsg to a unix path, with fd passed by SCM_RIGHTS when fd >= 0: bytes or -errno. */
  unixSend(s: NativeSocket, path: string, buf: Uint8Array, off: number, len: number, fd: number): number;
  /** A sealed memfd holding buf; the caller closes it with closeFd. */
  memfdFromBuffer(name: string, buf: Uint8Array): number;
  closeFd(fd: number): void;
  /** Drains into buf: returns bytes; status[0] = errno that ended the drain or 0, status[1] = 1 when the socket ran dry. */
  recv(s: NativeSocket, buf: Uint8Array, status: Int32Array): number;
  /** Polls the fd; cb runs once per wake-up with the bytes drained into buf, the errno that ended the drain, and writability. */
  start(s: NativeSocket, buf: Uint8Array, cb: (bytes: number, errno: number, writable: boolean) => void): void;
  wantWritable(s: NativeSocket, want: boolean): void;
  /** Whether a polling socket keeps the event loop alive. */
  ref(s: NativeSocket, ref: boolean): void;
  /** Idempotent; safe while polling and with data queued. */
  close(s: NativeSocket): void;
  fd(s: NativeSocket): number;
  /** The netlink port id the kernel bound the socket to. */
  portId(s: NativeSocket): number;
  /** SO_ATTACH_FILTER: a classic BPF program as its sock_filter array (8 bytes per instruction, host order). */
  attachFilter(s: NativeSocket, program: Uint8Array): void;
  /** Netlink datagrams the drain dropped because a process (nl_pid != 0), not the kernel, sent them; and the last one's port. */
  foreign(s: NativeSocket): [count: number, lastPort: number];
  /** flock(2) on any fd: 0 or -errno. */
  flock(fd: number, op: number): number;
  /** mallopt(M_MMAP_THRESHOLD): 1 when set, 0 when the C library has no such setting (not glibc). */
  mallocMmapThreshold(bytes: number): number;
}

// Same path from src/netlink (ts-jest) and dist/netlink (built): the repo's native/ folder.
export const native: NativeAddon = require(join(__dirname, '..', '..', 'native', 'build', 'Release', 'krtsync_native.node')) as NativeAddon;
