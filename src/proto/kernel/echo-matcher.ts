/**
 * EchoMatcher: the echo fallback, in one place. Only used when the kernel
 * would not take the monitor's filter (KernelIo.ownEchoesFiltered false):
 * then every change of ours comes back as a notification, and each must be
 * told from someone else's change to the same route.
 *
 * Per route id it keeps the notifications its own changes will still cause
 * ('new' for an add or replace, 'del' for a delete), each with the metric of
 * the route it concerns, in send order. A notification matches an expected
 * one of the same kind and metric (not only the oldest: when an add fails,
 * the delete sent with it is notified before the add's failure is known).
 * While a route expects echoes it is not planned again, so an echo of our own
 * change is never taken for a repair. An echo that does not come within the
 * wait (lost, or merged by the kernel) is given up and the route re-planned.
 */
import type { RouteHead } from '../../netlink/route-head';
import { sameSimpleHead } from './normalize';
import type { RouteMessage } from '../../netlink/route-codec';

export type EchoKind = 'new' | 'del';

interface Expected {
  kinds: EchoKind[];
  prios: number[];
  /** When the last change of the route went out. */
  sentAt: number;
}

/** Arrays this long are compacted once more than half of them has been taken. */
const COMPACT_AT = 4096;

export class EchoMatcher {
  private readonly expected = new Map<number, Expected>();
  private waitIds: number[] = [];
  private waitAt: number[] = [];
  private head = 0;

  /** Notifications still expected for the route. */
  pending(id: number): boolean {
    return this.expected.has(id);
  }

  /** A change of ours for the route went out; its notification (kind, at metric prio) will come. */
  expect(id: number, kind: EchoKind, prio: number, now: number): void {
    let x = this.expected.get(id);
    if (x === undefined) {
      x = { kinds: [], prios: [], sentAt: now };
      this.expected.set(id, x);
    }
    x.kinds.push(kind);
    x.prios.push(prio);
    if (x.sentAt !== now || x.kinds.length === 1) {
      x.sentAt = now;
      this.waitIds.push(id);
      this.waitAt.push(now);
    }
  }

  /** A notification of `kind` at metric `prio` (undefined: any) arrived: true when it is ours (and consumes it). */
  take(id: number, kind: EchoKind, prio: number | undefined): boolean {
    return this.remove(id, kind, prio, false);
  }

  /** A change of ours failed or changed nothing: the notification it would have caused never comes. */
  drop(id: number, kind: EchoKind, prio: number): void {
    this.remove(id, kind, prio, true);
  }

  /** Forget the echoes of a route (a dump shows their effect, or the route goes). */
  forget(id: number): void {
    this.expected.delete(id);
  }

  clear(): void {
    this.expected.clear();
    this.waitIds = [];
    this.waitAt = [];
    this.head = 0;
  }

  /**
   * Calls `overdue` for each route whose last change went out before `before` and still expects
   * echoes with nothing in flight. One still in flight is looked at again within one more wait.
   */
  takeOverdue(before: number, inflight: (id: number) => boolean, overdue: (id: number) => void): void {
    const end = this.waitIds.length;
    while (this.head < end && this.waitAt[this.head]! < before) {
      const id = this.waitIds[this.head]!;
      const at = this.waitAt[this.head]!;
      this.head++;
      const x = this.expected.get(id);
      if (x === undefined || x.sentAt !== at) continue; // settled, or sent again since (a later slot judges it)
      if (inflight(id)) {
        this.waitIds.push(id);
        this.waitAt.push(at);
        continue;
      }
      this.expected.delete(id);
      overdue(id);
    }
    if (this.head === this.waitIds.length) {
      this.waitIds = [];
      this.waitAt = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AT && this.head * 2 >= this.waitIds.length) {
      this.waitIds = this.waitIds.slice(this.head);
      this.waitAt = this.waitAt.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The raw fast path: a notification read in place (RouteHead) that is the expected 'new' echo of
   * our change to `want` and equal to it as installed (sameSimpleHead), or an expected 'del'.
   * True: consumed, and the caller applies it as the decoded one would be; false: decode it.
   */
  takeRaw(id: number, head: RouteHead, deleted: boolean, want: RouteMessage | undefined, prio: number): boolean {
    if (!deleted && (want === undefined || !sameSimpleHead(want, head))) return false;
    return this.take(id, deleted ? 'del' : 'new', prio);
  }

  private remove(id: number, kind: EchoKind, prio: number | undefined, last: boolean): boolean {
    const x = this.expected.get(id);
    if (x === undefined) return false;
    let i = -1;
    if (last) {
      for (let j = x.kinds.length - 1; j >= 0 && i < 0; j--) if (x.kinds[j] === kind && (prio === undefined || x.prios[j] === prio)) i = j;
    } else {
      for (let j = 0; j < x.kinds.length && i < 0; j++) if (x.kinds[j] === kind && (prio === undefined || x.prios[j] === prio)) i = j;
    }
    if (i < 0) return false;
    x.kinds.splice(i, 1);
    x.prios.splice(i, 1);
    if (x.kinds.length === 0) this.expected.delete(id);
    return true;
  }
}
