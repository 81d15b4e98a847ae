/**
 * ReexportQueue: the nets a kernel protocol must export again because
 * next-hop tracking reordered them while failover reads every route of a net
 * (the `all` exporter does not carry a reorder: docs/failover.md), exported
 * in slices with the event loop turning between them.
 *
 * A link that loses carrier makes the tracker reorder every net through it
 * in one synchronous pass, and the protocol used to export each of them again
 * inside that pass: at a million nets, seconds during which the sync could
 * not feed the kernel the routes the same link event had flushed
 * (link-flush.ts). In slices, the sync's sender runs between them and the
 * kernel adds those routes on its own thread meanwhile.
 *
 * Invariants: each net is exported as the table holds it when its turn
 * comes (a net the walk exported meanwhile is exported again with the same
 * result: nothing is planned); nets queued again before their turn are
 * exported once per queueing, which is harmless; stop() drops what is left
 * (the protocol stops, or its walk is replaced by a full feed).
 */
import type { Prefix } from '../../lib/addr';

/** Nets exported per slice: a few tens of milliseconds at a million nets. */
const SLICE = 16384;

export class ReexportQueue {
  private nets: Prefix[] = [];
  private next = 0;
  private timer: NodeJS.Immediate | undefined;

  constructor(private readonly exportNet: (net: Prefix) => void) {}

  /** Nets waiting for their turn. */
  get size(): number {
    return this.nets.length - this.next;
  }

  add(net: Prefix): void {
    this.nets.push(net);
    this.timer ??= setImmediate(() => this.slice());
  }

  /** Drops what is left. */
  stop(): void {
    if (this.timer !== undefined) clearImmediate(this.timer);
    this.timer = undefined;
    this.nets = [];
    this.next = 0;
  }

  private slice(): void {
    this.timer = undefined;
    const end = Math.min(this.nets.length, this.next + SLICE);
    while (this.next < end) this.exportNet(this.nets[this.next++]!);
    if (this.next < this.nets.length) this.timer = setImmediate(() => this.slice());
    else {
      this.nets = [];
      this.next = 0;
    }
  }
}
