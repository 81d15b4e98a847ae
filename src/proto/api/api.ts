/**
 * The api protocol: routes added and removed at run time through the control
 * socket (`krtsync route add|del`). Volatile unless a state file is set: then
 * every change is on disk before it is confirmed, and the routes come back on
 * start, so a restart keeps them (state-file.ts: checksummed records, group
 * commit, atomic rewrites).
 *
 * A route line is parsed and checked completely before anything changes; a
 * bad line is an error to the caller and changes nothing. A state file that
 * cannot be read, or holds anything wrong, stops the start (StateFileError):
 * it is never overwritten unread, and no route in it is dropped.
 */
import { parsePrefix, prefixKey, type Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { RouteSource, type RouteAttrs } from '../../route';
import { parseRouteLine, RouteSyntaxError } from '../../config/route-syntax';
import type { ApiProtocolConfig } from '../../config/config';
import type { Logger } from '../logger';
import { PROTOCOL_TRANSITIONS, StateMachine, type Protocol, type ProtocolState } from '../protocol';
import type { TableSet } from '../table-set';
import { readStateFile, StateFile, StateFileError } from './state-file';

export class ApiRequestError extends KrtError {}

interface Entry {
  net: Prefix;
  attrs: RouteAttrs;
  line: string;
}

export class ApiProtocol implements Protocol<ApiProtocolConfig> {
  readonly source: RouteSource;
  private readonly fsm: StateMachine<ProtocolState>;
  private readonly routes = new Map<number | string, Entry>();
  private stateFile: StateFile | undefined;

  constructor(
    private config: ApiProtocolConfig,
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
    return this.routes.size;
  }

  /** The open state file, if any (its write counts, for status). */
  get openStateFile(): StateFile | undefined {
    return this.stateFile;
  }

  init(): void {}

  async start(): Promise<void> {
    this.fsm.go('starting');
    const file = this.config.stateFile;
    if (file !== undefined) {
      const contents = readStateFile(file);
      for (const line of contents.lines) {
        try {
          this.put(line);
        } catch (e) {
          this.tables.flush(this.source);
          this.routes.clear();
          throw new StateFileError(file, undefined, `${(e as Error).message}; krtsync did not start and changed nothing (the route would be lost at the next write)`);
        }
      }
      if (contents.torn !== undefined) {
        this.log.warn(`state file ${file}: its last record was cut short by a crash before it was confirmed ("${contents.torn.slice(0, 200)}"); ignored`, { protocol: this.name });
      }
      if (contents.legacy) this.log.info(`state file ${file}: rewriting it in the checksummed format`, { protocol: this.name });
      const routes = this.routes;
      this.stateFile = new StateFile(file, { get size() { return routes.size; }, lines: () => this.list() });
      await this.stateFile.open(contents);
      if (contents.lines.length) this.log.info(`restored ${contents.lines.length} routes from ${file}`, { protocol: this.name });
    }
    this.fsm.go('up');
  }

  /** In place, unless the name, preference or state file changes: a new state file must be read, never overwritten. */
  reconfigure(next: ApiProtocolConfig): boolean {
    if (next.preference !== this.config.preference || next.name !== this.config.name || next.stateFile !== this.config.stateFile) return false;
    this.config = next;
    return true;
  }

  async shutdown(): Promise<void> {
    if (this.fsm.state === 'down') return;
    this.fsm.go('stopping');
    await this.stateFile?.close();
    this.stateFile = undefined;
    this.tables.flush(this.source);
    this.fsm.go('down');
  }

  /**
   * Adds or replaces a route given as a route line: in the table at once.
   * Returns the canonical line, and `saved`, which resolves once the change
   * is in the state file (at once without one) or rejects saying it is not.
   */
  add(line: string): { line: string; saved: Promise<void> } {
    this.mustBeUp();
    const e = this.put(line);
    const canonical = `${e.net} ${e.attrs}`;
    return { line: canonical, saved: this.save('+', e.line, canonical) };
  }

  /** Removes the route for a prefix; `found` false when there was none. */
  del(prefix: string): { found: boolean; saved: Promise<void> } {
    this.mustBeUp();
    let net: Prefix;
    try {
      net = parsePrefix(prefix);
    } catch (e) {
      throw new ApiRequestError('KRT_ERR_BAD_ROUTE', (e as Error).message);
    }
    const key = prefixKey(net);
    if (!this.routes.delete(key)) return { found: false, saved: Promise.resolve() };
    this.tables.withdraw(this.source, net);
    return { found: true, saved: this.save('-', net.toString(), `the removal of ${net}`) };
  }

  /** Until start has restored the state file, a change would be overwritten by it and not saved. */
  private mustBeUp(): void {
    if (this.fsm.state !== 'up') throw new ApiRequestError('KRT_ERR_PROTOCOL_DOWN', `protocol ${this.name} is ${this.fsm.state}; try again once it is up`);
  }

  list(): string[] {
    return [...this.routes.values()].map((e) => e.line);
  }

  private put(line: string): Entry {
    let parsed: { net: Prefix; attrs: RouteAttrs };
    try {
      parsed = parseRouteLine(line);
    } catch (e) {
      if (e instanceof RouteSyntaxError) throw new ApiRequestError('KRT_ERR_BAD_ROUTE', `${line}: ${e.message} (column ${e.column})`);
      throw e;
    }
    if (!this.tables.has(parsed.net.family)) throw new ApiRequestError('KRT_ERR_NO_TABLE', `protocol ${this.name} has no IPv${parsed.net.family} table`);
    const entry = { ...parsed, line: line.trim().replace(/\s+/g, ' ') };
    this.tables.announce(this.source, parsed.net, parsed.attrs);
    this.routes.set(prefixKey(parsed.net), entry);
    return entry;
  }

  private save(op: '+' | '-', text: string, what: string): Promise<void> {
    const sf = this.stateFile;
    if (!sf) return Promise.resolve();
    return sf.change(op, text).catch((e: Error) => {
      const msg = `${what} is in effect, but writing state file ${sf.path} failed (${e.message}); it is not saved until a later change rewrites the file`;
      this.log.error(msg, { protocol: this.name });
      throw new ApiRequestError('KRT_ERR_STATE_FILE', msg);
    });
  }
}
