/**
 * The control socket server: a Unix stream socket, mode 0660 (configurable)
 * and owned by the configured group, so the kernel itself refuses anyone
 * outside the group.
 *
 * Bounds, so one client can never hurt another or the daemon: a request line
 * is at most MAX_REQUEST_BYTES (a longer one gets an error and is skipped), a
 * started request must be complete within requestTimeoutMs (a slow client is
 * told so and disconnected), a connection idle for idleTimeoutMs is closed
 * (not a stream: a BGP feed may be quiet for hours), so idle clients cannot
 * hold every slot (both judged on what the client sent by the deadline, not
 * on when a late event loop read it), at most maxClients connections at once, and a
 * malformed request gets an error response on its own connection only.
 * Requests of one connection are answered in order. The daemon's handler is
 * responsible for running management commands through one queue.
 *
 * Memory per connection is bounded both ways. In: requests waiting to be
 * answered are held up to MAX_BACKLOG_LINES / MAX_BACKLOG_BYTES, then the
 * socket is paused (the client's writes block in the kernel). Out: once
 * unread output passes outputHighWater, nothing more is read or answered
 * until the client reads; a handler streaming partial results waits for the
 * client at every chunk. A client that reads nothing for sendTimeoutMs while
 * output waits is disconnected ("stalled"; judged, too, on what it read by the
 * deadline, not on when a late loop saw it), and a handler waiting on a
 * connection that is gone gets an error, so it unwinds and releases what it
 * holds (a `show routes` feeder). Counts of refusals and disconnects by
 * reason are kept in stats() for the status output and metrics.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { KrtError } from '../lib/errors';
import { LineSplitter } from '../lib/line-splitter';
import { errorBody, MAX_REQUEST_BYTES, parseRequest, type ControlRequest, type ControlResponse } from './protocol';
import { clearStaleSocket, listenWithMode, removeOwnSocket, type SocketIdentity } from './socket-file';

/** Unread output above this pauses the connection until the client reads. */
export const OUTPUT_HIGH_WATER = 1 << 20;
const MAX_BACKLOG_LINES = 1000;
const MAX_BACKLOG_BYTES = 1 << 20;

/** What a handler may do with the connection while answering. */
export interface ControlContext {
  /**
   * Sends a partial result; resolves when the socket can take more
   * (backpressure). Rejects (KRT_ERR_DISCONNECTED) once the client is gone, so
   * a streaming handler stops and releases what it holds.
   */
  more(items: unknown[]): Promise<void>;
  /**
   * Turns the connection into a line stream after the response to this
   * request: every later line goes to `onLine`, and `onClose` runs once when
   * the client goes away. Used by the "feed" command.
   */
  takeOver(stream: StreamConsumer): void;
  /** Sends one JSON line on the connection (for stream consumers). */
  send(obj: unknown): void;
  /** Closes the connection once what was sent is written (a stream consumer that drops its client). */
  hangUp(): void;
  readonly clientId: number;
}

export interface StreamConsumer {
  /** Line number counts from 1 at the first stream line. */
  onLine(line: string, lineNo: number): void;
  onClose(): void;
}

export type ControlHandler = (req: ControlRequest, ctx: ControlContext) => Promise<unknown>;

export interface ControlServerOptions {
  path: string;
  mode?: number;
  group?: string;
  maxClients?: number;
  requestTimeoutMs?: number;
  /** A request/response connection with nothing to do for this long is closed (stream connections are exempt). */
  idleTimeoutMs?: number;
  /** A connection whose waiting output makes no progress for this long is closed; default 30 s. */
  sendTimeoutMs?: number;
  /** Unread output that pauses reading and answering; default OUTPUT_HIGH_WATER. */
  outputHighWater?: number;
  onError?: (message: string) => void;
  /** A client was disconnected by a bound (not by itself); for the log. */
  onDisconnect?: (clientId: number, reason: DisconnectReason, detail: string) => void;
}

export type DisconnectReason = 'stalled' | 'idle' | 'request-timeout';

/** Counters since start, for `show status` and metrics. */
export interface ControlStats {
  clients: number;
  accepted: number;
  /** Connections refused because maxClients were connected. */
  refused: number;
  disconnected: Record<DisconnectReason, number>;
  /** Output bytes written but not yet read by clients, now. */
  unreadBytes: number;
}

export class ConnectionGoneError extends KrtError {
  constructor() {
    super('KRT_ERR_DISCONNECTED', 'the client closed the control connection');
  }
}

/** gid of a group name from /etc/group (Node has no getgrnam); undefined when unknown. */
export function groupId(name: string, groupFile = '/etc/group'): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of readFileSync(groupFile, 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined) return Number(f[2]);
  }
  return undefined;
}

export class ControlServer {
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();
  private nextClientId = 1;
  private socketId: SocketIdentity | undefined;
  private readonly counts = { accepted: 0, refused: 0, disconnected: { stalled: 0, idle: 0, 'request-timeout': 0 } as Record<DisconnectReason, number> };

  constructor(
    private readonly opts: ControlServerOptions,
    private readonly handler: ControlHandler,
  ) {}

  get clientCount(): number {
    return this.clients.size;
  }

  stats(): ControlStats {
    let unreadBytes = 0;
    for (const c of this.clients) unreadBytes += c.writableLength;
    return { clients: this.clients.size, accepted: this.counts.accepted, refused: this.counts.refused, disconnected: { ...this.counts.disconnected }, unreadBytes };
  }

  /**
   * Listens at the configured path. Refuses, touching nothing, when a daemon
   * listens there or the path holds something that is not a socket; a stale
   * socket is replaced. The socket is reachable only with its final mode.
   */
  async listen(): Promise<void> {
    const { path } = this.opts;
    const gid = this.opts.group === undefined ? undefined : groupId(this.opts.group);
    if (this.opts.group !== undefined && gid === undefined) throw new Error(`control socket: group "${this.opts.group}" does not exist`);
    await clearStaleSocket(path);
    const server = createServer((sock) => this.accept(sock));
    server.maxConnections = this.opts.maxClients ?? 256;
    server.on('drop', () => this.counts.refused++);
    try {
      this.socketId = await listenWithMode(server, path, this.opts.mode ?? 0o660, gid, this.opts.group);
    } catch (e) {
      if (e instanceof KrtError || (e as Error).message.startsWith('control socket ')) throw e;
      throw new Error(`control socket ${path}: ${(e as Error).message}`, { cause: e });
    }
    server.on('error', (e) => this.opts.onError?.(`control socket: ${e.message}`));
    this.server = server;
  }

  /** Closes every connection and the socket; removes the socket file only if this server made it and it is still there. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of this.clients) c.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.socketId) removeOwnSocket(this.opts.path, this.socketId);
    this.socketId = undefined;
  }

  private accept(sock: Socket): void {
    const clientId = this.nextClientId++;
    this.counts.accepted++;
    this.clients.add(sock);
    const timeoutMs = this.opts.requestTimeoutMs ?? 10000;
    const idleMs = this.opts.idleTimeoutMs ?? 300000;
    const sendTimeoutMs = this.opts.sendTimeoutMs ?? 30000;
    const highWater = this.opts.outputHighWater ?? OUTPUT_HIGH_WATER;
    let stream: StreamConsumer | undefined;
    let pendingStream: StreamConsumer | undefined;
    let streamLine = 0;
    let current: ControlRequest | undefined;
    let timer: NodeJS.Timeout | undefined;
    // Lines wait here while a request is being answered, so answers keep request order
    // and a "feed" request's stream lines reach the consumer it installs.
    let backlog: string[] = [];
    let backlogHead = 0;
    let backlogBytes = 0;
    let busy = false;
    let draining: Promise<void> | undefined;
    let gone = false;
    // Output: above highWater nothing more is read or answered until 'drain'.
    let blocked = false;
    let waiters: Array<{ resolve(): void; reject(e: Error): void }> = [];
    let stallTimer: NodeJS.Timeout | undefined;
    let flushedAtArm = 0;
    let stallArmed = 0;

    const disconnect = (reason: DisconnectReason, detail: string): void => {
      // Destroyed (by close(), an error, a stall) but its 'close' event not yet run: it is gone already.
      if (gone || sock.destroyed) return;
      this.counts.disconnected[reason]++;
      this.opts.onDisconnect?.(clientId, reason, detail);
    };
    // Read (and queue requests) only while both the output and the backlog have room.
    let paused = false;
    const flow = (): void => {
      if (gone) return;
      paused = blocked || backlog.length - backlogHead >= MAX_BACKLOG_LINES || backlogBytes >= MAX_BACKLOG_BYTES;
      if (paused) sock.pause();
      else sock.resume();
    };
    // Bytes the kernel has taken from us: progress means the client is reading.
    const flushed = (): number => sock.bytesWritten - sock.writableLength;
    // Judged on what the client read by the deadline, not on when a late loop saw it (as the idle timer,
    // below): the timer fires in the timers phase, before that turn's poll writes into the room the
    // client made and counts those writes done. So the verdict waits one turn (setImmediate runs after
    // the poll), and a 'drain' meanwhile (disarmStall) cancels it.
    const disarmStall = (): void => {
      stallArmed++;
      if (stallTimer) clearTimeout(stallTimer);
      stallTimer = undefined;
    };
    const armStall = (): void => {
      if (stallTimer || gone) return;
      flushedAtArm = flushed();
      const at = ++stallArmed;
      const verdict = (): void => {
        if (at !== stallArmed) return;
        stallTimer = undefined;
        if (gone || sock.destroyed || sock.writableLength === 0) return;
        if (flushed() > flushedAtArm) return armStall();
        disconnect('stalled', `read nothing for ${sendTimeoutMs} ms with ${sock.writableLength} bytes of answers waiting`);
        sock.destroy();
      };
      stallTimer = setTimeout(() => setImmediate(verdict), sendTimeoutMs);
    };
    const write = (obj: unknown): boolean => {
      if (gone || !sock.writable) return false;
      const ok = sock.write(JSON.stringify(obj) + '\n');
      if (!ok) {
        armStall();
        arm(); // no request or idle timer while answers wait for the client
      }
      if (sock.writableLength > highWater && !blocked) {
        blocked = true;
        flow();
      }
      return ok;
    };
    /** Resolves once the client has read what waits; rejects when it is gone. */
    const room = (): Promise<void> => (gone ? Promise.reject(new ConnectionGoneError()) : new Promise((resolve, reject) => waiters.push({ resolve, reject })));
    sock.on('drain', () => {
      blocked = false;
      disarmStall();
      const w = waiters;
      waiters = [];
      w.forEach((x) => x.resolve());
      flow();
      arm();
    });

    const ctx: ControlContext = {
      clientId,
      more: async (items) => {
        if (gone) throw new ConnectionGoneError();
        if (!write({ id: current?.id ?? null, more: items })) await room();
      },
      takeOver: (s) => (pendingStream = s),
      send: (obj) => void write(obj),
      hangUp: () => sock.destroySoon(),
    };

    const answer = async (line: string): Promise<void> => {
      let resp: ControlResponse;
      try {
        current = parseRequest(line);
        resp = { id: current.id, ok: true, result: await this.handler(current, ctx) };
      } catch (e) {
        resp = { id: current?.id ?? null, ok: false, error: errorBody(e) };
        pendingStream = undefined;
      }
      write(resp);
      current = undefined;
      stream = pendingStream;
    };
    const drain = async (): Promise<void> => {
      busy = true;
      while (backlogHead < backlog.length) {
        if (blocked) {
          try {
            await room();
          } catch {
            break;
          }
        }
        const line = backlog[backlogHead++]!;
        backlogBytes -= line.length;
        if (stream) stream.onLine(line, ++streamLine);
        else if (line.trim() !== '') await answer(line);
      }
      backlog = [];
      backlogHead = 0;
      backlogBytes = 0;
      busy = false;
      flow();
      arm();
    };
    const onLine = (line: string): void => {
      if (gone) return;
      if (stream && !busy) {
        stream.onLine(line, ++streamLine);
        return;
      }
      backlog.push(line);
      backlogBytes += line.length;
      flow(); // a pipelining client waits for us
      if (!busy) draining = drain();
    };
    const splitter = new LineSplitter(MAX_REQUEST_BYTES, onLine, () =>
      write({ id: null, ok: false, error: { code: 'KRT_ERR_LINE_TOO_LONG', message: `line longer than ${MAX_REQUEST_BYTES} bytes; skipped` } }),
    );

    // One timer: a started request must be completed in time; otherwise the connection may idle
    // only so long. A stream connection has neither limit, and neither runs while we wait for the
    // client to read (we stopped reading, perhaps mid-line; the send timeout bounds that wait).
    // The timer fires in the event loop's timers phase, before that turn reads sockets: when our own
    // loop ran late, what the client sent before the deadline still waits unread. So the verdict waits
    // one turn (setImmediate runs after the reads), and any read or re-arm meanwhile (arming counts
    // them) cancels it: the client is judged on what it sent, not on how late we were to read it.
    let armed = 0;
    const expire = (ms: number, verdict: () => void): NodeJS.Timeout => {
      const at = armed;
      return setTimeout(() => setImmediate(() => !gone && !sock.destroyed && at === armed && verdict()), ms);
    };
    const arm = (): void => {
      armed++;
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (stream || gone || paused || stallTimer) return;
      if (splitter.pending > 0) {
        timer = expire(timeoutMs, () => {
          disconnect('request-timeout', `request not completed within ${timeoutMs} ms`);
          write({ id: null, ok: false, error: { code: 'KRT_ERR_REQUEST_TIMEOUT', message: `request not completed within ${timeoutMs} ms; closing` } });
          sock.end();
        });
      } else {
        timer = expire(idleMs, () => {
          if (busy) return arm(); // answering takes as long as it takes (the send timeout bounds a client that does not read)
          disconnect('idle', `no request for ${idleMs} ms`);
          write({ id: null, ok: false, error: { code: 'KRT_ERR_IDLE_TIMEOUT', message: `no request for ${idleMs} ms; closing` } });
          sock.end();
        });
      }
    };
    arm();
    sock.on('data', (chunk: Buffer) => {
      splitter.push(chunk);
      arm();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      gone = true;
      if (timer) clearTimeout(timer);
      disarmStall();
      this.clients.delete(sock);
      // Nothing more is answered: drop what waits, and wake handlers waiting to write so they unwind.
      backlog = [];
      backlogHead = 0;
      backlogBytes = 0;
      const w = waiters;
      waiters = [];
      w.forEach((x) => x.reject(new ConnectionGoneError()));
      void (draining ?? Promise.resolve()).then(() => stream?.onClose());
    });
  }
}
