import fc from 'fast-check';
import { SpreadIds, reverseBits32, spreadOrder, trieSpreadOrder, trieSpreadPermutation } from '../../../src/netlink/order';
import { SpreadSort, spreadSortWith } from '../../../src/lib/net-sort';

describe('bulk order for the kernel', () => {
  it('reverses the bits of a word', () => {
    expect(reverseBits32(1)).toBe(0x80000000);
    expect(reverseBits32(0x80000000 | 0)).toBe(1);
    expect(reverseBits32(0x0a000100)).toBe(0x00800050);
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (w) => expect(reverseBits32(reverseBits32(w))).toBe(w)));
  });

  it('sorts IPv4 items by reversed address, keeps ties and the rest in their order, loses nothing', () => {
    const items = [
      { w: 0x0a000000, id: 'a' },
      { w: undefined, id: 'v6-1' },
      { w: 0x0a000100, id: 'b' },
      { w: 0x0a000000, id: 'a2' },
      { w: 0x0a000200, id: 'c' },
      { w: undefined, id: 'v6-2' },
    ];
    expect(trieSpreadOrder(items, (i) => i.w).map((i) => i.id)).toEqual(['a', 'a2', 'c', 'b', 'v6-1', 'v6-2']);
  });

  it('is a permutation that visits consecutive /24s far apart', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }), { maxLength: 300 }), (words) => {
        const items = words.map((w, i) => ({ w, i }));
        const out = trieSpreadOrder(items, (x) => x.w);
        expect(out.map((x) => x.i).sort((a, b) => a - b)).toEqual(items.map((x) => x.i));
        const keys = out.filter((x) => x.w !== undefined).map((x) => reverseBits32(x.w!));
        for (let k = 1; k < keys.length; k++) expect(keys[k]!).toBeGreaterThanOrEqual(keys[k - 1]!);
      }),
    );
    const seq = Array.from({ length: 1024 }, (_, i) => (0x0a000000 + i * 256) | 0);
    const spread = trieSpreadOrder(seq, (w) => w);
    expect(spread.slice(0, 4).map((w) => ((w >>> 8) & 0xffff).toString())).toEqual(['0', '512', '256', '768']);
  });
});

describe('trieSpreadPermutation', () => {
  it('orders like trieSpreadOrder by word, then by length, ties kept in order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 3 })), { maxLength: 300 }), (items) => {
        // Few distinct words and lengths, so ties and duplicates are common.
        const words = Int32Array.from(items.map(([w]) => (w * 0x01010101) | 0));
        const lens = Uint8Array.from(items.map(([, l]) => l * 8));
        const perm = Array.from(trieSpreadPermutation(words, lens, items.length));
        const expected = items
          .map((_, i) => i)
          .sort((a, b) => reverseBits32(words[a]!) - reverseBits32(words[b]!) || lens[a]! - lens[b]! || a - b);
        expect(perm).toEqual(expected);
      }),
    );
  });
});

describe('spreadOrder', () => {
  it('orders by reversed word like trieSpreadPermutation, ties in their order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 31 }), { maxLength: 400 }), (ws) => {
        const words = Int32Array.from(ws.map((w) => (w * 0x01010101) | 0));
        const lens = new Uint8Array(ws.length).fill(24);
        expect(Array.from(spreadOrder(words, lens, ws.length))).toEqual(Array.from(trieSpreadPermutation(words, lens, ws.length)));
      }),
    );
  });
});

describe('spreadSortWith', () => {
  it('sorts words with their payloads into spreadOrder, ties in their order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 400 }), fc.integer({ min: 0, max: 31 }), (ws, spread) => {
        // Few distinct words (ties) or any 32-bit word at all.
        const words = Int32Array.from(ws.map((w) => (spread < 16 ? (w & spread) * 0x01010101 : w) | 0));
        const want = Array.from(spreadOrder(words, new Uint8Array(ws.length), ws.length));
        const sorted = spreadSortWith(Int32Array.from(words), Uint32Array.from(ws.map((_, i) => i)), ws.length);
        expect(Array.from(sorted.payload)).toEqual(want);
        expect(Array.from(sorted.keys, (k) => reverseBits32(k) | 0)).toEqual(want.map((i) => words[i]));
      }),
    );
  });

  it('with a head, only the first `head` of the spread order stay so: the rest follow in address order, ties in their order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { maxLength: 400 }), fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 400 }), (ws, spread, h) => {
        const words = Int32Array.from(ws.map((w) => (spread < 16 ? (w & spread) * 0x01010101 : w) | 0));
        const head = Math.min(h, ws.length);
        const order = Array.from(spreadOrder(words, new Uint8Array(ws.length), ws.length));
        // The spread order's tail, stably sorted by unsigned address.
        const tail = order.slice(head).map((i, k) => ({ i, k })).sort((a, b) => (words[a.i]! >>> 0) - (words[b.i]! >>> 0) || a.k - b.k).map((x) => x.i);
        const want = [...order.slice(0, head), ...tail];
        const sorted = spreadSortWith(Int32Array.from(words), Uint32Array.from(ws.map((_, i) => i)), ws.length, head);
        expect(Array.from(sorted.payload)).toEqual(want);
        expect(Array.from(sorted.keys, (k) => reverseBits32(k) | 0)).toEqual(want.map((i) => words[i]));
      }),
    );
  });
});

describe('SpreadSort', () => {
  it('read from the front a part at a time (with or without a head), gives what spreadSortWith gives, each position final once ready', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer(), { maxLength: 3000, size: 'max' }),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (ws, spread, h, steps, ordered) => {
          // Few distinct words (big buckets of ties, sorted by radix passes), any word, or nets in a
          // narrow range (buckets sorted on few low bits); given in address order or not.
          const words = Int32Array.from(ws.map((w) => (spread < 12 ? (w & spread) * 0x01010101 : spread < 20 ? 0x0b000000 + ((w & 0xffff) << 8) : w) | 0));
          if (ordered) words.sort((a, b) => (a >>> 0) - (b >>> 0));
          const head = Math.min(h, ws.length);
          const ids = (): Uint32Array => Uint32Array.from(ws.map((_, i) => i));
          const want = spreadSortWith(Int32Array.from(words), ids(), ws.length, head);
          const sort = new SpreadSort(Int32Array.from(words), ids(), ws.length, head);
          const keys: number[] = [];
          const payload: number[] = [];
          for (let s = 0; keys.length < ws.length; s++) {
            const ready = sort.ensure(keys.length + steps[s % steps.length]!);
            expect(ready).toBeGreaterThan(keys.length);
            // Read as soon as ready: a later ensure must not move what was handed out.
            for (let j = keys.length; j < ready; j++) {
              keys.push(sort.keys[j]!);
              payload.push(sort.payload[j]!);
            }
          }
          expect(payload).toEqual(Array.from(want.payload));
          expect(keys).toEqual(Array.from(want.keys));
        },
      ),
      { endOnFailure: true }, // shrinking arrays of thousands takes minutes
    );
  });
});

describe('SpreadSort against a plain sort', () => {
  /** The head: indices by reversed word, ties by index; the rest by word, ties by index. */
  function reference(words: Int32Array, head: number): number[] {
    const idx = Array.from(words, (_, i) => i);
    idx.sort((a, b) => reverseBits32(words[a]!) - reverseBits32(words[b]!) || a - b);
    const tail = idx.slice(head).sort((a, b) => (words[a]! >>> 0) - (words[b]! >>> 0) || a - b);
    return [...idx.slice(0, head), ...tail];
  }

  it('gives the head in trie-spread order and the rest in address order, for nets given in address order or not', () => {
    // Given in address order (a routes file written sorted), the tail is taken in the order given,
    // not sorted: the same order must come out, ties (a net listed twice) included.
    fc.assert(
      fc.property(
        fc.array(fc.integer(), { maxLength: 2000, size: 'medium' }),
        fc.integer({ min: 0, max: 31 }),
        fc.nat(),
        fc.boolean(),
        (ws, spread, h, ordered) => {
          let words = ws.map((w) => (spread < 12 ? (w & spread) * 0x01010101 : spread < 20 ? 0x0b000000 + ((w & 0xffff) << 8) : w) | 0);
          if (ordered) words = words.sort((a, b) => (a >>> 0) - (b >>> 0));
          const head = h % (words.length + 1); // 0 to all of them
          const ids = Uint32Array.from(words, (_, i) => i);
          const got = spreadSortWith(Int32Array.from(words), ids, words.length, head);
          const want = reference(Int32Array.from(words), head);
          expect(Array.from(got.payload)).toEqual(want);
          expect(Array.from(got.keys, (k) => reverseBits32(k) | 0)).toEqual(want.map((i) => words[i]));
        },
      ),
    );
  });
});

describe('SpreadSort of a big file written sorted', () => {
  it('sorts the head buckets beside the nets given (not over them), so the tail taken from them is right', () => {
    // 120,000 /24s in address order, every 7th listed twice: buckets of 64 and more, sorted by radix
    // passes (a small one is sorted by insertion, in place), which used the given arrays as scratch.
    const words: number[] = [];
    for (let i = 0; i < 120000; i++) {
      words.push((0x0b000000 + (i << 8)) | 0);
      if (i % 7 === 0) words.push((0x0b000000 + (i << 8)) | 0);
    }
    for (const head of [0, 1, 1000, 37501, words.length - 1]) {
      const got = spreadSortWith(Int32Array.from(words), Uint32Array.from(words, (_, i) => i), words.length, head);
      const idx = Array.from(words, (_, i) => i).sort((a, b) => reverseBits32(words[a]!) - reverseBits32(words[b]!) || a - b);
      const want = [...idx.slice(0, head), ...idx.slice(head).sort((a, b) => a - b)]; // the tail: in the order given
      expect(Array.from(got.payload)).toEqual(want);
    }
  });
});

describe('SpreadIds', () => {
  it('hands out ids in the trie-spread order of their words', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 63 }), { maxLength: 300 }), (ws) => {
        const words = Int32Array.from(ws.map((w) => (w * 0x01010101) | 0));
        const ids = new SpreadIds(ws.length);
        ws.forEach((_, id) => ids.push(words[id]!, id));
        ids.sort();
        const got = Array.from({ length: ids.n }, (_, k) => ids.at(k));
        expect(got).toEqual(Array.from(spreadOrder(words, new Uint8Array(ws.length), ws.length)));
      }),
    );
  });

  it('hands out ids in address order, whether they were pushed in it already, but for a few strays or more, or not at all', () => {
    // Pushed in order (a link's lost routes over ids handed out by an ordered feed), the sort is a check; one id out
    // of place anywhere, or none in order, must still come out sorted by word, then id.
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 300 }), fc.nat(), fc.boolean(), (raw, at, ordered) => {
        const ws = ordered ? [...raw].sort((a, b) => (a >>> 0) - (b >>> 0)) : raw;
        // A few strays (moved into place one by one), or more than it moves so (sorted whole).
        const strays = ordered && ws.length > 1 ? [0, 1, 3, 17, 40][at % 5]! : 0;
        for (let s = 0; s < strays; s++) {
          const i = (at + s * 7919) % ws.length;
          const j = (i * 31 + s) % ws.length;
          [ws[i], ws[j]] = [ws[j]!, ws[i]!];
        }
        const ids = new SpreadIds(ws.length, false);
        ws.forEach((w, id) => ids.push(w, id));
        ids.sort();
        const got = Array.from({ length: ids.n }, (_, k) => ids.at(k));
        const want = ws.map((w, id) => ({ w: w >>> 0, id })).sort((a, b) => a.w - b.w || a.id - b.id).map((x) => x.id);
        expect(got).toEqual(want);
      }),
    );
  });
});
