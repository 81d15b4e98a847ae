/**
 * NetMap: a Map from nets (Prefix) to values, keyed without boxing.
 *
 * IPv4 nets live in one Map per prefix length keyed by the address word as an
 * int32 (a small integer in V8: no heap number per key, cheap hashing), the
 * layout src/table/net-store.ts uses. A single Map keyed by `net.key()`
 * (`addr * 64 + len`, beyond the 31-bit Smi range) boxes every key as a heap
 * number, allocates one per lookup and hashes it as a double: at a million
 * nets that was seconds of the kernel protocol's CPU. IPv6 nets live in one
 * Map keyed by the prefixKey string.
 *
 * values() iterates IPv4 by prefix length, each in insertion order, then
 * IPv6; callers never depend on the order.
 */
import type { Prefix } from '../../lib/addr';

export class NetMap<V> {
  private readonly v4: (Map<number, V> | undefined)[] = new Array<Map<number, V> | undefined>(33).fill(undefined);
  private readonly v6 = new Map<string, V>();

  get size(): number {
    let n = this.v6.size;
    for (const m of this.v4) if (m) n += m.size;
    return n;
  }

  get(net: Prefix): V | undefined {
    return net.family === 4 ? this.v4[net.len]?.get(net.w0 | 0) : this.v6.get(net.key() as string);
  }

  /** An IPv4 net by length and address word (any sign), without a Prefix. */
  getV4(len: number, word: number): V | undefined {
    return this.v4[len]?.get(word | 0);
  }

  has(net: Prefix): boolean {
    return net.family === 4 ? this.v4[net.len]?.has(net.w0 | 0) === true : this.v6.has(net.key() as string);
  }

  set(net: Prefix, v: V): void {
    if (net.family === 4) (this.v4[net.len] ??= new Map<number, V>()).set(net.w0 | 0, v);
    else this.v6.set(net.key() as string, v);
  }

  delete(net: Prefix): boolean {
    return net.family === 4 ? this.v4[net.len]?.delete(net.w0 | 0) === true : this.v6.delete(net.key() as string);
  }

  /** Calls fn for every value (cheaper than values() in hot loops). */
  forEach(fn: (v: V) => void): void {
    for (const m of this.v4) if (m) for (const v of m.values()) fn(v);
    for (const v of this.v6.values()) fn(v);
  }

  *values(): IterableIterator<V> {
    for (const m of this.v4) if (m) yield* m.values();
    yield* this.v6.values();
  }
}
