/**
 * Stream line formats: one JSON object per line, turned into stream events.
 *
 * krtsync's own format (docs/stream.md):
 *   {"announce": "10.1.0.0/24 via 192.0.2.2"}            a route line, or a list of them
 *   {"withdraw": "10.1.0.0/24"}                          a prefix, or a list of them
 *   {"eor": true}                                        end of RIB: routes not re-announced since the
 *                                                        client (re)connected are withdrawn
 *   {"neighbor": {"address": "192.0.2.1", "as": 65001, "local_as": 65000, "router_id": "192.0.2.1"},
 *    "bgp": {"origin": "igp", "as_path": "65001 65010", "local_pref": 100, "med": 5,
 *            "communities": ["65001:1"], "large_communities": ["65001:0:1"]},
 *    "announce": [...], "withdraw": [...], "eor": true, "state": "up" | "down"}
 *                                                        the same, for one BGP neighbour behind the
 *                                                        client, with the routes' BGP attributes
 *
 * ExaBGP's JSON API is read by exabgp.ts. Each neighbour is its own peer (its
 * routes are its own source), keyed by its address in canonical form
 * (events.ts has the event types).
 *
 * Parsing is pure: a bad line is a StreamLineError naming what is wrong, and
 * never affects other lines. Announcements come grouped: one event per
 * attribute set, with all its nets, so a line of a thousand NLRIs under one
 * next hop is one event and one attribute set.
 */
import type { Prefix } from '../../lib/addr';
import { parseCommunity, parseLargeCommunity, type AsSegment, type BgpOrigin, type BgpPath, type BgpPathSpec, type RouteAttrs } from '../../route';
import { parseRouteLine, RouteSyntaxError } from '../../config/route-syntax';
import { bgpPath, json, neighborKey, obj, prefix, routerId, short, StreamLineError, u32, type NeighborInfo, type StreamEvent } from './events';
import { parseExabgpLine } from './exabgp';

export type StreamFormat = 'krtsync' | 'exabgp';
export const STREAM_FORMATS: readonly StreamFormat[] = ['krtsync', 'exabgp'];
export { StreamLineError, type NeighborInfo, type StreamEvent } from './events';
export { parseExabgpLine } from './exabgp';

function stringList(v: unknown, what: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  for (const x of list) if (typeof x !== 'string') throw new StreamLineError(`"${what}" takes a string or a list of strings`);
  return list as string[];
}

const ORIGINS: readonly BgpOrigin[] = ['igp', 'egp', 'incomplete'];
const NEIGHBOR_KEYS = ['address', 'as', 'local_as', 'router_id'];
const BGP_KEYS = ['origin', 'as_path', 'local_pref', 'med', 'communities', 'large_communities', 'originator_id', 'cluster_list'];

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw new StreamLineError(`${what}: unknown key ${short(k)} (expected ${allowed.join(', ')})`);
}

/** `65001 65002 {7 8}` or a list of ASNs (krtsync's `as_path`, as `show routes --json` prints it). */
function asPath(v: unknown): AsSegment[] {
  if (Array.isArray(v)) return [{ type: 'sequence', asns: v.map((x, i) => u32(x, `bgp.as_path[${i}]`)) }];
  if (typeof v !== 'string') throw new StreamLineError(`bgp.as_path: expected "65001 65002" or a list of ASNs, got ${short(v)}`);
  const bad = (x: string): never => {
    throw new StreamLineError(`bgp.as_path: ${short(x)} is not an ASN`);
  };
  const asns = (inner: string): number[] => inner.trim().split(/\s+/).filter(Boolean).map((x) => (/^\d+$/.test(x) ? u32(Number(x), 'bgp.as_path') : bad(x)));
  const segs: AsSegment[] = [];
  for (const m of v.matchAll(/\s*(\{[^}]*\}|\([^)]*\)|\[[^\]]*\]|\d+|\S)/g)) {
    const t = m[1]!;
    if (/^\d+$/.test(t)) {
      const last = segs[segs.length - 1];
      if (last?.type === 'sequence') (last.asns as number[]).push(u32(Number(t), 'bgp.as_path'));
      else segs.push({ type: 'sequence', asns: [u32(Number(t), 'bgp.as_path')] });
    } else if (t.startsWith('{')) segs.push({ type: 'set', asns: asns(t.slice(1, -1)) });
    else if (t.startsWith('(')) segs.push({ type: 'confed-sequence', asns: asns(t.slice(1, -1)) });
    else if (t.startsWith('[')) segs.push({ type: 'confed-set', asns: asns(t.slice(1, -1)) });
    else bad(t);
  }
  return segs;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new StreamLineError(`${what}: expected a list`);
  return v;
}

/** krtsync's `bgp` object: the names `show routes --json` prints. */
function krtsyncPath(v: unknown): BgpPath {
  const o = obj(v, '"bgp"');
  checkKeys(o, BGP_KEYS, '"bgp"');
  const spec: BgpPathSpec = {};
  if (o.origin !== undefined) {
    if (!ORIGINS.includes(o.origin as BgpOrigin)) throw new StreamLineError(`bgp.origin: expected igp, egp or incomplete, got ${short(o.origin)}`);
    spec.origin = o.origin as BgpOrigin;
  }
  if (o.as_path !== undefined) spec.asPath = asPath(o.as_path);
  if (o.local_pref !== undefined) spec.localPref = u32(o.local_pref, 'bgp.local_pref');
  if (o.med !== undefined) spec.med = u32(o.med, 'bgp.med');
  if (o.communities !== undefined) {
    spec.communities = list(o.communities, 'bgp.communities').map((c) => {
      const n = typeof c === 'string' ? parseCommunity(c) : undefined;
      if (n === undefined) throw new StreamLineError(`bgp.communities: expected "65001:100", got ${short(c)}`);
      return n;
    });
  }
  if (o.large_communities !== undefined) {
    spec.largeCommunities = list(o.large_communities, 'bgp.large_communities').map((c) => {
      const l = typeof c === 'string' ? parseLargeCommunity(c) : undefined;
      if (l === undefined) throw new StreamLineError(`bgp.large_communities: expected "65001:0:100", got ${short(c)}`);
      return l;
    });
  }
  if (o.originator_id !== undefined) spec.originatorId = routerId(o.originator_id, 'bgp.originator_id');
  if (o.cluster_list !== undefined) spec.clusterList = list(o.cluster_list, 'bgp.cluster_list').map((c, i) => routerId(c, `bgp.cluster_list[${i}]`));
  return bgpPath(spec);
}

function krtsyncNeighbor(v: unknown): { peer: string; info: NeighborInfo } {
  const o = obj(v, '"neighbor"');
  checkKeys(o, NEIGHBOR_KEYS, '"neighbor"');
  const info: NeighborInfo = {};
  if (o.as !== undefined) info.as = u32(o.as, 'neighbor.as');
  if (o.local_as !== undefined) info.localAs = u32(o.local_as, 'neighbor.local_as');
  if (o.router_id !== undefined) info.routerId = routerId(o.router_id, 'neighbor.router_id');
  return { peer: neighborKey(o.address, 'neighbor.address'), info };
}

const KRTSYNC_KEYS = ['announce', 'withdraw', 'eor', 'neighbor', 'bgp', 'state'];

export function parseKrtsyncLine(line: string): StreamEvent[] {
  const o = json(line);
  for (const key of Object.keys(o)) {
    if (!KRTSYNC_KEYS.includes(key)) throw new StreamLineError(`unknown key ${short(key)} (expected ${KRTSYNC_KEYS.join(', ')})`);
  }
  const n = o.neighbor === undefined ? undefined : krtsyncNeighbor(o.neighbor);
  if (o.bgp !== undefined && !n) throw new StreamLineError('"bgp" attributes need a "neighbor" (the routes\' BGP neighbour)');
  const path = n ? (o.bgp === undefined ? bgpPath({}) : krtsyncPath(o.bgp)) : undefined;
  const peer = n?.peer ?? '';
  const out: StreamEvent[] = [];
  if (o.state !== undefined) {
    if (!n) throw new StreamLineError('"state" needs a "neighbor"');
    if (o.state !== 'up' && o.state !== 'down') throw new StreamLineError(`"state" takes "up" or "down", got ${short(o.state)}`);
    // Down comes first: {"state":"down","announce":...} restarts the neighbour; up comes after its routes would be stale.
    if (o.state === 'down') out.push({ kind: 'peer-down', peer });
    else out.push({ kind: 'peer-up', peer, info: n.info });
  } else if (n) out.push({ kind: 'neighbor', peer, info: n.info });
  if (o.announce !== undefined) {
    // Grouped by attribute set (interned: equal attributes are one object).
    const groups = new Map<RouteAttrs, Prefix[]>();
    for (const r of stringList(o.announce, 'announce')) {
      try {
        const { net, attrs } = parseRouteLine(r);
        let nets = groups.get(attrs);
        if (!nets) groups.set(attrs, (nets = []));
        nets.push(net);
      } catch (e) {
        if (e instanceof RouteSyntaxError) throw new StreamLineError(`announce ${short(r)}: ${e.message} (column ${e.column})`);
        throw e;
      }
    }
    for (const [attrs, nets] of groups) out.push({ kind: 'announce', peer, nets, attrs, path, info: n?.info });
  }
  if (o.withdraw !== undefined) out.push({ kind: 'withdraw', peer, nets: stringList(o.withdraw, 'withdraw').map(prefix) });
  if (o.eor !== undefined) {
    if (o.eor !== true) throw new StreamLineError('"eor" takes true');
    out.push({ kind: 'eor', peer, family: undefined });
  }
  if (!out.length) throw new StreamLineError('nothing to do: expected announce, withdraw, eor or a neighbor state');
  return out;
}

export function parseStreamLine(format: StreamFormat, line: string): StreamEvent[] {
  return format === 'exabgp' ? parseExabgpLine(line) : parseKrtsyncLine(line);
}
