/**
 * The stream protocol: routes from clients that send JSON lines (krtsync's
 * format or ExaBGP's) over the control socket (`krtsync feed`).
 *
 * Each client, and behind an ExaBGP client each BGP neighbor, is a source of
 * its own. When a client disconnects its routes stay for a grace period; if
 * it reconnects under the same name in time, its routes are marked stale
 * (refresh cycle) and the client re-announces; end-of-RIB prunes what it did
 * not re-announce, and so does the grace timer if no end-of-RIB comes. If it
 * does not come back, its routes are withdrawn when the grace period ends.
 * An ExaBGP neighbor going down withdraws that neighbor's routes at once, as
 * a BGP speaker would.
 *
 * A bad line is answered with an error naming its line number, and skipped:
 * it never drops the client's other routes or the connection.
 */
import type { Family } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { RouteSource } from '../../route';
import type { StreamProtocolConfig } from '../../config/config';
import { RateLimitedLog, type Logger } from '../logger';
import { PROTOCOL_TRANSITIONS, StateMachine, type Protocol, type ProtocolState } from '../protocol';
import type { TableSet } from '../table-set';
import { parseStreamLine, type StreamEvent, type StreamFormat } from './formats';

export interface StreamClientStats {
  client: string;
  format: StreamFormat;
  connected: boolean;
  lines: number;
  announces: number;
  withdraws: number;
  errors: number;
  routes: number;
}

/** What the control connection needs: lines in, feedback out, close. */
export interface StreamSession {
  onLine(line: string, lineNo: number): void;
  onClose(): void;
}

interface Peer {
  source: RouteSource;
  /** A refresh cycle is open (after a reconnect or peer-up) until end-of-RIB or the grace timer. */
  refreshing: boolean;
  staleTimer: NodeJS.Timeout | undefined;
}

interface Client {
  name: string;
  format: StreamFormat;
  connected: boolean;
  peers: Map<string, Peer>;
  graceTimer: NodeJS.Timeout | undefined;
  stats: Omit<StreamClientStats, 'client' | 'format' | 'connected' | 'routes'>;
}

export class StreamClientError extends KrtError {}

export class StreamProtocol implements Protocol<StreamProtocolConfig> {
  private readonly fsm: StateMachine<ProtocolState>;
  private readonly clients = new Map<string, Client>();
  private anonymous = 0;
  /** Connect and disconnect lines: any local member can open thousands of connections. */
  private readonly clientLog: RateLimitedLog;

  constructor(
    private config: StreamProtocolConfig,
    private readonly tables: TableSet,
    private readonly log: Logger,
  ) {
    this.fsm = new StateMachine(`protocol ${config.name}`, 'down', PROTOCOL_TRANSITIONS);
    this.clientLog = new RateLimitedLog(log, 10_000, undefined, 5);
  }

  get name(): string {
    return this.config.name;
  }

  get state(): ProtocolState {
    return this.fsm.state;
  }

  init(): void {}

  async start(): Promise<void> {
    this.fsm.go('starting');
    this.fsm.go('up');
  }

  reconfigure(next: StreamProtocolConfig): boolean {
    if (next.preference !== this.config.preference || next.name !== this.config.name) return false;
    this.config = next;
    return true;
  }

  async shutdown(): Promise<void> {
    if (this.fsm.state === 'down') return;
    this.fsm.go('stopping');
    for (const c of this.clients.values()) this.drop(c);
    this.clients.clear();
    this.fsm.go('down');
  }

  get routeCount(): number {
    let n = 0;
    for (const c of this.clients.values()) for (const p of c.peers.values()) n += this.tables.routesOf(p.source);
    return n;
  }

  stats(): StreamClientStats[] {
    return [...this.clients.values()].map((c) => ({
      client: c.name,
      format: c.format,
      connected: c.connected,
      ...c.stats,
      routes: [...c.peers.values()].reduce((n, p) => n + this.tables.routesOf(p.source), 0),
    }));
  }

  /**
   * A client connects. `name` makes reconnects recognizable (default: a
   * fresh anonymous name). `reply` sends feedback lines to the client.
   */
  connect(name: string | undefined, format: StreamFormat, reply: (msg: unknown) => void): StreamSession {
    if (this.fsm.state !== 'up') throw new StreamClientError('KRT_ERR_PROTOCOL_DOWN', `protocol ${this.name} is not up`);
    const clientName = name ?? `anonymous-${++this.anonymous}`;
    let c = this.clients.get(clientName);
    if (c?.connected) throw new StreamClientError('KRT_ERR_CLIENT_CONNECTED', `a client named "${clientName}" is already connected to ${this.name}`);
    if (c) {
      clearTimeout(c.graceTimer);
      c.graceTimer = undefined;
      c.connected = true;
      c.format = format;
      for (const p of c.peers.values()) this.beginRefresh(c, p);
      this.clientLog.write('info', 'connect', `stream client ${clientName} reconnected; its ${this.routesOfClient(c)} routes are stale until end-of-RIB`, { protocol: this.name });
    } else {
      c = { name: clientName, format, connected: true, peers: new Map(), graceTimer: undefined, stats: { lines: 0, announces: 0, withdraws: 0, errors: 0 } };
      this.clients.set(clientName, c);
      this.clientLog.write('info', 'connect', `stream client ${clientName} connected (${format})`, { protocol: this.name });
    }
    const client = c;
    return {
      onLine: (line, lineNo) => {
        client.stats.lines++;
        if (line.trim() === '') return;
        try {
          for (const ev of parseStreamLine(client.format, line)) this.apply(client, ev);
        } catch (e) {
          client.stats.errors++;
          const err = e instanceof KrtError ? { code: e.code, message: e.message } : { code: 'KRT_ERR_INTERNAL', message: String(e) };
          reply({ ok: false, line: lineNo, error: err });
        }
      },
      onClose: () => this.disconnected(client),
    };
  }

  private routesOfClient(c: Client): number {
    let n = 0;
    for (const p of c.peers.values()) n += this.tables.routesOf(p.source);
    return n;
  }

  private peer(c: Client, peer: string): Peer {
    let p = c.peers.get(peer);
    if (!p) {
      p = { source: new RouteSource(peer ? `${this.name}/${c.name}/${peer}` : `${this.name}/${c.name}`, this.config.preference), refreshing: false, staleTimer: undefined };
      c.peers.set(peer, p);
    }
    return p;
  }

  private apply(c: Client, ev: StreamEvent): void {
    switch (ev.kind) {
      case 'announce':
        if (!this.tables.has(ev.net.family)) throw new StreamClientError('KRT_ERR_NO_TABLE', `protocol ${this.name} has no IPv${ev.net.family} table for ${ev.net}`);
        this.tables.announce(this.peer(c, ev.peer).source, ev.net, ev.attrs);
        c.stats.announces++;
        return;
      case 'withdraw': {
        const p = c.peers.get(ev.peer);
        if (p && this.tables.has(ev.net.family)) this.tables.withdraw(p.source, ev.net);
        c.stats.withdraws++;
        return;
      }
      case 'eor': {
        const p = c.peers.get(ev.peer);
        if (p) this.endRefresh(c, p, ev.family);
        return;
      }
      case 'peer-up': {
        const p = c.peers.get(ev.peer);
        if (p) this.beginRefresh(c, p);
        return;
      }
      case 'peer-down': {
        const p = c.peers.get(ev.peer);
        if (!p) return;
        clearTimeout(p.staleTimer);
        p.refreshing = false;
        const n = this.tables.flush(p.source);
        if (n) this.log.info(`stream client ${c.name}: neighbor ${ev.peer} down, ${n} routes withdrawn`, { protocol: this.name });
        return;
      }
      default: {
        const never: never = ev;
        throw new Error(`unknown stream event ${JSON.stringify(never)}`);
      }
    }
  }

  /** Marks the peer's routes stale; end-of-RIB or the grace timer prunes what was not re-announced. */
  private beginRefresh(c: Client, p: Peer): void {
    clearTimeout(p.staleTimer);
    this.tables.refreshBegin(p.source);
    p.refreshing = true;
    p.staleTimer = setTimeout(() => this.endRefresh(c, p, undefined), this.config.graceMs);
    p.staleTimer.unref();
  }

  private endRefresh(c: Client, p: Peer, family: Family | undefined): void {
    if (!p.refreshing) return;
    if (family === undefined || this.tables.tables.length === 1) {
      clearTimeout(p.staleTimer);
      p.refreshing = false;
      const n = this.tables.refreshEnd(p.source);
      if (n) this.log.info(`stream client ${c.name}: end of RIB, ${n} stale routes withdrawn`, { protocol: this.name });
    } else if (this.tables.has(family)) {
      // Per-family end-of-RIB: prune that family's table; the refresh stays open for the others.
      const n = this.tables.refreshEnd(p.source, family);
      if (n) this.log.info(`stream client ${c.name}: end of RIB for IPv${family}, ${n} stale routes withdrawn`, { protocol: this.name });
    }
  }

  private disconnected(c: Client): void {
    if (!c.connected) return;
    c.connected = false;
    if (this.fsm.state !== 'up') return;
    this.clientLog.write('info', 'disconnect', `stream client ${c.name} disconnected; its ${this.routesOfClient(c)} routes stay for ${this.config.graceMs} ms`, { protocol: this.name });
    c.graceTimer = setTimeout(() => {
      this.drop(c);
      this.clients.delete(c.name);
    }, this.config.graceMs);
    c.graceTimer.unref();
  }

  private drop(c: Client): void {
    clearTimeout(c.graceTimer);
    let n = 0;
    for (const p of c.peers.values()) {
      clearTimeout(p.staleTimer);
      n += this.tables.flush(p.source);
    }
    if (n) this.clientLog.write('info', 'withdrawn', `stream client ${c.name}: ${n} routes withdrawn`, { protocol: this.name });
  }
}
