/**
 * The control socket client, used by the CLI: one connection, requests
 * answered in order, partial results ("more") gathered or handed to a
 * callback, errors thrown as ControlError with the daemon's code and message.
 */
import { createConnection, type Socket } from 'node:net';
import { LineSplitter } from '../lib/line-splitter';
import { ControlError, MAX_REQUEST_BYTES, type ControlErrorBody } from './protocol';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  onMore?: (items: unknown[]) => void;
  gathered: unknown[];
}

export class ControlClient {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedError: Error | undefined;
  /** Lines that are not answers to requests (stream feedback after "feed"). */
  onUnsolicited: ((msg: Record<string, unknown>) => void) | undefined;

  private constructor(readonly sock: Socket) {
    const splitter = new LineSplitter(MAX_REQUEST_BYTES * 64, (line) => this.onLine(line), () => {});
    sock.on('data', (c: Buffer) => splitter.push(c));
    const fail = (e: Error): void => {
      this.closedError = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new ControlError('KRT_ERR_DISCONNECTED', 'the daemon closed the control connection')));
  }

  static connect(path: string, timeoutMs = 5000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new ControlError('KRT_ERR_CONNECT', `control socket ${path}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        resolve(new ControlClient(sock));
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why =
          e.code === 'ENOENT' ? 'no such socket (is krtsync running? see --socket)' : e.code === 'EACCES' ? 'permission denied (are you in the control group?)' : e.code === 'ECONNREFUSED' ? 'nobody is listening (stale socket?)' : e.message;
        reject(new ControlError('KRT_ERR_CONNECT', `control socket ${path}: ${why}`));
      });
    });
  }

  /** Sends a request; resolves with its result. Partial results go to onMore, or are gathered into `more` of the answer. */
  request(command: string, args: Record<string, unknown> = {}, onMore?: (items: unknown[]) => void): Promise<{ result: unknown; more: unknown[] }> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const gathered: unknown[] = [];
      this.pending.set(id, { resolve: (result) => resolve({ result, more: gathered }), reject, onMore, gathered });
      this.sock.write(JSON.stringify({ id, command, args }) + '\n');
    });
  }

  /** Writes raw lines (stream mode after "feed"); resolves when the socket takes more. */
  async writeLine(line: string): Promise<void> {
    if (!this.sock.write(line + '\n')) await new Promise<void>((r) => this.sock.once('drain', r));
  }

  close(): void {
    this.sock.end();
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (!p) {
      this.onUnsolicited?.(msg);
      return;
    }
    if (Array.isArray(msg.more)) {
      if (p.onMore) p.onMore(msg.more);
      else for (const x of msg.more) p.gathered.push(x);
      return;
    }
    this.pending.delete(msg.id as number);
    if (msg.ok === true) p.resolve(msg.result);
    else {
      const err = (msg.error ?? {}) as Partial<ControlErrorBody>;
      p.reject(new ControlError(err.code ?? 'KRT_ERR_UNKNOWN', err.message ?? 'the daemon refused the request'));
    }
  }
}
