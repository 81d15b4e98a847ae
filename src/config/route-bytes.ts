/**
 * The routes file's fast path on bytes: lines that are exactly
 * `A.B.C.D/L via E.F.G.H` or `X:X::/L via Y:Y::` are read without a string,
 * a token or a Prefix (parseV4ViaBytes, parseV6ViaBytes). Anything else,
 * and anything wrong, is refused here (false) and goes through
 * parseRouteLine (route-syntax.ts), which reads every line accepted here
 * the same (a property test holds the two together) and gives the error,
 * with its column, for a wrong one. The attributes of a gateway are made
 * once, by parsing its first line in full, and cached (bounded, as the
 * string fast path's cache).
 */
import { wordMask } from '../lib/addr';
import type { RouteAttrs } from '../route';
import { parseRouteLine, VIA_CACHE_MAX, type ParsedRoute } from './route-syntax';

/** What parseV4ViaBytes read: the net (word with host bits zero, length) and the interned attributes. */
export interface V4ViaLine {
  word: number;
  len: number;
  attrs: RouteAttrs | undefined;
}

/** Attributes of IPv4 `via GW` lines by gateway word, as route-syntax.ts's viaCache (a canonical dotted quad and its word are one-to-one). */
const v4ViaCache = new Map<number, RouteAttrs>();

/** The number readDecimal read last, and the word readQuad read last. */
let num = 0;
let quad = 0;

/** Reads 1 to `max` decimal digits at `p`, no leading zero: their end, with the value in `num`; -1 if there are none. */
function readDecimal(b: Uint8Array, p: number, end: number, max: number): number {
  const from = p;
  let v = 0;
  while (p < end) {
    const c = b[p]!;
    if (c < 48 || c > 57) break;
    if (p - from === max) return -1;
    v = v * 10 + c - 48;
    p++;
  }
  if (p === from || (p - from > 1 && b[from] === 48)) return -1;
  num = v;
  return p;
}

/**
 * The attributes of a fast-path line through a gateway not cached yet: the line parsed in full (which
 * also checks it), cached under `key`; undefined when it does not parse (the caller's parseRouteLine
 * then reports it).
 */
function viaAttrsOfLine<K>(cache: Map<K, RouteAttrs>, key: K, b: Uint8Array, start: number, end: number): RouteAttrs | undefined {
  let full: ParsedRoute;
  try {
    full = parseRouteLine(Buffer.from(b.buffer, b.byteOffset + start, end - start).toString('latin1'));
  } catch {
    return undefined;
  }
  if (cache.size >= VIA_CACHE_MAX) cache.clear();
  cache.set(key, full.attrs);
  return full.attrs;
}

/**
 * The routes file's fast path, on the bytes: a line that is exactly
 * `A.B.C.D/L via E.F.G.H` (canonical dotted quads, no leading zeros, single
 * spaces, nothing before or after, host bits zero) is read without a string,
 * a token or a Prefix, into `out`; true when it was. Anything else returns
 * false and goes through parseRouteLine, which gives the same result for
 * every line accepted here (a property test holds the two together) and the
 * error, with its column, for a wrong one. The first line through a gateway
 * is parsed in full to make its attributes; later ones reuse them.
 */
export function parseV4ViaBytes(b: Uint8Array, start: number, end: number, out: V4ViaLine): boolean {
  if (readV4Via(b, start, end) !== end) return false;
  const g = quad;
  const attrs = v4ViaCache.get(g) ?? viaAttrsOfLine(v4ViaCache, g, b, start, end);
  if (attrs === undefined) return false;
  out.word = viaWord;
  out.len = viaLen;
  out.attrs = attrs;
  return true;
}

/** The net readV4Via read last (the gateway is in `quad`). */
let viaWord = 0;
let viaLen = 0;

/**
 * Reads `A.B.C.D/L via E.F.G.H` at `p` (canonical dotted quads, single spaces, host bits zero) up to
 * the gateway's end, which it returns, with the net in viaWord/viaLen and the gateway in `quad`; -1
 * if the bytes are not that. The callers say what may follow: the line's end (parseV4ViaBytes) or
 * its newline (scanV4ViaRun).
 */
function readV4Via(b: Uint8Array, p: number, end: number): number {
  p = readQuad(b, p, end);
  if (p < 0 || p >= end || b[p] !== 47) return -1;
  const w = quad;
  p = readDecimal(b, p + 1, end, 2);
  if (p < 0 || num > 32) return -1;
  if ((w & ~wordMask(num)) !== 0) return -1; // host bits set: the full parser says so
  if (p + 5 >= end || b[p] !== 32 || b[p + 1] !== 118 || b[p + 2] !== 105 || b[p + 3] !== 97 || b[p + 4] !== 32) return -1;
  viaWord = w | 0;
  viaLen = num;
  return readQuad(b, p + 5, end);
}

/**
 * Reads a canonical dotted quad (1 to 3 digits a part, no leading zero, at most 255) at `p`, each
 * part's digits unrolled (a big file's run reads two a line): its end, with the word in `quad`; -1
 * if there is none.
 */
function readQuad(b: Uint8Array, p: number, end: number): number {
  let w = 0;
  for (let part = 0; ; part++) {
    if (p >= end) return -1;
    let v = b[p]! - 48;
    if (v < 0 || v > 9) return -1;
    p++;
    if (p < end) {
      const d1 = b[p]! - 48;
      if (d1 >= 0 && d1 <= 9) {
        if (v === 0) return -1;
        v = v * 10 + d1;
        p++;
        if (p < end) {
          const d2 = b[p]! - 48;
          if (d2 >= 0 && d2 <= 9) {
            v = v * 10 + d2;
            p++;
            if (v > 255 || (p < end && b[p]! >= 48 && b[p]! <= 57)) return -1;
          }
        }
      }
    }
    w = (w << 8) | v;
    if (part === 3) break;
    if (p >= end || b[p] !== 46) return -1;
    p++;
  }
  quad = w | 0;
  return p;
}

/**
 * parseV4ViaBytes over a run of lines, for a big file's bulk: from `start` (the first byte of a
 * line), each line that parseV4ViaBytes takes and that ends in '\n' before `end` goes to `onV4`, in
 * order, until the first that does not; returns that line's first byte (`end` when all were taken).
 * The caller reads the rest as it would have (a declined line, or one whose end is not in the
 * buffer yet). Taken and read as parseV4ViaBytes takes and reads them (a property test holds the
 * two together), with no search for the line's end first and no cache lookup while the gateway
 * stays the same as the line before's.
 */
export function scanV4ViaRun(b: Uint8Array, start: number, end: number, onV4: (word: number, len: number, attrs: RouteAttrs) => void): number {
  let lastG = 0;
  let lastAttrs: RouteAttrs | undefined;
  let p = start;
  while (p < end) {
    const line = p;
    p = readV4Via(b, p, end);
    if (p < 0 || p >= end || b[p] !== 10) return line;
    const g = quad;
    if (lastAttrs === undefined || g !== lastG) {
      lastAttrs = v4ViaCache.get(g) ?? viaAttrsOfLine(v4ViaCache, g, b, line, p);
      if (lastAttrs === undefined) return line;
      lastG = g;
    }
    onV4(viaWord, viaLen, lastAttrs);
    p++;
  }
  return p;
}

/** What parseV6ViaBytes read: the net (words with host bits zero, length) and the interned attributes. */
export interface V6ViaLine {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  len: number;
  attrs: RouteAttrs | undefined;
}

/** Attributes of IPv6 `via GW` lines by the gateway's words (an address and its words are one-to-one), and the last one used. */
const v6ViaCache = new Map<string, RouteAttrs>();
const lastV6Via = { g0: 0, g1: 0, g2: 0, g3: 0, attrs: undefined as RouteAttrs | undefined };

/** The groups and the words of the IPv6 address readV6 read last. */
const v6g = new Int32Array(8);
const v6w = new Int32Array(4);

function hexDigit(c: number): number {
  return c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
}

/**
 * Reads an IPv6 address at `p` as parseAddr would (groups of 1-4 hex digits, at most one `::`), up to
 * the first byte that cannot continue it: its end, with the words in `v6w`; -1 if there is none or it
 * ends in a dotted quad (left to the full parser).
 */
function readV6(b: Uint8Array, p: number, end: number): number {
  let count = 0;
  let gap = -1;
  let afterGap = false;
  if (p + 1 < end && b[p] === 58) {
    if (b[p + 1] !== 58) return -1; // a lone leading ':'
    gap = 0;
    afterGap = true;
    p += 2;
  }
  for (;;) {
    let v = 0;
    let j = p;
    for (; j < end && j - p < 5; j++) {
      const d = hexDigit(b[j]!);
      if (d < 0) break;
      v = v * 16 + d;
    }
    const digits = j - p;
    if (digits === 0) {
      if (afterGap) break; // the address ends in '::'
      return -1;
    }
    if (digits > 4 || count === 8 || (j < end && b[j] === 46)) return -1;
    v6g[count++] = v;
    afterGap = false;
    p = j;
    if (p < end && b[p] === 58) {
      if (p + 1 < end && b[p + 1] === 58) {
        if (gap !== -1) return -1; // a second '::'
        gap = count;
        afterGap = true;
        p += 2;
        if (p < end && b[p] === 58) return -1; // ':::'
      } else p++; // a group must follow
      continue;
    }
    break;
  }
  if (gap === -1 ? count !== 8 : count > 7) return -1;
  v6w.fill(0);
  const shift = gap === -1 ? 0 : 8 - count;
  for (let k = 0; k < count; k++) {
    const at = gap !== -1 && k >= gap ? k + shift : k;
    v6w[at >> 1] = v6w[at >> 1]! | ((at & 1) === 0 ? v6g[k]! << 16 : v6g[k]!);
  }
  return p;
}

/**
 * parseV4ViaBytes for IPv6: a line that is exactly `X:X::/L via Y:Y::` (single spaces, nothing
 * before or after, host bits zero, no dotted quad, a length without leading zeros) is read into
 * `out` without a string, a token or a Prefix; anything else returns false and goes through
 * parseRouteLine, which reads every line accepted here the same (a property test holds them together).
 */
export function parseV6ViaBytes(b: Uint8Array, start: number, end: number, out: V6ViaLine): boolean {
  let p = readV6(b, start, end);
  if (p < 0 || p >= end || b[p] !== 47) return false;
  const w0 = v6w[0]!;
  const w1 = v6w[1]!;
  const w2 = v6w[2]!;
  const w3 = v6w[3]!;
  p = readDecimal(b, p + 1, end, 3);
  if (p < 0 || num > 128) return false;
  const len = num;
  if ((w0 & ~wordMask(len)) | (w1 & ~wordMask(len - 32)) | (w2 & ~wordMask(len - 64)) | (w3 & ~wordMask(len - 96))) return false; // host bits set: the full parser says so
  if (end - p < 7 || b[p] !== 32 || b[p + 1] !== 118 || b[p + 2] !== 105 || b[p + 3] !== 97 || b[p + 4] !== 32) return false;
  if (readV6(b, p + 5, end) !== end) return false;
  const last = lastV6Via;
  const g0 = v6w[0]!;
  const g1 = v6w[1]!;
  const g2 = v6w[2]!;
  const g3 = v6w[3]!;
  let attrs = last.attrs !== undefined && last.g0 === g0 && last.g1 === g1 && last.g2 === g2 && last.g3 === g3 ? last.attrs : undefined;
  if (attrs === undefined) {
    const key = `${g0} ${g1} ${g2} ${g3}`;
    attrs = v6ViaCache.get(key) ?? viaAttrsOfLine(v6ViaCache, key, b, start, end);
    if (attrs === undefined) return false;
    last.g0 = g0;
    last.g1 = g1;
    last.g2 = g2;
    last.g3 = g3;
    last.attrs = attrs;
  }
  out.w0 = w0 | 0;
  out.w1 = w1 | 0;
  out.w2 = w2 | 0;
  out.w3 = w3 | 0;
  out.len = len;
  out.attrs = attrs;
  return true;
}
