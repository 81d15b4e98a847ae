/**
 * Dumps of routes, read for a million at a time.
 *
 * SharedRouteDecoder decodes each shape of route once: a dump of a million
 * routes of ours is usually a handful of shapes (the same gateway, device,
 * metric), and a RouteMessage, Addr and array per route cost a restart
 * time and memory it then threw away. DumpedRoutes keeps what a dump
 * found by column, in typed arrays: a net's words and length, and the index
 * of its (shared) route; 9 bytes an IPv4 route and 21 an IPv6 one, where
 * an object and a Prefix each were 120 (IPv6 nets are words too, never a
 * Prefix or a string).
 */
import { Prefix } from '../lib/addr';
import { NetList } from '../lib/net-list';
import * as C from './constants';
import { RTMSG_LEN, decodeRouteMessage, readPrefix, type RouteMessage } from './route-codec';
import { align4 } from './wire';

/** One route of a dump: its net, and the route, which may be shared with other nets (its dst is then another's). */
export interface DumpedRoute {
  readonly net: Prefix;
  readonly route: RouteMessage;
}

/** Called per dumped route: the net as its words (IPv4: w0 only) and length, and the (shared) route. */
export type DumpedRouteFn = (family: 4 | 6, len: number, w0: number, w1: number, w2: number, w3: number, route: RouteMessage) => void;

/** The routes of a dump by column (see the module's header); IPv4 first, then IPv6, each in dump order. */
export class DumpedRoutes {
  private readonly v4 = new NetList(1, 1024, true);
  private readonly v6 = new NetList(4, 1024, true);
  /** The distinct route objects, by index; usually a handful. */
  private readonly shapes: RouteMessage[] = [];
  private readonly shapeIndex = new Map<RouteMessage, number>();

  get length(): number {
    return this.v4.n + this.v6.n;
  }

  /** Adds the route `dec` decoded last, with its net. */
  pushDecoded(dec: SharedRouteDecoder, route: RouteMessage): void {
    let s = this.shapeIndex.get(route);
    if (s === undefined) {
      s = this.shapes.length;
      this.shapes.push(route);
      this.shapeIndex.set(route, s);
    }
    if (route.family === 4) this.v4.push(dec.lastLen, s, dec.lastW0, 0, 0, 0);
    else this.v6.push(dec.lastLen, s, dec.lastW0, dec.lastW1, dec.lastW2, dec.lastW3);
  }

  forEach(fn: DumpedRouteFn): void {
    const shapes = this.shapes;
    const a = this.v4;
    for (let i = 0; i < a.n; i++) fn(4, a.lens[i]!, a.words[i]!, 0, 0, 0, shapes[a.values[i]!]!);
    const b = this.v6;
    for (let i = 0; i < b.n; i++) {
      const k = i * 4;
      fn(6, b.lens[i]!, b.words[k]!, b.words[k + 1]!, b.words[k + 2]!, b.words[k + 3]!, shapes[b.values[i]!]!);
    }
  }

  /** Every route with its net as a Prefix (made on the way: for the few, not for a million). */
  map<T>(fn: (net: Prefix, route: RouteMessage) => T): T[] {
    const out: T[] = [];
    this.forEach((family, len, w0, w1, w2, w3, route) => out.push(fn(new Prefix(family, len, w0, w1, w2, w3), route)));
    return out;
  }
}

/**
 * Decodes a dump's route messages, sharing one RouteMessage between all those
 * that differ only in their destination (RTA_DST and rtm_dst_len): a million
 * routes of ours in the kernel are usually a handful of shapes (the same
 * gateway, device, metric), and decoding each into its own RouteMessage,
 * Addr and array cost a restart time and memory it then threw away.
 * A message is compared by its bytes (the header with dst_len zeroed, then
 * every attribute but RTA_DST) with the first one of its shape, which was
 * decoded in full; the shared route's fields are exactly what decoding this
 * one would give, except dst. Anything odd is decoded in full, with the same
 * errors decodeRouteMessage gives. At most `maxShapes` shapes are kept.
 */
export class SharedRouteDecoder {
  private readonly shapes = new Map<number, Array<{ sig: Buffer; route: RouteMessage }>>();
  private readonly wordShapes = new Map<number, Array<{ words: Int32Array; route: RouteMessage }>>();
  private count = 0;
  private readonly sig = Buffer.alloc(2048);
  /** decodeWords: the buffer last read as words, its view, and the attribute spans (word index pairs) of a message. */
  private wordsOf: Buffer | undefined = undefined;
  private words: Int32Array | undefined = undefined;
  private readonly segs = new Int32Array(64);
  /** The net of the route decodeRoute returned last, as its words (host order; IPv4: lastW0) and length. */
  lastLen = 0;
  lastW0 = 0;
  lastW1 = 0;
  lastW2 = 0;
  lastW3 = 0;

  /** `hashBits` below 32 only for tests: shapes then collide, and must still be told apart. */
  constructor(
    private readonly maxShapes = 4096,
    hashBits = 32,
  ) {
    this.hashMask = hashBits >= 32 ? -1 : (1 << hashBits) - 1;
  }
  private readonly hashMask: number;

  decode(buf: Buffer, off: number, len: number): DumpedRoute {
    const route = this.decodeRoute(buf, off, len);
    return { net: new Prefix(route.family, this.lastLen, this.lastW0, this.lastW1, this.lastW2, this.lastW3), route };
  }

  /** The route (shared when it can be) with its net in lastLen and lastW0..lastW3: no object per route. */
  decodeRoute(buf: Buffer, off: number, len: number): RouteMessage {
    if (len < C.NLMSG_HDRLEN + RTMSG_LEN || len - C.NLMSG_HDRLEN > this.sig.length) return this.full(buf, off, len);
    if (((buf.byteOffset + off) & 3) === 0 && (len & 3) === 0) {
      const route = this.decodeWords(buf, off, len);
      if (route !== undefined) return route;
    }
    return this.decodeCopy(buf, off, len);
  }

  /**
   * decodeRoute on the buffer's 32-bit words, for a message that starts on a 4-byte boundary with
   * 4-byte-aligned attributes (everything the kernel sends): the shape (rtmsg without dst_len, every
   * attribute but RTA_DST) is hashed and compared where it lies, without the copies decodeCopy makes
   * (six Buffer.copy calls a route were a third of a restart's dump). Undefined: not such a message.
   * Netlink is in host order and this codec reads it as little-endian throughout.
   */
  private decodeWords(buf: Buffer, off: number, len: number): RouteMessage | undefined {
    if (this.wordsOf !== buf) {
      if ((buf.byteOffset & 3) !== 0) return undefined;
      this.words = new Int32Array(buf.buffer, buf.byteOffset, buf.length >> 2);
      this.wordsOf = buf;
    }
    const w = this.words!;
    const b = off + C.NLMSG_HDRLEN;
    const end = off + len;
    const segs = this.segs;
    let nseg = 0;
    let dst = -1;
    let dstBytes = 0;
    let p = b + RTMSG_LEN;
    while (p + 4 <= end) {
      const head = w[p >> 2]!;
      const alen = head & 0xffff;
      if (alen < 4 || p + alen > end) return this.full(buf, off, len); // throws the decoder's error
      const next = p + align4(alen);
      if (next > end) return undefined;
      if (((head >>> 16) & 0x3fff) === C.RTA_DST) {
        dst = p + 4;
        dstBytes = alen - 4;
      } else {
        if (nseg === segs.length) return undefined;
        segs[nseg++] = p >> 2;
        segs[nseg++] = next >> 2;
      }
      p = next;
    }
    if (p !== end) return undefined;
    const h0 = b >> 2;
    const first = w[h0]! & ~0xff00; // rtm_dst_len (byte 1) belongs to the net
    let h = Math.imul(0x811c9dc5 ^ first, 0x01000193);
    h = Math.imul(h ^ w[h0 + 1]!, 0x01000193);
    h = Math.imul(h ^ w[h0 + 2]!, 0x01000193);
    let n = 3;
    for (let k = 0; k < nseg; k += 2) {
      for (let i = segs[k]!; i < segs[k + 1]!; i++) h = Math.imul(h ^ w[i]!, 0x01000193);
      n += segs[k + 1]! - segs[k]!;
    }
    h = Math.imul(h ^ n, 0x01000193) & this.hashMask;
    const list = this.wordShapes.get(h);
    if (list !== undefined) {
      for (const s of list) {
        const sw = s.words;
        if (sw.length !== n || sw[0] !== first || sw[1] !== w[h0 + 1] || sw[2] !== w[h0 + 2]) continue;
        let j = 3;
        let same = true;
        for (let k = 0; same && k < nseg; k += 2) {
          for (let i = segs[k]!; i < segs[k + 1]!; i++) {
            if (sw[j++] !== w[i]) {
              same = false;
              break;
            }
          }
        }
        if (!same) continue;
        return this.withNet(s.route, buf, off, len, dst, dstBytes);
      }
    }
    const route = this.full(buf, off, len);
    if (this.count < this.maxShapes) {
      this.count++;
      const words = new Int32Array(n);
      words[0] = first;
      words[1] = w[h0 + 1]!;
      words[2] = w[h0 + 2]!;
      let j = 3;
      for (let k = 0; k < nseg; k += 2) for (let i = segs[k]!; i < segs[k + 1]!; i++) words[j++] = w[i]!;
      const entry = { words, route };
      if (list !== undefined) list.push(entry);
      else this.wordShapes.set(h, [entry]);
    }
    return route;
  }

  /** A known shape's shared route, with this message's net (checked as the full decoder would). */
  private withNet(route: RouteMessage, buf: Buffer, off: number, len: number, dst: number, dstBytes: number): RouteMessage {
    const family = route.family;
    const dstLen = buf[off + C.NLMSG_HDRLEN + 1]!;
    if (dst < 0) {
      if (dstLen !== 0) return this.full(buf, off, len);
      return this.sharedNet(route, 0, 0, 0, 0, 0);
    }
    if (family === 4 && dstBytes >= 4 && dstLen <= 32) return this.sharedNet(route, dstLen, buf.readInt32BE(dst) & (dstLen === 0 ? 0 : -1 << (32 - dstLen)), 0, 0, 0);
    const p = readPrefix(buf, dst, dstBytes, family, dstLen, dst - 4); // checks as the full decoder does (and masks)
    return this.sharedNet(route, p.len, p.w0, p.w1, p.w2, p.w3);
  }

  /** decodeRoute for any message: its shape copied into one buffer, hashed and compared there. */
  private decodeCopy(buf: Buffer, off: number, len: number): RouteMessage {
    const b = off + C.NLMSG_HDRLEN;
    const end = off + len;
    const sig = this.sig;
    buf.copy(sig, 0, b, b + RTMSG_LEN);
    sig[1] = 0; // rtm_dst_len belongs to the net
    let n = RTMSG_LEN;
    let dst = -1;
    let dstBytes = 0;
    let p = b + RTMSG_LEN;
    while (p + 4 <= end) {
      const alen = buf.readUInt16LE(p);
      if (alen < 4 || p + alen > end) return this.full(buf, off, len); // throws the decoder's error
      const next = Math.min(p + align4(alen), end);
      if ((buf.readUInt16LE(p + 2) & 0x3fff) === C.RTA_DST) {
        dst = p + 4;
        dstBytes = alen - 4;
      } else {
        buf.copy(sig, n, p, next);
        n += next - p;
      }
      p = next;
    }
    if (p !== end) return this.full(buf, off, len);
    let h = 0x811c9dc5 ^ n;
    for (let i = 0; i + 4 <= n; i += 4) h = Math.imul(h ^ sig.readInt32LE(i), 0x01000193);
    for (let i = n & ~3; i < n; i++) h = Math.imul(h ^ sig[i]!, 0x01000193);
    h &= this.hashMask;
    const list = this.shapes.get(h);
    if (list !== undefined) {
      for (const s of list) {
        if (s.sig.length === n && sig.compare(s.sig, 0, n, 0, n) === 0) return this.withNet(s.route, buf, off, len, dst, dstBytes);
      }
    }
    const route = this.full(buf, off, len);
    if (this.count < this.maxShapes) {
      this.count++;
      const entry = { sig: Buffer.from(sig.subarray(0, n)), route };
      if (list !== undefined) list.push(entry);
      else this.shapes.set(h, [entry]);
    }
    return route;
  }

  private sharedNet(route: RouteMessage, len: number, w0: number, w1: number, w2: number, w3: number): RouteMessage {
    this.lastLen = len;
    this.lastW0 = w0;
    this.lastW1 = w1;
    this.lastW2 = w2;
    this.lastW3 = w3;
    return route;
  }

  private full(buf: Buffer, off: number, len: number): RouteMessage {
    const route = decodeRouteMessage(buf, off, len);
    const d = route.dst;
    return this.sharedNet(route, d.len, d.w0, d.w1, d.w2, d.w3);
  }
}
