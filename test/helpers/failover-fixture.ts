/**
 * Oracles for the failover tests (docs/failover.md) against the real kernel:
 * where the FIB forwards a destination (`ip route get`), and every net's
 * gateways resolved from one dump of routes and nexthop objects, for either
 * family. The kernel is the judge, not our bookkeeping.
 */
import { ourRoutes, quiesced, until, type kernelProtocol } from './kernel-fixture';
import type { Netns } from './netns';

export interface IpNexthop {
  id: number;
  gateway?: string;
  dev?: string;
  group?: { id: number; weight?: number }[];
  flags?: string[];
}

/** Where the kernel forwards a destination now (the FIB's answer, not our bookkeeping). */
export function forwardsVia(ns: Netns, dst: string): string {
  const r = ns.ipJson<Array<{ gateway?: string; dev?: string }>>('route', 'get', dst)[0];
  return r?.gateway ?? r?.dev ?? 'none';
}

/** Every net's gateways, resolved from one dump of routes and objects (its route of ours at the lowest metric -> object -> members). */
export function gatewaysOf(ns: Netns, family: '-4' | '-6' = '-4'): Map<string, string> {
  const objs = new Map(ns.ipJson<IpNexthop[]>('nexthop', 'show').map((o) => [o.id, o]));
  const out = new Map<string, string>();
  for (const r of ourRoutes(ns, family).sort((x, y) => (y.metric ?? 0) - (x.metric ?? 0))) {
    const o = r.nhid === undefined ? undefined : objs.get(r.nhid);
    const hops = o?.group ? o.group.map((g) => objs.get(g.id)) : [o];
    out.set(r.dst, hops.map((h) => h?.gateway ?? '?').sort().join(','));
  }
  return out;
}

/** Whether every net of ours forwards via `gw` (and there are `count` of them). */
export const allVia = (ns: Netns, family: '-4' | '-6', count: number, gw: string) => (): boolean => {
  const gws = gatewaysOf(ns, family);
  return gws.size === count && [...gws.values()].every((g) => g === gw);
};

/** `ip monitor` lines about routes of ours, and about nexthop objects. */
export const routeLines = (watched: string[]): string[] => watched.filter((l) => / proto (144|krtsync)\b/.test(l) && !/^(Deleted )?id \d+/.test(l));
export const nexthopLines = (watched: string[]): string[] => watched.filter((l) => /^(Deleted )?id \d+/.test(l));

/**
 * Waits until what a link change made `p` do is done: every net wants its route via `gw` (next-hop tracking's
 * verdict, exported again through the table, has reached the sync), none is left to export again, and the
 * sync is quiesced (the scan the link asked for included). No sleep stands in for any of it.
 */
export async function wantedVia(p: ReturnType<typeof kernelProtocol>, family: 4 | 6, gw: string, timeoutMs = 20000): Promise<void> {
  await until(() => p.counts().pending === 0 && p.status().every((st) => st.route === `via ${gw}`), timeoutMs);
  await quiesced(p.sync(family)!);
}
