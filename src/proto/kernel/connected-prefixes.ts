/**
 * The connected prefixes of each device, from address messages (both
 * families): a gateway sent without a device goes on the device whose
 * connected prefix holds it (the longest wins), as the kernel would pick it,
 * because a nexthop object needs its device (nexthop-objects.ts).
 */
import { Prefix, type Addr } from '../../lib/addr';

/** Devices of connected prefixes, to give a gateway sent without a device the one the kernel would pick. */
export interface ConnectedResolver {
  deviceFor(gateway: Addr): number | undefined;
}

/** Connected prefixes per device from address messages (both families), for ConnectedResolver. */
export class ConnectedPrefixes implements ConnectedResolver {
  private readonly byIndex = new Map<number, Prefix[]>();

  update(index: number, local: Addr | undefined, prefixLen: number, deleted: boolean): void {
    if (local === undefined) return;
    const p = Prefix.of(local, prefixLen);
    const list = (this.byIndex.get(index) ?? []).filter((x) => !x.equals(p));
    if (!deleted) list.push(p);
    if (list.length > 0) this.byIndex.set(index, list);
    else this.byIndex.delete(index);
  }

  forget(index: number): void {
    this.byIndex.delete(index);
  }

  /** The device whose connected prefix holds `gateway` (the longest wins; none: undefined). */
  deviceFor(gateway: Addr): number | undefined {
    let best: number | undefined;
    let bestLen = -1;
    for (const [index, list] of this.byIndex) {
      for (const p of list) if (p.family === gateway.family && p.len > bestLen && p.contains(gateway)) {
        best = index;
        bestLen = p.len;
      }
    }
    return best;
  }
}

