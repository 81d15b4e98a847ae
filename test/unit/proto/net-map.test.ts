import { Prefix } from '../../../src/lib/addr';
import { NetMap, v6Hash } from '../../../src/proto/kernel/net-map';

/** A small deterministic generator (xorshift32), so the run is the same every time. */
function rng(seed: number): () => number {
  let x = seed | 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x | 0;
  };
}

describe('NetMap', () => {
  it('agrees with a Map keyed by prefix text, IPv6 hash collisions included', () => {
    const next = rng(2024);
    const nets: Prefix[] = [];
    for (let i = 0; i < 200_000; i++) {
      const len = 1 + ((next() >>> 0) % 128);
      // Host bits cleared through Prefix.of, as every real net is.
      nets.push(Prefix.of(new Prefix(6, 128, next(), next(), next(), next()).addr, len));
    }
    for (let i = 0; i < 1000; i++) nets.push(Prefix.v4(next(), (next() >>> 0) % 33));
    // Enough random nets that some IPv6 ones share a hash: the collision lists are exercised.
    const byHash = new Map<number, number>();
    let collisions = 0;
    for (const n of nets) {
      if (n.family !== 6) continue;
      const h = v6Hash(n);
      const c = byHash.get(h) ?? 0;
      if (c > 0) collisions++;
      byHash.set(h, c + 1);
    }
    expect(collisions).toBeGreaterThan(0);

    const m = new NetMap<number>();
    const ref = new Map<string, number>();
    const keys = nets.map((n) => n.toString());
    nets.forEach((n, i) => {
      m.set(n, i);
      ref.set(keys[i]!, i);
    });
    // Overwrite some, delete some (every third), including colliding ones. Mismatches are counted
    // (an expect per net would make this test take seconds).
    let mismatches = 0;
    nets.forEach((n, i) => {
      if (i % 5 === 0) {
        m.set(n, -i);
        ref.set(keys[i]!, -i);
      }
      if (i % 3 === 0 && m.delete(n) !== ref.delete(keys[i]!)) mismatches++;
    });
    expect(m.size).toBe(ref.size);
    nets.forEach((n, i) => {
      if (m.get(n) !== ref.get(keys[i]!) || m.has(n) !== ref.has(keys[i]!)) mismatches++;
    });
    expect(mismatches).toBe(0);
    const values: number[] = [];
    m.forEach((v) => values.push(v));
    expect(values.sort((a, b) => a - b)).toEqual([...ref.values()].sort((a, b) => a - b));
    expect([...m.values()].length).toBe(ref.size);
    // A net equal in value but another object finds the same entry.
    const probe = nets[1]!;
    expect(m.get(new Prefix(6, probe.len, probe.w0, probe.w1, probe.w2, probe.w3))).toBe(ref.get(probe.toString()));
  });
});
