/**
 * How far V8 lets the daemon's heap grow between full collections.
 *
 * After each full collection V8 sets the next one's trigger at the live heap
 * times a factor it picks from how fast the program allocates: up to 4 on a
 * machine with much memory. A daemon that takes a million route changes in a
 * few seconds allocates fast, so V8 picked 2-4, and the process held twice
 * its live heap or more in garbage at the peak. A fixed factor keeps the
 * peak near the live heap, and 1.3 did so at no cost in time where 1.5 let
 * a late full collection push the peak up (docs/benchmarks.md, rounds 5
 * and 7). The young generation is capped where the process starts
 * (bin/krtsync): V8 reads that flag only at startup.
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
