/**
 * The composition root: builds tables and protocols from a validated config,
 * runs them in the right order, answers the control socket, reloads in place,
 * and shuts down cleanly.
 *
 * Order matters and is the point of this file:
 *  - start: sources first (static routes in the tables, api state restored),
 *    then the kernel protocols, which dump the kernel and reconcile against
 *    complete tables: a restart changes nothing in the kernel for routes still
 *    wanted. Routes files are the exception: their load runs beside the
 *    kernel protocols' start (open, dump, a first feed that follows the load),
 *    which send nothing before every file is in and prune nothing before
 *    then, so a bad line still leaves the kernel untouched. READY=1 when every
 *    kernel protocol has finished its first sync.
 *  - stop: kernel protocols first (each withdraws what it installed by
 *    walking the table directly, and waits for every ack), then the sources,
 *    then the control socket, then the metrics listener.
 *  - reload: the new file is validated completely (config and routes files)
 *    before anything changes; protocols are reconfigured in place where they
 *    can be, restarted where they must, added and removed by name.
 *
 * Management work (reload, route add/del, shutdown) runs through one queue so
 * it never interleaves across an await.
 */
import type { Family } from '../lib/addr';
import { parsePrefix } from '../lib/addr';
import { KrtError } from '../lib/errors';
import type { KrtConfig, ProtocolConfig, TableConfig } from '../config/config';
import type { ControlRequest } from '../control/protocol';
import { ControlServer, type ControlContext, type ControlStats } from '../control/server';
import { ApiProtocol } from '../proto/api/api';
import { RateLimitedLog, type Logger } from '../proto/logger';
import type { Protocol, ProtocolState } from '../proto/protocol';
import type { ParsedRoutes } from '../proto/static/routes-file';
import { StaticProtocol } from '../proto/static/static';
import { StreamProtocol } from '../proto/stream/stream';
import { TableSet } from '../proto/table-set';
import { Table } from '../table';
import { requireNetAdmin } from './capabilities';
import { DEFAULT_LOCK_DIR, describeKey, InstanceLock } from './instance-lock';
import { createKernelProtocol, kernelLockKeys } from './kernel-wiring';
import { validateConfig } from './validate';
import { CONTROL_COMMANDS, handleControlRequest, VERSION } from './commands';
import { MetricsEndpoint } from './metrics-wiring';
import { NextHopTracking } from './nexthop-wiring';
import { IMPLICIT_API, type DaemonCore, type DaemonOptions, type RunningProtocol } from './daemon-core';

export { IMPLICIT_API, type DaemonOptions, type RunningProtocol };

export class Daemon implements DaemonCore {
  config: KrtConfig | undefined;
  readonly tables = new Map<string, Table>();
  readonly protocols = new Map<string, RunningProtocol>();
  private control: ControlServer | undefined;
  /** One lock per (kernel table, protocol number, family) managed, by describeKey(). */
  private readonly locks = new Map<string, InstanceLock>();
  private queue: Promise<unknown> = Promise.resolve();
  private statusTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  /** Aborts the routes file reads of a reload's validation (stop()). */
  private reloadReads: AbortController | undefined;
  readonly startedAt = new Date();
  ready = false;
  /** Metrics: counted from the start; served when the config has `metrics.listen` (metrics-wiring.ts). */
  readonly metrics: MetricsEndpoint;
  /** Next-hop tracking, when the config turns it on (nexthop-wiring.ts). */
  nexthops: NextHopTracking | undefined;

  constructor(readonly opts: DaemonOptions) {
    this.metrics = new MetricsEndpoint(this, VERSION);
  }


  get log(): Logger {
    return this.opts.log;
  }

  /** Runs management work one at a time. */
  enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Starts everything from a config that validateConfig() accepted (routes files
   * aside: they are read once, by their static protocols, and a bad line aborts
   * the start before any kernel protocol has run, so the kernel is untouched),
   * then READY=1.
   */
  async start(valid: KrtConfig): Promise<void> {
    const config = withImplicitApi(valid);
    // Before anything is created: without CAP_NET_ADMIN every route would fail with EPERM.
    if (config.protocols.some((p) => p.type === 'kernel')) requireNetAdmin();
    // Before anything is created: a second daemon on the same kernel table exits here, having touched nothing.
    this.takeLocks(config);
    this.config = config;
    const t0 = Date.now();
    // Before the tables: their first routes are judged with the kernel's facts already in.
    if (config.nexthopTracking) this.nexthops = await NextHopTracking.open(config.nexthopTracking, this.opts.netns, this.log);
    for (const t of config.tables) this.tables.set(t.name, newTable(t, this.nexthops));
    const order = startOrder(config.protocols);
    for (const p of order) this.protocols.set(p.name, this.build(p));
    const controlLog = new RateLimitedLog(this.log, 10_000, undefined, 5);
    this.control = new ControlServer(
      {
        path: config.control.socket,
        mode: config.control.mode,
        ...(config.control.group !== undefined ? { group: config.control.group } : {}),
        sendTimeoutMs: config.control.sendTimeoutMs,
        onError: (m) => this.log.warn(m),
        onDisconnect: (id, reason, detail) => controlLog.write('warn', `control-${reason}`, `control client ${id} disconnected: ${detail}`),
      },
      (req, ctx) => this.answerControl(req, ctx),
    );
    await this.control.listen();
    await this.metrics.apply(config.metrics);
    // Routes files load while the kernel protocols open, dump and follow the load in their first
    // feed (a fill: Table.beginFill; on a restart their dump waits for the load instead); those
    // change nothing in the kernel before every file is in, so a bad line still stops the start
    // with the kernel untouched.
    const loads: Promise<void>[] = [];
    const checks: Promise<void>[] = [];
    let loaded: Promise<void> | undefined;
    try {
      for (const p of order) {
        // A SIGTERM during start: stop() is shutting down what started; start nothing more.
        if (this.stopping) break;
        const running = this.protocols.get(p.name)!;
        if (running.type === 'static' && running.proto.fills) {
          loads.push(this.startProtocol(running)); // the fill begins before this returns
          checks.push(running.proto.checked);
          continue;
        }
        if (running.type === 'kernel' && loads.length > 0) {
          loaded ??= allLoaded(loads);
          // Early adds once every file is known good (read whole), prunes once every file is in.
          running.proto.startBeside(loaded, allLoaded(checks));
        }
        await this.startProtocol(running);
      }
      loaded ??= allLoaded(loads);
      // A SIGTERM during start: the shutdown does not wait for a load (it may never end: a FIFO), nor does start.
      if (!this.stopping) await loaded;
    } catch (e) {
      // The operator asked to stop: not a start that failed.
      if (this.stopping) return;
      // A routes file's own error (a bad line: exit status 2) rather than the kernel protocol's refusal it caused.
      if (loaded !== undefined) await loaded;
      throw e;
    }
    if (this.stopping) return;
    this.ready = true;
    this.metrics.counts.ready((Date.now() - t0) / 1000);
    const status = this.statusLine();
    this.opts.notifier.ready(status);
    this.opts.notifier.startWatchdog();
    this.statusTimer = setInterval(() => this.opts.notifier.status(this.statusLine()), 10000);
    this.statusTimer.unref();
    this.log.info(`krtsync ready in ${Date.now() - t0} ms: ${status}`);
  }

  /**
   * Takes the instance lock of every kernel table, protocol number and family
   * the config manages that is not held yet. All or nothing: on a refusal the
   * locks taken by this call are released and the error names the holder.
   */
  private takeLocks(config: KrtConfig): void {
    if (this.locks.size === 0) InstanceLock.sweep(this.opts.lockDir ?? DEFAULT_LOCK_DIR);
    const taken: string[] = [];
    try {
      for (const { protocol, key } of kernelLockKeys(config)) {
        const id = describeKey(key);
        if (this.locks.has(id)) continue;
        const holder = { pid: process.pid, config: this.opts.configFile, protocol, socket: config.control.socket, since: this.startedAt.toISOString() };
        this.locks.set(id, InstanceLock.acquire(this.opts.lockDir ?? DEFAULT_LOCK_DIR, key, holder, this.opts.netns));
        taken.push(id);
      }
    } catch (e) {
      for (const id of taken) this.releaseLock(id);
      throw e;
    }
  }

  /** Releases the locks `config` does not need (all of them without a config). */
  private releaseLocks(config: KrtConfig | undefined): void {
    const wanted = new Set(config ? kernelLockKeys(config).map(({ key }) => describeKey(key)) : []);
    for (const id of [...this.locks.keys()]) if (!wanted.has(id)) this.releaseLock(id);
  }

  private releaseLock(id: string): void {
    this.locks.get(id)?.release();
    this.locks.delete(id);
  }

  /** Control socket counters (clients, refusals, disconnects by reason); zeros before it listens. */
  controlStats(): ControlStats {
    return this.control?.stats() ?? { clients: 0, accepted: 0, refused: 0, disconnected: { stalled: 0, idle: 0, 'request-timeout': 0 }, unreadBytes: 0 };
  }

  /** One line for STATUS= and `show status`. */
  statusLine(): string {
    let routes = 0;
    for (const t of this.tables.values()) routes += t.routeTotal;
    const kernel = [...this.protocols.values()].filter((p): p is Extract<RunningProtocol, { type: 'kernel' }> => p.type === 'kernel');
    let installed = 0;
    let failed = 0;
    for (const k of kernel) {
      const c = k.proto.counts();
      installed += c.installed;
      failed += c.failed;
    }
    return `${routes} routes in ${this.tables.size} tables; ${installed} installed in the kernel${failed ? `, ${failed} failed` : ''}`;
  }

  familiesOf(tableNames: readonly string[]): Map<Family, Table> {
    const m = new Map<Family, Table>();
    for (const name of tableNames) {
      const t = this.tables.get(name);
      const family = this.config?.tables.find((x) => x.name === name)?.family;
      if (t && family) m.set(family, t);
    }
    return m;
  }

  private build(p: ProtocolConfig): RunningProtocol {
    const tables = new TableSet(p.name, this.familiesOf(p.tables));
    const log = this.log;
    switch (p.type) {
      case 'static':
        // Routes on nexthop objects are deleted with their object at shutdown, fastest when most went in in address order.
        return { type: p.type, config: p, proto: new StaticProtocol(p, tables, log, { addressTail: this.config?.protocols.some((k) => k.type === 'kernel' && k.nexthopObjects !== 'off') ?? false }) };
      case 'api':
        return { type: p.type, config: p, proto: new ApiProtocol(p, tables, log) };
      case 'stream':
        return { type: p.type, config: p, proto: new StreamProtocol(p, tables, log) };
      case 'kernel':
        return { type: p.type, config: p, proto: createKernelProtocol(p, this.familiesOf(p.tables), log, this.opts.netns, this.metrics.kernelMetrics(p.name)) };
    }
  }

  private async startProtocol(p: RunningProtocol): Promise<void> {
    const t0 = Date.now();
    p.proto.init();
    await p.proto.start();
    // A kernel protocol a shutdown stopped during its start resolves without being up.
    if (p.proto.state === 'up') this.log.info(`protocol ${p.config.name} (${p.type}) up in ${Date.now() - t0} ms`, { protocol: p.config.name });
  }

  /** SIGHUP or `krtsync reload`: validate everything first, then apply the difference. */
  reload(): Promise<string[]> {
    return this.enqueue(async () => {
      this.opts.notifier.reloading();
      try {
        const changes = await this.applyReload();
        this.metrics.counts.reloaded(true);
        return changes;
      } catch (e) {
        this.metrics.counts.reloaded(false);
        this.log.error(`reload failed, the running config stays: ${(e as Error).message}`);
        throw e;
      } finally {
        this.opts.notifier.ready(this.statusLine());
      }
    });
  }

  private async applyReload(): Promise<string[]> {
    // A shutdown stops the reload's reads (stop(): a FIFO routes file may wait for its writer for ever).
    const reading = (this.reloadReads = new AbortController());
    const fifos = new Map<string, ParsedRoutes>();
    let next: KrtConfig;
    try {
      next = withImplicitApi(await validateConfig(this.opts.configFile, { routesFiles: true, fifos, stop: reading.signal }));
    } finally {
      this.reloadReads = undefined;
    }
    // A kernel table another daemon manages fails the reload before anything changes.
    this.takeLocks(next);
    try {
      return await this.applyValidReload(next, fifos);
    } finally {
      this.releaseLocks(this.config); // what the config in force no longer manages (or, after a failure, never took over)
    }
  }

  private async applyValidReload(next: KrtConfig, fifos: ReadonlyMap<string, ParsedRoutes>): Promise<string[]> {
    const cur = this.config!;
    const changes: string[] = [];
    if (JSON.stringify(next.control) !== JSON.stringify(cur.control)) {
      changes.push('control socket settings changed: they take effect at the next restart');
    }
    if (JSON.stringify(next.nexthopTracking) !== JSON.stringify(cur.nexthopTracking)) {
      changes.push('nexthop_tracking changed: it takes effect at the next restart');
    }
    // First of all changes: a listener that cannot move fails the reload before anything else changed.
    const moved = await this.metrics.apply(next.metrics);
    if (moved) changes.push(moved);
    if (next.logLevel !== cur.logLevel && this.opts.log.level !== undefined) {
      this.opts.log.level = next.logLevel;
      changes.push(`log level ${next.logLevel}`);
    }
    const tableChanged = (name: string): boolean => {
      const a = cur.tables.find((t) => t.name === name);
      const b = next.tables.find((t) => t.name === name);
      return !a || !b || a.family !== b.family;
    };
    // Protocols that go away or must restart stop first (kernel ones withdraw their routes).
    const nextByName = new Map(next.protocols.map((p) => [p.name, p]));
    const restart = new Set<string>();
    for (const [name, running] of [...this.protocols].reverse()) {
      const want = nextByName.get(name);
      const mustRestart =
        !want ||
        want.type !== running.type ||
        JSON.stringify(want.tables) !== JSON.stringify(running.config.tables) ||
        want.tables.some(tableChanged) ||
        !(running.proto as Protocol<ProtocolConfig>).reconfigure(want);
      if (!mustRestart) continue;
      await running.proto.shutdown();
      if (running.type === 'kernel') this.metrics.counts.forgetKernel(name);
      this.protocols.delete(name);
      if (want) restart.add(name);
      else changes.push(`protocol ${name} removed`);
    }
    // Tables: drop the ones no longer configured (or whose family changed), add new ones.
    for (const t of cur.tables) {
      if (tableChanged(t.name)) {
        this.tables.get(t.name)?.stop('table removed by reload');
        this.tables.delete(t.name);
        changes.push(`table ${t.name} removed`);
      }
    }
    for (const t of next.tables) {
      if (!this.tables.has(t.name)) {
        this.tables.set(t.name, newTable(t, this.nexthops));
        changes.push(`table ${t.name} added`);
      } else if (t.journalLimit !== cur.tables.find((x) => x.name === t.name)?.journalLimit) {
        this.tables.get(t.name)!.setMaxBehind(t.journalLimit);
        changes.push(`table ${t.name}: journal_limit ${t.journalLimit ?? 'auto'}`);
      }
    }
    this.config = next;
    // Start new and restarted protocols in start order; reload static ones that stayed.
    for (const p of startOrder(next.protocols)) {
      const running = this.protocols.get(p.name);
      if (running) {
        running.config = p as never;
        if (running.type === 'static') {
          running.proto.usePreread(fifos.get(p.name));
          await running.proto.reload(false);
          changes.push(`protocol ${p.name} reloaded (${running.proto.lastLoad?.routes ?? 0} routes, ${running.proto.lastLoad?.pruned ?? 0} withdrawn)`);
        }
        continue;
      }
      const built = this.build(p);
      if (built.type === 'static') built.proto.usePreread(fifos.get(p.name));
      this.protocols.set(p.name, built);
      await this.startProtocol(built);
      changes.push(`protocol ${p.name} ${restart.has(p.name) ? 'restarted' : 'added'}`);
    }
    this.log.info(`reloaded ${this.opts.configFile}: ${changes.length ? changes.join('; ') : 'no changes'}`);
    return changes;
  }

  /** SIGTERM/SIGINT: kernel protocols withdraw (unless persist), then sources, then the socket. Idempotent. */
  stop(reason: string): Promise<void> {
    // A reload still reading its routes files (a FIFO's writer may never come) ends now, having changed nothing.
    this.reloadReads?.abort();
    this.stopping ??= this.enqueue(async () => {
      this.log.info(`shutting down (${reason})`);
      this.opts.notifier.stopping(`shutting down: ${this.statusLine()}`);
      if (this.statusTimer) clearInterval(this.statusTimer);
      const all = [...this.protocols.values()];
      for (const p of all.filter((x) => x.type === 'kernel')) await this.stopProtocol(p);
      // Nothing reads the tables now: the sources need not withdraw their routes one by one.
      for (const t of this.tables.values()) t.discard('krtsync is stopping');
      for (const p of all.filter((x) => x.type !== 'kernel')) await this.stopProtocol(p);
      this.nexthops?.close();
      await this.control?.close();
      await this.metrics.close();
      this.releaseLocks(undefined);
      this.opts.notifier.close();
      this.log.info('krtsync stopped');
    });
    return this.stopping;
  }

  private async stopProtocol(p: RunningProtocol): Promise<void> {
    try {
      await p.proto.shutdown();
    } catch (e) {
      this.log.error(`protocol ${p.config.name}: shutdown failed: ${(e as Error).message}`, { protocol: p.config.name });
    }
  }

  /** Answers a control request, counting it by command and result for metrics. */
  private async answerControl(req: ControlRequest, ctx: ControlContext): Promise<unknown> {
    const command = CONTROL_COMMANDS.includes(req.command) ? req.command : 'unknown';
    try {
      const result = await handleControlRequest(this, req, ctx);
      this.metrics.counts.controlRequest(command, 'ok');
      return result;
    } catch (e) {
      this.metrics.counts.controlRequest(command, e instanceof KrtError ? e.code : 'KRT_ERR_INTERNAL');
      throw e;
    }
  }

  protocolState(name: string): ProtocolState | undefined {
    return this.protocols.get(name)?.proto.state;
  }

  /** The api protocol for `route add|del`: the named one, or the only/implicit one. */
  apiProtocol(name: string | undefined): ApiProtocol {
    const apis = [...this.protocols.values()].filter((p): p is Extract<RunningProtocol, { type: 'api' }> => p.type === 'api');
    const found = name === undefined ? (apis.find((p) => p.config.name === IMPLICIT_API) ?? apis[0]) : apis.find((p) => p.config.name === name);
    if (!found) throw new KrtError('KRT_ERR_NO_PROTOCOL', name === undefined ? 'no api protocol is configured' : `no api protocol named "${name}" (api protocols: ${apis.map((a) => a.config.name).join(', ') || 'none'})`);
    return found.proto;
  }

  streamProtocol(name: string | undefined): StreamProtocol {
    const streams = [...this.protocols.values()].filter((p): p is Extract<RunningProtocol, { type: 'stream' }> => p.type === 'stream');
    const found = name === undefined ? streams[0] : streams.find((p) => p.config.name === name);
    if (!found) {
      throw new KrtError('KRT_ERR_NO_PROTOCOL', name === undefined ? 'no stream protocol is configured (add one with type: stream)' : `no stream protocol named "${name}" (stream protocols: ${streams.map((s) => s.config.name).join(', ') || 'none'})`);
    }
    return found.proto;
  }

  parsePrefixArg(s: unknown): ReturnType<typeof parsePrefix> | undefined {
    if (s === undefined || s === null) return undefined;
    if (typeof s !== 'string') throw new KrtError('KRT_ERR_BAD_REQUEST', '"prefix" must be a string');
    return parsePrefix(s);
  }
}

function newTable(t: TableConfig, nexthops: NextHopTracking | undefined): Table {
  return new Table({ name: t.name, ...(t.journalLimit !== undefined ? { maxBehind: t.journalLimit } : {}), ...(nexthops ? { nexthops: nexthops.tracker } : {}) });
}

/** Every load done; the first failure otherwise (handled where it is awaited, never left unhandled). */
function allLoaded(loads: readonly Promise<void>[]): Promise<void> {
  const all = Promise.all(loads).then(() => undefined);
  all.catch(() => undefined);
  return all;
}

/** Sources before kernel protocols, config order otherwise. */
function startOrder(ps: readonly ProtocolConfig[]): ProtocolConfig[] {
  return [...ps.filter((p) => p.type !== 'kernel'), ...ps.filter((p) => p.type === 'kernel')];
}

function withImplicitApi(c: KrtConfig): KrtConfig {
  if (c.protocols.some((p) => p.type === 'api') || c.protocols.some((p) => p.name === IMPLICIT_API)) return c;
  const tables = [4, 6].map((f) => c.tables.find((t) => t.family === f)?.name).filter((n): n is string => n !== undefined);
  return { ...c, protocols: [...c.protocols, { type: 'api', name: IMPLICIT_API, tables, preference: 200, stateFile: undefined }] };
}
