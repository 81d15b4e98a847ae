/**
 * The settings of a stream protocol (`type: stream`), read from the YAML with
 * positions (docs/config.md, docs/bgp.md):
 *
 *   - name: bgp
 *     type: stream
 *     preference: 100            # of every client's routes
 *     grace: 30s                 # a disconnected client's routes stay this long
 *     startup_wait: 10s          # wait for the neighbours' end-of-RIB before installing their routes
 *     always_compare_med: false
 *     neighbors:                 # per neighbour (an address, or a prefix for many)
 *       - { address: 192.0.2.10, preference: 110, max_routes: 500000 }
 *     import: [ ...rules ]       # an import filter (checked by the stream protocol's filter parser)
 *     limits: { routes: 2000000, routes_per_client: 1000000, routes_per_neighbor: 1000000,
 *               neighbors_per_client: 256, action: refuse, log: warning }
 *     damping: { half_life: 15s, max_hold: 60s, penalty: 1000, suppress: 2500, reuse: 1000 }   # or false
 *
 * The import filter is kept as written; config.ts records the positions of
 * everything inside it (`bgp.import[2].match.community`), so the filter
 * parser's errors name file, line and column.
 */
import { parseAddr, parsePrefix, Prefix } from '../lib/addr';
import { readDamping, type NexthopDampingConfig } from './nexthop-config';
import type { YamlReader } from './yaml-reader';
import type { Node as YamlNode } from 'yaml';

export type LimitAction = 'refuse' | 'disconnect';
export type LimitLog = 'warning' | 'info' | 'none';

export interface StreamNeighborConfig {
  /** The neighbour's address as a host prefix, or a prefix covering several. */
  match: Prefix;
  preference: number | undefined;
  maxRoutes: number | undefined;
}

export interface StreamLimits {
  /** Routes of the whole protocol (every client, staged ones included). */
  routes: number;
  routesPerClient: number | undefined;
  routesPerNeighbor: number | undefined;
  neighborsPerClient: number;
  action: LimitAction;
  log: LimitLog;
}

/** A value written in the config, checked later by another layer (its inner positions: KrtConfig.positions). */
export interface PositionedValue {
  value: unknown;
  line: number;
  column: number;
}

export interface StreamSettings {
  preference: number;
  /** How long a disconnected client's routes stay, and how long a reconnected one has to send end-of-RIB. */
  graceMs: number;
  /** Before the first install of a neighbour's routes, wait this long at most for every neighbour's end-of-RIB; 0: off. */
  startupWaitMs: number;
  alwaysCompareMed: boolean;
  neighbors: StreamNeighborConfig[];
  importFilter: PositionedValue | undefined;
  limits: StreamLimits;
  /** Flap damping of each source (a neighbour, or a client's own routes): a flapping one's return is suppressed; undefined: off. */
  damping: NexthopDampingConfig | undefined;
}

export const STREAM_KEYS = ['preference', 'grace', 'startup_wait', 'always_compare_med', 'neighbors', 'import', 'limits', 'damping'];
const NEIGHBOR_KEYS = ['address', 'preference', 'max_routes'];
const LIMIT_KEYS = ['routes', 'routes_per_client', 'routes_per_neighbor', 'neighbors_per_client', 'action', 'log'];
const MAX_ROUTES = 2 ** 31;

export const DEFAULT_LIMITS: StreamLimits = Object.freeze({ routes: 10_000_000, routesPerClient: undefined, routesPerNeighbor: undefined, neighborsPerClient: 256, action: 'refuse', log: 'warning' });

export function readStreamSettings(r: YamlReader, peek: Map<string, YamlNode>, what: string): StreamSettings {
  const neighbors: StreamNeighborConfig[] = [];
  for (const n of r.seq(peek.get('neighbors'), `${what}: neighbors`) ?? []) {
    const m = r.map(n, `${what}: neighbor`, NEIGHBOR_KEYS);
    if (!m) continue;
    const addr = r.string(m.get('address'), `${what}: neighbor address`);
    if (!m.has('address')) r.error(n, `${what}: neighbor: "address" is missing`);
    let match: Prefix | undefined;
    if (addr !== undefined) {
      try {
        const host = addr.includes('/') ? undefined : parseAddr(addr);
        match = host ? Prefix.of(host, host.family === 4 ? 32 : 128) : parsePrefix(addr);
      } catch (e) {
        r.error(m.get('address'), `${what}: neighbor address: ${(e as Error).message}`);
      }
    }
    const preference = r.int(m.get('preference'), `${what}: neighbor ${addr ?? ''} preference`, 0, 65535);
    const maxRoutes = r.int(m.get('max_routes'), `${what}: neighbor ${addr ?? ''} max_routes`, 0, MAX_ROUTES);
    if (match) neighbors.push({ match, preference, maxRoutes });
  }
  const lm = peek.has('limits') ? r.map(peek.get('limits'), `${what}: limits`, LIMIT_KEYS) : undefined;
  const limit = (key: string): number | undefined => r.int(lm?.get(key), `${what}: limits.${key}`, 0, MAX_ROUTES);
  const limits: StreamLimits = {
    routes: limit('routes') ?? DEFAULT_LIMITS.routes,
    routesPerClient: limit('routes_per_client'),
    routesPerNeighbor: limit('routes_per_neighbor'),
    neighborsPerClient: r.int(lm?.get('neighbors_per_client'), `${what}: limits.neighbors_per_client`, 1, 65535) ?? DEFAULT_LIMITS.neighborsPerClient,
    action: r.oneOf(lm?.get('action'), `${what}: limits.action`, ['refuse', 'disconnect'] as const) ?? DEFAULT_LIMITS.action,
    log: r.oneOf(lm?.get('log'), `${what}: limits.log`, ['warning', 'info', 'none'] as const) ?? DEFAULT_LIMITS.log,
  };
  const importNode = peek.get('import');
  return {
    preference: r.int(peek.get('preference'), `${what}: preference`, 0, 65535) ?? 100,
    graceMs: r.duration(peek.get('grace'), `${what}: grace`) ?? 30000,
    startupWaitMs: r.duration(peek.get('startup_wait'), `${what}: startup_wait`, 0, 3600_000) ?? 10_000,
    alwaysCompareMed: r.bool(peek.get('always_compare_med'), `${what}: always_compare_med`) ?? false,
    neighbors,
    importFilter: importNode === undefined ? undefined : { value: importNode.toJSON() as unknown, ...r.position(importNode) },
    limits,
    damping: readDamping(r, peek.get('damping'), `${what}: damping`, 'suppress a source'),
  };
}
