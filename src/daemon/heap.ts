/**
 * How far V8 lets the daemon's heap grow between full collections.
 *
 * After each full collection V8 sets the next one's trigger at the live heap
 * times a factor it picks from how fast the program allocates: up to 4 on a
 * machine with much memory. A daemon that takes a million route changes in a
 * few seconds allocates fast, so V8 picked 2-4, and the process held twice
 * its live heap or more in garbage at the peak. A fixed factor keeps the
 * peak near the live heap: in the 1M bench (docs/benchmarks.md, round 5)
 * 1.5 made the peak 617-625 MB where V8's own choice gave 680-830, and once
 * routes were shared, 1.3 gave 323-335 MB in eight runs where 1.5 gave
 * 346-430 (a full collection that came late during the restart's first feed
 * or the churn's start), with no difference in time beyond the run-to-run
 * noise.
 *
 * This limits nothing: the heap still grows as large as the tables need (no
 * --max-old-space-size, which is a crash waiting for a bigger table); full
 * collections only come sooner. A process started with its own
 * --heap-growing-percent keeps it.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 30;

/** The V8 flag to set, or undefined when `execArgv` already sets the heap growth. */
export function heapGrowthFlag(execArgv: readonly string[]): string | undefined {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return undefined;
  return `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

/** Sets the daemon's heap growth (V8 reads the flag at each full collection). Returns the flag set, if any. */
export function tuneHeap(execArgv: readonly string[] = process.execArgv): string | undefined {
  const flag = heapGrowthFlag(execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
  return flag;
}
