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
 * them to indexes. The routes file's `PREFIX via GW` lines have a fast path
 * on bytes (route-bytes.ts) that must agree with this parser.
 */
import { type Addr, Prefix, parsePrefix, tryParseAddr } from '../lib/addr';
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
export const VIA_CACHE_MAX = 4096;

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
