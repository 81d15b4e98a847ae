/**
 * Stream events, and the checks both line formats (formats.ts, exabgp.ts)
 * use on JSON values: every bad value is a StreamLineError that names it,
 * cut short (a hostile line may carry a megabyte in one string).
 */
import { parsePrefix, tryParseAddr, type Family, type Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { BgpPath, RouteError, type BgpPathSpec, type RouteAttrs } from '../../route';

/** What a stream says about a BGP neighbour besides its address. */
export interface NeighborInfo {
  as?: number;
  localAs?: number;
  /** From the neighbour's OPEN. */
  routerId?: number;
  /** The families the neighbour's OPEN offers (multiprotocol capability; none: IPv4 only). */
  families?: readonly Family[];
}

/**
 * `peer` separates the routes of several BGP neighbours behind one client:
 * the neighbour's address, canonical ('' for the client itself).
 * `path` is set for routes from a neighbour (their BGP path attributes).
 */
export type StreamEvent =
  | { kind: 'announce'; peer: string; nets: readonly Prefix[]; attrs: RouteAttrs; path: BgpPath | undefined; info: NeighborInfo | undefined }
  | { kind: 'withdraw'; peer: string; nets: readonly Prefix[] }
  | { kind: 'eor'; peer: string; family: Family | undefined }
  | { kind: 'peer-up'; peer: string; info: NeighborInfo | undefined }
  | { kind: 'peer-down'; peer: string }
  | { kind: 'neighbor'; peer: string; info: NeighborInfo };

export class StreamLineError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_STREAM_LINE', message);
  }
}

export function json(line: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new StreamLineError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StreamLineError('expected a JSON object');
  return v as Record<string, unknown>;
}

export function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StreamLineError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

export function u32(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new StreamLineError(`${what}: expected an integer 0..4294967295, got ${short(v)}`);
  return v;
}

/** A value for an error message, cut short (a hostile line may carry a megabyte in one string). */
export function short(v: unknown): string {
  if (typeof v === 'string' && v.length > 48) return `${JSON.stringify(v.slice(0, 48))}... (${v.length} characters)`;
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}

/** A neighbour's address in canonical form: the peer key. Anything else is an error, so a peer is never an arbitrary string. */
export function neighborKey(v: unknown, what: string): string {
  const a = typeof v === 'string' && v.length <= 64 ? tryParseAddr(v) : undefined;
  if (!a) throw new StreamLineError(`${what}: expected an IPv4 or IPv6 address, got ${short(v)}`);
  return a.toString();
}

/** A router id: dotted quad (or a u32). */
export function routerId(v: unknown, what: string): number {
  if (typeof v === 'number') return u32(v, what);
  const a = typeof v === 'string' && v.length <= 15 ? tryParseAddr(v) : undefined;
  if (!a || a.family !== 4) throw new StreamLineError(`${what}: expected a router id like 192.0.2.1, got ${short(v)}`);
  return a.w0 >>> 0;
}

export function prefix(s: string): Prefix {
  try {
    return parsePrefix(s);
  } catch (e) {
    throw new StreamLineError((e as Error).message);
  }
}

export function bgpPath(spec: BgpPathSpec): BgpPath {
  try {
    return BgpPath.of(spec);
  } catch (e) {
    if (e instanceof RouteError) throw new StreamLineError(e.message);
    throw e;
  }
}
