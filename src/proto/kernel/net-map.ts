/**
 * NetMap: a Map from nets (Prefix) to values, keyed without boxing.
 *
 * IPv4 nets live in one Map per prefix length keyed by the address word as an
 * int32 (a small integer in V8: no heap number per key, cheap hashing), the
 * layout src/table/net-store.ts uses. A single Map keyed by `net.key()`
 * (`addr * 64 + len`, beyond the 31-bit Smi range) boxes every key as a heap
 * number, allocates one per lookup and hashes it as a double: at a million
 * nets that was seconds of the kernel protocol's CPU. IPv6 nets live in one
 * Map keyed by a 32-bit hash of their words and length (a Smi), each slot the
 * entry or, on a collision, a short list of them, matched on the net itself:
 * keyed by the prefixKey string, every lookup built and hashed a new string
 * (2.8 s of a 1M IPv6 restart and shutdown).
 *
 * values() iterates IPv4 by prefix length, each in insertion order, then
 * IPv6; callers never depend on the order.
 */
import type { Prefix } from '../../lib/addr';

export class NetMap<V> {
  private readonly v4: (Map<number, V> | undefined)[] = new Array<Map<number, V> | undefined>(33).fill(undefined);
  private readonly v6 = new Map<number, V6Slot<V> | V6Slot<V>[]>();
  private v6Count = 0;

  get size(): number {
    let n = this.v6Count;
    for (const m of this.v4) if (m) n += m.size;
    return n;
  }

  get(net: Prefix): V | undefined {
    return net.family === 4 ? this.v4[net.len]?.get(net.w0 | 0) : this.findV6(net)?.v;
  }

  /** An IPv4 net by length and address word (any sign), without a Prefix. */
  getV4(len: number, word: number): V | undefined {
    return this.v4[len]?.get(word | 0);
  }

  has(net: Prefix): boolean {
    return net.family === 4 ? this.v4[net.len]?.has(net.w0 | 0) === true : this.findV6(net) !== undefined;
  }

  /** An IPv4 net by length and address word, without a Prefix. */
  setV4(len: number, word: number, v: V): void {
    (this.v4[len] ??= new Map<number, V>()).set(word | 0, v);
  }

  set(net: Prefix, v: V): void {
    if (net.family === 4) {
      (this.v4[net.len] ??= new Map<number, V>()).set(net.w0 | 0, v);
      return;
    }
    const found = this.findV6(net);
    if (found) {
      found.v = v;
      return;
    }
    const h = v6Hash(net);
    const cur = this.v6.get(h);
    const slot: V6Slot<V> = { net, v };
    if (cur === undefined) this.v6.set(h, slot);
    else if (Array.isArray(cur)) cur.push(slot);
    else this.v6.set(h, [cur, slot]);
    this.v6Count++;
  }

  delete(net: Prefix): boolean {
    if (net.family === 4) return this.v4[net.len]?.delete(net.w0 | 0) === true;
    const h = v6Hash(net);
    const cur = this.v6.get(h);
    if (cur === undefined) return false;
    if (!Array.isArray(cur)) {
      if (!sameNet(cur.net, net)) return false;
      this.v6.delete(h);
    } else {
      const i = cur.findIndex((x) => sameNet(x.net, net));
      if (i < 0) return false;
      if (cur.length === 2) this.v6.set(h, cur[1 - i]!);
      else cur.splice(i, 1);
    }
    this.v6Count--;
    return true;
  }

  /** Calls fn for every value (cheaper than values() in hot loops). */
  forEach(fn: (v: V) => void): void {
    for (const m of this.v4) if (m) for (const v of m.values()) fn(v);
    for (const s of this.v6.values()) {
      if (Array.isArray(s)) for (const x of s) fn(x.v);
      else fn(s.v);
    }
  }

  *values(): IterableIterator<V> {
    for (const m of this.v4) if (m) yield* m.values();
    for (const s of this.v6.values()) {
      if (Array.isArray(s)) for (const x of s) yield x.v;
      else yield s.v;
    }
  }

  private findV6(net: Prefix): V6Slot<V> | undefined {
    const cur = this.v6.get(v6Hash(net));
    if (cur === undefined) return undefined;
    if (!Array.isArray(cur)) return sameNet(cur.net, net) ? cur : undefined;
    return cur.find((x) => sameNet(x.net, net));
  }
}

interface V6Slot<V> {
  readonly net: Prefix;
  v: V;
}

function sameNet(a: Prefix, b: Prefix): boolean {
  return a.len === b.len && (a.w0 | 0) === (b.w0 | 0) && (a.w1 | 0) === (b.w1 | 0) && (a.w2 | 0) === (b.w2 | 0) && (a.w3 | 0) === (b.w3 | 0);
}

/** A 32-bit hash of an IPv6 net's words and length (a Smi as a Map key). Exported for tests. */
export function v6Hash(p: Prefix): number {
  let h = Math.imul(p.w0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ p.w1 ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ p.w2 ^ (h >>> 13), 0x85ebca6b);
  h = Math.imul(h ^ p.w3 ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ p.len ^ (h >>> 15)) | 0;
}
