/**
 * The api protocol: routes added and removed at run time through the control
 * socket (`krtsync route add|del`). Volatile unless a state file is set: then
 * every change is written to it (atomically: a temporary file renamed over the
 * old one) and the routes come back on start, so a restart keeps them.
 *
 * A route line is parsed and checked completely before anything changes; a
 * bad line is an error to the caller and changes nothing.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parsePrefix, prefixKey, type Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { RouteSource, type RouteAttrs } from '../../route';
import { parseRouteLine, RouteSyntaxError } from '../../config/route-syntax';
import type { ApiProtocolConfig } from '../../config/config';
import type { Logger } from '../logger';
import { PROTOCOL_TRANSITIONS, StateMachine, type Protocol, type ProtocolState } from '../protocol';
import type { TableSet } from '../table-set';

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

  init(): void {}

  async start(): Promise<void> {
    this.fsm.go('starting');
    const file = this.config.stateFile;
    if (file !== undefined) {
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn(`cannot read state file ${file}: ${(e as Error).message}`, { protocol: this.name });
      }
      let n = 0;
      for (const [i, line] of text.split('\n').entries()) {
        if (line.trim() === '') continue;
        try {
          this.put(line);
          n++;
        } catch (e) {
          this.log.warn(`state file ${file}:${i + 1}: ${(e as Error).message}; route skipped`, { protocol: this.name });
        }
      }
      if (n) this.log.info(`restored ${n} routes from ${file}`, { protocol: this.name });
    }
    this.fsm.go('up');
  }

  reconfigure(next: ApiProtocolConfig): boolean {
    if (next.preference !== this.config.preference || next.name !== this.config.name) return false;
    this.config = next;
    this.save();
    return true;
  }

  async shutdown(): Promise<void> {
    if (this.fsm.state === 'down') return;
    this.fsm.go('stopping');
    this.tables.flush(this.source);
    this.fsm.go('down');
  }

  /** Adds or replaces a route given as a route line. Returns the canonical line. */
  add(line: string): string {
    const e = this.put(line);
    this.save();
    return `${e.net} ${e.attrs}`;
  }

  /** Removes the route for a prefix; false when there was none. */
  del(prefix: string): boolean {
    let net: Prefix;
    try {
      net = parsePrefix(prefix);
    } catch (e) {
      throw new ApiRequestError('KRT_ERR_BAD_ROUTE', (e as Error).message);
    }
    const key = prefixKey(net);
    if (!this.routes.delete(key)) return false;
    this.tables.withdraw(this.source, net);
    this.save();
    return true;
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

  private save(): void {
    const file = this.config.stateFile;
    if (file === undefined) return;
    const tmp = `${file}.tmp`;
    try {
      writeFileSync(tmp, this.list().join('\n') + '\n', { mode: 0o640 });
      renameSync(tmp, file);
    } catch (e) {
      this.log.error(`cannot write state file ${file}: ${(e as Error).message}`, { protocol: this.name });
    }
  }
}
