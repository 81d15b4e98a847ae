/**
 * The logger protocols write to: four levels and structured fields, small
 * enough that the daemon can plug winston (and its journald transport) in
 * behind it, and tests can collect entries in an array.
 *
 * RateLimitedLog keeps repeated failures from flooding the journal: the first
 * entries of a kind (`burst`, default 1) go out at once, later ones within the
 * interval are only counted, and the next entry after the interval says how
 * many were held back.
 * If no next entry comes (the repeats simply stopped), a timer at the end of
 * the interval writes the last entry once more with the count, so a burst is
 * never silently swallowed: the journal always ends with how many there were.
 */
export interface LogFields {
  prefix?: string;
  table?: number | string;
  protocol?: number | string;
  errno?: string | number;
  [field: string]: unknown;
}

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** Whether entries of `level` go anywhere (winston's logger has it); absent: assume they do. */
  isLevelEnabled?(level: LogLevel): boolean;
}

export const nullLogger: Logger = Object.freeze({
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  isLevelEnabled: () => false,
});

export type LogLevel = Exclude<keyof Logger, 'isLevelEnabled'>;

/** Whether a debug entry would go anywhere: check before building one that costs a walk of every net. */
export function debugOn(log: Logger): boolean {
  return log.isLevelEnabled?.('debug') ?? true;
}

/** A logger whose fields are merged into every entry (e.g. the protocol's name and table). */
export function withFields(log: Logger, base: LogFields): Logger {
  const wrap =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void =>
      log[level](msg, fields ? { ...base, ...fields } : base);
  return { error: wrap('error'), warn: wrap('warn'), info: wrap('info'), debug: wrap('debug'), isLevelEnabled: (level) => log.isLevelEnabled?.(level) ?? true };
}

interface Held {
  until: number;
  /** Entries written in this interval. */
  written: number;
  suppressed: number;
  /** The latest suppressed entry, written with the count if nothing follows it. */
  last: { level: LogLevel; msg: string; fields: LogFields } | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class RateLimitedLog {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly log: Logger,
    readonly intervalMs = 10_000,
    private readonly now: () => number = () => Date.now(),
    /** Entries of a kind written per interval before the rest are counted. */
    private readonly burst = 1,
  ) {}

  /**
   * Logs unless an entry with the same `kind` went out less than intervalMs
   * ago; suppressed entries are counted and reported with the next one.
   * Returns true when the entry was written.
   */
  write(level: LogLevel, kind: string, msg: string, fields: LogFields = {}): boolean {
    const t = this.now();
    const h = this.held.get(kind);
    if (h && t < h.until && h.written < this.burst) {
      h.written++;
      this.log[level](msg, fields);
      return true;
    }
    if (h && t < h.until) {
      h.suppressed++;
      h.last = { level, msg, fields };
      // The count goes out at the end of the interval even if nothing else of this kind comes.
      h.timer ??= setTimeout(() => this.flush(kind, h), Math.max(0, h.until - t)).unref();
      return false;
    }
    const suppressed = h?.suppressed ?? 0;
    if (h?.timer) clearTimeout(h.timer);
    this.held.set(kind, { until: t + this.intervalMs, written: 1, suppressed: 0, last: undefined, timer: undefined });
    if (this.held.size > 10_000) this.prune(t);
    this.log[level](suppressed > 0 ? `${msg} (${suppressed} similar messages suppressed)` : msg, suppressed > 0 ? { ...fields, suppressed } : fields);
    return true;
  }

  private flush(kind: string, h: Held): void {
    h.timer = undefined;
    if (this.held.get(kind) !== h || h.suppressed === 0 || !h.last) return;
    const { level, msg, fields } = h.last;
    this.held.set(kind, { until: this.now() + this.intervalMs, written: 1, suppressed: 0, last: undefined, timer: undefined });
    this.log[level](`${msg} (${h.suppressed} similar messages suppressed)`, { ...fields, suppressed: h.suppressed });
  }

  private prune(t: number): void {
    for (const [k, h] of this.held) if (t >= h.until && h.suppressed === 0 && !h.timer) this.held.delete(k);
  }
}
