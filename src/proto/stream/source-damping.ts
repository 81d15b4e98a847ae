/**
 * Flap damping of a stream protocol's sources (stream.ts): a BGP neighbour
 * behind a client, or a client's own routes, that keeps losing its routes
 * and coming back, after BGP route flap damping (RFC 2439) but per source,
 * not per prefix (a session flaps as a whole; docs/failover.md, "A flapping
 * source"):
 *
 *  - each failure (the source's routes withdrawn as a whole: a neighbour
 *    down, a client gone after its grace) earns a penalty that decays with a
 *    half-life: the arithmetic of the next-hop tracker's damping
 *    (table/nexthop-damping.ts), so both read the same settings;
 *  - a return (the source's first announcement, state up or OPEN after a
 *    failure) while the penalty is at or above `suppress` is suppressed: its
 *    announcements are staged here instead of going into the table, so the
 *    nets stay on their backup with no table or kernel work, until the
 *    penalty has decayed to `reuse` (at most `maxHoldMs` after the last
 *    failure), when a timer hands them to the table in one go;
 *  - a failure while suppressed drops what was staged and earns a penalty:
 *    no table work at all;
 *  - a first failure, and a single return, are never delayed (one penalty is
 *    below `suppress`).
 *
 * Keyed by the source's name (PROTOCOL/CLIENT[/NEIGHBOR]): a neighbour's
 * RouteSource is new at each return, its name is not. An entry goes once its
 * penalty has decayed below half of `reuse` (RFC 2439's history; half of
 * `penalty` when that is lower, so one failure is remembered) while
 * nothing is suppressed: the state grows with the sources that flapped
 * lately, not with the names ever seen. Time comes from `now` (tests pass a
 * fake clock), and one timer per suppressed source ends its suppression.
 * Each change of state is logged once (suppressed, dropped while
 * suppressed, reused), never per net.
 */
import type { Prefix } from '../../lib/addr';
import type { RouteAttrs } from '../../route';
import type { DampingSettings } from '../../table';
import { FlapDamping } from '../../table/nexthop-damping';
import type { Logger } from '../logger';
import { StagedNets } from './startup-hold';

export interface SourceDampingEvents {
  /** The suppression of `name` is over while its source is up: `staged` goes into the table now. */
  reuse(name: string, staged: StagedNets): void;
}

export interface SourceDampingReport {
  source: string;
  /** suppressed: up, its routes staged until `suppressedUntil`; down: failed lately (its next return is judged); up: back, a penalty left. */
  state: 'suppressed' | 'down' | 'up';
  flaps: number;
  penalty: number;
  /** When the suppression ends (ms since the epoch); only while suppressed. */
  suppressedUntil?: number;
  /** Routes staged while suppressed. */
  routes: number;
}

/** A route kept out of the table while its source is suppressed. */
export interface SuppressedRoute {
  source: string;
  net: Prefix;
  attrs: RouteAttrs;
  /** When the suppression ends (ms since the epoch). */
  until: number;
  flaps: number;
}

interface Entry {
  readonly damping: FlapDamping;
  /** Failed and not back yet: its next return is judged. */
  down: boolean;
  /** While suppressed and up: the routes it announced. */
  staged: StagedNets | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class SourceDamping {
  private readonly entries = new Map<string, Entry>();
  /** Failures seen since the start (metrics). */
  failures = 0;

  constructor(
    private readonly settings: DampingSettings,
    private readonly events: SourceDampingEvents,
    private readonly log: Logger,
    private readonly protocol: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** The source lost its routes as a whole (it had some). Drops what was staged for it: returns how many. */
  failed(name: string): number {
    let e = this.entries.get(name);
    if (e === undefined) this.entries.set(name, (e = { damping: new FlapDamping(this.settings), down: false, staged: undefined, timer: undefined }));
    const dropped = e.staged?.size ?? 0;
    this.end(e);
    e.down = true;
    e.damping.failed(this.now());
    this.failures++;
    this.forgetDecayed();
    if (dropped) this.log.info(`source ${name} down again while suppressed (${this.flapping(e)}): its ${dropped} staged routes dropped`, { protocol: this.protocol });
    return dropped;
  }

  /**
   * The source is back after a failure: 0 when its routes go into the table at once, else the
   * time until which they are suppressed (staged). Nothing for a source that did not fail lately.
   */
  returned(name: string): number {
    const e = this.entries.get(name);
    if (e === undefined || !e.down) return 0;
    e.down = false;
    const now = this.now();
    const until = e.damping.recovered(now);
    if (until === 0) return 0;
    e.staged = new StagedNets();
    e.timer = setTimeout(() => this.reuse(name, e), Math.max(0, until - now));
    e.timer.unref();
    const secs = Math.ceil((until - now) / 1000);
    this.log.warn(`source ${name} is flapping (${this.flapping(e)}): its routes are suppressed for ${secs} s, until ${new Date(until).toISOString()}; its nets stay on their other routes`, { protocol: this.protocol });
    return until;
  }

  /** The routes staged for a suppressed source that is up; undefined when it is not suppressed. */
  staged(name: string): StagedNets | undefined {
    return this.entries.get(name)?.staged;
  }

  /** A suppressed source starts over (a refresh cycle): what it staged before is dropped. Returns how many. */
  restage(name: string): number {
    const e = this.entries.get(name);
    if (!e?.staged) return 0;
    const n = e.staged.size;
    e.staged = new StagedNets();
    return n;
  }

  /**
   * The routes suppressed now (within `within` only, when given: the prefix and its more specifics,
   * as `show routes PREFIX` asks), with their source and when their suppression ends.
   */
  forEachSuppressed(within: Prefix | undefined, fn: (r: SuppressedRoute) => void): void {
    for (const [source, e] of this.entries) {
      const staged = e.staged;
      if (!staged) continue;
      const emit = (net: Prefix, attrs: RouteAttrs): void => fn({ source, net, attrs, until: e.damping.heldUntil, flaps: e.damping.flaps });
      // One lookup for a single net; a walk of what is staged for a range.
      const only = within !== undefined && within.len === within.maxLen ? staged.get(within) : undefined;
      if (only !== undefined) emit(within!, only);
      else if (within === undefined || within.len !== within.maxLen) staged.forEach((net, attrs) => (within === undefined || within.contains(net) ? emit(net, attrs) : undefined));
    }
  }

  /** Sources suppressed now (O(entries): the sources that flapped lately). */
  get suppressed(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.staged) n++;
    return n;
  }

  /** For `show protocols` and metrics: sources suppressed now, failures so far, and every source that flapped lately. */
  summary(): { suppressed: number; failures: number; sources: SourceDampingReport[] } {
    const sources = this.report();
    return { suppressed: sources.filter((r) => r.state === 'suppressed').length, failures: this.failures, sources };
  }

  /** Every source that flapped lately. */
  report(): SourceDampingReport[] {
    const now = this.now();
    this.forgetDecayed();
    return [...this.entries].map(([source, e]) => ({
      source,
      state: e.staged ? 'suppressed' : e.down ? 'down' : 'up',
      flaps: e.damping.flaps,
      penalty: Math.round(e.damping.penaltyAt(now)),
      ...(e.staged ? { suppressedUntil: e.damping.heldUntil } : {}),
      routes: e.staged?.size ?? 0,
    }));
  }

  /** Ends every suppression at once (damping turned off or changed by a reload, shutdown): staged routes go to `events.reuse` unless `drop`. */
  releaseAll(drop: boolean): void {
    for (const [name, e] of [...this.entries]) {
      const staged = e.staged;
      this.end(e);
      if (staged && !drop) this.events.reuse(name, staged);
    }
    this.entries.clear();
  }

  private reuse(name: string, e: Entry): void {
    const staged = e.staged;
    this.end(e);
    if (!staged) return;
    this.log.info(`source ${name}: suppression over (${this.flapping(e)}): its ${staged.size} routes go into the table`, { protocol: this.protocol });
    this.events.reuse(name, staged);
  }

  private flapping(e: Entry): string {
    return `${e.damping.flaps} failures, penalty ${Math.round(e.damping.penaltyAt(this.now()))}`;
  }

  /** No suppression left on `e`: its timer stopped, its staged routes forgotten (the caller took them). */
  private end(e: Entry): void {
    clearTimeout(e.timer);
    e.timer = undefined;
    e.staged = undefined;
    e.damping.heldUntil = 0;
  }

  private forgetDecayed(): void {
    const now = this.now();
    // RFC 2439 forgets below half of reuse; never above half of one failure's penalty, so that an entry lasts at least a half-life.
    const floor = Math.max(Math.min(this.settings.reuse, this.settings.penalty) / 2, 1);
    for (const [name, e] of this.entries) if (!e.staged && e.damping.penaltyAt(now) < floor) this.entries.delete(name);
  }
}
