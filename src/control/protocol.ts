/**
 * The control socket's wire protocol: newline-delimited JSON, one request
 * per line, answered in order on the same connection.
 *
 *   → {"id":1,"command":"show-routes","args":{"prefix":"10.0.0.0/8"}}
 *   ← {"id":1,"more":[...]}            zero or more partial results (large answers stream)
 *   ← {"id":1,"ok":true,"result":...}  the end, or
 *   ← {"id":1,"ok":false,"error":{"code":"KRT_ERR_…","message":"…"}}
 *
 * `id` is the client's (any JSON number or string) and is echoed back. The
 * command "feed" turns the connection into a route stream (see
 * docs/stream.md); after its "ok" every further line is a stream line.
 *
 * This module is the framing and validation only, shared by server and client.
 */
import { KrtError } from '../lib/errors';

export const MAX_REQUEST_BYTES = 1 << 20;

export interface ControlRequest {
  id: number | string | null;
  command: string;
  args: Record<string, unknown>;
}

export interface ControlErrorBody {
  code: string;
  message: string;
}

export type ControlResponse =
  | { id: ControlRequest['id']; ok: true; result: unknown }
  | { id: ControlRequest['id']; ok: false; error: ControlErrorBody }
  | { id: ControlRequest['id']; more: unknown[] };

export class ControlError extends KrtError {}

export function badRequest(message: string): ControlError {
  return new ControlError('KRT_ERR_BAD_REQUEST', message);
}

/** Validates one request line. Throws ControlError (KRT_ERR_BAD_REQUEST) saying what is wrong. */
export function parseRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw badRequest(`not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('a request is a JSON object {"command": …}');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'id' && k !== 'command' && k !== 'args') throw badRequest(`unknown field "${k}" (expected id, command, args)`);
  const id = o.id ?? null;
  if (id !== null && typeof id !== 'number' && typeof id !== 'string') throw badRequest('"id" must be a number or a string');
  if (typeof o.command !== 'string' || !/^[a-z][a-z-]{0,40}$/.test(o.command)) throw badRequest('"command" must be a command name like "show-status"');
  const args = o.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw badRequest('"args" must be a JSON object');
  return { id, command: o.command, args: args as Record<string, unknown> };
}

export function errorBody(e: unknown): ControlErrorBody {
  if (e instanceof KrtError) return { code: e.code, message: e.message };
  return { code: 'KRT_ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/**
 * Splits a byte stream into lines, bounded: a line longer than `maxLine`
 * bytes is reported once (onOverflow) and skipped up to its newline, so one
 * huge line never costs unbounded memory and never loses the lines after it.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly maxLine: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        this.append(chunk.subarray(start));
        return;
      }
      this.append(chunk.subarray(start, nl));
      const skipped = this.skipping;
      const line = skipped ? '' : Buffer.concat(this.parts, this.size).toString('utf8');
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      if (!skipped) this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      start = nl + 1;
    }
  }

  /** Bytes of an unfinished line held. */
  get pending(): number {
    return this.size;
  }

  private append(b: Buffer): void {
    if (this.skipping || b.length === 0) return;
    if (this.size + b.length > this.maxLine) {
      this.parts = [];
      this.size = 0;
      this.skipping = true;
      this.onOverflow();
      return;
    }
    this.parts.push(b);
    this.size += b.length;
  }
}
