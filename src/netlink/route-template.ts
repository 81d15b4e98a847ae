/**
 * RouteTemplate: a route message encoded once, without its destination, and
 * written for any net with a copy and a few header fields.
 *
 * The kernel protocol sends a million routes that are a handful of shapes
 * (one gateway, one metric): encoding each field of each route again
 * (sizes, attribute headers, addresses) is work the shape has already done.
 * A template holds the bytes encodeRouteMessage writes for the route with
 * no RTA_DST; encode() writes the header, the rtmsg with this net's length,
 * RTA_TABLE, then RTA_DST, then the rest: byte for byte what
 * encodeRouteRequest writes for the route with that dst (a unit test holds
 * them together), since the encoder puts RTA_DST right after RTA_TABLE.
 * Nets are given as their words (host order, as Prefix and NetIndex keep
 * them), so no Prefix is made per route.
 *
 * Netlink messages are whole 32-bit words in host order: on a little-endian
 * host, into a 4-aligned place, a request is written as a dozen word stores
 * through an Int32Array over the buffer's memory (a first sync writes a
 * million), not a Buffer copy, header writes and a copy again; anywhere else
 * byte by byte, with the same bytes (a unit test holds both together).
 */
import { endianness } from 'node:os';
import { Prefix } from '../lib/addr';
import * as C from './constants';
import { RTMSG_LEN, commandHeader, encodeRouteMessage, type RouteCommand, type RouteMessage } from './route-codec';

/** Where RTA_DST goes: after the header, the rtmsg and RTA_TABLE (8 bytes). */
const DST_AT = C.NLMSG_HDRLEN + RTMSG_LEN + 8;
const DST_WORD = DST_AT >> 2;
const WORDS_OK = endianness() === 'LE';
const DST_V4 = 8 | (C.RTA_DST << 16);
const DST_V6 = 20 | (C.RTA_DST << 16);

/**
 * The words of the memory under the buffer last written to: the pipeline writes every request into
 * one send ring, so this is made once. It keeps that memory alive until another buffer is written
 * (the ring lives as long as its pipeline anyway).
 */
let lastMemory: ArrayBufferLike | undefined;
let lastWords: Int32Array<ArrayBufferLike> = new Int32Array(0);
/** The buffer last written to and its byte offset in its memory: the pipeline writes a chunk's thousands of requests into one. */
let lastBuf: Buffer | undefined;
let lastOffset = 0;
function wordsOf(buf: Buffer): Int32Array<ArrayBufferLike> {
  if (buf.buffer !== lastMemory) {
    lastMemory = buf.buffer;
    lastWords = new Int32Array(buf.buffer, 0, buf.buffer.byteLength >> 2);
  }
  return lastWords;
}

/** An address word (host order) as the word that holds its bytes in network order on a little-endian host. */
function swap(w: number): number {
  return ((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24);
}

export class RouteTemplate {
  /** The message without RTA_DST (header fields are rewritten per encode). */
  private readonly bytes: Buffer;
  /** The same as words, where the host is little-endian (undefined elsewhere). */
  private readonly words: Int32Array | undefined;
  private readonly family: 4 | 6;

  constructor(readonly route: RouteMessage) {
    this.family = route.family;
    const scratch = Buffer.alloc(8192);
    const noDst = new Prefix(route.family, 0, 0);
    const n = encodeRouteMessage(scratch, 0, C.RTM_NEWROUTE, 0, 0, route, noDst);
    if (n === 0) throw new RangeError('route message larger than 8 KiB');
    this.bytes = Buffer.from(scratch.subarray(0, n));
    if (WORDS_OK && (n & 3) === 0) {
      this.words = new Int32Array(n >> 2);
      for (let k = 0; k < this.words.length; k++) this.words[k] = this.bytes.readInt32LE(4 * k);
    }
  }

  /** Bytes of a request for a net of length `len` (0: no RTA_DST). */
  size(len: number): number {
    return this.bytes.length + (len === 0 ? 0 : this.family === 4 ? 8 : 20);
  }

  /**
   * Writes `cmd` for the net (words w0..w3, host order; IPv4 uses w0) at buf[off..] with `seq`,
   * without NLM_F_ACK. Returns the bytes written, or 0 when they do not fit.
   */
  encode(buf: Buffer, off: number, seq: number, cmd: RouteCommand, len: number, w0: number, w1 = 0, w2 = 0, w3 = 0): number {
    const size = this.size(len);
    if (off + size > buf.length) return 0;
    if (buf !== lastBuf) {
      lastBuf = buf;
      lastOffset = buf.byteOffset;
      wordsOf(buf);
    }
    const at = lastOffset + off;
    if (this.words !== undefined && (at & 3) === 0) return this.encodeWords(lastWords, at >> 2, size, seq, cmd, len, w0, w1, w2, w3);
    const b = this.bytes;
    b.copy(buf, off, 0, DST_AT);
    const h = commandHeader(cmd);
    buf.writeUInt32LE(size, off);
    buf.writeUInt16LE(h.type, off + 4);
    buf.writeUInt16LE(C.NLM_F_REQUEST | h.flags, off + 6);
    buf.writeUInt32LE(seq >>> 0, off + 8);
    buf[off + C.NLMSG_HDRLEN + 1] = len;
    let p = off + DST_AT;
    if (len > 0) {
      if (this.family === 4) {
        buf.writeUInt32LE(8 | (C.RTA_DST << 16), p);
        buf.writeInt32BE(w0, p + 4);
        p += 8;
      } else {
        buf.writeUInt32LE(20 | (C.RTA_DST << 16), p);
        buf.writeInt32BE(w0, p + 4);
        buf.writeInt32BE(w1, p + 8);
        buf.writeInt32BE(w2, p + 12);
        buf.writeInt32BE(w3, p + 16);
        p += 20;
      }
    }
    b.copy(buf, p, DST_AT);
    return size;
  }

  /** encode() as word stores at word `p` of the memory (little-endian host). */
  private encodeWords(v: Int32Array<ArrayBufferLike>, p: number, size: number, seq: number, cmd: RouteCommand, len: number, w0: number, w1: number, w2: number, w3: number): number {
    const t = this.words!;
    const h = commandHeader(cmd);
    v[p] = size;
    v[p + 1] = h.type | ((C.NLM_F_REQUEST | h.flags) << 16);
    v[p + 2] = seq;
    v[p + 3] = t[3]!;
    v[p + 4] = (t[4]! & ~0xff00) | (len << 8); // rtm_dst_len, the rtmsg's second byte
    for (let k = 5; k < DST_WORD; k++) v[p + k] = t[k]!;
    let q = p + DST_WORD;
    if (len > 0) {
      if (this.family === 4) {
        v[q] = DST_V4;
        v[q + 1] = swap(w0);
        q += 2;
      } else {
        v[q] = DST_V6;
        v[q + 1] = swap(w0);
        v[q + 2] = swap(w1);
        v[q + 3] = swap(w2);
        v[q + 4] = swap(w3);
        q += 5;
      }
    }
    for (let k = DST_WORD; k < t.length; k++) v[q++] = t[k]!;
    return size;
  }
}
