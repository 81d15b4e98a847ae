/**
 * NetDeleteSource: a batch of route deletes held in typed arrays (address
 * words, prefix length, metric), encoded straight into the pipeline's send
 * buffer. Shutdown withdraws a whole table this way: no RouteMessage, Prefix
 * or op object per route, and the arrays are read in the order they are sent
 * (a million objects visited in trie-spread order were one cache miss each).
 *
 * Each request is exactly what encodeRouteRequest(..., 'delete', r, false)
 * sends for r = { family, dst, tos 0, table, protocol, scope
 * RT_SCOPE_NOWHERE, type RTN_UNSPEC, flags 0, priority? } (the kernel's
 * wildcards for a delete; a unit test compares the bytes).
 */
import { AF_INET, AF_INET6, Prefix } from '../lib/addr';
import * as C from './constants';
import type { OpSource, RouteOp } from './pipeline';
import { RTMSG_LEN, type RouteMessage } from './route-codec';

/** Metric slot value meaning "none given" (the kernel then deletes any metric of ours). */
export const NO_METRIC = -1;

export interface DeleteTarget {
  readonly table: number;
  readonly protocol: number;
}

export class NetDeleteSource implements OpSource {
  private readonly stride: 1 | 4;

  /**
   * Net i is `words[i * stride ...]` (host bits zero; stride 1 for IPv4, 4 for IPv6) and
   * `lens[i]`, `metrics[i]` its metric or NO_METRIC; all of at least `length` entries.
   */
  constructor(
    readonly family: 4 | 6,
    readonly target: DeleteTarget,
    readonly words: Int32Array,
    readonly lens: Uint8Array,
    readonly metrics: Float64Array,
    readonly length: number,
  ) {
    this.stride = family === 4 ? 1 : 4;
  }

  encode(buf: Buffer, off: number, seq: number, index: number): number {
    const metric = this.metrics[index]!;
    const len = this.lens[index]!;
    const addr = this.stride * 4;
    const size = C.NLMSG_HDRLEN + RTMSG_LEN + 8 + (len > 0 ? 4 + addr : 0) + (metric !== NO_METRIC ? 8 : 0);
    if (off + size > buf.length) return 0;
    const table = this.target.table;
    buf.writeUInt32LE(size, off);
    buf.writeUInt16LE(C.RTM_DELROUTE, off + 4);
    buf.writeUInt16LE(C.NLM_F_REQUEST, off + 6);
    buf.writeUInt32LE(seq >>> 0, off + 8);
    buf.writeUInt32LE(0, off + 12);
    let p = off + C.NLMSG_HDRLEN;
    buf[p] = this.stride === 1 ? AF_INET : AF_INET6;
    buf[p + 1] = len;
    buf[p + 2] = 0;
    buf[p + 3] = 0;
    buf[p + 4] = table < 256 ? table : C.RT_TABLE_UNSPEC;
    buf[p + 5] = this.target.protocol;
    buf[p + 6] = C.RT_SCOPE_NOWHERE;
    buf[p + 7] = C.RTN_UNSPEC;
    buf.writeUInt32LE(0, p + 8);
    p += RTMSG_LEN;
    buf.writeUInt32LE(8 | (C.RTA_TABLE << 16), p); // rta_len 8, rta_type
    buf.writeUInt32LE(table >>> 0, p + 4);
    p += 8;
    if (len > 0) {
      buf.writeUInt32LE((4 + addr) | (C.RTA_DST << 16), p);
      const k = index * this.stride;
      for (let i = 0; i < this.stride; i++) buf.writeInt32BE(this.words[k + i]!, p + 4 + 4 * i);
      p += 4 + addr;
    }
    if (metric !== NO_METRIC) {
      buf.writeUInt32LE(8 | (C.RTA_PRIORITY << 16), p);
      buf.writeUInt32LE(metric >>> 0, p + 4);
    }
    return size;
  }

  op(index: number): RouteOp {
    const k = index * this.stride;
    const w = this.words;
    const dst = this.stride === 1 ? Prefix.v4(w[k]!, this.lens[index]!) : new Prefix(6, this.lens[index]!, w[k]!, w[k + 1]!, w[k + 2]!, w[k + 3]!);
    const route: RouteMessage = {
      family: this.family,
      dst,
      tos: 0,
      table: this.target.table,
      protocol: this.target.protocol,
      scope: C.RT_SCOPE_NOWHERE,
      type: C.RTN_UNSPEC,
      flags: 0,
    };
    const metric = this.metrics[index]!;
    if (metric !== NO_METRIC) route.priority = metric;
    return { cmd: 'delete', route };
  }
}
