/**
 * Next hops and interned next-hop sets.
 *
 * A NextHop is one way out: a gateway, a device (ifindex and/or name), or
 * both, with the onlink flag and a multipath weight (1..256, the kernel's
 * rtnh_hops + 1). The gateway may be of the other family than the route (IPv4
 * via an IPv6 gateway, RTA_VIA on the wire); `needsVia()` tells the encoder.
 *
 * A NextHopSet is the interned, canonically ordered list of a unicast route's
 * next hops (gateways as numbers: 192.0.2.9 before 192.0.2.10): the same hops
 * in any order give the same object, so a million
 * routes through one gateway share one set and comparing sets is `===`.
 */
import { compareAddr, type Addr, type Family } from '../lib/addr';
import { Interner } from './intern';
import { RouteError } from './route-error';

export interface NextHopSpec {
  gateway?: Addr;
  ifindex?: number;
  ifname?: string;
  onlink?: boolean;
  /** Multipath weight, 1..256 (default 1). */
  weight?: number;
}

export class NextHop {
  readonly gateway: Addr | undefined;
  readonly ifindex: number | undefined;
  readonly ifname: string | undefined;
  readonly onlink: boolean;
  readonly weight: number;
  /** Canonical text of this hop; keys the interner. */
  readonly key: string;

  /** Validates a spec; use NextHopSet.of to get a shared set. */
  constructor(spec: NextHopSpec) {
    const { gateway, ifindex, ifname, onlink = false, weight = 1 } = spec;
    if (gateway === undefined && ifindex === undefined && ifname === undefined) {
      throw new RouteError('a next hop needs a gateway or a device');
    }
    if (ifindex !== undefined && !(Number.isInteger(ifindex) && ifindex > 0 && ifindex <= 0x7fffffff)) {
      throw new RouteError(`next hop ifindex ${ifindex}: must be an integer 1..2^31-1`);
    }
    if (ifname !== undefined && !/^[^\s/]{1,15}$/.test(ifname)) {
      throw new RouteError(`next hop device ${JSON.stringify(ifname)}: not a valid interface name`);
    }
    if (!Number.isInteger(weight) || weight < 1 || weight > 256) {
      throw new RouteError(`next hop weight ${weight}: must be an integer 1..256`);
    }
    const hasDevice = ifindex !== undefined || ifname !== undefined;
    if (onlink && !hasDevice) throw new RouteError('an onlink next hop needs a device');
    if (gateway?.isLinkLocal6() && !hasDevice) {
      throw new RouteError(`next hop ${gateway}: a link-local gateway needs a device`);
    }
    this.gateway = gateway;
    this.ifindex = ifindex;
    this.ifname = ifname;
    this.onlink = onlink;
    this.weight = weight;
    this.key = `${gateway?.toString() ?? ''},${ifindex ?? ''},${ifname ?? ''},${onlink ? 1 : 0},${weight}`;
  }

  /** True when the gateway's family differs from the route's (IPv4 via IPv6): encoded as RTA_VIA. */
  needsVia(routeFamily: Family): boolean {
    return this.gateway !== undefined && this.gateway.family !== routeFamily;
  }

  toString(): string {
    const parts: string[] = [];
    if (this.gateway) parts.push(`via ${this.gateway}`);
    if (this.ifname !== undefined) parts.push(`dev ${this.ifname}`);
    else if (this.ifindex !== undefined) parts.push(`ifindex ${this.ifindex}`);
    if (this.onlink) parts.push('onlink');
    if (this.weight !== 1) parts.push(`weight ${this.weight}`);
    return parts.join(' ');
  }
}

/** Canonical order of a set's hops: gateway as a number (IPv4 first, none last), then device, onlink, weight. */
function compareHops(a: NextHop, b: NextHop): number {
  if (a.gateway !== b.gateway) {
    if (!a.gateway || !b.gateway) return a.gateway ? -1 : 1;
    const c = compareAddr(a.gateway, b.gateway);
    if (c !== 0) return c;
  }
  if (a.ifindex !== b.ifindex) return (a.ifindex ?? 0) - (b.ifindex ?? 0);
  if (a.ifname !== b.ifname) return (a.ifname ?? '') < (b.ifname ?? '') ? -1 : 1;
  if (a.onlink !== b.onlink) return a.onlink ? 1 : -1;
  return a.weight - b.weight;
}

const nextHopSets = new Interner<NextHopSet>();
let nextSetId = 1;

export class NextHopSet {
  /** Unique while the set is alive; stands for the set inside attribute keys. */
  readonly id: number;

  private constructor(
    /** Canonical order (compareHops); at least one hop. */
    readonly hops: readonly NextHop[],
  ) {
    this.id = nextSetId++;
    Object.freeze(this);
  }

  /** The shared set of these hops (order does not matter). Duplicate hops are an error. */
  static of(specs: readonly (NextHopSpec | NextHop)[]): NextHopSet {
    if (specs.length === 0) throw new RouteError('a unicast route needs at least one next hop');
    const hops = specs.map((s) => (s instanceof NextHop ? s : new NextHop(s)));
    hops.sort(compareHops);
    for (let i = 1; i < hops.length; i++) {
      if (hops[i]!.key === hops[i - 1]!.key) throw new RouteError(`duplicate next hop ${hops[i]}`);
    }
    const key = hops.map((h) => h.key).join('|');
    return nextHopSets.intern(key, () => new NextHopSet(Object.freeze(hops)));
  }

  get isMultipath(): boolean {
    return this.hops.length > 1;
  }

  toString(): string {
    return this.hops.map((h) => h.toString()).join(', ');
  }
}

/** Number of interned next-hop sets (for tests and `show memory`). */
export function internedNextHopSets(): number {
  return nextHopSets.size;
}
