/**
 * The daemon's configuration: one YAML file, converted once, at the edge,
 * into typed values (prefixes and attribute sets, not strings).
 *
 * Reading never touches the kernel or the running daemon: readConfig reads
 * the whole file and returns what it could read beside every problem it found,
 * each with file, line and column, and the positions of the values that other
 * layers check (kernel table names, protocol numbers, export filters), so that
 * one run reports every problem (src/daemon/validate.ts, which completes the
 * validation). Only a fully valid file is ever applied, so a bad edit followed
 * by a reload changes nothing.
 *
 *   log: { level: info }
 *   control: { socket: /run/krtsync/krtsync.sock, group: krtsync }
 *   journal_limit: auto        # optional: how far a reader may fall behind a table (see docs/config.md)
 *   metrics: { listen: "127.0.0.1:9725" }   # optional: Prometheus metrics at /metrics (docs/metrics.md)
 *   nexthop_tracking: true     # optional: routes whose next hop cannot be used are not best (docs/nexthop-tracking.md)
 *   tables: [ { name: master4, family: ipv4 }, { name: master6, family: ipv6 } ]   # optional
 *   protocols:
 *     - { name: static1, type: static, routes: [ "10.10.0.0/16 via 192.0.2.2" ], routes_file: /etc/krtsync/routes.txt }
 *     - { name: kernel1, type: kernel, protocol: 201, kernel_table: main, persist: false, scan_interval: 60s }
 *
 * Without `tables`, the tables master4 (IPv4) and master6 (IPv6) exist, and a
 * protocol attaches to the table(s) of its family: static routes go to the
 * table of their own family, a kernel protocol serves both unless `family`
 * says otherwise.
 */
import { readFileSync } from 'node:fs';
import { tryParseAddr, type Family, type Prefix } from '../lib/addr';
import { KrtError } from '../lib/errors';
import type { RouteAttrs } from '../route';
import { parseRouteLine, RouteSyntaxError } from './route-syntax';
import { readNexthopTracking, type NexthopTrackingConfig } from './nexthop-config';
import { readStreamSettings, STREAM_KEYS as STREAM_SETTINGS, type StreamSettings } from './stream-config';
import { DEFAULT_SOCKET } from './defaults';
import { formatIssue, YamlReader, type ConfigIssue, type ConfigPosition } from './yaml-reader';
import { isScalar, type Node as YamlNode } from 'yaml';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

export interface TableConfig {
  name: string;
  family: Family;
  /** Journal items a reader may fall behind before it is dropped to a full refeed; undefined: grows with the table. */
  journalLimit: number | undefined;
}

/** A route from the config file, with where it was written. */
export interface ConfiguredRoute {
  net: Prefix;
  attrs: RouteAttrs;
  line: number;
  column: number;
}

interface ProtocolCommon {
  name: string;
  /** Names of the tables this protocol is attached to, one per family it serves. */
  tables: string[];
}

export interface StaticProtocolConfig extends ProtocolCommon {
  type: 'static';
  preference: number;
  routes: ConfiguredRoute[];
  /** One route a line in the same syntax, '#' comments; read when the protocol starts and on reload. */
  routesFile: string | undefined;
}

export interface KernelProtocolConfig extends ProtocolCommon {
  type: 'kernel';
  /** rtm_protocol of our routes; undefined: the kernel protocol's default (see docs/kernel.md). */
  protocol: number | undefined;
  /** Kernel table: an id, or a name (main, local, default, or from rt_tables), resolved by the kernel protocol. */
  kernelTable: number | string;
  /** Metric of our routes when the route does not set one. */
  metric: number | undefined;
  persist: boolean;
  scanIntervalMs: number;
  /** Graceful restart: keep stale routes of ours this long for the sources to re-announce; 0 = off. */
  gracefulRestartMs: number;
  /** Import other protocols' kernel routes into our table. */
  learn: boolean;
  /** Merge equal-best routes of several sources into one multipath route of at most this many hops; 0 = off. */
  mergePaths: number;
  /** Routes through kernel nexthop objects: auto (where the kernel has them), on, off. */
  nexthopObjects: 'auto' | 'on' | 'off';
  /** Prefix-independent failover (docs/failover.md): off, or objects (routes on forwarding objects keyed by best and next-best). */
  failover: 'off' | 'objects' | 'backup_routes';
  /** The metric of backup routes (failover: backup_routes); undefined: the default (4294967295). */
  backupMetric: number | undefined;
  /** The export filter as written (plain values: "accept", "reject", a list of rules or {rules, default}), with its position. */
  exportFilter: { value: unknown; line: number; column: number } | undefined;
}

export interface ApiProtocolConfig extends ProtocolCommon {
  type: 'api';
  preference: number;
  /** Where routes added at run time are kept across restarts; volatile without it. */
  stateFile: string | undefined;
}

/** Settings in stream-config.ts. */
export interface StreamProtocolConfig extends ProtocolCommon, StreamSettings {
  type: 'stream';
}

export type ProtocolConfig = StaticProtocolConfig | KernelProtocolConfig | ApiProtocolConfig | StreamProtocolConfig;
export type ProtocolType = ProtocolConfig['type'];

/** Where an HTTP listener binds: an IP address (not a name: nothing is resolved at start) and a port. */
export interface ListenAddress {
  host: string;
  port: number;
  family: Family;
  /** As written in the config, e.g. `127.0.0.1:9725` or `[::1]:9725`. */
  text: string;
}

export interface MetricsConfig {
  listen: ListenAddress;
}

export interface KrtConfig {
  file: string;
  logLevel: LogLevel;
  control: { socket: string; group: string | undefined; mode: number; sendTimeoutMs: number };
  /** The Prometheus endpoint; undefined: off. */
  metrics: MetricsConfig | undefined;
  /** Next-hop tracking (nexthop-config.ts); undefined: off. */
  nexthopTracking: NexthopTrackingConfig | undefined;
  tables: TableConfig[];
  protocols: ProtocolConfig[];
  /**
   * Where values checked outside this module were written, by `PROTOCOL.key`
   * (`kernel1.kernel_table`, `kernel1.export[0].match.net`); see positionOf().
   */
  positions: ReadonlyMap<string, ConfigPosition>;
}

export class ConfigError extends KrtError {
  /** `more`: problems found beyond those listed (a routes file lists its first ones). */
  constructor(
    readonly issues: readonly ConfigIssue[],
    readonly more = 0,
  ) {
    super('KRT_ERR_CONFIG', issues.map(formatIssue).join('\n') + (more > 0 ? `\n… and ${more} more problems` : ''));
  }
}

/** The position recorded for `path`, or for the closest enclosing value that has one. */
export function positionOf(c: KrtConfig, path: string): ConfigPosition {
  for (let p = path; p !== ''; p = p.replace(/(\.[^.[\]]*|\[\d+\])$|^[^.[\]]*$/, '')) {
    const pos = c.positions.get(p);
    if (pos) return pos;
  }
  return { line: 1, column: 1 };
}

const DEFAULT_TABLES: Array<Omit<TableConfig, 'journalLimit'>> = [
  { name: 'master4', family: 4 },
  { name: 'master6', family: 6 },
];
const NAME_RE = /^[A-Za-z][\w.-]{0,31}$/;

/** Validates config text; `file` is used in messages and to resolve a relative routes_file. */
export function parseConfig(file: string, text: string): KrtConfig {
  const { config, issues } = readConfig(file, text);
  if (issues.length || !config) throw new ConfigError(issues);
  return config;
}

/** Reads config text without throwing: what could be read, and every problem found on the way. */
export function readConfig(file: string, text: string): { config: KrtConfig | undefined; issues: ConfigIssue[] } {
  const r = new YamlReader(file, text);
  const config = r.root === null && !r.issues.length ? undefined : readRoot(r);
  if (!config && !r.issues.length) r.error(null, 'the file is empty: expected a mapping with "protocols"');
  return { config, issues: r.issues };
}

/** Reads a config file without throwing (see readConfig); an unreadable file is one problem. */
export function readConfigFile(file: string): { config: KrtConfig | undefined; issues: ConfigIssue[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return { config: undefined, issues: [{ file, line: 1, column: 1, message: `cannot read: ${(e as Error).message}` }] };
  }
  return readConfig(file, text);
}

function readRoot(r: YamlReader): KrtConfig | undefined {
  const top = r.map(r.root, 'config', ['log', 'control', 'metrics', 'nexthop_tracking', 'journal_limit', 'tables', 'protocols']);
  if (!top) return undefined;

  const log = top.has('log') ? r.map(top.get('log'), 'log', ['level']) : undefined;
  const logLevel = r.oneOf(log?.get('level'), 'log.level', ['error', 'warn', 'info', 'debug'] as const) ?? 'info';

  const ctl = top.has('control') ? r.map(top.get('control'), 'control', ['socket', 'group', 'mode', 'send_timeout']) : undefined;
  const socket = r.string(ctl?.get('socket'), 'control.socket') ?? DEFAULT_SOCKET;
  if (!socket.startsWith('/')) r.error(ctl?.get('socket'), 'control.socket: must be an absolute path');
  const group = r.string(ctl?.get('group'), 'control.group');
  const mode = r.fileMode(ctl?.get('mode'), 'control.mode') ?? 0o660;
  // A client that reads none of its answers for this long is disconnected (docs/cli.md, Bounds).
  const sendTimeoutMs = r.duration(ctl?.get('send_timeout'), 'control.send_timeout', 100) ?? 30000;

  const metrics = readMetrics(r, top.get('metrics'));
  const nexthopTracking = readNexthopTracking(r, top.get('nexthop_tracking'));

  const journalLimit = readJournalLimit(r, top.get('journal_limit'), 'journal_limit');
  const tables = readTables(r, top.get('tables'), journalLimit);
  const protoNodes = r.seq(top.get('protocols'), 'protocols');
  if (!top.has('protocols')) r.error(r.root, 'config: "protocols" is missing');
  const protocols: ProtocolConfig[] = [];
  const positions = new Map<string, ConfigPosition>();
  const names = new Set<string>(tables.map((t) => t.name));
  // A name is taken as soon as it is read, so a protocol with another mistake still shows a duplicate.
  const claim = (name: string, node: YamlNode): void => {
    if (names.has(name)) r.error(node, `protocol ${name}: the name is already used by a table or another protocol`);
    names.add(name);
  };
  for (const node of protoNodes ?? []) {
    const p = readProtocol(r, node, tables, claim, positions);
    if (p) protocols.push(p);
  }
  return { file: r.file, logLevel, control: { socket, group, mode, sendTimeoutMs }, metrics, nexthopTracking, tables, protocols, positions };
}

/** `metrics: { listen: ADDRESS:PORT }`; without it, no listener. */
function readMetrics(r: YamlReader, node: YamlNode | undefined): MetricsConfig | undefined {
  if (node === undefined) return undefined;
  const m = r.map(node, 'metrics', ['listen']);
  if (!m) return undefined;
  if (!m.has('listen')) return r.error(node, 'metrics: "listen" is missing (an address and port, like 127.0.0.1:9725)');
  const text = r.string(m.get('listen'), 'metrics.listen');
  if (text === undefined) return undefined;
  const listen = parseListenAddress(text);
  if (typeof listen === 'string') return r.error(m.get('listen'), `metrics.listen: ${listen}`);
  return { listen };
}

/** `ADDRESS:PORT` with an IPv4 address, or `[ADDRESS]:PORT` with an IPv6 one; a string is what is wrong. */
export function parseListenAddress(text: string): ListenAddress | string {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) {
    return /^[0-9a-fA-F:]+:\d+$/.test(text) && text.split(':').length > 2
      ? `"${text}": write an IPv6 address in brackets, like [::1]:9725`
      : `"${text}": expected an address and a port, like 127.0.0.1:9725 or [::1]:9725`;
  }
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  const addr = tryParseAddr(host);
  if (!addr) return `"${host}" is not an IP address (names are not resolved: use 127.0.0.1, ::1, 0.0.0.0 or an address of this host)`;
  if (m[1] !== undefined && addr.family !== 6) return `"${host}": brackets are for IPv6 addresses`;
  if (port < 1 || port > 65535) return `port ${port}: must be 1..65535`;
  return { host, port, family: addr.family, text: text.trim() };
}

/**
 * A table's journal bound (docs/config.md): a number of changes, or `auto`
 * (100,000 or the table's size, whichever is larger).
 */
function readJournalLimit(r: YamlReader, node: YamlNode | undefined, what: string): number | 'auto' | undefined {
  if (node === undefined) return undefined;
  if (isScalar(node) && node.value === 'auto') return 'auto';
  if (isScalar(node) && typeof node.value === 'number') return r.int(node, what, 1000, 1_000_000_000);
  return r.error(node, `${what}: expected auto or an integer 1000..1000000000`);
}

function readTables(r: YamlReader, node: YamlNode | undefined, journalLimit: number | 'auto' | undefined): TableConfig[] {
  const limit = (v: number | 'auto' | undefined): number | undefined => (v === 'auto' ? undefined : v);
  if (node === undefined) return DEFAULT_TABLES.map((t) => ({ ...t, journalLimit: limit(journalLimit) }));
  const out: TableConfig[] = [];
  for (const t of r.seq(node, 'tables') ?? []) {
    const m = r.map(t, 'table', ['name', 'family', 'journal_limit']);
    const name = r.string(m?.get('name'), 'table name');
    const family = r.oneOf(m?.get('family'), `table ${name ?? ''}: family`, ['ipv4', 'ipv6'] as const);
    if (m && !m.has('family')) r.error(t, `table ${name ?? ''}: "family" (ipv4 or ipv6) is missing`);
    const own = readJournalLimit(r, m?.get('journal_limit'), `table ${name ?? ''}: journal_limit`);
    if (!name || !family) continue;
    if (!NAME_RE.test(name)) r.error(m?.get('name'), `table name "${name}": letters, digits, _ . - (starting with a letter), at most 32`);
    else if (out.some((x) => x.name === name)) r.error(m?.get('name'), `table ${name}: defined twice`);
    else out.push({ name, family: family === 'ipv4' ? 4 : 6, journalLimit: limit(own ?? journalLimit) });
  }
  return out;
}

/** The tables a protocol attaches to: named ones (checked), or the first table of each wanted family. */
function attachTables(r: YamlReader, what: string, node: YamlNode | undefined, tables: TableConfig[], families: Family[]): string[] {
  if (node !== undefined) {
    const list = r.seq(node, `${what}: tables`) ?? [];
    const out: string[] = [];
    for (const n of list) {
      const name = r.string(n, `${what}: table`);
      if (name === undefined) continue;
      if (!tables.some((t) => t.name === name)) r.error(n, `${what}: no table named "${name}" (defined: ${tables.map((t) => t.name).join(', ')})`);
      else out.push(name);
    }
    return out;
  }
  const out: string[] = [];
  for (const f of families) {
    const t = tables.find((x) => x.family === f);
    if (t) out.push(t.name);
  }
  return out;
}

const COMMON_KEYS = ['name', 'type', 'tables'];
const STATIC_KEYS = [...COMMON_KEYS, 'routes', 'routes_file', 'preference'];
const API_KEYS = [...COMMON_KEYS, 'preference', 'state_file'];
const STREAM_KEYS = [...COMMON_KEYS, ...STREAM_SETTINGS];

const KERNEL_KEYS = [...COMMON_KEYS, 'family', 'protocol', 'kernel_table', 'metric', 'persist', 'scan_interval', 'graceful_restart', 'learn', 'merge_paths', 'nexthop_objects', 'failover', 'backup_metric', 'export'];
const KEYS: Record<ProtocolType, readonly string[]> = { static: STATIC_KEYS, kernel: KERNEL_KEYS, api: API_KEYS, stream: STREAM_KEYS };

function readProtocol(
  r: YamlReader,
  node: YamlNode,
  tables: TableConfig[],
  claim: (name: string, node: YamlNode) => void,
  positions: Map<string, ConfigPosition>,
): ProtocolConfig | undefined {
  // Read name and type first, leniently, so the real key check can list the right keys.
  const peek = r.map(node, 'protocol', [...new Set([...STATIC_KEYS, ...KERNEL_KEYS, ...API_KEYS, ...STREAM_KEYS])]);
  if (!peek) return undefined;
  const name = r.string(peek.get('name'), 'protocol name');
  if (!peek.has('name')) r.error(node, 'protocol: "name" is missing');
  if (name !== undefined && !NAME_RE.test(name)) r.error(peek.get('name'), `protocol name "${name}": letters, digits, _ . - (starting with a letter), at most 32`);
  if (name !== undefined) claim(name, node);
  const what = `protocol ${name ?? '(unnamed)'}`;
  const type = r.oneOf(peek.get('type'), `${what}: type`, ['static', 'kernel', 'api', 'stream'] as const);
  if (!peek.has('type')) r.error(node, `${what}: "type" is missing (static, kernel, api or stream)`);
  if (!name || !type) return undefined;
  const keys = KEYS[type];
  for (const k of peek.keys()) if (!keys.includes(k)) r.errorAtKey(peek.get(k), `${what}: "${k}" is not a setting of a ${type} protocol`);

  if (type === 'static') {
    const routes: ConfiguredRoute[] = [];
    const families = new Set<Family>();
    for (const n of r.seq(peek.get('routes'), `${what}: routes`) ?? []) {
      const line = r.string(n, `${what}: route`);
      if (line === undefined) continue;
      const pos = r.position(n);
      try {
        const { net, attrs } = parseRouteLine(line);
        routes.push({ net, attrs, ...pos });
        families.add(net.family);
      } catch (e) {
        if (!(e instanceof RouteSyntaxError)) throw e;
        r.issues.push({ file: r.file, line: pos.line, column: pos.column + e.column - 1 + quoteOffset(n), message: `${what}: ${e.message}` });
      }
    }
    const routesFile = r.string(peek.get('routes_file'), `${what}: routes_file`);
    // A routes file may hold both families, so a static protocol with one attaches to both.
    const wanted: Family[] = routesFile !== undefined ? [4, 6] : ([4, 6] as Family[]).filter((f) => families.has(f));
    return {
      type,
      name,
      tables: attachTables(r, what, peek.get('tables'), tables, wanted.length ? wanted : [4, 6]),
      preference: r.int(peek.get('preference'), `${what}: preference`, 0, 65535) ?? 200,
      routes,
      routesFile: routesFile === undefined ? undefined : resolveRelative(r.file, routesFile),
    };
  }

  if (type === 'api') {
    const stateFile = r.string(peek.get('state_file'), `${what}: state_file`);
    const stateNode = peek.get('state_file');
    if (stateNode) positions.set(`${name}.state_file`, r.position(stateNode)); // src/daemon/validate.ts reads the file
    return {
      type,
      name,
      tables: attachTables(r, what, peek.get('tables'), tables, [4, 6]),
      preference: r.int(peek.get('preference'), `${what}: preference`, 0, 65535) ?? 200,
      stateFile: stateFile === undefined ? undefined : resolveRelative(r.file, stateFile),
    };
  }
  if (type === 'stream') {
    // The import filter is checked by the stream protocol's filter parser (src/daemon/validate.ts runs it).
    const importNode = peek.get('import');
    if (importNode) r.positionsOf(importNode, `${name}.import`, positions);
    return { type, name, tables: attachTables(r, what, peek.get('tables'), tables, [4, 6]), ...readStreamSettings(r, peek, what) };
  }

  const family = r.oneOf(peek.get('family'), `${what}: family`, ['ipv4', 'ipv6', 'both'] as const) ?? 'both';
  const families: Family[] = family === 'ipv4' ? [4] : family === 'ipv6' ? [6] : [4, 6];
  // The export filter, kernel table names and protocol numbers are checked by the kernel protocol's
  // own code (src/daemon/validate.ts runs it); their positions are kept for its messages.
  const exportNode = peek.get('export');
  const mergePaths = r.int(peek.get('merge_paths'), `${what}: merge_paths`, 0, 256) ?? 0;
  const nexthopObjects = r.oneOf(peek.get('nexthop_objects'), `${what}: nexthop_objects`, ['auto', 'on', 'off'] as const) ?? 'auto';
  const failover = readFailover(r, peek.get('failover'), what, nexthopObjects, mergePaths > 0);
  const metric = r.int(peek.get('metric'), `${what}: metric`, 0, 0xffffffff);
  const backupMetric = r.int(peek.get('backup_metric'), `${what}: backup_metric`, 1, 0xffffffff);
  if (backupMetric !== undefined && failover !== 'backup_routes') r.error(peek.get('backup_metric')!, `${what}: backup_metric is for failover: backup_routes only`);
  if (failover === 'backup_routes' && metric !== undefined && metric >= (backupMetric ?? 0xffffffff)) r.error(peek.get('metric')!, `${what}: metric ${metric} must be below the backup routes' metric (backup_metric, ${backupMetric ?? 0xffffffff})`);
  const exportFilter: KernelProtocolConfig['exportFilter'] = exportNode === undefined ? undefined : { value: exportNode.toJSON() as unknown, ...r.position(exportNode) };
  positions.set(name, r.position(node));
  if (exportNode) r.positionsOf(exportNode, `${name}.export`, positions);
  for (const key of ['kernel_table', 'protocol']) {
    const n = peek.get(key);
    if (n) positions.set(`${name}.${key}`, r.position(n));
  }
  return {
    type,
    name,
    tables: attachTables(r, what, peek.get('tables'), tables, families),
    protocol: r.int(peek.get('protocol'), `${what}: protocol`, 1, 255),
    kernelTable: readKernelTable(r, peek.get('kernel_table'), what),
    metric,
    persist: r.bool(peek.get('persist'), `${what}: persist`) ?? false,
    scanIntervalMs: r.duration(peek.get('scan_interval'), `${what}: scan_interval`, 1000) ?? 60000,
    gracefulRestartMs: r.duration(peek.get('graceful_restart'), `${what}: graceful_restart`) ?? 0,
    learn: r.bool(peek.get('learn'), `${what}: learn`) ?? false,
    mergePaths,
    nexthopObjects,
    failover,
    backupMetric,
    exportFilter,
  };
}

/** failover needs routes on nexthop objects, and does not merge paths (yet). */
function readFailover(r: YamlReader, node: YamlNode | undefined, what: string, objects: 'auto' | 'on' | 'off', merging: boolean): 'off' | 'objects' | 'backup_routes' {
  const mode = r.oneOf(node, `${what}: failover`, ['off', 'objects', 'backup_routes'] as const) ?? 'off';
  if (mode === 'off') return mode;
  if (objects === 'off') r.error(node, `${what}: failover: ${mode} needs nexthop_objects (they are off here); use failover: off or nexthop_objects: auto`);
  if (merging) r.error(node, `${what}: failover: ${mode} cannot be combined with merge_paths yet; use one of them`);
  return mode;
}

function readKernelTable(r: YamlReader, node: YamlNode | undefined, what: string): number | string {
  if (node === undefined) return 'main';
  const asNumber = r.int(typeof (node as { value?: unknown }).value === 'number' ? node : undefined, `${what}: kernel_table`, 1, 0xffffffff);
  if (asNumber !== undefined) return asNumber;
  const s = typeof (node as { value?: unknown }).value === 'string' ? r.string(node, `${what}: kernel_table`) : undefined;
  if (s === undefined && typeof (node as { value?: unknown }).value !== 'number') r.error(node, `${what}: kernel_table: expected a table id 1..4294967295 or a name`);
  return s ?? 'main';
}

/** Column shift for a quoted scalar: the route's columns count from inside the quotes. */
function quoteOffset(n: YamlNode): number {
  return 'type' in n && (n.type === 'QUOTE_DOUBLE' || n.type === 'QUOTE_SINGLE') ? 1 : 0;
}

function resolveRelative(configFile: string, p: string): string {
  if (p.startsWith('/')) return p;
  const dir = configFile.includes('/') ? configFile.slice(0, configFile.lastIndexOf('/')) : '.';
  return `${dir}/${p}`;
}
