/**
 * The static protocol: routes from the config file and from a routes file.
 *
 * Every load (start, and each reload) is one refresh cycle of the protocol's
 * source: mark its routes stale, announce everything the config says, prune
 * what was not announced. An unchanged route is therefore untouched (no
 * journal item, nothing for the kernel), a removed one is withdrawn, a
 * changed one replaced. A routes file with any bad line is rejected as a
 * whole before anything is announced from it when `validateFirst` is set
 * (reload); at start the daemon has not synced the kernel yet, so the file
 * is read once and a bad line aborts the start.
 */
import type { StaticProtocolConfig } from '../../config/config';
import { RouteSource } from '../../route';
import type { Logger } from '../logger';
import { PROTOCOL_TRANSITIONS, StateMachine, type Protocol, type ProtocolState } from '../protocol';
import type { TableSet } from '../table-set';
import { readRoutesFile } from './routes-file';

export class StaticProtocol implements Protocol<StaticProtocolConfig> {
  readonly source: RouteSource;
  private readonly fsm: StateMachine<ProtocolState>;
  private loads = Promise.resolve();
  lastLoad: { routes: number; pruned: number; at: Date } | undefined;

  constructor(
    private config: StaticProtocolConfig,
    private readonly tables: TableSet,
    private readonly log: Logger,
  ) {
    this.source = new RouteSource(config.name, config.preference);
    this.fsm = new StateMachine(`protocol ${config.name}`, 'down', PROTOCOL_TRANSITIONS);
  }

  get name(): string {
    return this.config.name;
  }

  get state(): ProtocolState {
    return this.fsm.state;
  }

  get routeCount(): number {
    return this.tables.routesOf(this.source);
  }

  init(): void {}

  async start(): Promise<void> {
    this.fsm.go('starting');
    try {
      await this.load(false);
    } catch (e) {
      this.fsm.go('stopping');
      this.tables.flush(this.source);
      this.fsm.go('down');
      throw e;
    }
    this.fsm.go('up');
  }

  /** Same source (preference and name unchanged): reload in place. Otherwise the daemon restarts us. */
  reconfigure(next: StaticProtocolConfig): boolean {
    if (next.preference !== this.config.preference || next.name !== this.config.name) return false;
    this.config = next;
    return true;
  }

  /**
   * Re-reads the config's routes and the routes file into the tables (one
   * refresh cycle). With validateFirst the file is checked completely before
   * anything is announced. Loads never overlap.
   */
  reload(validateFirst = true): Promise<void> {
    const run = this.loads.then(() => this.load(validateFirst));
    this.loads = run.catch(() => undefined);
    return run;
  }

  async shutdown(): Promise<void> {
    if (this.fsm.state === 'down') return;
    this.fsm.go('stopping');
    this.tables.flush(this.source);
    this.fsm.go('down');
  }

  private async load(validateFirst: boolean): Promise<void> {
    const { routes, routesFile } = this.config;
    if (routesFile !== undefined && validateFirst) await readRoutesFile(routesFile);
    const t0 = Date.now();
    this.tables.refreshBegin(this.source);
    let count = 0;
    for (const r of routes) {
      this.tables.announce(this.source, r.net, r.attrs);
      count++;
    }
    // If the file fails half way, nothing is pruned: what was there stays until a good load.
    if (routesFile !== undefined) count += await readRoutesFile(routesFile, (net, attrs) => this.tables.announce(this.source, net, attrs));
    const pruned = this.tables.refreshEnd(this.source);
    this.lastLoad = { routes: count, pruned, at: new Date() };
    this.log.info(`loaded ${count} routes${routesFile ? ` (routes file ${routesFile})` : ''}, ${pruned} withdrawn, in ${Date.now() - t0} ms`, { protocol: this.name });
  }
}
