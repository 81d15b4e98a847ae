/**
 * The startup hold: one install per prefix when several BGP neighbours load
 * at once (FRR's `update-delay`, per family).
 *
 * From the protocol's start, routes from neighbours are staged here instead
 * of going into the table. A family is released when every neighbour the
 * hold waits for is done with it (sent its end-of-RIB, or its OPEN offers
 * no such family), or when the wait runs out; then every staged route of the
 * family goes into the table net by net, all neighbours' routes of a net
 * together, so the kernel's reader finds each net's chain complete and
 * installs it once. After the release, routes flow straight to the table.
 *
 * Waited for: every neighbour seen while the hold is open, minus those that
 * went down, and the configured neighbours (exact addresses) not seen yet.
 * With nobody to wait for yet, the hold stays open until the wait runs out,
 * so a neighbour that comes up a little later is still held. Routes of a
 * client without a neighbour (krtsync's plain format) are never held: such
 * a client may never send an end-of-RIB; the caller does not call the hold
 * for them. A neighbour is known by a key unique per client and neighbour
 * (two clients may relay one neighbour), and by its address.
 *
 * Staged routes are kept as the table keeps nets (IPv4 by length and int32
 * word, IPv6 by prefixKey), one Map entry per route.
 */
import { prefixFromKey, prefixKey, type Family, type Prefix } from '../../lib/addr';
import type { RouteAttrs } from '../../route';

/** Routes kept out of the table for now, by net (the startup hold's, and a suppressed source's: source-damping.ts). */
export class StagedNets {
  private readonly v4: (Map<number, RouteAttrs> | undefined)[] = new Array<Map<number, RouteAttrs> | undefined>(33).fill(undefined);
  private readonly v6 = new Map<string, RouteAttrs>();
  size = 0;

  get(net: Prefix): RouteAttrs | undefined {
    return net.family === 4 ? this.v4[net.len]?.get(net.w0 | 0) : this.v6.get(prefixKey(net) as string);
  }

  set(net: Prefix, attrs: RouteAttrs): void {
    if (net.family === 4) {
      const m = (this.v4[net.len] ??= new Map());
      if (!m.has(net.w0 | 0)) this.size++;
      m.set(net.w0 | 0, attrs);
    } else {
      const k = prefixKey(net) as string;
      if (!this.v6.has(k)) this.size++;
      this.v6.set(k, attrs);
    }
  }

  delete(net: Prefix): boolean {
    const gone = net.family === 4 ? this.v4[net.len]?.delete(net.w0 | 0) === true : this.v6.delete(prefixKey(net) as string);
    if (gone) this.size--;
    return gone;
  }

  /** Every entry, in no particular order, left in place. */
  forEach(fn: (net: Prefix, attrs: RouteAttrs) => void): void {
    this.v4.forEach((m, len) => m?.forEach((attrs, w) => fn(Prefix4(w, len), attrs)));
    this.v6.forEach((attrs, k) => fn(prefixFromKey(k), attrs));
  }

  /** Takes every entry out, in no particular order (a Map visits what is added meanwhile, too). */
  drain(fn: (net: Prefix, attrs: RouteAttrs) => void): void {
    this.v4.forEach((m, len) => {
      if (!m) return;
      for (const [w, attrs] of m) {
        m.delete(w);
        this.size--;
        fn(Prefix4(w, len), attrs);
      }
    });
    for (const [k, attrs] of this.v6) {
      this.v6.delete(k);
      this.size--;
      fn(prefixFromKey(k), attrs);
    }
  }
}

function Prefix4(word: number, len: number): Prefix {
  return prefixFromKey((word >>> 0) * 64 + len);
}

export interface HoldEvents {
  /** A staged route goes into the table. */
  apply(peer: string, net: Prefix, attrs: RouteAttrs): void;
  /** A family was released: `routes` staged routes of `peers` neighbours went in; `waiting`: neighbours not done when the wait ran out. */
  released(family: Family, routes: number, peers: number, why: 'end-of-RIB' | 'timeout' | 'shutdown', waiting: readonly string[]): void;
}

export class StartupHold {
  /** Per family still held: staged routes per peer, and the peers done with it. */
  private readonly open = new Map<Family, { staged: Map<string, StagedNets>; done: Set<string> }>();
  /** Keys seen while open, with their neighbour's address. */
  private readonly seen = new Map<string, string>();
  private readonly gone = new Set<string>();
  private readonly offered = new Map<string, readonly Family[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    families: readonly Family[],
    private readonly expected: ReadonlySet<string>,
    waitMs: number,
    private readonly events: HoldEvents,
  ) {
    for (const f of families) this.open.set(f, { staged: new Map(), done: new Set() });
    this.timer = setTimeout(() => this.releaseAll('timeout'), waitMs);
    this.timer.unref();
  }

  /** Whether routes of `family` are held now. */
  holds(family: Family): boolean {
    return this.open.has(family);
  }

  get active(): boolean {
    return this.open.size > 0;
  }

  has(peer: string, net: Prefix): boolean {
    return this.open.get(net.family)?.staged.get(peer)?.get(net) !== undefined;
  }

  stage(peer: string, net: Prefix, attrs: RouteAttrs): void {
    const fam = this.open.get(net.family)!;
    let nets = fam.staged.get(peer);
    if (!nets) fam.staged.set(peer, (nets = new StagedNets()));
    nets.set(net, attrs);
  }

  /** Drops a staged route; false when `net` was not staged for `peer`. */
  unstage(peer: string, net: Prefix): boolean {
    return this.open.get(net.family)?.staged.get(peer)?.delete(net) === true;
  }

  /** Staged routes of `peer`, all families. */
  count(peer: string): number {
    let n = 0;
    for (const fam of this.open.values()) n += fam.staged.get(peer)?.size ?? 0;
    return n;
  }

  /** Keeps only the staged routes `keep` accepts (a reloaded import filter); returns how many went. */
  retain(keep: (peer: string, net: Prefix, attrs: RouteAttrs) => boolean): number {
    let n = 0;
    for (const fam of this.open.values()) {
      for (const [peer, nets] of fam.staged) {
        const kept: [Prefix, RouteAttrs][] = [];
        nets.drain((net, attrs) => (keep(peer, net, attrs) ? kept.push([net, attrs]) : n++));
        for (const [net, attrs] of kept) nets.set(net, attrs);
      }
    }
    return n;
  }

  /** A neighbour showed up (state up, OPEN, or its first route); its OPEN's families when known. */
  seenPeer(peer: string, address: string, families?: readonly Family[]): void {
    if (!this.active) return;
    this.seen.set(peer, address);
    this.gone.delete(peer);
    if (families) this.offered.set(peer, families);
    this.check();
  }

  /** End-of-RIB from `peer`: for one family, or (undefined) all. */
  peerDone(peer: string, family: Family | undefined): void {
    for (const [f, fam] of this.open) if (family === undefined || family === f) fam.done.add(peer);
    this.check();
  }

  /** The neighbour went down: its staged routes go, and the hold no longer waits for it. */
  peerGone(peer: string): void {
    if (!this.seen.has(peer)) return;
    this.gone.add(peer);
    for (const fam of this.open.values()) {
      fam.staged.delete(peer);
      fam.done.delete(peer);
    }
    this.check();
  }

  releaseAll(why: 'timeout' | 'shutdown'): void {
    for (const f of [...this.open.keys()]) this.release(f, why);
  }

  /** Keys of neighbours seen and not gone, and the addresses of configured ones not seen yet (never done). */
  private waitedFor(): string[] {
    const addresses = new Set(this.seen.values());
    return [...[...this.seen.keys()].filter((p) => !this.gone.has(p)), ...[...this.expected].filter((a) => !addresses.has(a))];
  }

  private check(): void {
    const waited = this.waitedFor();
    if (waited.length === 0) return;
    for (const [f, fam] of this.open) {
      if (waited.every((p) => fam.done.has(p) || (this.offered.has(p) && !this.offered.get(p)!.includes(f)))) this.release(f, 'end-of-RIB');
    }
  }

  private release(f: Family, why: 'end-of-RIB' | 'timeout' | 'shutdown'): void {
    const fam = this.open.get(f);
    if (!fam) return;
    this.open.delete(f);
    if (this.open.size === 0) clearTimeout(this.timer);
    const waiting = why === 'timeout' ? this.waitedFor().filter((p) => !fam.done.has(p)) : [];
    let routes = 0;
    if (why !== 'shutdown') {
      // Net by net, every neighbour's route of the net together: the reader sees each chain complete.
      const peers = [...fam.staged];
      for (let i = 0; i < peers.length; i++) {
        const [peer, nets] = peers[i]!;
        nets.drain((net, attrs) => {
          routes++;
          this.events.apply(peer, net, attrs);
          for (let j = i + 1; j < peers.length; j++) {
            const [other, theirs] = peers[j]!;
            const a = theirs.get(net);
            if (a === undefined) continue;
            theirs.delete(net);
            routes++;
            this.events.apply(other, net, a);
          }
        });
      }
    }
    this.events.released(f, routes, fam.staged.size, why, waiting);
  }
}
