import { RunScheduler, type RunPhase } from '../../../src/lib/run-scheduler';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The naive scheduler, kept here to show why RunScheduler re-checks after a
 * run: it ignores a request while scheduled OR running. A request made while
 * the job runs (a write landing while the reader hands out a batch) gets no
 * run of its own, and the job, which already looked at the state, never sees
 * it: the change waits for a wakeup that never comes.
 */
class NaiveScheduler {
  private phase: RunPhase = 'idle';
  constructor(private readonly job: () => Promise<void>) {}
  request(): void {
    if (this.phase !== 'idle') return; // the bug: "already scheduled or running, nothing to do"
    this.phase = 'scheduled';
    setImmediate(async () => {
      this.phase = 'running';
      await this.job();
      this.phase = 'idle';
    });
  }
}

/**
 * A reader in miniature: a run takes everything written so far, then awaits
 * its consumer (the part of a real run during which writes land).
 */
function lostWakeupScenario(make: (job: () => Promise<void>) => { request(): void }) {
  const written: number[] = [];
  const delivered: number[] = [];
  let consumerDone: () => void = () => {};
  let runs = 0;
  const scheduler = make(async () => {
    runs++;
    delivered.push(...written.splice(0));
    await new Promise<void>((r) => (consumerDone = r));
  });
  const write = (v: number): void => {
    written.push(v);
    scheduler.request();
  };
  return {
    async play(): Promise<{ delivered: number[]; runs: number }> {
      write(1);
      await turn(); // run 1 starts and takes [1]
      write(2); // lands while run 1 is in progress
      consumerDone(); // run 1 ends; no further write will come
      for (let i = 0; i < 5; i++) await turn();
      consumerDone();
      return { delivered, runs };
    },
  };
}

describe('RunScheduler', () => {
  it('picks up a request that lands while a run is in progress (no lost wakeup)', async () => {
    const { delivered, runs } = await lostWakeupScenario((job) => new RunScheduler(job)).play();
    expect(delivered).toEqual([1, 2]);
    expect(runs).toBe(2);
  });

  it('documents the bug it prevents: the naive scheduler loses that wakeup', async () => {
    const { delivered } = await lostWakeupScenario((job) => new NaiveScheduler(job)).play();
    expect(delivered).toEqual([1]); // 2 was written and never delivered
  });

  it('serves a burst of requests with one run', async () => {
    let runs = 0;
    const s = new RunScheduler(() => {
      runs++;
    });
    for (let i = 0; i < 100; i++) s.request();
    expect(s.state).toBe('scheduled');
    await turn();
    await turn();
    expect(runs).toBe(1);
    expect(s.state).toBe('idle');
  });

  it('never runs the job twice at once', async () => {
    let active = 0;
    let maxActive = 0;
    const s = new RunScheduler(async () => {
      maxActive = Math.max(maxActive, ++active);
      await sleep(1);
      active--;
    });
    for (let i = 0; i < 20; i++) {
      s.request();
      await turn();
    }
    await sleep(20);
    expect(maxActive).toBe(1);
  });

  it('waits the requested delay before running', async () => {
    const at: number[] = [];
    const t0 = Date.now();
    const s = new RunScheduler(() => {
      at.push(Date.now() - t0);
    });
    s.request(40);
    s.request(0); // already scheduled: the coming run sees this request's change too
    await sleep(15);
    expect(at).toEqual([]);
    await sleep(60);
    expect(at).toHaveLength(1);
    expect(at[0]).toBeGreaterThanOrEqual(35);
  });

  it('keeps working after the job throws, and reports the error', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const s = new RunScheduler(
      () => {
        if (calls++ === 0) throw new Error('boom');
      },
      (e) => errors.push(e),
    );
    s.request();
    await turn();
    s.request();
    await turn();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
  });

  it('runs nothing after close(), even a scheduled run', async () => {
    let runs = 0;
    const s = new RunScheduler(() => {
      runs++;
    });
    s.request();
    s.close();
    s.request();
    s.request(5);
    await sleep(15);
    expect(runs).toBe(0);
  });
});
