/**
 * ScanScheduler: decides when a KernelSync scans (dumps its table and
 * compares), never how.
 *
 *  - periodic: every `intervalMs` after the last scan ended (0: never);
 *  - on request (overflow, link or address change, a route in the way):
 *    after the asked delay, but never sooner than `minGapMs` after the last
 *    scan began, so a flapping link cannot make it scan in a loop;
 *  - requests coalesce: one scan answers every request made before it began;
 *  - while the sync is busy (first sync, another scan), the run waits.
 * Timers are unref'd: a scheduler never keeps the process alive.
 */
export interface ScanTarget {
  /** True when a scan may begin now. */
  readonly canScan: boolean;
  scan(reason: string): Promise<void>;
}

export class ScanScheduler {
  private periodicTimer: NodeJS.Timeout | undefined;
  private requestTimer: NodeJS.Timeout | undefined;
  private pendingReason: string | undefined;
  private lastStart = 0;
  private closed = false;

  constructor(
    private readonly target: ScanTarget,
    private intervalMs: number,
    private readonly minGapMs: number,
  ) {}

  /** Arms the periodic timer (after the first sync, and after each scan). */
  armPeriodic(): void {
    clearTimeout(this.periodicTimer);
    if (this.intervalMs <= 0 || this.closed) return;
    this.periodicTimer = setTimeout(() => this.request('periodic'), this.intervalMs);
    this.periodicTimer.unref();
  }

  setInterval(ms: number, armed: boolean): void {
    this.intervalMs = ms;
    clearTimeout(this.periodicTimer);
    if (armed) this.armPeriodic();
  }

  /** A scan is asked for and has not begun: its timer runs, or it waits for the sync to be free (tests wait for it). */
  get pending(): boolean {
    return this.pendingReason !== undefined;
  }

  /** Asks for a scan after `delayMs`; requests made before it begins are answered by it. */
  request(reason: string, delayMs = 0): void {
    if (this.closed || this.pendingReason !== undefined) return;
    this.pendingReason = reason;
    const wait = Math.max(delayMs, this.lastStart + this.minGapMs - Date.now(), 0);
    this.requestTimer = setTimeout(() => void this.run(), wait);
    this.requestTimer.unref();
  }

  private async run(): Promise<void> {
    if (this.closed) return;
    if (!this.target.canScan) {
      this.requestTimer = setTimeout(() => void this.run(), 50);
      this.requestTimer.unref();
      return;
    }
    const reason = this.pendingReason ?? 'requested';
    this.pendingReason = undefined;
    clearTimeout(this.periodicTimer);
    this.lastStart = Date.now();
    await this.target.scan(reason);
    this.armPeriodic();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.periodicTimer);
    clearTimeout(this.requestTimer);
  }
}
