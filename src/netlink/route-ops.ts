/**
 * What the route pipeline takes and gives back (pipeline.ts): changes as
 * RouteOps or as an OpSource that encodes them itself, and per batch the
 * count of successes and each failure with its index, op and error.
 */
import type { Prefix } from '../lib/addr';
import type { KrtError } from '../lib/errors';
import { encodeRouteRequest, type RouteCommand, type RouteMessage } from './route-codec';
import type { NetlinkSocketOptions } from './socket';

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

export interface PipelineStats {
  sent: number;
  acked: number;
  failed: number;
  overflows: number;
  rechecked: number;
  resent: number;
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

