import fc from 'fast-check';
import { NetIndex } from '../../../src/lib/net-index';
import { netOrder, v4Order } from '../../../src/lib/net-sort';

type Op = { op: 'insert' | 'remove' | 'find'; w: number; len: number };

describe('NetIndex', () => {
  it('makes reserved room when it first has to grow, all at once: no allocation before, no growth after', () => {
    const idx = new NetIndex(4, 16);
    const grown: number[] = [];
    idx.onGrow = (cap) => grown.push(cap);
    idx.reserve(5000);
    expect([idx.capacity, grown]).toEqual([16, []]); // nothing made yet
    for (let i = 0; i < 5000; i++) idx.insert4(i << 8, 24);
    expect(grown).toEqual([8192]); // once, at the 17th net, to the reserved room
    for (let i = 0; i < 5000; i++) expect(idx.find4(i << 8, 24)).toBe(i);
    idx.insert4(5000 << 8, 24); // past it: grows on as before
    expect(idx.size).toBe(5001);
    expect(grown).toEqual([8192]);
  });

  it.each([4, 6] as const)('agrees with a Map through inserts, removes and lookups, and reuses ids (IPv%s)', (family) => {
    const op = fc.record({ op: fc.constantFrom('insert' as const, 'insert' as const, 'remove' as const, 'find' as const), w: fc.integer({ min: 0, max: 300 }), len: fc.constantFrom(8, 24, 32) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 600 }), (ops: Op[]) => {
        const idx = new NetIndex(family, 16);
        const model = new Map<string, number>();
        const ids = new Set<number>();
        const words = (w: number): [number, number, number, number] => [w << 8, family === 6 ? w : 0, 0, family === 6 ? -w : 0];
        for (const { op, w, len } of ops) {
          const k = `${w}/${len}`;
          const [w0, w1, w2, w3] = words(w);
          const find = (): number => (family === 4 ? idx.find4(w0, len) : idx.find6(w0, w1, w2, w3, len));
          if (op === 'insert') {
            const id = family === 4 ? idx.insert4(w0, len) : idx.insert6(w0, w1, w2, w3, len);
            expect(idx.created).toBe(!model.has(k));
            if (model.has(k)) expect(id).toBe(model.get(k));
            else {
              expect(ids.has(id)).toBe(false);
              model.set(k, id);
              ids.add(id);
            }
          } else if (op === 'remove') {
            const id = find();
            expect(id).toBe(model.get(k) ?? -1);
            if (id >= 0) {
              idx.remove(id);
              model.delete(k);
              ids.delete(id);
            }
          } else expect(find()).toBe(model.get(k) ?? -1);
          expect(idx.size).toBe(model.size);
        }
        for (const [k, id] of model) {
          const [w, len] = k.split('/').map(Number) as [number, number];
          const p = idx.prefix(id);
          expect([p.len, p.w0, p.w1]).toEqual([len, words(w)[0], words(w)[1]]);
        }
        const seen: number[] = [];
        idx.forEach((id) => seen.push(id));
        expect(seen.sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
      }),
      { numRuns: 200 },
    );
  });

  it('warm4 reads the nets\' home slots and changes nothing: ids and lookups are those of an index never warmed', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 400 }), (ws: number[]) => {
        const warmed = new NetIndex(4, 16);
        const plain = new NetIndex(4, 16);
        const words = Int32Array.from(ws, (w) => w << 8);
        const lens = new Uint8Array(ws.length).fill(24);
        for (let i = 0; i < ws.length; i++) {
          warmed.warm4(words, lens, i, Math.min(ws.length, i + 7));
          expect(warmed.insert4(words[i]!, 24)).toBe(plain.insert4(words[i]!, 24));
        }
        warmed.warm4(words, lens, 0, ws.length);
        for (let i = 0; i < ws.length; i++) expect(warmed.find4(words[i]!, 24)).toBe(plain.find4(words[i]!, 24));
        expect(warmed.size).toBe(plain.size);
      }),
      { numRuns: 100 },
    );
    // An empty index's slots are all empty; a net alone in its index sits in its home slot, which warm4 read.
    const idx = new NetIndex(4, 16);
    const one = Int32Array.of(0x0a000100);
    const len = Uint8Array.of(24);
    expect(idx.warm4(one, len, 0, 1)).toBe(0);
    idx.insert4(0x0a000100, 24);
    expect(idx.warm4(one, len, 0, 1)).not.toBe(0);
    expect(idx.warm4(one, len, 1, 1)).toBe(0);
  });

  it.each([4, 6] as const)('finds nets walked in id order without hashing, and stays right when ids are freed and reused (IPv%s)', (family) => {
    // Nets looked up in the order they were inserted hit the last id found or the one after it; removals, reuses
    // (a freed id with another net), neighbours of another length and absent nets must still answer as a Map does.
    const op = fc.record({ op: fc.constantFrom('insert' as const, 'remove' as const, 'find' as const, 'find' as const), step: fc.integer({ min: -2, max: 3 }), len: fc.constantFrom(24, 24, 25) });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.array(op, { maxLength: 400 }), (n, ops) => {
        const idx = new NetIndex(family, 16);
        const model = new Map<string, number>();
        const at = (w: number): [number, number, number, number] => (family === 4 ? [w << 8, 0, 0, 0] : [0x20010db8, w, 0, w << 8]);
        const find = (w: number, len: number): number => {
          const [w0, w1, w2, w3] = at(w);
          return family === 4 ? idx.find4(w0, len) : idx.find6(w0, w1, w2, w3, len);
        };
        const insert = (w: number, len: number): number => {
          const [w0, w1, w2, w3] = at(w);
          return family === 4 ? idx.insert4(w0, len) : idx.insert6(w0, w1, w2, w3, len);
        };
        for (let w = 0; w < n; w++) model.set(`${w}/24`, insert(w, 24));
        for (let w = 0; w < n; w++) expect(find(w, 24)).toBe(model.get(`${w}/24`));
        let w = 0;
        for (const { op, step, len } of ops) {
          w = Math.max(0, w + step);
          const k = `${w}/${len}`;
          if (op === 'insert') {
            const id = insert(w, len);
            expect(idx.created).toBe(!model.has(k));
            if (model.has(k)) expect(id).toBe(model.get(k));
            model.set(k, id);
          } else if (op === 'remove') {
            const id = find(w, len);
            expect(id).toBe(model.get(k) ?? -1);
            if (id >= 0) idx.remove(id);
            model.delete(k);
          } else expect(find(w, len)).toBe(model.get(k) ?? -1);
        }
        for (const [k, id] of model) {
          const [kw, klen] = k.split('/').map(Number) as [number, number];
          expect(find(kw, klen)).toBe(id);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('grows its columns through onGrow before handing out an id beyond them', () => {
    const idx = new NetIndex(4, 16);
    const caps: number[] = [];
    idx.onGrow = (c) => caps.push(c);
    for (let i = 0; i < 100; i++) expect(idx.insert4(i << 8, 24)).toBeLessThan(idx.capacity);
    expect(caps).toEqual([32, 64, 128]);
  });
});

describe('v4Order', () => {
  it('orders the ids in use by address, then length, like the radix sort', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.constantFrom(8, 16, 24, 255)), { maxLength: 300 }), (nets) => {
        const words = Int32Array.from(nets.map(([w]) => (w * 0x01000000) | 0));
        const lens = Uint8Array.from(nets.map(([, l]) => l));
        const want = Array.from(netOrder(words, 1, lens, nets.length)).filter((id) => lens[id] !== 255);
        const got = Array.from(v4Order(words, lens, nets.length, 255));
        // The same order but for ties (same word and length) in any order of ids.
        const key = (id: number): string => `${words[id]! >>> 0}/${lens[id]}`;
        expect(got.map(key)).toEqual(want.map(key));
        expect([...got].sort((a, b) => a - b)).toEqual([...want].sort((a, b) => a - b));
      }),
    );
  });
});
