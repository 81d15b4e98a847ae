/**
 * Hash-consing for immutable values (next-hop sets, attribute sets).
 *
 * An interner maps a canonical key string to the one live object with that
 * content, so equal content means the same object and equality is `===`. The
 * map holds its objects weakly: once no route refers to an attribute set, the
 * garbage collector may take it and a FinalizationRegistry removes its key.
 * A later intern of the same content then builds a fresh object; that is safe
 * because nobody still holds the old one to compare against.
 *
 * Invariant: the key must be a pure function of the content (same content,
 * same key; different content, different key).
 */
export class Interner<T extends object> {
  private readonly live = new Map<string, WeakRef<T>>();
  private readonly registry = new FinalizationRegistry<string>((key) => {
    // The key may have been re-interned since: delete only a dead entry.
    const ref = this.live.get(key);
    if (ref !== undefined && ref.deref() === undefined) this.live.delete(key);
  });

  /** The live object for `key`, or the one `make()` builds (and is then remembered). */
  intern(key: string, make: () => T): T {
    const found = this.live.get(key)?.deref();
    if (found !== undefined) return found;
    const made = make();
    this.live.set(key, new WeakRef(made));
    this.registry.register(made, key);
    return made;
  }

  /** Number of keys remembered (live objects plus any not yet finalized). */
  get size(): number {
    return this.live.size;
  }
}
