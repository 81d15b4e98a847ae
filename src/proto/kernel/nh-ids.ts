/**
 * The ids of one sync's nexthop objects. Ours lie in a range of their own
 * (idRange): the top byte is the protocol, then a bit for the family of the
 * routes, then 7 bits of the table id, then 16 bits of our own. Hops and
 * ECMP groups take the lower half of those 16 bits, forwarding objects the
 * upper half (isForwardingId, forwarding-objects.ts).
 *
 * The allocator hands out, round robin in each half, the next id that
 * nobody holds: not one the keeper (nexthop-objects.ts) holds, live or
 * retired and not yet deleted, and not one of the kernel's other objects
 * (`foreign`: kept by the keeper from a dump at open, notifications after).
 */
import type { KernelTarget } from './convert';

/** First and last id of our range (see the module comment). */
export function idRange(target: Pick<KernelTarget, 'protocol' | 'family' | 'table'>): { first: number; last: number } {
  const base = ((target.protocol << 24) | (target.family === 6 ? 1 << 23 : 0) | ((target.table & 0x7f) << 16)) >>> 0;
  return { first: base + 1, last: base + 0xffff };
}

export class NhIds {
  readonly first: number;
  readonly last: number;
  private cursor: number;
  private fwdCursor: number;
  /** Ids the kernel holds that are not ours. */
  readonly foreign = new Set<number>();

  constructor(
    target: Pick<KernelTarget, 'protocol' | 'family' | 'table'>,
    /** Whether the keeper holds `id` (an object of ours, or a retired one still in the kernel). */
    private readonly held: (id: number) => boolean,
  ) {
    const r = idRange(target);
    this.first = r.first;
    this.last = r.last;
    this.cursor = r.first;
    this.fwdCursor = r.first + 0x7fff;
  }

  /** Whether `id` is in our range (with our protocol, an object of ours). */
  inRange(id: number): boolean {
    return id >= this.first && id <= this.last;
  }

  /**
   * The next id that nobody holds (ours, foreign, or retired and not yet deleted): hops and ECMP groups
   * from the lower half of our range, forwarding objects from the upper half (isForwardingId).
   */
  allocate(forwarding = false): number {
    const first = forwarding ? this.first + 0x7fff : this.first;
    const last = forwarding ? this.last : this.first + 0x7ffe;
    for (let n = 0; n <= last - first; n++) {
      const id = forwarding ? this.fwdCursor : this.cursor;
      const next = id === last ? first : id + 1;
      if (forwarding) this.fwdCursor = next;
      else this.cursor = next;
      if (!this.held(id) && !this.foreign.has(id)) return id;
    }
    throw new Error(`no free nexthop object id in ${first}..${last}`);
  }
}
