/**
 * ExaBGP's JSON API (`encoder json;` process output, ExaBGP 4.x), IPv4 and
 * IPv6 unicast, turned into stream events.
 *
 *  - "update" messages announce NLRIs via the next hop they are grouped
 *    under, with the update's path attributes (origin, as-path, as-set,
 *    confederation-path/-set, local-preference, med, community,
 *    large-community, originator-id, cluster-list), and withdraw NLRIs;
 *  - an update's "eor" ends a family's RIB;
 *  - "state" "up" starts a new round for the neighbour, "down" withdraws
 *    what it announced;
 *  - "open" in the receive direction (`receive { open; }`) gives the
 *    neighbour's router id and the families it offers;
 *  - every message names the neighbour's address and both ASes.
 * Other message types (keepalive, notification, …) are ignored.
 *
 * The neighbour's address is the peer key, checked to be an address: a line
 * cannot make a peer out of an arbitrary string.
 */
import { tryParseAddr, type Family, type Prefix } from '../../lib/addr';
import { RouteAttrs, type AsSegment, type BgpOrigin, type BgpPath, type BgpPathSpec } from '../../route';
import { bgpPath, json, neighborKey, obj, prefix, routerId, short, StreamLineError, u32, type NeighborInfo, type StreamEvent } from './events';

const FAMILIES: Record<string, Family> = { 'ipv4 unicast': 4, 'ipv6 unicast': 6 };
/** Families as the multiprotocol capability names them. */
const CAPABILITY_FAMILIES: Record<string, Family> = { 'ipv4/unicast': 4, 'ipv6/unicast': 6 };
const ORIGINS: readonly BgpOrigin[] = ['igp', 'egp', 'incomplete'];

function nlris(v: unknown, what: string): Prefix[] {
  if (!Array.isArray(v)) throw new StreamLineError(`ExaBGP message: ${what} is not a list`);
  return v.map((x) => {
    const n = obj(x, `ExaBGP message: ${what} entry`).nlri;
    if (typeof n !== 'string') throw new StreamLineError(`ExaBGP message: ${what} entry without "nlri"`);
    return prefix(n);
  });
}

function asns(v: unknown, what: string): number[] {
  if (!Array.isArray(v)) throw new StreamLineError(`ExaBGP attribute ${what}: expected a list of ASNs, got ${short(v)}`);
  return v.map((x) => u32(x, `ExaBGP attribute ${what}`));
}

/** An update's "attribute" object; unknown attributes (aggregator, extended communities, …) are ignored. */
function pathOf(v: unknown): BgpPath {
  const a = obj(v, 'ExaBGP message: attribute');
  const spec: BgpPathSpec = {};
  if (a.origin !== undefined) {
    if (!ORIGINS.includes(a.origin as BgpOrigin)) throw new StreamLineError(`ExaBGP attribute origin: ${short(a.origin)}`);
    spec.origin = a.origin as BgpOrigin;
  }
  // ExaBGP 4.2 flattens the path into its four kinds; confederation segments lead (RFC 5065), a set trails.
  const segs: AsSegment[] = [];
  if (a['confederation-path'] !== undefined) segs.push({ type: 'confed-sequence', asns: asns(a['confederation-path'], 'confederation-path') });
  if (a['confederation-set'] !== undefined) segs.push({ type: 'confed-set', asns: asns(a['confederation-set'], 'confederation-set') });
  if (a['as-path'] !== undefined) segs.push({ type: 'sequence', asns: asns(a['as-path'], 'as-path') });
  if (a['as-set'] !== undefined) segs.push({ type: 'set', asns: asns(a['as-set'], 'as-set') });
  spec.asPath = segs;
  if (a['local-preference'] !== undefined) spec.localPref = u32(a['local-preference'], 'ExaBGP attribute local-preference');
  if (a.med !== undefined) spec.med = u32(a.med, 'ExaBGP attribute med');
  if (a.community !== undefined) {
    if (!Array.isArray(a.community)) throw new StreamLineError('ExaBGP attribute community: expected a list');
    spec.communities = a.community.map((c) => {
      if (!Array.isArray(c) || c.length !== 2) throw new StreamLineError(`ExaBGP attribute community: expected [asn, value], got ${short(c)}`);
      const [x, y] = [u32(c[0], 'ExaBGP community'), u32(c[1], 'ExaBGP community')];
      if (x > 0xffff || y > 0xffff) throw new StreamLineError(`ExaBGP attribute community: ${short(c)} is not two 16-bit numbers`);
      return ((x << 16) | y) >>> 0;
    });
  }
  if (a['large-community'] !== undefined) {
    if (!Array.isArray(a['large-community'])) throw new StreamLineError('ExaBGP attribute large-community: expected a list');
    spec.largeCommunities = a['large-community'].map((c) => {
      if (!Array.isArray(c) || c.length !== 3) throw new StreamLineError(`ExaBGP attribute large-community: expected [global, local, local], got ${short(c)}`);
      return [u32(c[0], 'ExaBGP large community'), u32(c[1], 'ExaBGP large community'), u32(c[2], 'ExaBGP large community')] as [number, number, number];
    });
  }
  if (a['originator-id'] !== undefined) spec.originatorId = routerId(a['originator-id'], 'ExaBGP attribute originator-id');
  if (a['cluster-list'] !== undefined) {
    if (!Array.isArray(a['cluster-list'])) throw new StreamLineError('ExaBGP attribute cluster-list: expected a list');
    spec.clusterList = a['cluster-list'].map((c) => routerId(c, 'ExaBGP attribute cluster-list'));
  }
  return bgpPath(spec);
}

/** The ASes every message names: {"asn": {"local": 65002, "peer": 65001}}. */
function asnInfo(neighbor: Record<string, unknown>): NeighborInfo | undefined {
  if (neighbor.asn === undefined) return undefined;
  const asn = obj(neighbor.asn, 'ExaBGP message: neighbor.asn');
  const info: NeighborInfo = {};
  if (asn.peer !== undefined) info.as = u32(asn.peer, 'ExaBGP neighbor.asn.peer');
  if (asn.local !== undefined) info.localAs = u32(asn.local, 'ExaBGP neighbor.asn.local');
  return info;
}

/** The neighbour's OPEN: its router id, and the families of its multiprotocol capability (none: IPv4 only, RFC 4760). */
function openInfo(open: Record<string, unknown>, base: NeighborInfo | undefined): NeighborInfo {
  const info: NeighborInfo = { ...base, routerId: routerId(open.router_id, 'ExaBGP open.router_id') };
  const families = new Set<Family>();
  let multiprotocol = false;
  if (open.capabilities !== undefined) {
    for (const cap of Object.values(obj(open.capabilities, 'ExaBGP open.capabilities'))) {
      if (typeof cap !== 'object' || cap === null || (cap as { name?: unknown }).name !== 'multiprotocol') continue;
      multiprotocol = true;
      const fams = (cap as { families?: unknown }).families;
      if (Array.isArray(fams)) for (const f of fams) if (typeof f === 'string' && CAPABILITY_FAMILIES[f]) families.add(CAPABILITY_FAMILIES[f]);
    }
  }
  info.families = multiprotocol ? [...families].sort((a, b) => a - b) : [4];
  return info;
}

export function parseExabgpLine(line: string): StreamEvent[] {
  const o = json(line);
  if (typeof o.exabgp !== 'string') throw new StreamLineError('not an ExaBGP JSON message (no "exabgp" version field)');
  const type = o.type;
  if (type !== 'update' && type !== 'state' && type !== 'open') return [];
  const neighbor = obj(o.neighbor, 'ExaBGP message: neighbor');
  const peer = neighborKey(obj(neighbor.address, 'ExaBGP message: neighbor.address').peer, 'ExaBGP message: neighbor.address.peer');
  const info = asnInfo(neighbor);
  if (type === 'state') {
    if (neighbor.state === 'down') return [{ kind: 'peer-down', peer }];
    if (neighbor.state === 'up') return [{ kind: 'peer-up', peer, info }];
    return [];
  }
  if (type === 'open') {
    if (neighbor.direction !== 'receive') return []; // our own OPEN (send { open; })
    return [{ kind: 'neighbor', peer, info: openInfo(obj(neighbor.open, 'ExaBGP message: open'), info) }];
  }
  const message = obj(neighbor.message, 'ExaBGP message: neighbor.message');
  if (message.eor !== undefined) {
    const eor = obj(message.eor, 'ExaBGP message: eor');
    const family = FAMILIES[`${String(eor.afi)} ${String(eor.safi)}`];
    return family ? [{ kind: 'eor', peer, family }] : [];
  }
  if (message.update === undefined) return [];
  const update = obj(message.update, 'ExaBGP message: update');
  const out: StreamEvent[] = [];
  if (update.withdraw !== undefined) {
    for (const [fam, nets] of Object.entries(obj(update.withdraw, 'ExaBGP message: withdraw'))) {
      if (FAMILIES[fam]) out.push({ kind: 'withdraw', peer, nets: nlris(nets, `withdraw ${fam}`) });
    }
  }
  if (update.announce !== undefined) {
    const announce = obj(update.announce, 'ExaBGP message: announce');
    let path: BgpPath | undefined;
    for (const [fam, byNextHop] of Object.entries(announce)) {
      if (!FAMILIES[fam]) continue;
      path ??= pathOf(update.attribute ?? {});
      for (const [nh, nets] of Object.entries(obj(byNextHop, `ExaBGP message: announce ${fam}`))) {
        const gw = nh.length <= 64 ? tryParseAddr(nh) : undefined;
        if (!gw) throw new StreamLineError(`ExaBGP message: next hop ${short(nh)} is not an address`);
        const list = nlris(nets, `announce ${fam} ${nh}`);
        for (const net of list) {
          if (gw.family !== net.family && !(net.family === 4 && gw.family === 6)) throw new StreamLineError(`ExaBGP message: ${net} cannot have the next hop ${gw}`);
        }
        // One attribute set per next hop: all NLRIs under it share it.
        out.push({ kind: 'announce', peer, nets: list, attrs: RouteAttrs.of({ nexthops: [{ gateway: gw }] }), path, info });
      }
    }
  }
  return out;
}
