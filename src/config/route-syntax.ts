/**
 * Route lines in iproute2's `ip route` syntax, the parts krtsync supports:
 *
 *   [unicast|blackhole|unreachable|prohibit] PREFIX|default
 *     [via [inet|inet6] ADDR] [dev IFNAME] [onlink] [weight N]
 *     [metric|priority|preference N] [src ADDR] [realm[s] N] [scope host|link|global|N]
 *     [pref low|medium|high] [mtu|advmss|window|rtt|... [lock] N] [congctl [lock] NAME]
 *     [nexthop via ADDR [dev IFNAME] [weight N] [onlink]]...
 *
 * One line in, one {net, attrs} out, or a RouteSyntaxError that names the
 * column and the word that was wrong. `default` means 0.0.0.0/0, or ::/0 when
 * the first gateway is IPv6. Keywords that would reach outside krtsync's own
 * routes (`table`, `proto`) are refused with a pointer to the right setting.
 * The parser is pure: interface names stay names; the kernel protocol resolves
 * them to indexes.
 */
import { type Addr, Prefix, parsePrefix, tryParseAddr, wordMask } from '../lib/addr';
import { KrtError } from '../lib/errors';
import { RouteAttrs, RTAX, type LockableName, type MetricName, type NextHopSpec, type RouteAttrsSpec, type RouteType } from '../route';
import { RouteError } from '../route/route-error';

export class RouteSyntaxError extends KrtError {
  constructor(
    message: string,
    /** 1-based column of the offending word in the line. */
    readonly column: number,
  ) {
    super('KRT_ERR_ROUTE_SYNTAX', message);
  }
}

export interface ParsedRoute {
  net: Prefix;
  attrs: RouteAttrs;
}

interface Token {
  text: string;
  /** 1-based column. */
  col: number;
}

const HOP_WORDS: ReadonlySet<string> = new Set(['via', 'dev', 'oif', 'onlink', 'weight']);
const TYPES: ReadonlySet<string> = new Set(['unicast', 'blackhole', 'unreachable', 'prohibit']);
const SCOPES: Record<string, number> = { global: 0, universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };
const PREFS: Record<string, 'low' | 'medium' | 'high'> = { low: 'low', medium: 'medium', high: 'high' };
/** iproute2 accepts these words for the route's priority. */
const METRIC_WORDS: ReadonlySet<string> = new Set(['metric', 'priority', 'preference']);
const REFUSED: Record<string, string> = {
  table: 'the kernel table is set on the kernel protocol (kernel_table), not per route',
  proto: 'krtsync marks its routes with its own protocol number (the kernel protocol\'s "protocol")',
  protocol: 'krtsync marks its routes with its own protocol number (the kernel protocol\'s "protocol")',
};

function tokenize(line: string): Token[] {
  const out: Token[] = [];
  const re = /\S+/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line))) out.push({ text: m[0], col: m.index + 1 });
  return out;
}

class Cursor {
  i = 0;
  constructor(
    readonly toks: Token[],
    readonly endCol: number,
  ) {}
  peek(): Token | undefined {
    return this.toks[this.i];
  }
  next(what: string, after: Token): Token {
    const t = this.toks[this.i++];
    if (!t) throw new RouteSyntaxError(`${what} expected after "${after.text}"`, this.endCol);
    return t;
  }
}

function fail(t: Token, message: string): never {
  throw new RouteSyntaxError(message, t.col);
}

function uint(t: Token, what: string, max = 0xffffffff, min = 0): number {
  const v = Number(t.text);
  if (!/^\d+$/.test(t.text) || v > max || v < min) fail(t, `${what} "${t.text}": expected an integer ${min}..${max}`);
  return Number(t.text);
}

function addr(t: Token, what: string): Addr {
  const a = tryParseAddr(t.text);
  if (!a) fail(t, `${what} "${t.text}": not an IPv4 or IPv6 address`);
  return a;
}

/** Parses the hop words (via, dev, onlink, weight) at the cursor into `hop`; false when the word is not one. */
function hopWord(c: Cursor, t: Token, hop: NextHopSpec): boolean {
  switch (t.text) {
    case 'via': {
      let a = c.next('a gateway address', t);
      if (a.text === 'inet' || a.text === 'inet6') a = c.next('a gateway address', a);
      if (hop.gateway) fail(t, 'a next hop has one "via"');
      hop.gateway = addr(a, 'gateway');
      return true;
    }
    case 'dev':
    case 'oif': {
      const d = c.next('an interface name', t);
      if (!/^[^\s/]{1,15}$/.test(d.text)) fail(d, `interface "${d.text}": not a valid interface name`);
      hop.ifname = d.text;
      return true;
    }
    case 'onlink':
      hop.onlink = true;
      return true;
    case 'weight':
      hop.weight = uint(c.next('a weight', t), 'weight', 256, 1);
      return true;
    default:
      return false;
  }
}

/**
 * Parses one route line. Throws RouteSyntaxError (with a column) for any word
 * it does not understand or any impossible combination.
 */
export function parseRouteLine(line: string): ParsedRoute {
  return parseSimpleLine(line) ?? parseFullLine(line);
}

/**
 * Attributes of `via GW` lines already parsed, by family and gateway text.
 * RouteAttrs are interned and immutable, and for this shape they depend only
 * on the gateway and the net's family, so a routes file of a million lines
 * through a handful of gateways parses each gateway once.
 */
const viaCache = new Map<string, RouteAttrs>();
const VIA_CACHE_MAX = 4096;

/**
 * The fast path for `PREFIX via GW` (single spaces, nothing else), the shape
 * of nearly every line of a large routes file: no tokens, no regexes beyond
 * the prefix's. Anything else, and anything wrong (so errors keep their
 * words and columns), returns undefined and goes through the full parser.
 */
function parseSimpleLine(line: string): ParsedRoute | undefined {
  const s = line.trim();
  const sp = s.indexOf(' ');
  if (sp <= 0 || !s.startsWith(' via ', sp) || s.indexOf('\t') !== -1) return undefined;
  const gwText = s.slice(sp + 5);
  if (gwText.length === 0 || gwText.indexOf(' ') !== -1) return undefined;
  const netText = s.slice(0, sp);
  if (netText === 'default' || TYPES.has(netText)) return undefined;
  let net: Prefix;
  try {
    net = parsePrefix(netText);
  } catch {
    return undefined;
  }
  const key = net.family === 4 ? `4 ${gwText}` : `6 ${gwText}`;
  const attrs = viaCache.get(key);
  if (attrs !== undefined) return { net, attrs };
  const full = parseFullLine(line);
  if (viaCache.size >= VIA_CACHE_MAX) viaCache.clear();
  viaCache.set(key, full.attrs);
  return full;
}

/** What parseV4ViaBytes read: the net (word with host bits zero, length) and the interned attributes. */
export interface V4ViaLine {
  word: number;
  len: number;
  attrs: RouteAttrs | undefined;
}

/** Attributes of IPv4 `via GW` lines by gateway word, as viaCache (a canonical dotted quad and its word are one-to-one). */
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

/** Reads a canonical dotted quad (no leading zeros) at `p`: its end, with the word in `quad`; -1 if there is none. */
function readQuad(b: Uint8Array, p: number, end: number): number {
  let w = 0;
  for (let part = 0; part < 4; part++) {
    p = readDecimal(b, p, end, 3);
    if (p < 0 || num > 255) return -1;
    w = (w << 8) | num;
    if (part < 3) {
      if (p >= end || b[p] !== 46) return -1;
      p++;
    }
  }
  quad = w | 0;
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
  let p = readQuad(b, start, end);
  if (p < 0) return false;
  const w = quad;
  if (p >= end || b[p] !== 47) return false;
  p = readDecimal(b, p + 1, end, 2);
  if (p < 0 || num > 32) return false;
  const len = num;
  if ((w & ~wordMask(len)) !== 0) return false; // host bits set: the full parser says so
  if (end - p < 12 || b[p] !== 32 || b[p + 1] !== 118 || b[p + 2] !== 105 || b[p + 3] !== 97 || b[p + 4] !== 32) return false;
  if (readQuad(b, p + 5, end) !== end) return false;
  const g = quad;
  const attrs = v4ViaCache.get(g) ?? viaAttrsOfLine(v4ViaCache, g, b, start, end);
  if (attrs === undefined) return false;
  out.word = w | 0;
  out.len = len;
  out.attrs = attrs;
  return true;
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

function parseFullLine(line: string): ParsedRoute {
  const c = new Cursor(tokenize(line), line.trimEnd().length + 1);
  const first = c.peek();
  if (!first) throw new RouteSyntaxError('empty route', 1);
  let type: RouteType | undefined;
  if (TYPES.has(first.text)) {
    type = first.text as RouteType;
    c.i++;
  }
  const netTok = c.next('a prefix', first);
  let net: Prefix | undefined;
  if (netTok.text !== 'default') {
    try {
      net = parsePrefix(netTok.text);
    } catch (e) {
      fail(netTok, (e as Error).message);
    }
  }

  const hop: NextHopSpec = {};
  const hops: NextHopSpec[] = [];
  const spec: RouteAttrsSpec = {};
  const metrics: Partial<Record<MetricName, number>> = {};
  const locked: LockableName[] = [];
  const seen = new Set<string>();

  for (let t = c.peek(); t; t = c.peek()) {
    c.i++;
    if (hopWord(c, t, hop)) {
      if (hops.length) fail(t, `"${t.text}" after "nexthop" belongs inside a nexthop`);
      continue;
    }
    const key = METRIC_WORDS.has(t.text) ? 'metric' : t.text === 'realms' ? 'realm' : t.text;
    if (key !== 'nexthop' && seen.has(key)) fail(t, `"${t.text}" given twice`);
    seen.add(key);
    switch (key) {
      case 'nexthop': {
        const h: NextHopSpec = {};
        const start = c.i;
        for (let u = c.peek(); u && HOP_WORDS.has(u.text); u = c.peek()) {
          c.i++;
          hopWord(c, u, h);
        }
        if (c.i === start || (!h.gateway && !h.ifname)) fail(t, '"nexthop" needs "via ADDR" or "dev IFNAME"');
        hops.push(h);
        break;
      }
      case 'metric':
        spec.metric = uint(c.next('a number', t), 'metric');
        break;
      case 'src':
        spec.prefsrc = addr(c.next('an address', t), 'src');
        break;
      case 'realm':
        spec.realm = uint(c.next('a number', t), 'realm');
        break;
      case 'scope': {
        const s = c.next('a scope', t);
        spec.scope = s.text in SCOPES ? SCOPES[s.text]! : uint(s, 'scope', 255);
        break;
      }
      case 'pref': {
        const p = c.next('low, medium or high', t);
        const v = PREFS[p.text];
        if (!v) fail(p, `pref "${p.text}": expected low, medium or high`);
        spec.pref = v;
        break;
      }
      case 'congctl': {
        let v = c.next('an algorithm name', t);
        if (v.text === 'lock') {
          locked.push('congctl');
          v = c.next('an algorithm name', v);
        }
        spec.congctl = v.text;
        break;
      }
      default: {
        if (key in RTAX && key !== 'congctl') {
          let v = c.next('a number', t);
          if (v.text === 'lock') {
            locked.push(key as LockableName);
            v = c.next('a number', v);
          }
          metrics[key as MetricName] = uint(v, key);
          break;
        }
        if (key in REFUSED) fail(t, `"${t.text}" is not accepted here: ${REFUSED[key]}`);
        if (TYPES.has(t.text)) fail(t, `route type "${t.text}" must come first`);
        fail(t, `unknown word "${t.text}"`);
      }
    }
  }

  if (hops.length && (hop.gateway || hop.ifname || hop.onlink || hop.weight)) {
    throw new RouteSyntaxError('give either one next hop (via/dev) or "nexthop" entries, not both', first.col);
  }
  const allHops = hops.length ? hops : hop.gateway || hop.ifname ? [hop] : [];
  if (type === undefined) type = 'unicast';
  if (type !== 'unicast' && allHops.length) {
    throw new RouteSyntaxError(`a ${type} route has no next hop ("via", "dev", "nexthop")`, first.col);
  }
  if (type === 'unicast' && !allHops.length) {
    throw new RouteSyntaxError('a route needs "via ADDR", "dev IFNAME", "nexthop …", or a type (blackhole, unreachable, prohibit)', first.col);
  }
  if (!net) {
    const v6 = allHops[0]?.gateway?.family === 6;
    net = new Prefix(v6 ? 6 : 4, 0, 0);
  }
  if (spec.pref && net.family !== 6) fail(netTok, '"pref" applies only to IPv6 routes');
  if (spec.prefsrc && spec.prefsrc.family !== net.family) fail(netTok, `src ${spec.prefsrc} is not of the route's family`);
  for (const h of allHops) {
    if (h.gateway && h.gateway.family !== net.family && !(net.family === 4 && h.gateway.family === 6)) {
      fail(netTok, `an IPv6 route cannot have the IPv4 gateway ${h.gateway}`);
    }
  }
  if (Object.keys(metrics).length) spec.metrics = metrics;
  if (locked.length) spec.locked = locked;
  spec.type = type;
  if (allHops.length) spec.nexthops = allHops;
  try {
    return { net, attrs: RouteAttrs.of(spec) };
  } catch (e) {
    if (e instanceof RouteError) throw new RouteSyntaxError(e.message, first.col);
    throw e;
  }
}
