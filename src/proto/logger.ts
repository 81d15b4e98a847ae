/**
 * The logger protocols write to: four levels and structured fields, small
 * enough that the daemon can plug winston (and its journald transport) in
 * behind it, and tests can collect entries in an array.
 *
 * RateLimitedLog keeps repeated failures from flooding the journal: the first
 * entry of a kind goes out at once, later ones within the interval are only
 * counted, and the next entry after the interval says how many were held back.
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
}

export const nullLogger: Logger = Object.freeze({
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
});

export type LogLevel = keyof Logger;

/** A logger whose fields are merged into every entry (e.g. the protocol's name and table). */
export function withFields(log: Logger, base: LogFields): Logger {
  const wrap =
    (level: LogLevel) =>
    (msg: string, fields?: LogFields): void =>
      log[level](msg, fields ? { ...base, ...fields } : base);
  return { error: wrap('error'), warn: wrap('warn'), info: wrap('info'), debug: wrap('debug') };
}

export class RateLimitedLog {
  private readonly held = new Map<string, { until: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    readonly intervalMs = 10_000,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /**
   * Logs unless an entry with the same `kind` went out less than intervalMs
   * ago; suppressed entries are counted and reported with the next one.
   * Returns true when the entry was written.
   */
  write(level: LogLevel, kind: string, msg: string, fields: LogFields = {}): boolean {
    const t = this.now();
    const h = this.held.get(kind);
    if (h && t < h.until) {
      h.suppressed++;
      return false;
    }
    const suppressed = h?.suppressed ?? 0;
    this.held.set(kind, { until: t + this.intervalMs, suppressed: 0 });
    if (this.held.size > 10_000) this.prune(t);
    this.log[level](suppressed > 0 ? `${msg} (${suppressed} similar messages suppressed)` : msg, suppressed > 0 ? { ...fields, suppressed } : fields);
    return true;
  }

  private prune(t: number): void {
    for (const [k, h] of this.held) if (t >= h.until && h.suppressed === 0) this.held.delete(k);
  }
}
