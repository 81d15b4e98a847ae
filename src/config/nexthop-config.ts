/**
 * `nexthop_tracking` (docs/nexthop-tracking.md): whether routes whose next
 * hop cannot be used (device down or without carrier, gateway outside every
 * connected prefix) are kept from being best, and how a flapping next hop is
 * damped:
 *
 *   (absent), nexthop_tracking: true       # on, default damping
 *   nexthop_tracking: false                # off: routes are installed whatever their next hop's state
 *   nexthop_tracking:
 *     damping: { half_life: 15s, max_hold: 60s, penalty: 1000, suppress: 2500, reuse: 1000 }
 *   nexthop_tracking: { damping: false }   # on, every recovery counts at once
 *   nexthop_tracking: { neighbours: true } # also: a gateway whose ARP/ND entry failed is unusable
 *
 * On by default (docs/nexthop-tracking.md, "On by default"): a daemon that
 * keeps routes through a dead link is what operators complain about.
 */
import { isMap, isScalar, type Node as YamlNode } from 'yaml';
import type { YamlReader } from './yaml-reader';

export interface NexthopDampingConfig {
  penalty: number;
  suppress: number;
  reuse: number;
  halfLifeMs: number;
  maxHoldMs: number;
}

export interface NexthopTrackingConfig {
  /** undefined: no damping. */
  damping: NexthopDampingConfig | undefined;
  /** Follow neighbour entries: a gateway whose entry failed (NUD_FAILED) is unusable. */
  neighbours: boolean;
}

/** The same as the table's DEFAULT_DAMPING (config may not import the table; a unit test keeps them equal). */
export const DEFAULT_NEXTHOP_DAMPING: NexthopDampingConfig = { penalty: 1000, suppress: 2500, reuse: 1000, halfLifeMs: 15_000, maxHoldMs: 60_000 };

export function readNexthopTracking(r: YamlReader, node: YamlNode | undefined): NexthopTrackingConfig | undefined {
  if (node === undefined) return { damping: DEFAULT_NEXTHOP_DAMPING, neighbours: false };
  const what = 'nexthop_tracking';
  if (!isMap(node)) {
    if (!isScalar(node) || typeof node.value !== 'boolean') return r.error(node, `${what}: expected true, false or a mapping with "damping"`);
    return node.value ? { damping: DEFAULT_NEXTHOP_DAMPING, neighbours: false } : undefined;
  }
  const m = r.map(node, what, ['damping', 'neighbours']);
  if (!m) return undefined;
  const neighbours = r.bool(m.get('neighbours'), `${what}.neighbours`) ?? false;
  const dn = m.get('damping');
  return { damping: readDamping(r, dn, `${what}.damping`, 'hold a next hop down'), neighbours };
}

/**
 * A `damping:` value at `what` (true, false or a mapping of penalty, suppress, reuse, half_life
 * and max_hold; absent: the defaults): the settings, or undefined when off. `held` says what a
 * hold does, for the error of a max_hold too short to ever hold anything ("hold a next hop down").
 * Shared by next-hop tracking and the stream protocol's sources (RFC 2439's parameters both).
 */
export function readDamping(r: YamlReader, dn: YamlNode | undefined, what: string, held: string): NexthopDampingConfig | undefined {
  if (dn === undefined) return DEFAULT_NEXTHOP_DAMPING;
  if (!isMap(dn)) {
    if (!isScalar(dn) || typeof dn.value !== 'boolean') return r.error(dn, `${what}: expected true, false or a mapping`);
    return dn.value ? DEFAULT_NEXTHOP_DAMPING : undefined;
  }
  const d = r.map(dn, what, ['penalty', 'suppress', 'reuse', 'half_life', 'max_hold']);
  if (!d) return undefined;
  const D = DEFAULT_NEXTHOP_DAMPING;
  const damping: NexthopDampingConfig = {
    penalty: r.int(d.get('penalty'), `${what}.penalty`, 0, 1_000_000) ?? D.penalty,
    suppress: r.int(d.get('suppress'), `${what}.suppress`, 1, 1_000_000) ?? D.suppress,
    reuse: r.int(d.get('reuse'), `${what}.reuse`, 0, 1_000_000) ?? D.reuse,
    halfLifeMs: r.duration(d.get('half_life'), `${what}.half_life`, 100, 3600_000) ?? D.halfLifeMs,
    maxHoldMs: r.duration(d.get('max_hold'), `${what}.max_hold`, 0, 3600_000) ?? D.maxHoldMs,
  };
  if (damping.reuse >= damping.suppress) {
    r.error(d.get('reuse') ?? d.get('suppress') ?? dn, `${what}.reuse: must be below suppress (${damping.suppress}), got ${damping.reuse}`);
  } else if (damping.reuse > 0 && damping.maxHoldMs < damping.halfLifeMs * Math.log2(damping.suppress / damping.reuse)) {
    // The penalty is capped where it decays to reuse in max_hold: below suppress, nothing would ever be held.
    const need = Math.ceil(damping.halfLifeMs * Math.log2(damping.suppress / damping.reuse));
    r.error(d.get('max_hold') ?? dn, `${what}.max_hold: ${damping.maxHoldMs} ms is too short to ever ${held} (with this half_life, suppress and reuse it needs at least ${need} ms)`);
  }
  return damping;
}
