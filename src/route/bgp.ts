/**
 * BGP attributes of a route, interned in two parts.
 *
 * A BgpPath holds the path attributes a BGP UPDATE carries (origin, AS path,
 * local preference, MED, standard and large communities, originator id and
 * cluster list); a BgpNeighbor says who the route came from (address, AS,
 * our AS on that session, router id). A BgpAttrs is the pair, and it hangs off
 * a route's RouteAttrs (`attrs.bgp`). All three are immutable and interned,
 * like next-hop sets: a million routes from one neighbour with a few
 * distinct attribute sets share a few objects, and equality is `===`.
 *
 * Values are numbers, never strings: ASNs and local preference as u32,
 * communities packed as u32 (`asn << 16 | value`), large communities as three
 * u32, router and originator ids as u32, so every comparison the decision
 * process makes (src/route/decision.ts) is numeric. A missing attribute is
 * stored as missing; decision.ts applies the defaults (RFC 4271 and BIRD's:
 * local preference 100, MED 0, origin incomplete).
 */
import { compareAddr, type Addr } from '../lib/addr';
import { Interner } from './intern';
import { RouteError } from './route-error';

export type BgpOrigin = 'igp' | 'egp' | 'incomplete';
export const ORIGIN_RANK: Readonly<Record<BgpOrigin, number>> = { igp: 0, egp: 1, incomplete: 2 };

/** AS_SEQUENCE, AS_SET, and their confederation forms (RFC 5065). */
export type AsSegmentType = 'sequence' | 'set' | 'confed-sequence' | 'confed-set';

export interface AsSegment {
  readonly type: AsSegmentType;
  readonly asns: readonly number[];
}

export interface BgpPathSpec {
  origin?: BgpOrigin;
  /** Segments, or a plain list of ASNs (one AS_SEQUENCE). */
  asPath?: readonly AsSegment[] | readonly number[];
  localPref?: number;
  med?: number;
  /** Standard communities, packed `asn << 16 | value` (u32). */
  communities?: readonly number[];
  /** Large communities [global, local1, local2] (u32 each). */
  largeCommunities?: readonly (readonly [number, number, number])[];
  /** ORIGINATOR_ID (RFC 4456) as a u32. */
  originatorId?: number;
  /** CLUSTER_LIST (RFC 4456) as u32 ids. */
  clusterList?: readonly number[];
}

function checkU32(what: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= 0 && v <= 0xffffffff)) throw new RouteError(`${what} ${v}: must be an integer 0..4294967295`);
}

const paths = new Interner<BgpPath>();
let nextPathId = 1;

export class BgpPath {
  readonly id: number;
  readonly origin: BgpOrigin | undefined;
  readonly asPath: readonly AsSegment[];
  readonly localPref: number | undefined;
  readonly med: number | undefined;
  /** Sorted, without duplicates (a community list is a set). */
  readonly communities: readonly number[];
  readonly largeCommunities: readonly (readonly [number, number, number])[];
  readonly originatorId: number | undefined;
  readonly clusterList: readonly number[];
  /** RFC 4271 9.1.2.2 a): a sequence counts its ASNs, a set counts one, confederation segments count none. */
  readonly pathLength: number;
  /** The AS the route came from (first ASN of a leading AS_SEQUENCE), undefined for an empty path. */
  readonly firstAs: number | undefined;

  private constructor(spec: Required<Pick<BgpPathSpec, 'communities' | 'clusterList' | 'largeCommunities'>> & BgpPathSpec, asPath: readonly AsSegment[]) {
    this.id = nextPathId++;
    this.origin = spec.origin;
    this.asPath = asPath;
    this.localPref = spec.localPref;
    this.med = spec.med;
    this.communities = spec.communities;
    this.largeCommunities = spec.largeCommunities;
    this.originatorId = spec.originatorId;
    this.clusterList = spec.clusterList;
    let len = 0;
    for (const s of asPath) len += s.type === 'sequence' ? s.asns.length : s.type === 'set' ? 1 : 0;
    this.pathLength = len;
    const first = asPath.find((s) => s.type === 'sequence' || s.type === 'set');
    this.firstAs = first?.type === 'sequence' ? first.asns[0] : undefined;
    Object.freeze(this);
  }

  static of(spec: BgpPathSpec): BgpPath {
    if (spec.origin !== undefined && !(spec.origin in ORIGIN_RANK)) throw new RouteError(`origin ${JSON.stringify(spec.origin)}: expected igp, egp or incomplete`);
    checkU32('local preference', spec.localPref);
    checkU32('MED', spec.med);
    checkU32('originator id', spec.originatorId);
    const asPath = canonicalPath(spec.asPath ?? []);
    const communities = [...new Set(spec.communities ?? [])].sort((a, b) => a - b);
    for (const c of communities) checkU32('community', c);
    const large = [...(spec.largeCommunities ?? [])].map((l) => {
      if (l.length !== 3) throw new RouteError(`large community ${JSON.stringify(l)}: expected three numbers`);
      for (const x of l) checkU32('large community part', x);
      return Object.freeze([l[0], l[1], l[2]] as [number, number, number]);
    });
    large.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
    const largeCommunities = large.filter((l, i) => i === 0 || l.join(':') !== large[i - 1]!.join(':'));
    const clusterList = [...(spec.clusterList ?? [])];
    for (const c of clusterList) checkU32('cluster id', c);
    const key = [
      spec.origin ?? '',
      asPath.map((s) => `${s.type[0]}${s.type.startsWith('confed') ? 'c' : ''}${s.asns.join(' ')}`).join('|'),
      spec.localPref ?? '',
      spec.med ?? '',
      communities.join(','),
      largeCommunities.map((l) => l.join(':')).join(','),
      spec.originatorId ?? '',
      clusterList.join(','),
    ].join(';');
    return paths.intern(
      key,
      () => new BgpPath({ ...spec, communities: Object.freeze(communities), largeCommunities: Object.freeze(largeCommunities), clusterList: Object.freeze(clusterList) }, asPath),
    );
  }

  /** The AS path as BIRD and ExaBGP print it: `65001 65002 {65003 65004}`. */
  asPathText(): string {
    return this.asPath
      .map((s) => {
        const t = s.asns.join(' ');
        return s.type === 'sequence' ? t : s.type === 'set' ? `{${t}}` : s.type === 'confed-sequence' ? `(${t})` : `[${t}]`;
      })
      .filter((t) => t !== '')
      .join(' ');
  }
}

function canonicalPath(p: readonly AsSegment[] | readonly number[]): readonly AsSegment[] {
  const segs: AsSegment[] = p.length > 0 && typeof p[0] === 'number' ? [{ type: 'sequence', asns: p as readonly number[] }] : [...(p as readonly AsSegment[])];
  const out: AsSegment[] = [];
  for (const s of segs) {
    if (s.type !== 'sequence' && s.type !== 'set' && s.type !== 'confed-sequence' && s.type !== 'confed-set') throw new RouteError(`AS path segment type ${JSON.stringify(s.type)}: unknown`);
    for (const a of s.asns) checkU32('ASN', a);
    if (s.asns.length === 0) continue;
    // A set's members are unordered: sorted, they intern as one.
    const asns = s.type === 'set' || s.type === 'confed-set' ? [...new Set(s.asns)].sort((a, b) => a - b) : [...s.asns];
    out.push(Object.freeze({ type: s.type, asns: Object.freeze(asns) }));
  }
  return Object.freeze(out);
}

export interface BgpNeighborSpec {
  address: Addr;
  /** The neighbour's AS. */
  as?: number;
  /** Our AS on the session: equal to `as` for iBGP. */
  localAs?: number;
  /** The neighbour's BGP identifier (from its OPEN) as a u32. */
  routerId?: number;
}

const neighbors = new Interner<BgpNeighbor>();
let nextNeighborId = 1;

export class BgpNeighbor {
  readonly id: number;
  readonly address: Addr;
  readonly as: number | undefined;
  readonly localAs: number | undefined;
  readonly routerId: number | undefined;

  private constructor(spec: BgpNeighborSpec) {
    this.id = nextNeighborId++;
    this.address = spec.address;
    this.as = spec.as;
    this.localAs = spec.localAs;
    this.routerId = spec.routerId;
    Object.freeze(this);
  }

  static of(spec: BgpNeighborSpec): BgpNeighbor {
    checkU32('neighbor AS', spec.as);
    checkU32('local AS', spec.localAs);
    checkU32('router id', spec.routerId);
    const key = `${spec.address.toString()};${spec.as ?? ''};${spec.localAs ?? ''};${spec.routerId ?? ''}`;
    return neighbors.intern(key, () => new BgpNeighbor(spec));
  }

  /** An external session: both ASes known and different. Unknown counts as internal. */
  get ebgp(): boolean {
    return this.as !== undefined && this.localAs !== undefined && this.as !== this.localAs;
  }
}

const bgpSets = new Interner<BgpAttrs>();
let nextBgpId = 1;

export class BgpAttrs {
  readonly id: number;

  private constructor(
    readonly path: BgpPath,
    readonly neighbor: BgpNeighbor,
  ) {
    this.id = nextBgpId++;
    Object.freeze(this);
  }

  static of(path: BgpPath, neighbor: BgpNeighbor): BgpAttrs {
    return bgpSets.intern(`${path.id},${neighbor.id}`, () => new BgpAttrs(path, neighbor));
  }

  /** The AS whose MEDs are comparable (RFC 4271 9.1.2.2 c): the path's first AS, or the neighbour's for an empty path (as BIRD 2). */
  get neighborAs(): number | undefined {
    return this.path.firstAs ?? this.neighbor.as;
  }

  toJSON(): BgpAttrsJson {
    const p = this.path;
    const n = this.neighbor;
    const out: BgpAttrsJson = { neighbor: n.address.toString(), as_path: p.asPathText(), path_length: p.pathLength };
    if (n.as !== undefined) out.neighbor_as = n.as;
    if (n.localAs !== undefined) out.local_as = n.localAs;
    if (n.routerId !== undefined) out.router_id = formatId(n.routerId);
    if (p.origin !== undefined) out.origin = p.origin;
    if (p.localPref !== undefined) out.local_pref = p.localPref;
    if (p.med !== undefined) out.med = p.med;
    if (p.communities.length) out.communities = p.communities.map(formatCommunity);
    if (p.largeCommunities.length) out.large_communities = p.largeCommunities.map((l) => l.join(':'));
    if (p.originatorId !== undefined) out.originator_id = formatId(p.originatorId);
    if (p.clusterList.length) out.cluster_list = p.clusterList.map(formatId);
    return out;
  }
}

/** The `bgp` object of `show routes --json` and of krtsync's stream format (docs/stream.md). */
export interface BgpAttrsJson {
  neighbor: string;
  neighbor_as?: number;
  local_as?: number;
  router_id?: string;
  origin?: BgpOrigin;
  as_path: string;
  path_length: number;
  local_pref?: number;
  med?: number;
  communities?: string[];
  large_communities?: string[];
  originator_id?: string;
  cluster_list?: string[];
}

/** A u32 id in dotted-quad form, as BGP speakers print router ids. */
export function formatId(id: number): string {
  return [id >>> 24, (id >>> 16) & 255, (id >>> 8) & 255, id & 255].join('.');
}

export function formatCommunity(c: number): string {
  return `${c >>> 16}:${c & 0xffff}`;
}

/** `65001:100` to its packed u32; undefined when not two 16-bit numbers. */
export function parseCommunity(s: string): number | undefined {
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = Number(m[2]);
  return a <= 0xffff && b <= 0xffff ? ((a << 16) | b) >>> 0 : undefined;
}

/** `65001:1:2` to three u32; undefined when not three 32-bit numbers. */
export function parseLargeCommunity(s: string): [number, number, number] | undefined {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(s);
  if (!m) return undefined;
  const l = [Number(m[1]), Number(m[2]), Number(m[3])] as [number, number, number];
  return l.every((x) => x <= 0xffffffff) ? l : undefined;
}

/** Neighbours in numeric address order (IPv4 before IPv6). */
export function compareNeighborAddress(a: BgpNeighbor, b: BgpNeighbor): number {
  return compareAddr(a.address, b.address);
}
