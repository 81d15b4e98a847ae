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
