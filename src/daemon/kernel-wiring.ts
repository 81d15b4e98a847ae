/**
 * From a kernel protocol's config to running KernelProtocol instances.
 *
 * DESIGN.md: one instance per (kernel table, family) pair. A config entry
 * with `family: both` is attached to an IPv4 and an IPv6 table, so it becomes
 * two KernelProtocol instances (`NAME` for the first family; both share the
 * kernel table and protocol number) behind one KernelHandle, which is what
 * the daemon and the CLI see. kernelOptionIssues() validates the settings the
 * config loader cannot (kernel table names from rt_tables, reserved protocol
 * numbers, export filters), each at its position in the file, so `krtsync
 * check`, start and reload reject them before anything touches the kernel.
 */
import type { Family, Prefix } from '../lib/addr';
import { positionOf, type KernelProtocolConfig, type KrtConfig } from '../config/config';
import type { ConfigIssue } from '../config/yaml-reader';
import { exportFilterErrors, parseExportFilter, type ExportFilter } from '../proto/filter';
import { KernelProtocol, type KernelProtocolOptions } from '../proto/kernel/kernel-protocol';
import { checkProtocolNumber, DEFAULT_KERNEL_PROTOCOL, KernelOptionError, resolveKernelTable } from '../proto/kernel/options';
import { sumCounts, type RouteSyncStatus, type SyncCounts } from '../proto/kernel/route-status';
import type { KernelSyncMetrics } from '../proto/kernel/sync-metrics';
import { sumFailover, type FailoverStatus } from '../proto/kernel/sync-failover';
import type { NexthopStatus } from '../proto/kernel/sync-nexthops';
import type { KernelNexthopView } from '../metrics/daemon-metrics';
import type { Logger } from '../proto/logger';
import type { Protocol, ProtocolState } from '../proto/protocol';
import type { Table } from '../table';
import { describeKey, type LockKey } from './instance-lock';

export interface KernelHandle extends Protocol<KernelProtocolConfig> {
  status(prefix?: Prefix): RouteSyncStatus[];
  /** Our nexthop objects (every family), with the nets on each. */
  nexthops(): Array<NexthopStatus & { family: Family }>;
  counts(): SyncCounts;
  summary(): Record<string, unknown>;
  /** Start beside sources still loading (KernelProtocol.startBeside); before start(). */
  startBeside(loaded: Promise<void>, checked?: Promise<void>): void;
  /** Per family: the kernel table and the state counts, kept as they change (for metrics: no walk). */
  syncCounts(): Array<{ family: Family; kernelTable: number; counts: SyncCounts; failedByErrno: ReadonlyMap<string, number>; nexthops: KernelNexthopView; failover?: FailoverStatus }>;
}

/** Makes the metrics sink of one family's sync. */
export type KernelMetricsFactory = (family: Family, kernelTable: number) => KernelSyncMetrics;

function exportFilterOf(cfg: KernelProtocolConfig): ExportFilter | undefined {
  return cfg.exportFilter ? parseExportFilter(cfg.exportFilter.value, 'export') : undefined;
}

/**
 * What each kernel protocol of the config manages: its kernel table, protocol number and
 * families (the instance locks' keys). A protocol whose kernel table does not resolve has
 * none (kernelOptionIssues reports it).
 */
export function kernelLockKeys(c: KrtConfig): Array<{ protocol: string; key: LockKey }> {
  const out: Array<{ protocol: string; key: LockKey }> = [];
  for (const p of c.protocols) {
    if (p.type !== 'kernel') continue;
    let kernelTable: number;
    try {
      kernelTable = resolveKernelTable(p.kernelTable);
    } catch {
      continue;
    }
    const protocol = p.protocol ?? DEFAULT_KERNEL_PROTOCOL;
    for (const t of p.tables) {
      const family = c.tables.find((x) => x.name === t)?.family;
      if (family !== undefined) out.push({ protocol: p.name, key: { kernelTable, protocol, family } });
    }
  }
  return out;
}

/** Every kernel protocol setting that cannot work, at the position of the value that is wrong. */
export function kernelOptionIssues(c: KrtConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const p of c.protocols) {
    if (p.type !== 'kernel') continue;
    const at = (path: string, message: string): number => issues.push({ file: c.file, ...positionOf(c, `${p.name}.${path}`), message: `protocol ${p.name}: ${message}` });
    const checks: Array<[string, () => unknown]> = [
      ['protocol', () => p.protocol !== undefined && checkProtocolNumber(p.protocol)],
      ['kernel_table', () => resolveKernelTable(p.kernelTable)],
    ];
    for (const [key, check] of checks) {
      try {
        check();
      } catch (e) {
        if (!(e instanceof KernelOptionError)) throw e;
        at(key, e.message);
      }
    }
    if (p.exportFilter) for (const e of exportFilterErrors(p.exportFilter.value, 'export')) at(e.path, e.message);
  }
  // Two protocols on the same kernel table, number and family would each prune the other's routes.
  const seen = new Map<string, string>();
  const clashes = new Map<string, { first: string; second: string; keys: LockKey[] }>();
  for (const { protocol, key } of kernelLockKeys(c)) {
    const id = `${key.kernelTable}/${key.protocol}/${key.family}`;
    const other = seen.get(id);
    if (other === undefined) seen.set(id, protocol);
    else if (other !== protocol) {
      const pair = `${other} ${protocol}`;
      const clash = clashes.get(pair) ?? { first: other, second: protocol, keys: [] };
      clash.keys.push(key);
      clashes.set(pair, clash);
    }
  }
  for (const { first, second, keys } of clashes.values()) {
    const what = `${describeKey(keys[0]!)}${keys.length > 1 ? ' and IPv6' : ''}`;
    issues.push({ file: c.file, ...positionOf(c, second), message: `protocols ${first} and ${second} both manage ${what}; each would delete the other's routes (give one another protocol number or kernel table)` });
  }
  // Nexthop object ids: one range per protocol number, family and kernel table id modulo 128 (docs/kernel.md).
  const ranges = new Map<string, { name: string; table: number }>();
  const objects = new Set(c.protocols.filter((p) => p.type === 'kernel' && p.nexthopObjects !== 'off').map((p) => p.name));
  for (const { protocol, key } of kernelLockKeys(c)) {
    if (!objects.has(protocol)) continue;
    const id = `${key.protocol}/${key.family}/${key.kernelTable & 0x7f}`;
    const other = ranges.get(id);
    if (other === undefined) ranges.set(id, { name: protocol, table: key.kernelTable });
    else if (other.name !== protocol && other.table !== key.kernelTable) {
      issues.push({ file: c.file, ...positionOf(c, protocol), message: `protocols ${other.name} and ${protocol} would share nexthop object ids (protocol number ${key.protocol}, kernel tables ${other.table} and ${key.kernelTable} are equal modulo 128); give one another protocol number, or nexthop_objects: off` });
      ranges.set(id, { name: protocol, table: key.kernelTable });
    }
  }
  return issues;
}

function optionsFor(cfg: KernelProtocolConfig, family: Family, table: Table, log: Logger, netns: string | undefined, metrics: KernelMetricsFactory | undefined): KernelProtocolOptions {
  const filter = exportFilterOf(cfg);
  return {
    name: cfg.name,
    table,
    kernelTable: cfg.kernelTable,
    family,
    ...(cfg.protocol !== undefined ? { protocol: cfg.protocol } : {}),
    ...(cfg.metric !== undefined ? { metric: cfg.metric } : {}),
    persist: cfg.persist,
    gracefulRestartMs: cfg.gracefulRestartMs,
    scanIntervalMs: cfg.scanIntervalMs,
    nexthopObjects: cfg.nexthopObjects,
    ...(cfg.failover !== 'off' ? { failover: cfg.failover } : {}),
    ...(cfg.backupMetric !== undefined ? { backupMetric: cfg.backupMetric } : {}),
    ...(filter ? { filter } : {}),
    ...(cfg.mergePaths > 0 ? { mergePaths: { limit: cfg.mergePaths } } : {}),
    ...(cfg.learn ? { learn: { table } } : {}),
    ...(netns !== undefined ? { netns } : {}),
    ...(metrics !== undefined ? { metrics } : {}),
    log,
  };
}

/** The settings that only a restart can change: everything but the export filter and the scan interval. */
function identity(c: KernelProtocolConfig): string {
  return JSON.stringify({ ...c, exportFilter: undefined, scanIntervalMs: undefined, nexthopObjects: undefined });
}

class KernelProtocolSet implements KernelHandle {
  constructor(
    private config: KernelProtocolConfig,
    private readonly instances: Map<Family, { proto: KernelProtocol; options: KernelProtocolOptions }>,
  ) {}

  get name(): string {
    return this.config.name;
  }

  /** The least advanced instance's state: up only when every family is up. */
  get state(): ProtocolState {
    const order: ProtocolState[] = ['down', 'stopping', 'starting', 'up'];
    let worst: ProtocolState = 'up';
    for (const { proto } of this.instances.values()) if (order.indexOf(proto.state) < order.indexOf(worst)) worst = proto.state;
    return this.instances.size ? worst : 'down';
  }

  init(): void {
    for (const { proto } of this.instances.values()) proto.init();
  }

  startBeside(loaded: Promise<void>, checked?: Promise<void>): void {
    for (const { proto } of this.instances.values()) proto.startBeside(loaded, checked);
  }

  async start(): Promise<void> {
    // Families start together: each dumps and reconciles its own part of the kernel table.
    await Promise.all([...this.instances.values()].map(({ proto }) => proto.start()));
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.instances.values()].map(({ proto }) => proto.shutdown()));
  }

  /**
   * In place: a new export filter (a refeed re-judges every net), the scan
   * interval and nexthop_objects (routes are replaced onto or off objects). Anything else means a restart. Unchanged options keep their
   * objects, so an unchanged filter causes no refeed and a reload that changes
   * nothing here touches nothing in the kernel.
   */
  reconfigure(next: KernelProtocolConfig): boolean {
    if (identity(next) !== identity(this.config)) return false;
    const filterChanged = JSON.stringify(next.exportFilter?.value) !== JSON.stringify(this.config.exportFilter?.value);
    const filter = filterChanged ? exportFilterOf(next) : undefined;
    for (const inst of this.instances.values()) {
      const options: KernelProtocolOptions = { ...inst.options, scanIntervalMs: next.scanIntervalMs, nexthopObjects: next.nexthopObjects };
      if (filterChanged) {
        if (filter) options.filter = filter;
        else delete options.filter;
      }
      if (!inst.proto.reconfigure(options)) throw new Error(`protocol ${this.name}: refused an in-place change it should accept`);
      inst.options = options;
    }
    this.config = next;
    return true;
  }

  status(prefix?: Prefix): RouteSyncStatus[] {
    return [...this.instances.values()].flatMap(({ proto }) => proto.status(prefix));
  }

  counts(): SyncCounts {
    return sumCounts([...this.instances.values()].map(({ proto }) => proto.counts()));
  }

  nexthops(): Array<NexthopStatus & { family: Family }> {
    return [...this.instances.values()].flatMap(({ proto }) => proto.nexthopStatus());
  }

  syncCounts(): ReturnType<KernelHandle['syncCounts']> {
    const out: ReturnType<KernelHandle['syncCounts']> = [];
    for (const { proto } of this.instances.values()) {
      for (const [family, sync] of proto.families) {
        const failover = sync.failover.status();
        out.push({ family, kernelTable: proto.kernelTable, counts: sync.counts(), failedByErrno: sync.failedByErrno(), nexthops: { counts: sync.nexthops.counts(), stats: sync.nexthops.stats }, ...(failover ? { failover } : {}) });
      }
    }
    return out;
  }

  summary(): Record<string, unknown> {
    const first = this.instances.values().next().value?.proto;
    const failover = sumFailover([...this.instances.values()].flatMap(({ proto }) => [...proto.families.values()].map((s) => s.failover.status())));
    return {
      ...this.counts(),
      kernelTable: first?.kernelTable,
      protocolNumber: first?.protocolNumber,
      persist: this.config.persist,
      families: [...this.instances.keys()].map((f) => `ipv${f}`),
      syncState: [...this.instances].map(([f, { proto }]) => `ipv${f} ${proto.sync(f)?.state ?? 'down'}`).join(', '),
      ...(failover ? { failover } : {}),
    };
  }
}

export function createKernelProtocol(
  cfg: KernelProtocolConfig,
  tables: ReadonlyMap<Family, Table>,
  log: Logger,
  netns: string | undefined,
  metrics?: KernelMetricsFactory,
): KernelHandle {
  const instances = new Map<Family, { proto: KernelProtocol; options: KernelProtocolOptions }>();
  for (const [family, table] of tables) {
    const options = optionsFor(cfg, family, table, log, netns, metrics);
    instances.set(family, { proto: new KernelProtocol(options), options });
  }
  return new KernelProtocolSet(cfg, instances);
}
