/**
 * IPv4 and IPv6 addresses and prefixes.
 *
 * The internal form is numeric: an address is four 32-bit words (IPv4 uses the
 * first only), stored as signed int32 (`x | 0`) so V8 keeps them as small
 * integers in the object instead of boxing them as heap numbers. Strings exist
 * only at the edges: parse*() on the way in, toString() on the way out
 * (RFC 5952 for IPv6). Instances are immutable.
 *
 * Ordering (compare*): family (IPv4 first), then address as an unsigned
 * big-endian number, then prefix length (shorter first). Walking a table in
 * this order visits a covering prefix before the prefixes it contains.
 */
import { AddrError } from './errors';

export type Family = 4 | 6;

/** Linux address family numbers (linux/socket.h), used on the wire. */
export const AF_INET = 2;
export const AF_INET6 = 10;

export function familyToAf(f: Family): number {
  return f === 4 ? AF_INET : AF_INET6;
}

export function afToFamily(af: number): Family | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

export function maxLen(f: Family): number {
  return f === 4 ? 32 : 128;
}

/** Mask with the top `bits` bits of a 32-bit word set (0..32), as int32. */
/** The mask of a 32-bit word with `bits` of its bits (from the top) in a prefix: 0 for none or fewer, -1 for all. */
export function wordMask(bits: number): number {
  if (bits <= 0) return 0;
  if (bits >= 32) return -1;
  return (-1 << (32 - bits)) | 0;
}

/** Mask for word `i` (0..3) of a prefix of length `len`. */
export function maskFor(len: number, i: number): number {
  return wordMask(len - 32 * i);
}

function cmpWord(x: number, y: number): number {
  const a = x >>> 0;
  const b = y >>> 0;
  return a < b ? -1 : a > b ? 1 : 0;
}

export class Addr {
  constructor(
    readonly family: Family,
    readonly w0: number,
    readonly w1 = 0,
    readonly w2 = 0,
    readonly w3 = 0,
  ) {}

  static v4(word: number): Addr {
    return new Addr(4, word | 0);
  }

  /** Reads 4 (IPv4) or 16 (IPv6) network-order bytes at `off`. */
  static fromBytes(buf: Uint8Array, off: number, family: Family): Addr {
    if (family === 4) return new Addr(4, readWord(buf, off));
    return new Addr(6, readWord(buf, off), readWord(buf, off + 4), readWord(buf, off + 8), readWord(buf, off + 12));
  }

  get byteLength(): number {
    return this.family === 4 ? 4 : 16;
  }

  /** Writes the address in network order at `off`; returns the offset after it. */
  writeTo(buf: Uint8Array, off: number): number {
    writeWord(buf, off, this.w0);
    if (this.family === 4) return off + 4;
    writeWord(buf, off + 4, this.w1);
    writeWord(buf, off + 8, this.w2);
    writeWord(buf, off + 12, this.w3);
    return off + 16;
  }

  toBytes(): Uint8Array {
    const b = new Uint8Array(this.byteLength);
    this.writeTo(b, 0);
    return b;
  }

  word(i: number): number {
    return i === 0 ? this.w0 : i === 1 ? this.w1 : i === 2 ? this.w2 : this.w3;
  }

  equals(o: Addr): boolean {
    return this.family === o.family && this.w0 === o.w0 && this.w1 === o.w1 && this.w2 === o.w2 && this.w3 === o.w3;
  }

  isUnspecified(): boolean {
    return (this.w0 | this.w1 | this.w2 | this.w3) === 0;
  }

  /** IPv6 link-local (fe80::/10). */
  isLinkLocal6(): boolean {
    return this.family === 6 && (this.w0 & 0xffc00000) === (0xfe800000 | 0);
  }

  toString(): string {
    return this.family === 4 ? formatV4(this.w0) : formatV6([this.w0, this.w1, this.w2, this.w3]);
  }

  toJSON(): string {
    return this.toString();
  }
}

export class Prefix {
  /** Use Prefix.of / parsePrefix: the constructor trusts that host bits are clear. */
  constructor(
    readonly family: Family,
    readonly len: number,
    readonly w0: number,
    readonly w1 = 0,
    readonly w2 = 0,
    readonly w3 = 0,
  ) {}

  /** The prefix of `addr` with `len` bits, host bits cleared. */
  static of(addr: Addr, len: number): Prefix {
    if (!Number.isInteger(len) || len < 0 || len > maxLen(addr.family)) {
      throw new AddrError(`${addr}/${len}: prefix length must be 0..${maxLen(addr.family)}`);
    }
    return new Prefix(
      addr.family,
      len,
      addr.w0 & maskFor(len, 0),
      addr.w1 & maskFor(len, 1),
      addr.w2 & maskFor(len, 2),
      addr.w3 & maskFor(len, 3),
    );
  }

  static v4(word: number, len: number): Prefix {
    return new Prefix(4, len, word & wordMask(len));
  }

  /** Reads the prefix bytes the kernel sends (RTA_DST: 4 or 16 bytes) with length `len`. */
  static fromBytes(buf: Uint8Array, off: number, family: Family, len: number): Prefix {
    return Prefix.of(Addr.fromBytes(buf, off, family), len);
  }

  get maxLen(): number {
    return this.family === 4 ? 32 : 128;
  }

  /** The network address (host bits are always clear). */
  get addr(): Addr {
    return new Addr(this.family, this.w0, this.w1, this.w2, this.w3);
  }

  word(i: number): number {
    return i === 0 ? this.w0 : i === 1 ? this.w1 : i === 2 ? this.w2 : this.w3;
  }

  writeTo(buf: Uint8Array, off: number): number {
    return this.addr.writeTo(buf, off);
  }

  equals(o: Prefix): boolean {
    return (
      this.family === o.family && this.len === o.len && this.w0 === o.w0 && this.w1 === o.w1 && this.w2 === o.w2 && this.w3 === o.w3
    );
  }

  /** True when `o` (a prefix or an address) lies inside this prefix. A prefix contains itself. */
  contains(o: Prefix | Addr): boolean {
    if (o.family !== this.family) return false;
    if (o instanceof Prefix && o.len < this.len) return false;
    const n = this.len;
    return (
      (o.w0 & maskFor(n, 0)) === this.w0 &&
      (o.w1 & maskFor(n, 1)) === this.w1 &&
      (o.w2 & maskFor(n, 2)) === this.w2 &&
      (o.w3 & maskFor(n, 3)) === this.w3
    );
  }

  /** A value usable as a Map key: a number for IPv4, a short string for IPv6. */
  key(): number | string {
    return prefixKey(this);
  }

  toString(): string {
    return `${this.addr.toString()}/${this.len}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * Map key of a prefix. IPv4: `addr * 64 + len`, an exact integer below 2^38.
 * IPv6: 8 UTF-16 code units of address plus one of length (no allocation-heavy
 * formatting). Keys of the two families never collide (number vs string).
 */
export function prefixKey(p: Prefix): number | string {
  if (p.family === 4) return (p.w0 >>> 0) * 64 + p.len;
  return String.fromCharCode(
    p.w0 >>> 16,
    p.w0 & 0xffff,
    p.w1 >>> 16,
    p.w1 & 0xffff,
    p.w2 >>> 16,
    p.w2 & 0xffff,
    p.w3 >>> 16,
    p.w3 & 0xffff,
    p.len,
  );
}

/** Inverse of prefixKey. */
export function prefixFromKey(k: number | string): Prefix {
  if (typeof k === 'number') {
    const len = k % 64;
    return new Prefix(4, len, ((k - len) / 64) | 0);
  }
  const w = (i: number): number => ((k.charCodeAt(2 * i) << 16) | k.charCodeAt(2 * i + 1)) | 0;
  return new Prefix(6, k.charCodeAt(8), w(0), w(1), w(2), w(3));
}

export function compareAddr(a: Addr, b: Addr): number {
  if (a.family !== b.family) return a.family - b.family;
  return cmpWord(a.w0, b.w0) || cmpWord(a.w1, b.w1) || cmpWord(a.w2, b.w2) || cmpWord(a.w3, b.w3);
}

export function comparePrefix(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  return cmpWord(a.w0, b.w0) || cmpWord(a.w1, b.w1) || cmpWord(a.w2, b.w2) || cmpWord(a.w3, b.w3) || a.len - b.len;
}

// ---------------------------------------------------------------- parsing

/**
 * Dotted quad to a word: exactly four decimal parts of 1-3 digits, each at
 * most 255, no leading zero (no octal-looking forms), nothing else. Scanned
 * by character code: a routes file of a million lines parses two addresses
 * per line, and the regular expression and Number() calls were most of it.
 */
function parseV4Word(s: string): number | undefined {
  const n = s.length;
  if (n < 7 || n > 15) return undefined;
  let w = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  let first = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? s.charCodeAt(i) : 46; // a final '.' closes the last part
    if (c === 46) {
      if (digits === 0 || (digits > 1 && first === 48) || part > 255) return undefined;
      w = (w << 8) | part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 3) return undefined;
      if (digits === 0) first = c;
      part = part * 10 + (c - 48);
      digits++;
    } else return undefined;
  }
  return parts === 4 ? w | 0 : undefined;
}

/** The eight groups of the address being parsed (parseV6Words is not reentrant). */
const v6Groups = new Int32Array(8);

/**
 * RFC 4291 text to four words: groups of 1-4 hex digits separated by ':', at
 * most one '::' standing for one or more zero groups, optionally ending in a
 * dotted quad for the last two groups. Scanned by character code, like
 * parseV4Word (a routes file of a million IPv6 lines spent about 0.75 s in the
 * split, regular expression and parseInt per group).
 */
function parseV6Words(s: string): number[] | undefined {
  const n = s.length;
  if (n < 2 || n > 45) return undefined;
  const g = v6Groups;
  let count = 0;
  let gap = -1; // where '::' stands, in groups
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return undefined; // a lone leading ':'
    gap = 0;
    i = 2;
  }
  while (i < n) {
    let j = i;
    let v = 0;
    for (; j < n && j - i <= 4; j++) {
      const c = s.charCodeAt(j);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (d < 0) break;
      v = v * 16 + d;
    }
    if (j < n && s.charCodeAt(j) === 46) {
      // A dotted quad: the last two groups.
      if (count > 6) return undefined;
      const w = parseV4Word(s.slice(i));
      if (w === undefined) return undefined;
      g[count++] = w >>> 16;
      g[count++] = w & 0xffff;
      break;
    }
    const digits = j - i;
    if (digits === 0 || digits > 4 || count === 8) return undefined;
    g[count++] = v;
    if (j === n) break;
    if (s.charCodeAt(j) !== 58) return undefined;
    if (j + 1 < n && s.charCodeAt(j + 1) === 58) {
      if (gap !== -1) return undefined; // a second '::'
      gap = count;
      i = j + 2;
      if (i < n && s.charCodeAt(i) === 58) return undefined; // ':::'
    } else {
      if (j + 1 === n) return undefined; // a lone trailing ':'
      i = j + 1;
    }
  }
  if (gap === -1 ? count !== 8 : count > 7) return undefined;
  const words = [0, 0, 0, 0];
  // Groups after the gap move to the end; the gap's groups are zeros.
  const shift = gap === -1 ? 0 : 8 - count;
  for (let k = 0; k < count; k++) {
    const at = gap !== -1 && k >= gap ? k + shift : k;
    words[at >> 1]! |= (at & 1) === 0 ? g[k]! << 16 : g[k]!;
  }
  for (let k = 0; k < 4; k++) words[k] = words[k]! | 0;
  return words;
}

/** Parses an address, or returns undefined. */
export function tryParseAddr(s: string): Addr | undefined {
  if (s.includes(':')) {
    const w = parseV6Words(s);
    return w ? new Addr(6, w[0]!, w[1]!, w[2]!, w[3]!) : undefined;
  }
  const v = parseV4Word(s);
  return v === undefined ? undefined : new Addr(4, v);
}

export function parseAddr(s: string): Addr {
  const a = tryParseAddr(s);
  if (!a) throw new AddrError(`${JSON.stringify(s)}: not an IPv4 or IPv6 address`);
  return a;
}

export interface ParsePrefixOptions {
  /** Clear host bits instead of rejecting them (for input from the kernel or other daemons). */
  clearHostBits?: boolean;
}

/**
 * Parses "addr/len" (or a bare address, meaning /32 or /128). Host bits set is
 * an error that suggests the canonical form, unless options.clearHostBits.
 */
export function parsePrefix(s: string, options: ParsePrefixOptions = {}): Prefix {
  const slash = s.indexOf('/');
  const addrPart = slash === -1 ? s : s.slice(0, slash);
  const addr = tryParseAddr(addrPart);
  if (!addr) throw new AddrError(`${JSON.stringify(s)}: not an IPv4 or IPv6 prefix`);
  let len = maxLen(addr.family);
  if (slash !== -1) {
    const lenPart = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenPart) || Number(lenPart) > len) {
      throw new AddrError(`${JSON.stringify(s)}: prefix length must be a number 0..${len}`);
    }
    len = Number(lenPart);
  }
  const p = Prefix.of(addr, len);
  if (!options.clearHostBits && !p.addr.equals(addr)) {
    throw new AddrError(`${s}: host bits set, did you mean ${p}?`);
  }
  return p;
}

// ---------------------------------------------------------------- formatting

function formatV4(w: number): string {
  return `${(w >>> 24) & 255}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

/** RFC 5952: lower case, no leading zeros, longest run (>= 2 groups) of zeros as "::", first on ties. */
function formatV6(words: readonly number[]): string {
  const g: number[] = [];
  for (const w of words) g.push(w >>> 16, w & 0xffff);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // IPv4-mapped addresses (::ffff:0:0/96) are written with a dotted quad (RFC 5952 section 5).
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${formatV4(words[3]!)}`;
  }
  const hex = (a: number, b: number): string => g.slice(a, b).map((x) => x.toString(16)).join(':');
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLen, 8)}`;
}

// ---------------------------------------------------------------- bytes

function readWord(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) | 0;
}

function writeWord(buf: Uint8Array, off: number, w: number): void {
  buf[off] = w >>> 24;
  buf[off + 1] = (w >>> 16) & 255;
  buf[off + 2] = (w >>> 8) & 255;
  buf[off + 3] = w & 255;
}
