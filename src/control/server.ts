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
 * hold every slot, at most maxClients connections at once, and a
 * malformed request gets an error response on its own connection only.
 * Requests of one connection are answered in order. The daemon's handler is
 * responsible for running management commands through one queue.
 */
import { chmodSync, chownSync, existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { KrtError } from '../lib/errors';
import { LineSplitter } from '../lib/line-splitter';
import { errorBody, MAX_REQUEST_BYTES, parseRequest, type ControlRequest, type ControlResponse } from './protocol';

/** What a handler may do with the connection while answering. */
export interface ControlContext {
  /** Sends a partial result; resolves when the socket can take more (backpressure). */
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
  onError?: (message: string) => void;
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

/** True when something accepts connections at `path` (a live daemon, not a stale file). */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export class ControlServer {
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();
  private nextClientId = 1;

  constructor(
    private readonly opts: ControlServerOptions,
    private readonly handler: ControlHandler,
  ) {}

  get clientCount(): number {
    return this.clients.size;
  }

  async listen(): Promise<void> {
    const { path } = this.opts;
    if (existsSync(path)) {
      if (await socketIsLive(path)) throw new Error(`control socket ${path}: another krtsync is already listening there`);
      unlinkSync(path);
    }
    const gid = this.opts.group === undefined ? undefined : groupId(this.opts.group);
    if (this.opts.group !== undefined && gid === undefined) throw new Error(`control socket: group "${this.opts.group}" does not exist`);
    const server = createServer((sock) => this.accept(sock));
    server.maxConnections = this.opts.maxClients ?? 256;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, this.opts.mode ?? 0o660);
    if (gid !== undefined) this.giveToGroup(server, gid);
    server.on('error', (e) => this.opts.onError?.(`control socket: ${e.message}`));
    this.server = server;
  }

  /**
   * A socket is born with our group (or its directory's, when that is setgid), which under the
   * systemd unit is the wanted one: no chown then, and the unit's syscall filter forbids chown.
   * Where one is needed and refused, the daemon says what to change instead of starting with a
   * socket that the group cannot use.
   */
  private giveToGroup(server: Server, gid: number): void {
    const { path } = this.opts;
    if (statSync(path).gid === gid) return;
    try {
      chownSync(path, -1, gid);
    } catch (e) {
      server.close();
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
      throw new KrtError(
        'KRT_ERR_CONTROL_GROUP',
        `control socket ${path}: cannot give it to group "${this.opts.group}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
          'run krtsync with that group as its own (under systemd: Group= in a drop-in, see docs/config.md), or as root',
      );
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of this.clients) c.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      unlinkSync(this.opts.path);
    } catch {
      /* already gone */
    }
  }

  private accept(sock: Socket): void {
    const clientId = this.nextClientId++;
    this.clients.add(sock);
    const timeoutMs = this.opts.requestTimeoutMs ?? 10000;
    const idleMs = this.opts.idleTimeoutMs ?? 300000;
    let stream: StreamConsumer | undefined;
    let pendingStream: StreamConsumer | undefined;
    let streamLine = 0;
    let current: ControlRequest | undefined;
    let timer: NodeJS.Timeout | undefined;
    // Lines wait here while a request is being answered, so answers keep request order
    // and a "feed" request's stream lines reach the consumer it installs.
    const backlog: string[] = [];
    let backlogHead = 0;
    let busy = false;
    let draining: Promise<void> | undefined;

    const write = (obj: unknown): boolean => (sock.writable ? sock.write(JSON.stringify(obj) + '\n') : false);
    const ctx: ControlContext = {
      clientId,
      more: async (items) => {
        if (!write({ id: current?.id ?? null, more: items })) await new Promise<void>((r) => (sock.writable ? sock.once('drain', r) : r()));
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
        const line = backlog[backlogHead++]!;
        if (stream) stream.onLine(line, ++streamLine);
        else if (line.trim() !== '') await answer(line);
      }
      backlog.length = 0;
      backlogHead = 0;
      busy = false;
      sock.resume();
      arm();
    };
    const onLine = (line: string): void => {
      if (stream && !busy) {
        stream.onLine(line, ++streamLine);
        return;
      }
      backlog.push(line);
      if (backlog.length - backlogHead > 1000) sock.pause(); // a pipelining client waits for us
      if (!busy) draining = drain();
    };
    const splitter = new LineSplitter(MAX_REQUEST_BYTES, onLine, () =>
      write({ id: null, ok: false, error: { code: 'KRT_ERR_LINE_TOO_LONG', message: `line longer than ${MAX_REQUEST_BYTES} bytes; skipped` } }),
    );

    // One timer: a started request must be completed in time; otherwise the connection may idle
    // only so long. A stream connection has neither limit.
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (stream) return;
      if (splitter.pending > 0) {
        timer = setTimeout(() => {
          write({ id: null, ok: false, error: { code: 'KRT_ERR_REQUEST_TIMEOUT', message: `request not completed within ${timeoutMs} ms; closing` } });
          sock.end();
        }, timeoutMs);
      } else {
        timer = setTimeout(() => {
          if (busy) return arm(); // answering takes as long as it takes
          write({ id: null, ok: false, error: { code: 'KRT_ERR_IDLE_TIMEOUT', message: `no request for ${idleMs} ms; closing` } });
          sock.end();
        }, idleMs);
      }
    };
    arm();
    sock.on('data', (chunk: Buffer) => {
      splitter.push(chunk);
      arm();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      if (timer) clearTimeout(timer);
      this.clients.delete(sock);
      void (draining ?? Promise.resolve()).then(() => stream?.onClose());
    });
  }
}
