/**
 * Import limits of a stream protocol, like BGP's max-prefix: routes of the
 * whole protocol, per client and per neighbour (limits.routes_per_neighbor,
 * or a neighbour's own max_routes). A route that would go past one is
 * refused (action refuse: the rest of the line still applies, and the
 * client is told how many were refused) or the client is dropped (action
 * disconnect: its routes are withdrawn at once and its connection closed,
 * as a BGP session over its max-prefix is torn down). Replacing a route the
 * neighbour already has needs no room.
 *
 * Every refusal and disconnect is counted here (per scope) and per client,
 * where `show protocols` and a metrics layer read them; the log says it at
 * the configured level, rate-limited per client and scope.
 */
import { KrtError } from '../../lib/errors';
import type { StreamLimits } from '../../config/stream-config';
import { RateLimitedLog, type Logger } from '../logger';

export type LimitScope = 'protocol' | 'client' | 'neighbor';

/** What one client sent and what became of it. */
export interface ClientCounters {
  lines: number;
  announces: number;
  withdraws: number;
  errors: number;
  /** Routes refused by an import limit. */
  refused: number;
  /** Routes the import filter rejected. */
  filtered: number;
}

const SETTING: Record<LimitScope, string> = { protocol: 'limits.routes', client: 'limits.routes_per_client', neighbor: 'limits.routes_per_neighbor' };

export class ImportLimits {
  /** Refused routes per scope, since the protocol started. */
  readonly refusedBy: Record<LimitScope, number> = { protocol: 0, client: 0, neighbor: 0 };
  disconnects = 0;
  filtered = 0;
  private readonly limited: RateLimitedLog;

  constructor(
    private readonly limits: StreamLimits,
    private readonly protocol: string,
    private readonly log: Logger,
    limited?: RateLimitedLog,
  ) {
    this.limited = limited ?? new RateLimitedLog(log);
  }

  static counters(): ClientCounters {
    return { lines: 0, announces: 0, withdraws: 0, errors: 0, refused: 0, filtered: 0 };
  }

  /** The same counters under new settings (a reload). */
  reconfigured(next: StreamLimits): ImportLimits {
    const l = new ImportLimits(next, this.protocol, this.log, this.limited);
    Object.assign(l.refusedBy, this.refusedBy);
    l.disconnects = this.disconnects;
    l.filtered = this.filtered;
    return l;
  }

  /** How many more routes fit, and which limit is the tightest. */
  room(protocolRoutes: number, clientRoutes: number, peerRoutes: number, peerMax: number | undefined): { room: number; scope: LimitScope } {
    let room = this.limits.routes - protocolRoutes;
    let scope: LimitScope = 'protocol';
    if (this.limits.routesPerClient !== undefined && this.limits.routesPerClient - clientRoutes < room) {
      room = this.limits.routesPerClient - clientRoutes;
      scope = 'client';
    }
    const perPeer = peerMax ?? this.limits.routesPerNeighbor;
    if (perPeer !== undefined && perPeer - peerRoutes < room) {
      room = perPeer - peerRoutes;
      scope = 'neighbor';
    }
    return { room: Math.max(0, room), scope };
  }

  refused(scope: LimitScope, client: string, peer: string, n: number): void {
    this.refusedBy[scope] += n;
    if (this.limits.log === 'none') return;
    const who = scope === 'neighbor' ? `neighbor ${peer} of client ${client}` : scope === 'client' ? `client ${client}` : `protocol ${this.protocol}`;
    this.limited.write(this.limits.log === 'warning' ? 'warn' : 'info', `limit:${scope}:${client}`, `import limit: ${who} is at its limit (${SETTING[scope]}); routes refused${this.limits.action === 'disconnect' ? ', client disconnected' : ''}`, {
      protocol: this.protocol,
      client,
      limit: scope,
    });
  }

  disconnected(client: string, scope: LimitScope): void {
    this.disconnects++;
    if (this.limits.log !== 'none') this.log.warn(`stream client ${client} dropped: over its import limit (${SETTING[scope]}); its routes are withdrawn`, { protocol: this.protocol, client });
  }

  /** The answer to a line some of whose routes were refused. */
  lineError(refused: number): KrtError {
    return new KrtError('KRT_ERR_IMPORT_LIMIT', `${refused} routes refused: an import limit is reached (protocol ${this.protocol}, see show protocols)`);
  }

  summary(): { refused: Record<LimitScope, number>; disconnects: number; filtered: number; settings: StreamLimits } {
    return { refused: { ...this.refusedBy }, disconnects: this.disconnects, filtered: this.filtered, settings: this.limits };
  }
}
