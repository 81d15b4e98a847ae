/**
 * A stream protocol's announce path: each net of an announcement goes
 * through the import filter, then the import limits (limits.ts), then to
 * the startup hold (startup-hold.ts) when it holds the net's family, to the
 * routes a suppressed source stages (source-damping.ts), or into the table.
 *
 * Invariants: it runs inside the protocol's change() for the peer, so the
 * client's and the protocol's route counts stay right; a net the filter now
 * rejects replaces what the neighbour had (that goes, wherever it was);
 * replacing a route the peer has needs no room; over a limit with action
 * disconnect the rest of the event is skipped and the client is marked
 * over its limit (the protocol drops it after the event, outside change()).
 */
import type { Family, Prefix } from '../../lib/addr';
import type { RouteAttrs } from '../../route';
import type { LimitAction } from '../../config/stream-config';
import { runImportFilter } from '../filter';
import type { TableSet } from '../table-set';
import type { ImportLimits, LimitScope } from './limits';
import type { StreamOptions } from './options';
import { StreamClientError, type Client, type Peer } from './peer';
import type { StagedNets, StartupHold } from './startup-hold';

/** What the announce path needs of its protocol (the settings asked at each announcement: reconfigure replaces them). */
export interface AnnounceContext {
  readonly name: string;
  readonly tables: TableSet;
  options(): StreamOptions;
  limits(): ImportLimits;
  action(): LimitAction;
  /** Routes of every client, staged ones included. */
  routes(): number;
  /** Routes the peer has: in the tables, and staged by the startup hold or while suppressed. */
  count(p: Peer): number;
  /** The startup hold, when it holds this peer's routes of `family` now. */
  held(p: Peer, family: Family): StartupHold | undefined;
  /** The peer's routes staged while its source is suppressed (flap damping); undefined when it is not. */
  suppressed(p: Peer): StagedNets | undefined;
}

/** Announces `nets` for a peer: import filter, limits, then the startup hold or the table. */
export function announceNets(ctx: AnnounceContext, c: Client, p: Peer, nets: readonly Prefix[], attrs: RouteAttrs): void {
  const { tables } = ctx;
  const limits = ctx.limits();
  const options = ctx.options();
  const filter = options.importFilter;
  // Room under the limits, checked per net only when the event may not fit.
  const peerMax = options.neighbor(p.key)?.maxRoutes;
  let { room, scope } = limits.room(ctx.routes(), c.routes, ctx.count(p), p.key === '' ? undefined : peerMax);
  const tight = room < nets.length;
  const damped = ctx.suppressed(p);
  let refused = 0;
  for (const net of nets) {
    if (!tables.has(net.family)) throw new StreamClientError('KRT_ERR_NO_TABLE', `protocol ${ctx.name} has no IPv${net.family} table for ${net}`);
    c.stats.announces++;
    const held = ctx.held(p, net.family);
    if (filter && !runImportFilter(filter, p.source, attrs, net)) {
      c.stats.filtered++;
      limits.filtered++;
      // An update that the filter now rejects replaces what the neighbour had: that goes.
      if (!held?.unstage(p.source.name, net) && !damped?.delete(net)) tables.withdraw(p.source, net);
      continue;
    }
    if (tight && !has(ctx, p, net, held)) {
      if (room <= 0) {
        refused++;
        // Disconnect: the rest of the event does not matter, the client goes with everything.
        if (ctx.action() === 'disconnect') break;
        continue;
      }
      room--;
    }
    if (held) held.stage(p.source.name, net, attrs);
    else if (damped) damped.set(net, attrs);
    else tables.announce(p.source, net, attrs);
  }
  if (refused) refuse(ctx, c, p, scope, refused);
}

/** Whether the peer has a route for `net` already (a replace: it needs no room). */
function has(ctx: AnnounceContext, p: Peer, net: Prefix, held: StartupHold | undefined): boolean {
  if (held?.has(p.source.name, net) || ctx.suppressed(p)?.get(net) !== undefined) return true;
  return ctx.tables.table(net.family).hasRoute(net, p.source);
}

function refuse(ctx: AnnounceContext, c: Client, p: Peer, scope: LimitScope, n: number): void {
  c.stats.refused += n;
  const limits = ctx.limits();
  limits.refused(scope, c.name, p.key, n);
  if (ctx.action() !== 'disconnect') return;
  limits.disconnected(c.name, scope);
  c.overLimit = true;
}
