/**
 * The static protocol: routes from the config file and from a routes file.
 *
 * Every load (start, and each reload) is one refresh cycle of the protocol's
 * source: mark its routes stale, announce everything the config says, prune
 * what was not announced. An unchanged route is therefore untouched (no
 * journal item, nothing for the kernel), a removed one is withdrawn, a
 * changed one replaced. A routes file with any bad line is rejected as a
 * whole before anything is announced from it: on reload it is validated
 * first (`validateFirst`); at start it is read whole into columns
 * (parseRoutesFile), then announced in the kernel's trie-spread order (on
 * nexthop objects a quarter so, the rest in address order: routes-file.ts),
 * in chunks. The start's load is a fill of the tables: the daemon starts its
 * kernel protocols beside it, and they change nothing in the kernel before
 * the file is known good (`checked`) nor prune before it is in (daemon.ts).
 * A shutdown stops a load at its next chunk (a read, or an announcing turn):
 * nothing more goes into the tables, nothing is pruned, and the load ends
 * without an error (the start's `checked` rejects if the file was not read whole).
 */
import type { StaticProtocolConfig } from '../../config/config';
import type { Prefix } from '../../lib/addr';
import { RouteSource, type RouteAttrs } from '../../route';
import type { Logger } from '../logger';
import { PROTOCOL_TRANSITIONS, StateMachine, type Protocol, type ProtocolState } from '../protocol';
import type { TableSet } from '../table-set';
import { parseRoutesFile, readRoutesFile, type ParsedRoutes } from './routes-file';

export class StaticProtocol implements Protocol<StaticProtocolConfig> {
  readonly source: RouteSource;
  private readonly fsm: StateMachine<ProtocolState>;
  private loads = Promise.resolve();
  /** Aborted by shutdown(): a load in progress stops at its next chunk. */
  private stop = new AbortController();
  /** The routes file as the reload's validation read it (a FIFO: usePreread), for the next load. */
  private preread: ParsedRoutes | undefined;
  lastLoad: { routes: number; pruned: number; at: Date } | undefined;
  /** Settles once the start's input is known good (see `checked`). */
  private check: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };

  constructor(
    private config: StaticProtocolConfig,
    private readonly tables: TableSet,
    private readonly log: Logger,
    private readonly opts: { readonly addressTail?: boolean } = {},
  ) {
    this.source = new RouteSource(config.name, config.preference);
    this.fsm = new StateMachine(`protocol ${config.name}`, 'down', PROTOCOL_TRANSITIONS);
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // awaited by whoever asks for it (the daemon); start() throws the error itself
    this.check = { promise, resolve, reject };
  }

  /**
   * Resolves once the start's routes file is known to be good: it is read whole before its first
   * route is announced, so a kernel protocol started beside the load may add routes while the
   * announcing runs. Rejects with the file's error.
   */
  get checked(): Promise<void> {
    return this.check.promise;
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

  /**
   * Loads the routes and the routes file. With a routes file the load is a fill of the tables
   * (Table.beginFill), begun before start() first awaits: a kernel protocol started beside it
   * follows the load in its first feed and is not `ready` before the end of it.
   */
  async start(): Promise<void> {
    this.fsm.go('starting');
    if (this.stop.signal.aborted) this.stop = new AbortController();
    const stop = this.stop.signal;
    const endFill = this.config.routesFile !== undefined ? this.tables.beginFill() : undefined;
    try {
      await this.load(false, true);
      if (stop.aborted) this.check.reject(new Error(`protocol ${this.name} stopped before its routes file was read`));
      else this.check.resolve();
    } catch (e) {
      this.check.reject(e);
      if (this.fsm.state === 'starting') {
        this.fsm.go('stopping');
        this.tables.flush(this.source);
        this.fsm.go('down');
      }
      throw e;
    } finally {
      endFill?.();
    }
    // A shutdown during the load (a SIGTERM does not wait for it) has taken the protocol down already.
    if (this.fsm.state === 'starting') this.fsm.go('up');
  }

  /** The protocol loads a routes file at start (a long fill a kernel protocol may start beside). */
  get fills(): boolean {
    return this.config.routesFile !== undefined;
  }

  /**
   * The next load (the reload's, or the start of a protocol a reload adds or restarts) announces
   * `parsed`, the routes file as read whole by the reload's validation, instead of reading it: a
   * FIFO gives each read what one writer wrote, so it is read once (daemon/validate.ts).
   */
  usePreread(parsed: ParsedRoutes | undefined): void {
    this.preread = parsed;
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
    this.stop.abort();
    this.tables.flush(this.source);
    this.fsm.go('down');
  }

  private async load(validateFirst: boolean, starting = false): Promise<void> {
    const { routes, routesFile } = this.config;
    const stop = this.stop.signal;
    const stopped = (): boolean => {
      if (stop.aborted) this.log.info(`load stopped by the shutdown${routesFile ? ` (routes file ${routesFile})` : ''}`, { protocol: this.name });
      return stop.aborted;
    };
    const preread = routesFile !== undefined ? this.preread : undefined;
    this.preread = undefined;
    if (routesFile !== undefined && validateFirst && preread === undefined) await readRoutesFile(routesFile, undefined, undefined, stop);
    if (stopped()) return;
    const t0 = Date.now();
    // At start the file is read whole first (one read, into columns): known good before its first
    // route is announced, sized, and announced in the kernel's trie-spread order. So is a FIFO the
    // reload's validation read (usePreread).
    const parsed = preread ?? (starting && routesFile !== undefined ? await parseRoutesFile(routesFile, stop) : undefined);
    if (stopped()) return;
    const readIn = Date.now() - t0;
    if (parsed !== undefined) {
      // Room for every net at once: no rehash of the table's index on the way (kernel protocols size theirs by it too).
      this.tables.reserve({ v4: parsed.v4Count, v6: parsed.v6Count });
      this.check.resolve();
    }
    this.tables.refreshBegin(this.source);
    let count = 0;
    for (const r of routes) {
      this.tables.announce(this.source, r.net, r.attrs);
      count++;
    }
    const announce = (net: Prefix, attrs: RouteAttrs): void => this.tables.announce(this.source, net, attrs);
    if (parsed !== undefined) {
      // In chunks: a kernel protocol following the fill takes each in its feed and adds while the next is announced.
      const v4 = (word: number, len: number, attrs: RouteAttrs): void => this.tables.announce4(this.source, word, len, attrs);
      const warm = (words: Int32Array, lens: Uint8Array, n: number): void => this.tables.warm4(words, lens, n);
      await parsed.forEach(v4, announce, ANNOUNCE_CHUNK, this.opts.addressTail === true, stop, warm);
      count += parsed.v4Count + parsed.v6Count;
    } else if (routesFile !== undefined) {
      // If the file fails half way, nothing is pruned: what was there stays until a good load.
      count += await readRoutesFile(routesFile, announce, undefined, stop);
    }
    // Stopped half way: nothing pruned (a file read in part says nothing of the routes it did not reach).
    if (stopped()) return;
    const pruned = this.tables.refreshEnd(this.source);
    this.lastLoad = { routes: count, pruned, at: new Date() };
    const read = parsed !== undefined ? `, read in ${readIn} ms` : '';
    this.log.info(`loaded ${count} routes${routesFile ? ` (routes file ${routesFile}${read})` : ''}, ${pruned} withdrawn, in ${Date.now() - t0} ms`, { protocol: this.name });
  }
}

/** Routes a start announces between two turns of the event loop. */
const ANNOUNCE_CHUNK = 16384;
