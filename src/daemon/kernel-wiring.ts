/**
 * From a kernel protocol's config to running KernelProtocol instances.
 *
 * DESIGN.md: one instance per (kernel table, family) pair. A config entry
 * with `family: both` is attached to an IPv4 and an IPv6 table, so it becomes
 * two KernelProtocol instances (`NAME` for the first family; both share the
 * kernel table and protocol number) behind one KernelHandle, which is what
 * the daemon and the CLI see. checkKernelOptions() validates the settings the
 * config loader cannot (kernel table names from rt_tables, reserved protocol
 * numbers, export filters) so `krtsync check` and start reject them before
 * anything touches the kernel.
 */
import type { Family, Prefix } from '../lib/addr';
import type { KernelProtocolConfig, KrtConfig } from '../config/config';
import { FilterError, parseExportFilter, type ExportFilter } from '../proto/filter';
import { KernelProtocol, type KernelProtocolOptions } from '../proto/kernel/kernel-protocol';
import { checkProtocolNumber, DEFAULT_KERNEL_PROTOCOL, KernelOptionError, resolveKernelTable } from '../proto/kernel/options';
import { sumCounts, type RouteSyncStatus, type SyncCounts } from '../proto/kernel/route-status';
import type { Logger } from '../proto/logger';
import type { Protocol, ProtocolState } from '../proto/protocol';
import type { Table } from '../table';
import { describeKey, type LockKey } from './instance-lock';

export interface KernelHandle extends Protocol<KernelProtocolConfig> {
  status(prefix?: Prefix): RouteSyncStatus[];
  counts(): SyncCounts;
  summary(): Record<string, unknown>;
}

function exportFilterOf(cfg: KernelProtocolConfig): ExportFilter | undefined {
  return cfg.exportFilter ? parseExportFilter(cfg.exportFilter.value, 'export') : undefined;
}

/** What each kernel protocol of the config manages: its kernel table, protocol number and families (the instance locks' keys). */
export function kernelLockKeys(c: KrtConfig): Array<{ protocol: string; key: LockKey }> {
  const out: Array<{ protocol: string; key: LockKey }> = [];
  for (const p of c.protocols) {
    if (p.type !== 'kernel') continue;
    const kernelTable = resolveKernelTable(p.kernelTable);
    const protocol = p.protocol ?? DEFAULT_KERNEL_PROTOCOL;
    for (const t of p.tables) {
      const family = c.tables.find((x) => x.name === t)?.family;
      if (family !== undefined) out.push({ protocol: p.name, key: { kernelTable, protocol, family } });
    }
  }
  return out;
}

/** Throws KernelOptionError naming file, protocol and (for filters) line and column, for settings that cannot work. */
export function checkKernelOptions(c: KrtConfig): void {
  for (const p of c.protocols) {
    if (p.type !== 'kernel') continue;
    try {
      if (p.protocol !== undefined) checkProtocolNumber(p.protocol);
      resolveKernelTable(p.kernelTable);
      exportFilterOf(p);
    } catch (e) {
      if (e instanceof FilterError && p.exportFilter) throw new KernelOptionError(`${c.file}:${p.exportFilter.line}:${p.exportFilter.column}: protocol ${p.name}: ${e.message}`);
      if (e instanceof KernelOptionError) throw new KernelOptionError(`${c.file}: protocol ${p.name}: ${e.message}`);
      throw e;
    }
  }
  // Two protocols on the same kernel table, number and family would each prune the other's routes.
  const seen = new Map<string, string>();
  for (const { protocol, key } of kernelLockKeys(c)) {
    const id = describeKey(key);
    const other = seen.get(id);
    if (other !== undefined) throw new KernelOptionError(`${c.file}: protocols ${other} and ${protocol} both manage ${id}; each would delete the other's routes (give one another protocol number or kernel table)`);
    seen.set(id, protocol);
  }
}

function optionsFor(cfg: KernelProtocolConfig, family: Family, table: Table, log: Logger, netns: string | undefined): KernelProtocolOptions {
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
    ...(filter ? { filter } : {}),
    ...(cfg.mergePaths > 0 ? { mergePaths: { limit: cfg.mergePaths } } : {}),
    ...(cfg.learn ? { learn: { table } } : {}),
    ...(netns !== undefined ? { netns } : {}),
    log,
  };
}

/** The settings that only a restart can change: everything but the export filter and the scan interval. */
function identity(c: KernelProtocolConfig): string {
  return JSON.stringify({ ...c, exportFilter: undefined, scanIntervalMs: undefined });
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

  async start(): Promise<void> {
    // Families start together: each dumps and reconciles its own part of the kernel table.
    await Promise.all([...this.instances.values()].map(({ proto }) => proto.start()));
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.instances.values()].map(({ proto }) => proto.shutdown()));
  }

  /**
   * In place: a new export filter (a refeed re-judges every net) and the scan
   * interval. Anything else means a restart. Unchanged options keep their
   * objects, so an unchanged filter causes no refeed and a reload that changes
   * nothing here touches nothing in the kernel.
   */
  reconfigure(next: KernelProtocolConfig): boolean {
    if (identity(next) !== identity(this.config)) return false;
    const filterChanged = JSON.stringify(next.exportFilter?.value) !== JSON.stringify(this.config.exportFilter?.value);
    const filter = filterChanged ? exportFilterOf(next) : undefined;
    for (const inst of this.instances.values()) {
      const options: KernelProtocolOptions = { ...inst.options, scanIntervalMs: next.scanIntervalMs };
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

  summary(): Record<string, unknown> {
    const first = this.instances.values().next().value?.proto;
    return {
      ...this.counts(),
      kernelTable: first?.kernelTable,
      protocolNumber: first?.protocolNumber,
      persist: this.config.persist,
      families: [...this.instances.keys()].map((f) => `ipv${f}`),
      syncState: [...this.instances].map(([f, { proto }]) => `ipv${f} ${proto.sync(f)?.state ?? 'down'}`).join(', '),
    };
  }
}

export function createKernelProtocol(cfg: KernelProtocolConfig, tables: ReadonlyMap<Family, Table>, log: Logger, netns: string | undefined): KernelHandle {
  const instances = new Map<Family, { proto: KernelProtocol; options: KernelProtocolOptions }>();
  for (const [family, table] of tables) {
    const options = optionsFor(cfg, family, table, log, netns);
    instances.set(family, { proto: new KernelProtocol(options), options });
  }
  return new KernelProtocolSet(cfg, instances);
}
