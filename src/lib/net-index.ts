/**
 * NetIndex: the nets of one family, each with a dense id, in typed arrays.
 *
 * A million nets held per net as objects, or as Map entries, cost the kernel
 * protocol about 120 bytes each and the garbage collector a walk over them
 * at every full collection. Here a net is its address words (1 for IPv4, 4
 * for IPv6) and its length in typed arrays indexed by its id, found through
 * an open-addressing hash of ids (linear probing, kept at most 70 % full, of
 * any size rather than a power of two, backward-shift deletion so no
 * tombstones pile up): about 11 bytes an IPv4 net, 23 an IPv6 one, outside
 * V8's heap. Owners keep their own per-net columns
 * indexed by the same id (see onGrow); nothing here holds a JS object per
 * net, and no lookup builds a string or a Prefix.
 *
 * Ids are reused after remove(): an owner clears its columns for an id
 * before it removes it. Ids are small integers below `capacity`; an index
 * holds at most MAX_NETS (2^24 - 2) nets, a slot's id bits (a full table is
 * about a million IPv4 and 200,000 IPv6 nets).
 */
import { Prefix } from './addr';
import { KrtError } from './errors';
import { grownTo } from './net-list';

/** The length NetIndex gives an id not in use. */
export const FREE_LEN = 255;
/** How full the hash may get: linear probing stays short below this. */
const MAX_LOAD = 0.7;
/** A slot holds its id + 1 in its low 24 bits and 8 bits of its net's hash above them. */
const ID_BITS = 24;
const ID_MASK = (1 << ID_BITS) - 1;
/** Nets an index holds at most (ids below it, as a slot holds them). */
export const MAX_NETS = ID_MASK - 1;

/** A 32-bit hash of an IPv4 net (murmur3's finalizer over the word and length). */
function hash4(word: number, len: number): number {
  let h = word ^ Math.imul(len + 1, 0x9e3779b9);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function hash6(w0: number, w1: number, w2: number, w3: number, len: number): number {
  let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ w1 ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ w2 ^ (h >>> 13), 0x85ebca6b);
  h = Math.imul(h ^ w3 ^ (h >>> 16), 0xc2b2ae35);
  return hash4(h, len);
}

/** A slot's value: id + 1, and the hash's low 8 bits as the tag. */
function slotOf(id: number, h: number): number {
  return ((h & 255) << ID_BITS) | (id + 1);
}

/** The home slot of a 32-bit hash in a table of `size` slots: its high bits scaled (Lemire's fastrange). */
function home(h: number, size: number): number {
  return Math.floor(((h >>> 0) * size) / 4294967296);
}

export class NetIndex {
  readonly stride: 1 | 4;
  /** Address words by id (id * stride + i), host order, host bits clear. */
  words: Int32Array;
  /** Prefix length by id; 255 for an id not in use. */
  lens: Uint8Array;
  /**
   * Per slot, 0 (empty) or its id + 1 (low 24 bits) and a tag, 8 bits of its net's hash the home
   * slot does not use (high 8 bits): a probe compares the tag before it reads the net's words, which
   * are a cache miss each (ids are scattered over the slots), and the tag is in the slot itself, in
   * the same cache line (a separate array of tags was a second miss per probe). At a million nets
   * the misses were most of an insert.
   */
  private slots: Int32Array;
  /** slots.length, any size: a hash maps to a home slot by multiplying (fastrange), not masking. */
  private nslots: number;
  private count = 0;
  /** Ids below this have been handed out at some point. */
  private top = 0;
  private free: Int32Array;
  private nfree = 0;
  /** Called with the new id capacity when it grows, before the id that needed it is returned. */
  onGrow: ((capacity: number) => void) | undefined = undefined;
  /** insert*() made a new id (false: the net was there). */
  created = false;
  /**
   * The id the last lookup or insert found: the next one tries it and the id after it before hashing
   * (near4/near6). Walks in address order (an export, a next-hop set's nets, a link's catch-up) over
   * an index filled in address order (a feed, a full table loaded in order) find each net there,
   * with no hash and no cache miss in the slots: at a million nets the slot probe is a miss per net.
   */
  private last = -1;
  /** Nets reserve() asked room for (made at the next growth). */
  private reserved = 0;

  constructor(
    readonly family: 4 | 6,
    initial = 1024,
  ) {
    this.stride = family === 4 ? 1 : 4;
    let cap = 16;
    while (cap < initial) cap <<= 1;
    this.words = new Int32Array(cap * this.stride);
    this.lens = new Uint8Array(cap).fill(FREE_LEN);
    this.free = new Int32Array(64);
    this.nslots = Math.ceil(cap / MAX_LOAD) + 1;
    this.slots = new Int32Array(this.nslots);
  }

  /** Nets held. */
  get size(): number {
    return this.count;
  }

  /** Ids are below this; per-id columns need this many entries. */
  get capacity(): number {
    return this.lens.length;
  }

  /** One past the highest id ever handed out (a walk over ids stops here). */
  get end(): number {
    return this.top;
  }

  /**
   * Room for `n` nets, made when the index next has to grow, then all at once (one allocation, no
   * doubling copies on the way there). Not now: a fill that reserves before its first insert pays
   * for a million nets' room after its first thousand, and its first routes reach their readers
   * (the kernel) that much sooner (docs/benchmarks.md, Round 18).
   */
  reserve(n: number): void {
    this.reserved = Math.max(this.reserved, n);
  }

  /** The id capacity to grow to: double, or at once to what reserve() asked for. */
  private grownCapacity(): number {
    let cap = this.lens.length * 2;
    while (cap < this.reserved) cap *= 2;
    return cap;
  }

  /** The slot count to rehash to: half again, or at once to what reserve() asked for. */
  private grownSlots(): number {
    return Math.max(Math.ceil((this.nslots * 3) / 2), Math.ceil(this.reserved / MAX_LOAD) + 1);
  }

  live(id: number): boolean {
    return this.lens[id] !== FREE_LEN;
  }

  /**
   * Reads the home slot of each IPv4 net words[from..to) (lengths in lens) and changes nothing: a
   * hint before a run of lookups or inserts of those nets. These reads do not depend on each other,
   * so the CPU has many of their cache misses in flight at once, where the lookups that follow, one
   * after the other, would wait for each miss in turn. Returns the slots' xor (so the reads are
   * not dead code). Worth it only for runs of hundreds of nets (docs/benchmarks.md, Round 15).
   */
  warm4(words: Int32Array, lens: Uint8Array, from: number, to: number): number {
    const slots = this.slots;
    const size = this.nslots;
    let x = 0;
    for (let i = from; i < to; i++) x ^= slots[home(hash4(words[i]! | 0, lens[i]!), size)]!;
    return x;
  }

  find4(word: number, len: number): number {
    word |= 0;
    const near = this.near4(word, len);
    if (near >= 0) return near;
    const at = this.probe4(word, len, hash4(word, len));
    if (at < 0) return -1;
    this.last = at;
    return at;
  }

  find6(w0: number, w1: number, w2: number, w3: number, len: number): number {
    w0 |= 0;
    w1 |= 0;
    w2 |= 0;
    w3 |= 0;
    const near = this.near6(w0, w1, w2, w3, len);
    if (near >= 0) return near;
    const at = this.probe6(w0, w1, w2, w3, len, hash6(w0, w1, w2, w3, len));
    if (at < 0) return -1;
    this.last = at;
    return at;
  }

  /** The net's id if it is the last one found or the id after it (see `last`), else -1. A free id's length never matches. */
  private near4(word: number, len: number): number {
    const lens = this.lens;
    const words = this.words;
    let id = this.last + 1;
    if (id < lens.length && lens[id] === len && words[id] === word) return (this.last = id);
    id--;
    if (id >= 0 && lens[id] === len && words[id] === word) return id;
    return -1;
  }

  private near6(w0: number, w1: number, w2: number, w3: number, len: number): number {
    const lens = this.lens;
    const words = this.words;
    let id = this.last + 1;
    let k = id * 4;
    if (id < lens.length && lens[id] === len && words[k] === w0 && words[k + 1] === w1 && words[k + 2] === w2 && words[k + 3] === w3) return (this.last = id);
    id--;
    k -= 4;
    if (id >= 0 && lens[id] === len && words[k] === w0 && words[k + 1] === w1 && words[k + 2] === w2 && words[k + 3] === w3) return id;
    return -1;
  }

  /** The net's id, or -(slot + 1) of the empty slot where its probe ended (where an insert puts it). */
  private probe4(word: number, len: number, h: number): number {
    const slots = this.slots;
    const tag = h & 255;
    const size = this.nslots;
    for (let i = home(h, size); ; i = i + 1 === size ? 0 : i + 1) {
      const s = slots[i]!;
      if (s === 0) return -(i + 1);
      if (s >>> ID_BITS !== tag) continue;
      const id = (s & ID_MASK) - 1;
      if (this.words[id] === word && this.lens[id] === len) return id;
    }
  }

  private probe6(w0: number, w1: number, w2: number, w3: number, len: number, h: number): number {
    const slots = this.slots;
    const tag = h & 255;
    const size = this.nslots;
    const words = this.words;
    for (let i = home(h, size); ; i = i + 1 === size ? 0 : i + 1) {
      const s = slots[i]!;
      if (s === 0) return -(i + 1);
      if (s >>> ID_BITS !== tag) continue;
      const id = (s & ID_MASK) - 1;
      const k = id * 4;
      if (words[k] === w0 && words[k + 1] === w1 && words[k + 2] === w2 && words[k + 3] === w3 && this.lens[id] === len) return id;
    }
  }

  /** The id of `net` (of this family), or -1. */
  find(net: Prefix): number {
    return this.stride === 1 ? this.find4(net.w0, net.len) : this.find6(net.w0, net.w1, net.w2, net.w3, net.len);
  }

  /** The id of the IPv4 net, made if new (`created` says which). */
  insert4(word: number, len: number): number {
    word |= 0;
    const near = this.near4(word, len);
    if (near >= 0) {
      this.created = false;
      return near;
    }
    const h = hash4(word, len);
    let at = this.probe4(word, len, h);
    this.created = at < 0;
    if (at >= 0) return (this.last = at);
    // A rehash on the way moves every slot: the probe's empty slot only holds without one.
    if (this.count + 1 > this.nslots * MAX_LOAD) {
      this.rehash(this.grownSlots());
      at = this.probe4(word, len, h);
    }
    const id = this.newId();
    this.words[id] = word;
    this.lens[id] = len;
    this.slots[-at - 1] = slotOf(id, h);
    return (this.last = id);
  }

  insert6(w0: number, w1: number, w2: number, w3: number, len: number): number {
    w0 |= 0;
    w1 |= 0;
    w2 |= 0;
    w3 |= 0;
    const near = this.near6(w0, w1, w2, w3, len);
    if (near >= 0) {
      this.created = false;
      return near;
    }
    const h = hash6(w0, w1, w2, w3, len);
    let at = this.probe6(w0, w1, w2, w3, len, h);
    this.created = at < 0;
    if (at >= 0) return (this.last = at);
    if (this.count + 1 > this.nslots * MAX_LOAD) {
      this.rehash(this.grownSlots());
      at = this.probe6(w0, w1, w2, w3, len, h);
    }
    const id = this.newId();
    const k = id * 4;
    this.words[k] = w0;
    this.words[k + 1] = w1;
    this.words[k + 2] = w2;
    this.words[k + 3] = w3;
    this.lens[id] = len;
    this.slots[-at - 1] = slotOf(id, h);
    return (this.last = id);
  }

  insert(net: Prefix): number {
    return this.stride === 1 ? this.insert4(net.w0, net.len) : this.insert6(net.w0, net.w1, net.w2, net.w3, net.len);
  }

  /** Forgets an id (its net is no longer held); the id may be handed out again. */
  remove(id: number): void {
    if (!this.live(id)) return;
    const slots = this.slots;
    const size = this.nslots;
    let i = home(this.hashOf(id), size);
    while ((slots[i]! & ID_MASK) !== id + 1) i = i + 1 === size ? 0 : i + 1;
    // Backward-shift deletion: move later members of the probe run into the hole when their home allows.
    let hole = i;
    for (let j = i + 1 === size ? 0 : i + 1; slots[j] !== 0; j = j + 1 === size ? 0 : j + 1) {
      const h = home(this.hashOf((slots[j]! & ID_MASK) - 1), size);
      // j's entry may move to the hole when its home is not in (hole, j] (cyclically).
      const between = hole <= j ? h > hole && h <= j : h > hole || h <= j;
      if (!between) {
        slots[hole] = slots[j]!;
        hole = j;
      }
    }
    slots[hole] = 0;
    this.lens[id] = FREE_LEN;
    this.count--;
    if (this.nfree === this.free.length) {
      const f = new Int32Array(this.free.length * 2);
      f.set(this.free);
      this.free = f;
    }
    this.free[this.nfree++] = id;
  }

  /** The net of an id, as a Prefix (made on each call: for the few, not in hot loops). */
  prefix(id: number): Prefix {
    const len = this.lens[id]!;
    if (this.stride === 1) return new Prefix(4, len, this.words[id]!);
    const k = id * 4;
    return new Prefix(6, len, this.words[k]!, this.words[k + 1]!, this.words[k + 2]!, this.words[k + 3]!);
  }

  /** Calls fn for every id in use, in id order. */
  forEach(fn: (id: number) => void): void {
    const lens = this.lens;
    for (let id = 0; id < this.top; id++) if (lens[id] !== FREE_LEN) fn(id);
  }

  private hashOf(id: number): number {
    if (this.stride === 1) return hash4(this.words[id]!, this.lens[id]!);
    const k = id * 4;
    return hash6(this.words[k]!, this.words[k + 1]!, this.words[k + 2]!, this.words[k + 3]!, this.lens[id]!);
  }

  /** A new id; the caller has made room in the slots (insert4/insert6 rehash first when full). */
  private newId(): number {
    if (this.nfree === 0 && this.top >= MAX_NETS) throw new KrtError('KRT_ERR_TOO_MANY_NETS', `more than ${MAX_NETS} IPv${this.family} nets in one index`);
    this.count++;
    if (this.nfree > 0) return this.free[--this.nfree]!;
    if (this.top === this.lens.length) this.growIds(this.grownCapacity());
    return this.top++;
  }

  private growIds(cap: number): void {
    this.words = grownTo(this.words, cap * this.stride);
    const lens = new Uint8Array(cap).fill(FREE_LEN);
    lens.set(this.lens);
    this.lens = lens;
    this.onGrow?.(cap);
  }

  private place(id: number, h: number): void {
    const slots = this.slots;
    const size = this.nslots;
    let i = home(h, size);
    while (slots[i] !== 0) i = i + 1 === size ? 0 : i + 1;
    slots[i] = slotOf(id, h);
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    this.nslots = size;
    const lens = this.lens;
    for (let id = 0; id < this.top; id++) if (lens[id] !== FREE_LEN) this.place(id, this.hashOf(id));
  }
}
