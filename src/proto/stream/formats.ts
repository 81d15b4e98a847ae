/**
 * Stream line formats: one JSON object per line, turned into stream events.
 *
 * krtsync's own format (docs/stream.md):
 *   {"announce": "10.1.0.0/24 via 192.0.2.2"}            a route line, or a list of them
 *   {"withdraw": "10.1.0.0/24"}                          a prefix, or a list of them
 *   {"eor": true}                                        end of RIB: routes not re-announced since the
 *                                                        client (re)connected are withdrawn
 *
 * ExaBGP's JSON API (`encoder json;` process output, ExaBGP 4.x), IPv4 and
 * IPv6 unicast: "update" messages announce NLRIs via the next hop they are
 * grouped under and withdraw NLRIs; "eor" ends a family's RIB; a neighbor
 * "state" of "down" withdraws what that neighbor announced, "up" starts a
 * new round. Each neighbor is its own peer (its routes are its own source).
 * Other message types (keepalive, open, notification, …) are ignored.
 *
 * Parsing is pure: a bad line is a StreamLineError naming what is wrong, and
 * never affects other lines.
 */
import { parsePrefix, tryParseAddr, type Family, type Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { RouteAttrs } from '../../route';
import { parseRouteLine, RouteSyntaxError } from '../../config/route-syntax';

export type StreamFormat = 'krtsync' | 'exabgp';
export const STREAM_FORMATS: readonly StreamFormat[] = ['krtsync', 'exabgp'];

/** `peer` separates the routes of several BGP neighbors behind one client; '' for the client itself. */
export type StreamEvent =
  | { kind: 'announce'; peer: string; net: Prefix; attrs: RouteAttrs }
  | { kind: 'withdraw'; peer: string; net: Prefix }
  | { kind: 'eor'; peer: string; family: Family | undefined }
  | { kind: 'peer-up'; peer: string }
  | { kind: 'peer-down'; peer: string };

export class StreamLineError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_STREAM_LINE', message);
  }
}

function json(line: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    throw new StreamLineError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StreamLineError('expected a JSON object');
  return v as Record<string, unknown>;
}

function stringList(v: unknown, what: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  for (const x of list) if (typeof x !== 'string') throw new StreamLineError(`"${what}" takes a string or a list of strings`);
  return list as string[];
}

function prefix(s: string): Prefix {
  try {
    return parsePrefix(s);
  } catch (e) {
    throw new StreamLineError((e as Error).message);
  }
}

export function parseKrtsyncLine(line: string): StreamEvent[] {
  const o = json(line);
  const out: StreamEvent[] = [];
  for (const key of Object.keys(o)) {
    if (key !== 'announce' && key !== 'withdraw' && key !== 'eor') throw new StreamLineError(`unknown key "${key}" (expected announce, withdraw or eor)`);
  }
  if (o.announce !== undefined) {
    for (const r of stringList(o.announce, 'announce')) {
      try {
        const { net, attrs } = parseRouteLine(r);
        out.push({ kind: 'announce', peer: '', net, attrs });
      } catch (e) {
        if (e instanceof RouteSyntaxError) throw new StreamLineError(`announce "${r}": ${e.message} (column ${e.column})`);
        throw e;
      }
    }
  }
  if (o.withdraw !== undefined) for (const p of stringList(o.withdraw, 'withdraw')) out.push({ kind: 'withdraw', peer: '', net: prefix(p) });
  if (o.eor !== undefined) {
    if (o.eor !== true) throw new StreamLineError('"eor" takes true');
    out.push({ kind: 'eor', peer: '', family: undefined });
  }
  if (!out.length) throw new StreamLineError('nothing to do: expected announce, withdraw or eor');
  return out;
}

const EXABGP_FAMILIES: Record<string, Family> = { 'ipv4 unicast': 4, 'ipv6 unicast': 6 };

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new StreamLineError(`ExaBGP message: ${what} is not an object`);
  return v as Record<string, unknown>;
}

function nlris(v: unknown, what: string): Prefix[] {
  if (!Array.isArray(v)) throw new StreamLineError(`ExaBGP message: ${what} is not a list`);
  return v.map((x) => {
    const n = obj(x, what).nlri;
    if (typeof n !== 'string') throw new StreamLineError(`ExaBGP message: ${what} entry without "nlri"`);
    return prefix(n);
  });
}

export function parseExabgpLine(line: string): StreamEvent[] {
  const o = json(line);
  if (typeof o.exabgp !== 'string') throw new StreamLineError('not an ExaBGP JSON message (no "exabgp" version field)');
  const type = o.type;
  if (type !== 'update' && type !== 'state') return [];
  const neighbor = obj(o.neighbor, 'neighbor');
  const peer = obj(neighbor.address, 'neighbor.address').peer;
  if (typeof peer !== 'string') throw new StreamLineError('ExaBGP message: neighbor.address.peer missing');
  if (type === 'state') {
    if (neighbor.state === 'down') return [{ kind: 'peer-down', peer }];
    if (neighbor.state === 'up') return [{ kind: 'peer-up', peer }];
    return [];
  }
  const message = obj(neighbor.message, 'neighbor.message');
  if (message.eor !== undefined) {
    const eor = obj(message.eor, 'eor');
    const family = EXABGP_FAMILIES[`${String(eor.afi)} ${String(eor.safi)}`];
    return family ? [{ kind: 'eor', peer, family }] : [];
  }
  if (message.update === undefined) return [];
  const update = obj(message.update, 'update');
  const out: StreamEvent[] = [];
  if (update.withdraw !== undefined) {
    for (const [fam, list] of Object.entries(obj(update.withdraw, 'withdraw'))) {
      if (!EXABGP_FAMILIES[fam]) continue;
      for (const net of nlris(list, `withdraw ${fam}`)) out.push({ kind: 'withdraw', peer, net });
    }
  }
  if (update.announce !== undefined) {
    for (const [fam, byNextHop] of Object.entries(obj(update.announce, 'announce'))) {
      if (!EXABGP_FAMILIES[fam]) continue;
      for (const [nh, list] of Object.entries(obj(byNextHop, `announce ${fam}`))) {
        const gw = tryParseAddr(nh);
        if (!gw) throw new StreamLineError(`ExaBGP message: next hop "${nh}" is not an address`);
        // One interned attribute set per next hop: all NLRIs under it share it.
        const attrs = RouteAttrs.of({ nexthops: [{ gateway: gw }] });
        for (const net of nlris(list, `announce ${fam} ${nh}`)) {
          if (gw.family !== net.family && !(net.family === 4 && gw.family === 6)) {
            throw new StreamLineError(`ExaBGP message: ${net} cannot have the next hop ${gw}`);
          }
          out.push({ kind: 'announce', peer, net, attrs });
        }
      }
    }
  }
  return out;
}

export function parseStreamLine(format: StreamFormat, line: string): StreamEvent[] {
  return format === 'exabgp' ? parseExabgpLine(line) : parseKrtsyncLine(line);
}
