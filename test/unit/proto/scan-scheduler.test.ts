/**
 * ScanScheduler (scan-scheduler.ts): when a scan is asked for, it is pending
 * until it begins, whether its timer still runs or the sync is busy; the
 * scan's own run is not pending, and requests made meanwhile coalesce into
 * the next one. Tests of the real kernel wait on `pending` (quiesced() in
 * test/helpers/kernel-fixture.ts) instead of sleeping through the delay.
 */
import { ScanScheduler, type ScanTarget } from '../../../src/proto/kernel/scan-scheduler';

class Target implements ScanTarget {
  canScan = true;
  readonly reasons: string[] = [];
  private finish: (() => void) | undefined;
  scan(reason: string): Promise<void> {
    this.reasons.push(reason);
    return new Promise((r) => (this.finish = r));
  }
  end(): void {
    this.finish?.();
  }
}

describe('ScanScheduler.pending', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('is true from a request until its scan begins, also while the sync is busy, and false during the scan', async () => {
    const t = new Target();
    const s = new ScanScheduler(t, 0, 250);
    expect(s.pending).toBe(false);
    s.request('link', 100);
    expect(s.pending).toBe(true);
    t.canScan = false;
    await jest.advanceTimersByTimeAsync(500);
    expect(t.reasons).toEqual([]);
    expect(s.pending).toBe(true);
    t.canScan = true;
    await jest.advanceTimersByTimeAsync(50);
    expect(t.reasons).toEqual(['link']);
    expect(s.pending).toBe(false);
    // Asked during the scan: a new one, after it.
    s.request('conflict', 0);
    expect(s.pending).toBe(true);
    t.end();
    await jest.advanceTimersByTimeAsync(250);
    expect(t.reasons).toEqual(['link', 'conflict']);
    expect(s.pending).toBe(false);
    t.end();
    s.close();
  });

  it('a periodic scan is not pending before its time', async () => {
    const t = new Target();
    const s = new ScanScheduler(t, 1000, 0);
    s.armPeriodic();
    expect(s.pending).toBe(false);
    await jest.advanceTimersByTimeAsync(999);
    expect(s.pending).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(s.pending).toBe(true); // asked now: it begins on the request timer
    await jest.advanceTimersByTimeAsync(1);
    expect(t.reasons).toEqual(['periodic']);
    expect(s.pending).toBe(false);
    t.end();
    s.close();
  });
});
