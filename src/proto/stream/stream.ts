/**
 * The stream protocol: routes from clients that send JSON lines (krtsync's
 * format or ExaBGP's) over the control socket (`krtsync feed`).
 *
 * Each client, and behind a client each BGP neighbour, is a peer with a
 * source of its own (indexed: a neighbour going down costs what it had).
 * When a client disconnects its routes stay for a grace period; if it
 * reconnects under the same name in time, its routes are marked stale
 * (refresh cycle) and the client re-announces; end-of-RIB prunes what it did
 * not re-announce, and so does the grace timer if no end-of-RIB comes. If it
 * does not come back, its routes are withdrawn when the grace period ends. A
 * neighbour going down withdraws its routes at once, as a BGP speaker would.
 *
 * Operator control: a preference per neighbour, an import filter, import
 * limits (limits.ts; both applied on the announce path, announce.ts), the
 * startup hold (startup-hold.ts) that makes two neighbours loading at once
 * give one kernel install per prefix, and flap damping per source
 * (source-damping.ts): a source that keeps failing and coming back has its
 * return suppressed, its routes staged out of the table.
 *
 * Bounded: a neighbour is an address (never an arbitrary string; the
 * control socket's `feed` bounds client names), a client has at most
 * neighbors_per_client neighbours at once, a neighbour that is down and
 * has no routes is forgotten, a client whose grace ended or that left
 * nothing behind is forgotten, and the table forgets a source with its last
 * route. Nothing grows with the number of clients or names seen over time.
 *
 * A bad line is answered with an error naming its line number, and skipped:
 * it never drops the client's other routes or the connection.
 */
import type { Family, Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { BgpAttrs, RouteSource, type RouteAttrs } from '../../route';
import type { StreamProtocolConfig } from '../../config/config';
import { RateLimitedLog, type Logger } from '../logger';
import { PROTOCOL_TRANSITIONS, StateMachine, type Protocol, type ProtocolState } from '../protocol';
import type { TableSet } from '../table-set';
import type { Table } from '../../table';
import { parseStreamLine, type StreamEvent, type StreamFormat } from './formats';
import { announceNets, type AnnounceContext } from './announce';
import { ImportLimits, type ClientCounters } from './limits';
import { familiesOf, streamOptions, type StreamOptions } from './options';
import { learn, neighborOf, StreamClientError, type Client, type Peer } from './peer';
import { SourceDamping, type SuppressedRoute } from './source-damping';
import { moveToNewSources, type SourceMoveContext } from './source-move';
import { StartupHold, type StagedNets } from './startup-hold';

export interface StreamClientStats extends ClientCounters {
  client: string;
  format: StreamFormat;
  connected: boolean;
  neighbors: number;
  routes: number;
}

/** What the control connection needs: lines in, feedback out, close. */
export interface StreamSession {
  onLine(line: string, lineNo: number): void;
  onClose(): void;
}

export { StreamClientError } from './peer';

export class StreamProtocol implements Protocol<StreamProtocolConfig> {
  private readonly fsm: StateMachine<ProtocolState>;
  private readonly clients = new Map<string, Client>();
  private anonymous = 0;
  private options: StreamOptions;
  private limits: ImportLimits;
  private hold: StartupHold | undefined;
  /** Routes of every client, staged ones included. */
  private routes = 0;
  /** Neighbour peers by their source's name: the startup hold's key for them. */
  private readonly byName = new Map<string, Peer>();
  /** Connect and disconnect lines: any local member can open thousands of connections. */
  private readonly clientLog: RateLimitedLog;
  /** Flap damping of the sources; undefined: `damping: false`. */
  private damping: SourceDamping | undefined;
  /** The announce path's view of this protocol (announce.ts). */
  private readonly announcing: AnnounceContext;

  constructor(
    private config: StreamProtocolConfig,
    private readonly tables: TableSet,
    private readonly log: Logger,
  ) {
    this.fsm = new StateMachine(`protocol ${config.name}`, 'down', PROTOCOL_TRANSITIONS);
    this.options = streamOptions(config);
    this.limits = new ImportLimits(config.limits, config.name, log);
    this.clientLog = new RateLimitedLog(log, 10_000, undefined, 5);
    this.damping = this.dampingFor(config);
    this.announcing = {
      name: config.name,
      tables,
      options: () => this.options,
      limits: () => this.limits,
      action: () => this.config.limits.action,
      routes: () => this.routes,
      count: (p) => this.count(p),
      held: (p, family) => this.held(p, family),
      suppressed: (p) => this.suppressed(p),
    };
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
    if (this.config.startupWaitMs > 0) {
      const families = familiesOf((f) => this.tables.has(f));
      this.hold = new StartupHold(families, this.options.expected, this.config.startupWaitMs, {
        apply: (peer, net, attrs) => this.releaseStaged(peer, net, attrs),
        released: (family, routes, peers, why, waiting) => {
          if (why === 'shutdown') return;
          const who = waiting.length ? `; not done: ${waiting.slice(0, 8).join(', ')}${waiting.length > 8 ? ` and ${waiting.length - 8} more` : ''}` : '';
          this.log.info(`IPv${family}: ${why === 'timeout' ? `startup wait of ${this.config.startupWaitMs} ms over` : 'every neighbour sent end-of-RIB'}: ${routes} routes of ${peers} neighbours go in at once${who}`, { protocol: this.name });
        },
      });
      this.log.info(`neighbours' routes wait for their end-of-RIB (at most ${this.config.startupWaitMs} ms) before their first install`, { protocol: this.name });
    }
    this.fsm.go('up');
  }

  /**
   * In place: grace, limits, the startup wait (for the next start); and
   * preferences, always_compare_med and the import filter, by moving each
   * neighbour's routes to a new source (sources are immutable: source-move.ts). Routes the
   * new filter rejects are withdrawn; routes the old one rejected come with
   * their next announcement (no copy of rejected routes is kept).
   */
  reconfigure(next: StreamProtocolConfig): boolean {
    if (next.name !== this.config.name) return false;
    const prev = this.config;
    const filterChanged = JSON.stringify(next.importFilter?.value) !== JSON.stringify(prev.importFilter?.value);
    this.config = next;
    if (filterChanged || JSON.stringify(next.damping) !== JSON.stringify(prev.damping)) {
      // Suppressed routes go in now (the moves below filter them): damping starts over with the new settings.
      this.damping?.releaseAll(false);
      this.damping = this.dampingFor(next);
    }
    this.options = streamOptions(next);
    this.limits = this.limits.reconfigured(next.limits);
    const move: SourceMoveContext = { tables: this.tables, importFilter: this.options.importFilter, sourceFor: (c, key) => this.sourceFor(c, key), change: (c, p, work) => this.change(c, p, work), hold: this.hold, peerNamed: (name) => this.byName.get(name) };
    const { moved, dropped } = moveToNewSources(this.clients.values(), move, filterChanged);
    if (moved || dropped) this.log.info(`reconfigured: ${moved} routes moved to their new settings, ${dropped} withdrawn by the new import filter`, { protocol: this.name });
    return true;
  }

  async shutdown(): Promise<void> {
    if (this.fsm.state === 'down') return;
    this.fsm.go('stopping');
    this.hold?.releaseAll('shutdown');
    this.hold = undefined;
    this.damping?.releaseAll(true);
    for (const c of this.clients.values()) {
      this.drop(c);
      c.hangUp?.();
    }
    this.clients.clear();
    this.fsm.go('down');
  }

  get routeCount(): number {
    return this.routes;
  }

  /** Counters for `show protocols` (and a metrics layer). */
  summary(): { routes: number; startupHold: boolean; limits: ReturnType<ImportLimits['summary']>; damping: ReturnType<SourceDamping['summary']> | undefined } {
    return { routes: this.routes, startupHold: this.hold?.active ?? false, limits: this.limits.summary(), damping: this.damping?.summary() };
  }

  /** Routes kept out of the tables while their source is suppressed (within `within`, when given), with the table each would go into: `show routes`. */
  forEachSuppressed(within: Prefix | undefined, fn: (r: SuppressedRoute, table: Table, preference: number) => void): void {
    this.damping?.forEachSuppressed(within, (r) => {
      const p = this.byName.get(r.source);
      if (p && this.tables.has(r.net.family)) fn(r, this.tables.table(r.net.family), p.source.preference);
    });
  }

  stats(): StreamClientStats[] {
    return [...this.clients.values()].map((c) => ({
      client: c.name,
      format: c.format,
      connected: c.connected,
      ...c.stats,
      neighbors: [...c.peers.keys()].filter((k) => k !== '').length,
      routes: c.routes,
    }));
  }

  /**
   * A client connects. `name` makes reconnects recognizable (default: a
   * fresh anonymous name). `reply` sends feedback lines to the client;
   * `hangUp` closes its connection (limit action disconnect, shutdown).
   */
  connect(name: string | undefined, format: StreamFormat, reply: (msg: unknown) => void, hangUp?: () => void): StreamSession {
    if (this.fsm.state !== 'up') throw new StreamClientError('KRT_ERR_PROTOCOL_DOWN', `protocol ${this.name} is not up`);
    const clientName = name ?? `anonymous-${++this.anonymous}`;
    let c = this.clients.get(clientName);
    if (c?.connected) throw new StreamClientError('KRT_ERR_CLIENT_CONNECTED', `a client named "${clientName}" is already connected to ${this.name}`);
    if (c) {
      clearTimeout(c.graceTimer);
      c.graceTimer = undefined;
      c.connected = true;
      c.format = format;
      c.hangUp = hangUp;
      for (const p of c.peers.values()) this.beginRefresh(c, p);
      this.clientLog.write('info', 'connect', `stream client ${clientName} reconnected; its ${c.routes} routes are stale until end-of-RIB`, { protocol: this.name });
    } else {
      c = { name: clientName, format, connected: true, dropped: false, overLimit: false, peers: new Map(), routes: 0, graceTimer: undefined, hangUp, stats: ImportLimits.counters() };
      this.clients.set(clientName, c);
      this.clientLog.write('info', 'connect', `stream client ${clientName} connected (${format})`, { protocol: this.name });
    }
    const client = c;
    return {
      onLine: (line, lineNo) => {
        if (client.dropped || !client.connected) return;
        client.stats.lines++;
        if (line.trim() === '') return;
        const refusedBefore = client.stats.refused;
        try {
          for (const ev of parseStreamLine(client.format, line)) {
            this.apply(client, ev);
            if (client.overLimit) {
              // Outside the event's own bookkeeping (change()), which a drop inside it would count twice.
              this.drop(client);
              this.clients.delete(client.name);
              client.hangUp?.();
              return;
            }
          }
          if (client.stats.refused > refusedBefore) throw this.limits.lineError(client.stats.refused - refusedBefore);
        } catch (e) {
          client.stats.errors++;
          const err = e instanceof KrtError ? { code: e.code, message: e.message } : { code: 'KRT_ERR_INTERNAL', message: String(e) };
          reply({ ok: false, line: lineNo, error: err });
        }
      },
      onClose: () => this.disconnected(client),
    };
  }

  // ------------------------------------------------------------ peers

  private sourceFor(c: Client, key: string): RouteSource {
    const preference = this.options.neighbor(key)?.preference ?? this.config.preference;
    return new RouteSource(key ? `${this.name}/${c.name}/${key}` : `${this.name}/${c.name}`, preference, { alwaysCompareMed: this.config.alwaysCompareMed, indexed: true });
  }

  private peer(c: Client, key: string): Peer {
    let p = c.peers.get(key);
    if (p) {
      p.down = false;
      this.damping?.returned(p.source.name);
      return p;
    }
    if (key !== '' && c.peers.size - (c.peers.has('') ? 1 : 0) >= this.config.limits.neighborsPerClient) {
      throw new StreamClientError('KRT_ERR_TOO_MANY_NEIGHBORS', `client ${c.name} has ${this.config.limits.neighborsPerClient} neighbours already (limits.neighbors_per_client); neighbor ${key} ignored`);
    }
    p = { key, source: this.sourceFor(c, key), info: {}, neighbor: undefined, down: false, refreshing: false, staleTimer: undefined };
    c.peers.set(key, p);
    this.byName.set(p.source.name, p);
    this.damping?.returned(p.source.name);
    return p;
  }

  /** Routes the peer has: in the tables, and staged by the startup hold or while suppressed. */
  private count(p: Peer): number {
    return this.tables.routesOf(p.source) + (this.hold && p.key !== '' ? this.hold.count(p.source.name) : 0) + (this.suppressed(p)?.size ?? 0);
  }

  /** The peer's routes staged while its source is suppressed (flap damping); undefined when it is not. */
  private suppressed(p: Peer): StagedNets | undefined {
    return this.damping?.staged(p.source.name);
  }

  /** The peer's routes were withdrawn as a whole (inside change()): a failure for flap damping when it had any, or was suppressed. */
  private failed(p: Peer, had: number): void {
    if ((had > 0 || this.suppressed(p)) && this.fsm.state === 'up') this.damping?.failed(p.source.name);
  }

  /** Flap damping; a source's suppression over, what it staged goes into the table (it was counted while staged). */
  private dampingFor(config: StreamProtocolConfig): SourceDamping | undefined {
    if (!config.damping) return undefined;
    return new SourceDamping(config.damping, { reuse: (name, staged) => staged.drain((net, attrs) => this.releaseStaged(name, net, attrs)) }, this.log, config.name);
  }

  /** The startup hold holds this peer's routes of `family` now. */
  private held(p: Peer, family: Family): StartupHold | undefined {
    return p.key !== '' && this.hold?.holds(family) ? this.hold : undefined;
  }

  /** Tells the startup hold about a neighbour (not about a client's own routes: they are never held). */
  private seen(p: Peer, families?: readonly Family[]): void {
    if (p.key !== '') this.hold?.seenPeer(p.source.name, p.key, families);
  }

  /** Runs table work for a peer and books the change of its route count to its client and the protocol. */
  private change(c: Client, p: Peer, work: () => void): void {
    const before = this.count(p);
    try {
      work();
    } finally {
      const d = this.count(p) - before;
      c.routes += d;
      this.routes += d;
    }
  }

  /** Withdraws everything the peer has (tables, startup hold), a failure for flap damping; returns the routes the tables withdrew. */
  private flushPeer(c: Client, p: Peer): number {
    let n = 0;
    this.change(c, p, () => {
      const had = this.count(p);
      this.hold?.peerGone(p.source.name);
      n = this.tables.flush(p.source);
      this.failed(p, had);
    });
    return n;
  }

  /** A neighbour that is down and has nothing left is forgotten (a new one under its name starts afresh). */
  private forgetIfIdle(c: Client, p: Peer): void {
    if (!p.down || p.refreshing || this.count(p) !== 0) return;
    c.peers.delete(p.key);
    this.byName.delete(p.source.name);
  }

  // ------------------------------------------------------------ events

  private apply(c: Client, ev: StreamEvent): void {
    switch (ev.kind) {
      case 'announce': {
        const p = this.peer(c, ev.peer);
        learn(p, ev.info);
        this.seen(p);
        const attrs = ev.path ? ev.attrs.with({ bgp: BgpAttrs.of(ev.path, neighborOf(p)) }) : ev.attrs;
        this.change(c, p, () => announceNets(this.announcing, c, p, ev.nets, attrs));
        return;
      }
      case 'withdraw': {
        const p = c.peers.get(ev.peer);
        c.stats.withdraws += ev.nets.length;
        if (!p) return;
        this.change(c, p, () => {
          const damped = this.suppressed(p);
          for (const net of ev.nets) {
            if (this.held(p, net.family)?.unstage(p.source.name, net) || damped?.delete(net)) continue;
            if (this.tables.has(net.family)) this.tables.withdraw(p.source, net);
          }
        });
        return;
      }
      case 'eor': {
        const p = c.peers.get(ev.peer);
        if (!p) return;
        if (p.key !== '') this.hold?.peerDone(p.source.name, ev.family);
        this.change(c, p, () => this.endRefresh(c, p, ev.family));
        return;
      }
      case 'neighbor': {
        const p = this.peer(c, ev.peer);
        learn(p, ev.info);
        this.seen(p, ev.info.families);
        return;
      }
      case 'peer-up': {
        const p = this.peer(c, ev.peer);
        learn(p, ev.info);
        this.seen(p, ev.info?.families);
        this.beginRefresh(c, p);
        return;
      }
      case 'peer-down': {
        const p = c.peers.get(ev.peer);
        if (!p) return;
        clearTimeout(p.staleTimer);
        p.refreshing = false;
        p.down = true;
        const n = this.flushPeer(c, p);
        if (n) this.log.info(`stream client ${c.name}: neighbor ${ev.peer} down, ${n} routes withdrawn`, { protocol: this.name });
        this.forgetIfIdle(c, p);
        return;
      }
      default: {
        const never: never = ev;
        throw new Error(`unknown stream event ${JSON.stringify(never)}`);
      }
    }
  }

  /** A staged route goes into the table (the startup hold released its family, or a suppression is over). */
  private releaseStaged(key: string, net: Prefix, attrs: RouteAttrs): void {
    const p = this.byName.get(key);
    if (p && this.tables.has(net.family)) this.tables.announce(p.source, net, attrs);
  }

  /** Marks the peer's routes stale; end-of-RIB or the grace timer prunes what was not re-announced. */
  private beginRefresh(c: Client, p: Peer): void {
    clearTimeout(p.staleTimer);
    // What a suppressed source staged is stale too: it re-announces what it still has.
    const dropped = this.damping?.restage(p.source.name) ?? 0;
    c.routes -= dropped;
    this.routes -= dropped;
    this.tables.refreshBegin(p.source);
    p.refreshing = true;
    p.staleTimer = setTimeout(() => this.change(c, p, () => this.endRefresh(c, p, undefined)), this.config.graceMs);
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
    c.hangUp = undefined;
    if (this.fsm.state !== 'up' || c.dropped) return;
    if (c.routes === 0) {
      // Nothing to keep for a reconnect: forget it now (thousands of short-lived clients leave nothing).
      this.clientLog.write('info', 'disconnect', `stream client ${c.name} disconnected; it had no routes`, { protocol: this.name });
      this.drop(c);
      this.clients.delete(c.name);
      return;
    }
    this.clientLog.write('info', 'disconnect', `stream client ${c.name} disconnected; its ${c.routes} routes stay for ${this.config.graceMs} ms`, { protocol: this.name });
    c.graceTimer = setTimeout(() => {
      this.drop(c);
      this.clients.delete(c.name);
    }, this.config.graceMs);
    c.graceTimer.unref();
  }

  /** Withdraws everything of the client (each neighbour through its own index) and stops its timers. */
  private drop(c: Client): void {
    clearTimeout(c.graceTimer);
    c.dropped = true;
    let n = 0;
    for (const p of c.peers.values()) {
      clearTimeout(p.staleTimer);
      n += this.flushPeer(c, p);
      this.byName.delete(p.source.name);
    }
    c.peers.clear();
    if (n) this.clientLog.write('info', 'withdrawn', `stream client ${c.name}: ${n} routes withdrawn`, { protocol: this.name });
  }
}
