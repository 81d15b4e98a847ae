/**
 * NetList: a growable list of nets in typed arrays, each with one number
 * beside it (a metric, an index): address words (1 per IPv4 net, 4 per
 * IPv6 one, host order), prefix length, value. For a million nets gathered
 * at once (a dump, a shutdown's deletes) without an object or a Prefix per
 * net: 13 bytes an IPv4 net, 25 an IPv6 one.
 */

type Typed = Int32Array | Uint32Array | Uint16Array | Uint8Array | Float64Array;

/** A copy of `a` with room for `cap` elements. */
export function grownTo<T extends Typed>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

export class NetList {
  n = 0;
  words: Int32Array;
  lens: Uint8Array;
  values: Float64Array | Int32Array;

  /** `intValues`: the values are int32 (an index, an id: 4 bytes a net), not any number (8). */
  constructor(
    readonly stride: 1 | 4,
    capacity = 1024,
    intValues = false,
  ) {
    this.words = new Int32Array(capacity * stride);
    this.lens = new Uint8Array(capacity);
    this.values = intValues ? new Int32Array(capacity) : new Float64Array(capacity);
  }

  push(len: number, value: number, w0: number, w1 = 0, w2 = 0, w3 = 0): void {
    if (this.n === this.lens.length) {
      const cap = Math.max(16, this.n * 2);
      this.words = grownTo(this.words, cap * this.stride);
      this.lens = grownTo(this.lens, cap);
      this.values = grownTo(this.values, cap);
    }
    const k = this.n * this.stride;
    this.words[k] = w0;
    if (this.stride === 4) {
      this.words[k + 1] = w1;
      this.words[k + 2] = w2;
      this.words[k + 3] = w3;
    }
    this.lens[this.n] = len;
    this.values[this.n++] = value;
  }
}
