/**
 * The stream protocol's clients and their peers (stream.ts): a client is one
 * `krtsync feed` connection under a name; a peer is a BGP neighbour behind it
 * (keyed by its canonical address) or the client itself (key ''), each with
 * a source of its own. What a peer knows of its neighbour (ASes, router id,
 * families) builds the interned BgpNeighbor its routes carry.
 * StreamClientError is what a client's connect or line is refused with.
 */
import { parseAddr } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { BgpNeighbor, type RouteSource } from '../../route';
import type { NeighborInfo } from './events';
import type { StreamFormat } from './formats';
import type { ClientCounters } from './limits';

export class StreamClientError extends KrtError {}

export interface Peer {
  key: string;
  source: RouteSource;
  info: NeighborInfo;
  neighbor: BgpNeighbor | undefined;
  /** Down (a neighbour state), kept only while it still has routes. */
  down: boolean;
  /** A refresh cycle is open (after a reconnect or peer-up) until end-of-RIB or the grace timer. */
  refreshing: boolean;
  staleTimer: NodeJS.Timeout | undefined;
}

export interface Client {
  name: string;
  format: StreamFormat;
  connected: boolean;
  /** Dropped (limit action, shutdown): later lines of its connection are ignored. */
  dropped: boolean;
  /** Over an import limit with action disconnect: dropped once the event at hand is done. */
  overLimit: boolean;
  peers: Map<string, Peer>;
  routes: number;
  graceTimer: NodeJS.Timeout | undefined;
  hangUp: (() => void) | undefined;
  stats: ClientCounters;
}

/** Merges what a message says about the neighbour; its BgpNeighbor is rebuilt when something changed. */
export function learn(p: Peer, info: NeighborInfo | undefined): void {
  if (info === undefined) return;
  const merged: NeighborInfo = { ...p.info, ...info };
  if (merged.as === p.info.as && merged.localAs === p.info.localAs && merged.routerId === p.info.routerId && merged.families === p.info.families) return;
  p.info = merged;
  p.neighbor = undefined;
}

export function neighborOf(p: Peer): BgpNeighbor {
  const i = p.info;
  return (p.neighbor ??= BgpNeighbor.of({
    address: parseAddr(p.key),
    ...(i.as !== undefined ? { as: i.as } : {}),
    ...(i.localAs !== undefined ? { localAs: i.localAs } : {}),
    ...(i.routerId !== undefined ? { routerId: i.routerId } : {}),
  }));
}
