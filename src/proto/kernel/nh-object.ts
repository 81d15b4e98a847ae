/**
 * The record of one kernel nexthop object of ours, shared by the objects'
 * keeper (nexthop-objects.ts) and the forwarding objects of failover
 * (forwarding-objects.ts), and what makes two objects' contents the same.
 */
import * as C from '../../netlink/constants';
import type { NexthopMessage } from '../../netlink/nexthop-codec';
import type { RouteError } from './route-status';

export interface NhObject {
  readonly id: number;
  /** What it is interned by: its content (keyOf), or for a forwarding object its (primary, backup) (forwarding-objects.ts). */
  key: string;
  /** The content: a forwarding object's changes on failover. */
  msg: NexthopMessage;
  members: readonly NhObject[] | undefined;
  /** A forwarding object's role (forwarding-objects.ts); undefined for a hop or an ECMP group. */
  fwd?: ForwardingRole;
  /** KernelRoutes (and groups) naming it. */
  refs: number;
  /** new: to be made; live: the kernel holds it as we want; failed: the kernel refused it (retry at retryAt); retired: nothing uses it. */
  state: 'new' | 'live' | 'failed' | 'retired';
  /** The kernel holds an object with our id but other content: replace, not add. */
  stale: boolean;
  error: RouteError | undefined;
  attempts: number;
  retryAt: number;
  /** NexthopObjects' change count when we last made or replaced it: a dump begun before says nothing of it. */
  changedAt?: number;
  /**
   * The kernel deleted it, with the routes on it, and the one who told us plans those routes (a link's
   * flush, the scan a foreign delete asks for): a route delete the kernel then tells of on it is
   * accounted for (sync-notices.ts). Until it is made again.
   */
  gone?: boolean;
}

/** A hop object with its weight in a group. */
export interface Hop {
  readonly obj: NhObject;
  readonly weight: number;
}

/** What a forwarding object stands for. */
export interface ForwardingRole {
  primarySource: string | undefined;
  backupSource: string | undefined;
  /** The backup's hop objects (referenced); undefined: no backup, or already switched to it. */
  backup: readonly Hop[] | undefined;
  /** Its content is no longer its primary's (a failover, or adopted at restart): it waits to be claimed by content. */
  orphan: boolean;
  /** An orphan because its primary's source was withdrawn (not one adopted at restart): a failover in force until claimed. */
  switched?: boolean;
  /** The primary's hops while it forwards to the backup's because the primary's links are down (referenced); restored when one is back. */
  degraded?: readonly Hop[] | undefined;
  /**
   * Next-hop tracking holds its primary unusable: it forwards to its backup (degraded, keeping its key) and
   * also serves the nets whose best is the backup while that primary is held, until the tracker gives it back.
   */
  held?: boolean;
  /**
   * The tracker gave its held primary back (restore): the nets still wanting it as held (their re-export
   * not done yet) stay on it, since their new pair is its key, rather than move to an object of their own.
   */
  released?: boolean;
}

/** What makes two objects the same: family, gateway, device, onlink; or a group's members and weights. */
export function keyOf(m: NexthopMessage): string {
  if (m.group !== undefined) return `g ${m.group.map((g) => `${g.id}*${g.weight}`).join(' ')}`;
  if (m.blackhole) return `b ${m.family ?? 0}`;
  return `${m.family ?? 0} ${m.gateway?.toString() ?? '-'} ${m.oif ?? 0} ${m.flags & C.RTNH_F_ONLINK}`;
}

/** An object as we would send it (the kernel reports scope and state flags of its own). */
export function normalized(m: NexthopMessage, protocol: number): NexthopMessage {
  const out: NexthopMessage = { id: m.id, family: m.family, protocol, scope: 0, flags: m.flags & C.RTNH_F_ONLINK };
  if (m.group !== undefined) out.group = [...m.group].sort((a, b) => a.id - b.id);
  if (m.blackhole) out.blackhole = true;
  if (m.oif !== undefined) out.oif = m.oif;
  if (m.gateway !== undefined) out.gateway = m.gateway;
  return out;
}

/** A record of an object no route uses yet; each of its members gains a user (the group). */
export function newObject(id: number, key: string, msg: NexthopMessage, members: NhObject[] | undefined, state: NhObject['state']): NhObject {
  for (const x of members ?? []) x.refs++;
  return { id, key, msg, members, refs: 0, state, stale: false, error: undefined, attempts: 0, retryAt: 0 };
}

/** Whether the kernel holds `o` as we want it, members included (nothing to make or replace first). */
export function inKernel(o: NhObject): boolean {
  return o.state === 'live' && !o.stale && (o.members ?? []).every((m) => m.state === 'live');
}
