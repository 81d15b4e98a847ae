/**
 * Filters: ordered rules that decide, per route, whether it goes out through
 * a channel and with which kernel attributes (export filters), or whether a
 * stream protocol takes it into its tables (import filters, which set nothing).
 *
 * A rule has a match (every given condition must hold), an optional `set` of
 * kernel attributes, and an action: `accept` (stop here, export), `reject`
 * (stop here, do not export) or `continue` (keep the `set`, go on with the
 * next rule). When no rule stops, the filter's `default` decides (accept
 * unless told otherwise). Later `set`s override earlier ones.
 *
 * Match conditions:
 *   net:     prefix ranges, `10.0.0.0/8{16,24}`, `10.0.0.0/8+`, `2001:db8::/32`
 *   source:  source (protocol) names
 *   type:    unicast | blackhole | unreachable | prohibit
 *   family:  4 | 6
 *   metric:  a number or {min, max}
 *   gateway: prefix ranges a next hop's gateway must fall in (any hop)
 *   dev:     interface names a next hop must use (any hop)
 *   community, large_community, as_path, as_path_length, neighbor,
 *   neighbor_as: BGP attributes (filter-bgp.ts)
 *
 * parseExportFilter() and parseImportFilter() build the typed form from plain
 * JS (what YAML gives), and throw FilterError naming the path of the bad
 * value (`rules[2].set.mtu: ...`). Evaluation never throws.
 */
import { type Prefix, parseAddr } from '../lib/addr';
import { KrtError } from '../lib/errors';
import { PrefixSet } from '../lib/prefix-set';
import { RTAX, type LockableName, type MetricName, type RouteType } from '../route';
import type { Route, RouteAttrs, RouteSource } from '../route';
import { asPathTest, bgpMatches, communityPattern, hostPrefix, largeCommunityTest, standardCommunityTest, type BgpMatch } from './filter-bgp';
import type { KernelAttrs } from './kernel-attrs';
import { mergeKernelAttrs } from './kernel-attrs';

export class FilterError extends KrtError {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super('KRT_ERR_FILTER', `${path}: ${message}`);
  }
}

export interface FilterMatch {
  net?: PrefixSet;
  source?: ReadonlySet<string>;
  type?: ReadonlySet<RouteType>;
  family?: 4 | 6;
  metric?: { min: number; max: number };
  gateway?: PrefixSet;
  dev?: ReadonlySet<string>;
  bgp?: BgpMatch;
}

export type FilterAction = 'accept' | 'reject' | 'continue';

export interface FilterRule {
  match: FilterMatch;
  set?: KernelAttrs;
  action: FilterAction;
}

export interface ExportFilter {
  rules: readonly FilterRule[];
  default: 'accept' | 'reject';
}

export type FilterResult = { accept: true; set: KernelAttrs | undefined } | { accept: false };

export const ACCEPT_ALL: ExportFilter = Object.freeze({ rules: [], default: 'accept' });

const REJECTED: FilterResult = Object.freeze({ accept: false });
const ACCEPTED_PLAIN: FilterResult = Object.freeze({ accept: true, set: undefined });

// Reads the net only through `family` and `net`: filterReadsNet() relies on it.
function matches(m: FilterMatch, src: RouteSource, attrs: RouteAttrs, net: Prefix): boolean {
  if (m.family !== undefined && net.family !== m.family) return false;
  if (m.source && !m.source.has(src.name)) return false;
  if (m.type && !m.type.has(attrs.type)) return false;
  if (m.metric) {
    const v = attrs.metric ?? 0;
    if (v < m.metric.min || v > m.metric.max) return false;
  }
  if (m.net && !m.net.matches(net)) return false;
  if (m.gateway || m.dev) {
    const hops = attrs.nexthops?.hops ?? [];
    if (m.gateway && !hops.some((h) => h.gateway !== undefined && m.gateway!.matches(hostPrefix(h.gateway)))) return false;
    if (m.dev && !hops.some((h) => h.ifname !== undefined && m.dev!.has(h.ifname))) return false;
  }
  if (m.bgp && !bgpMatches(m.bgp, attrs.bgp)) return false;
  return true;
}

/**
 * Whether the filter's verdict on a route can depend on the net beyond its family: matches() reads
 * the net only for `net` and `family`. A kernel protocol keeps its export decisions per chain when it
 * does not (proto/kernel/export-memo.ts, one memo per family): keep this in step with matches().
 */
export function filterReadsNet(f: ExportFilter): boolean {
  return f.rules.some((r) => r.match.net !== undefined);
}

/** Runs the filter on a route of `net`. */
export function runExportFilter(f: ExportFilter, r: Route, net: Prefix): FilterResult {
  let set: KernelAttrs | undefined;
  for (const rule of f.rules) {
    if (!matches(rule.match, r.src, r.attrs, net)) continue;
    if (rule.set) set = set ? mergeKernelAttrs(set, rule.set) : rule.set;
    if (rule.action === 'accept') return set ? { accept: true, set } : ACCEPTED_PLAIN;
    if (rule.action === 'reject') return REJECTED;
  }
  if (f.default === 'reject') return REJECTED;
  return set ? { accept: true, set } : ACCEPTED_PLAIN;
}

/** Whether an import filter takes a route of `net` from `src` (before it becomes a Route in a table). */
export function runImportFilter(f: ExportFilter, src: RouteSource, attrs: RouteAttrs, net: Prefix): boolean {
  for (const rule of f.rules) {
    if (!matches(rule.match, src, attrs, net)) continue;
    if (rule.action === 'accept') return true;
    if (rule.action === 'reject') return false;
  }
  return f.default === 'accept';
}

// ------------------------------------------------------------ parsing

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown, path: string): unknown[] {
  if (Array.isArray(v)) {
    if (v.length === 0) throw new FilterError(path, 'an empty list matches nothing; leave the condition out instead');
    return v;
  }
  return [v];
}

function u32(v: unknown, path: string, max = 0xffffffff): number {
  if (typeof v === 'string' && /^\d+$/.test(v)) v = Number(v);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new FilterError(path, `expected an integer 0..${max}, got ${JSON.stringify(v)}`);
  return v;
}

function strings(v: unknown, path: string): string[] {
  return list(v, path).map((x, i) => {
    if (typeof x !== 'string' || x === '') throw new FilterError(`${path}[${i}]`, `expected a name, got ${JSON.stringify(x)}`);
    return x;
  });
}

function prefixSet(v: unknown, path: string): PrefixSet {
  const items = list(v, path);
  const ranges = items.map((x, i) => {
    if (typeof x !== 'string') throw new FilterError(`${path}[${i}]`, `expected a prefix range like 10.0.0.0/8{16,24}, got ${JSON.stringify(x)}`);
    try {
      return new PrefixSet([x]).ranges[0]!;
    } catch (e) {
      throw new FilterError(Array.isArray(v) ? `${path}[${i}]` : path, (e as Error).message);
    }
  });
  return new PrefixSet(ranges);
}

function checkKeys(o: Plain, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new FilterError(`${path}.${k}`, `unknown key; expected one of ${allowed.join(', ')}`);
  }
}

const TYPES: readonly RouteType[] = ['unicast', 'blackhole', 'unreachable', 'prohibit'];
const MATCH_KEYS = ['net', 'source', 'type', 'family', 'metric', 'gateway', 'dev', 'community', 'large_community', 'as_path', 'as_path_length', 'neighbor', 'neighbor_as'] as const;
const SCOPES: Record<string, number> = { global: 0, universe: 0, site: 200, link: 253, host: 254 };
const METRIC_NAMES = (Object.keys(RTAX) as LockableName[]).filter((n): n is MetricName => n !== 'congctl');
const SET_KEYS = ['metric', 'prefsrc', 'realm', 'scope', 'pref', 'congctl', 'lock', ...METRIC_NAMES];

function parseMatch(v: unknown, path: string): FilterMatch {
  if (v === undefined) return {};
  if (!isPlain(v)) throw new FilterError(path, 'expected a mapping of conditions');
  checkKeys(v, MATCH_KEYS, path);
  const m: FilterMatch = {};
  if (v.net !== undefined) m.net = prefixSet(v.net, `${path}.net`);
  if (v.gateway !== undefined) m.gateway = prefixSet(v.gateway, `${path}.gateway`);
  if (v.source !== undefined) m.source = new Set(strings(v.source, `${path}.source`));
  if (v.dev !== undefined) m.dev = new Set(strings(v.dev, `${path}.dev`));
  if (v.type !== undefined) {
    const types = strings(v.type, `${path}.type`);
    types.forEach((t, i) => {
      if (!TYPES.includes(t as RouteType)) throw new FilterError(`${path}.type${Array.isArray(v.type) ? `[${i}]` : ''}`, `unknown route type ${JSON.stringify(t)}; expected ${TYPES.join(', ')}`);
    });
    m.type = new Set(types as RouteType[]);
  }
  if (v.family !== undefined) {
    const f = v.family === 'ipv4' ? 4 : v.family === 'ipv6' ? 6 : v.family;
    if (f !== 4 && f !== 6) throw new FilterError(`${path}.family`, `expected 4 or 6, got ${JSON.stringify(v.family)}`);
    m.family = f;
  }
  if (v.metric !== undefined) m.metric = range(v.metric, `${path}.metric`);
  const bgp = parseBgpMatch(v, path);
  if (bgp) m.bgp = bgp;
  return m;
}

/** A number, or {min, max} (either may be left out). */
function range(v: unknown, path: string): { min: number; max: number } {
  if (!isPlain(v)) {
    const x = u32(v, path);
    return { min: x, max: x };
  }
  checkKeys(v, ['min', 'max'], path);
  const min = v.min === undefined ? 0 : u32(v.min, `${path}.min`);
  const max = v.max === undefined ? 0xffffffff : u32(v.max, `${path}.max`);
  if (min > max) throw new FilterError(path, `min ${min} is above max ${max}`);
  return { min, max };
}

function parseBgpMatch(v: Plain, path: string): BgpMatch | undefined {
  const m: BgpMatch = {};
  const patterns = (key: string, parts: 2 | 3, example: string): ((x: readonly number[]) => boolean)[] =>
    strings(v[key], `${path}.${key}`).map((s, i) => {
      const f = communityPattern(s, parts);
      if (!f) throw new FilterError(Array.isArray(v[key]) ? `${path}.${key}[${i}]` : `${path}.${key}`, `expected a community like ${example} (a part may be *), got ${JSON.stringify(s)}`);
      return f;
    });
  if (v.community !== undefined) m.community = standardCommunityTest(patterns('community', 2, '65001:100'));
  if (v.large_community !== undefined) m.largeCommunity = largeCommunityTest(patterns('large_community', 3, '65001:0:100'));
  if (v.as_path !== undefined) {
    const res = strings(v.as_path, `${path}.as_path`);
    try {
      m.asPath = asPathTest(res);
    } catch (e) {
      throw new FilterError(`${path}.as_path`, `not a regular expression: ${(e as Error).message}`);
    }
  }
  if (v.as_path_length !== undefined) m.asPathLength = range(v.as_path_length, `${path}.as_path_length`);
  if (v.neighbor !== undefined) m.neighbor = prefixSet(v.neighbor, `${path}.neighbor`);
  if (v.neighbor_as !== undefined) m.neighborAs = new Set(list(v.neighbor_as, `${path}.neighbor_as`).map((x, i) => u32(x, `${path}.neighbor_as[${i}]`)));
  return Object.keys(m).length ? m : undefined;
}

function parseSet(v: unknown, path: string): KernelAttrs {
  if (!isPlain(v)) throw new FilterError(path, 'expected a mapping of kernel attributes');
  checkKeys(v, SET_KEYS, path);
  const s: KernelAttrs = {};
  if (v.metric !== undefined) s.metric = u32(v.metric, `${path}.metric`);
  if (v.realm !== undefined) s.realm = u32(v.realm, `${path}.realm`);
  if (v.prefsrc !== undefined) {
    if (typeof v.prefsrc !== 'string') throw new FilterError(`${path}.prefsrc`, 'expected an address');
    try {
      s.prefsrc = parseAddr(v.prefsrc);
    } catch (e) {
      throw new FilterError(`${path}.prefsrc`, (e as Error).message);
    }
  }
  if (v.scope !== undefined) {
    s.scope = typeof v.scope === 'string' && v.scope in SCOPES ? SCOPES[v.scope]! : u32(v.scope, `${path}.scope`, 255);
  }
  if (v.pref !== undefined) {
    if (v.pref !== 'low' && v.pref !== 'medium' && v.pref !== 'high') throw new FilterError(`${path}.pref`, 'expected low, medium or high');
    s.pref = v.pref;
  }
  if (v.congctl !== undefined) {
    if (typeof v.congctl !== 'string' || !/^[\w-]{1,15}$/.test(v.congctl)) throw new FilterError(`${path}.congctl`, 'expected a congestion control name');
    s.congctl = v.congctl;
  }
  const metrics: Partial<Record<MetricName, number>> = {};
  for (const n of METRIC_NAMES) if (v[n] !== undefined) metrics[n] = u32(v[n], `${path}.${n}`);
  if (Object.keys(metrics).length) s.metrics = metrics;
  if (v.lock !== undefined) {
    const names = strings(v.lock, `${path}.lock`);
    names.forEach((n, i) => {
      if (!(n in RTAX)) throw new FilterError(`${path}.lock[${i}]`, `${JSON.stringify(n)} is not a route metric`);
    });
    s.locked = names as LockableName[];
  }
  return s;
}

function parseRule(v: unknown, path: string, sets: boolean): FilterRule {
  if (v === 'accept' || v === 'reject') return { match: {}, action: v };
  if (!isPlain(v)) throw new FilterError(path, 'expected a rule: {match, set, action} or "accept"/"reject"');
  checkKeys(v, ['match', 'set', 'action'], path);
  const match = parseMatch(v.match, `${path}.match`);
  // A rule that only sets attributes goes on to the next rule; any other rule must say what it decides.
  const action = v.action ?? (v.set !== undefined ? 'continue' : undefined);
  if (action !== 'accept' && action !== 'reject' && action !== 'continue') {
    throw new FilterError(`${path}.action`, `expected accept, reject or continue, got ${JSON.stringify(v.action)}`);
  }
  const rule: FilterRule = { match, action };
  if (v.set !== undefined) {
    if (!sets) throw new FilterError(`${path}.set`, 'an import rule sets nothing: it accepts or rejects');
    if (action === 'reject') throw new FilterError(`${path}.set`, 'a rejecting rule has nothing to set');
    rule.set = parseSet(v.set, `${path}.set`);
  }
  return rule;
}

/**
 * Builds a filter from plain values: "accept", "reject", a list of rules, or
 * {rules: [...], default: accept|reject}. `path` prefixes error paths.
 */
export function parseExportFilter(v: unknown, path = 'filter'): ExportFilter {
  return parseFilter(v, path, true);
}

/** An import filter: the same rules, without `set` (it decides only whether a route comes in). */
export function parseImportFilter(v: unknown, path = 'import'): ExportFilter {
  return parseFilter(v, path, false);
}

function parseFilter(v: unknown, path: string, sets: boolean): ExportFilter {
  if (v === undefined || v === 'accept') return ACCEPT_ALL;
  if (v === 'reject') return { rules: [], default: 'reject' };
  if (Array.isArray(v)) return { rules: v.map((r, i) => parseRule(r, `${path}[${i}]`, sets)), default: 'accept' };
  if (!isPlain(v)) throw new FilterError(path, 'expected "accept", "reject", a list of rules or {rules, default}');
  checkKeys(v, ['rules', 'default'], path);
  const def = v.default ?? 'accept';
  if (def !== 'accept' && def !== 'reject') throw new FilterError(`${path}.default`, `expected accept or reject, got ${JSON.stringify(def)}`);
  const rules = v.rules === undefined ? [] : Array.isArray(v.rules) ? v.rules : undefined;
  if (!rules) throw new FilterError(`${path}.rules`, 'expected a list of rules');
  return { rules: rules.map((r, i) => parseRule(r, `${path}.rules[${i}]`, sets)), default: def };
}

/**
 * Every problem of a filter as written, one per rule at most (parseExportFilter
 * stops at the first): what `krtsync check` lists.
 */
export function exportFilterErrors(v: unknown, path = 'filter'): FilterError[] {
  return filterErrors(v, path, true);
}

/** Every problem of an import filter as written, one per rule at most. */
export function importFilterErrors(v: unknown, path = 'import'): FilterError[] {
  return filterErrors(v, path, false);
}

function filterErrors(v: unknown, path: string, sets: boolean): FilterError[] {
  const errors: FilterError[] = [];
  const attempt = (parse: () => unknown): void => {
    try {
      parse();
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      errors.push(e);
    }
  };
  const listed = Array.isArray(v) ? { rules: v as unknown[], at: path } : isPlain(v) && Array.isArray(v.rules) ? { rules: v.rules as unknown[], at: `${path}.rules` } : undefined;
  if (!listed) attempt(() => parseFilter(v, path, sets));
  else {
    if (!Array.isArray(v)) attempt(() => parseFilter({ ...(v as Record<string, unknown>), rules: [] }, path, sets));
    listed.rules.forEach((r, i) => attempt(() => parseRule(r, `${listed.at}[${i}]`, sets)));
  }
  return errors;
}
