/**
 * The daemon's memory settings: how far V8 lets its heap grow between full
 * collections, and where glibc's malloc puts large blocks.
 *
 * After each full collection V8 sets the next one's trigger at the live heap
 * times a factor it picks from how fast the program allocates: up to 4 on a
 * machine with much memory. A daemon that takes a million route changes in a
 * few seconds allocates fast, so V8 picked 2-4, and the process held twice
 * its live heap or more in garbage at the peak. A fixed factor keeps the
 * peak near the live heap, and 1.3 did so at no cost in time where 1.5 let
 * a late full collection push the peak up (docs/benchmarks.md, rounds 5
 * and 7). The young generation's cap and the collector kept on the JS
 * thread are set where the process starts (bin/krtsync): V8 reads those
 * flags only at startup.
 *
 * This limits nothing: the heap still grows as large as the tables need (no
 * --max-old-space-size, which is a crash waiting for a bigger table); full
 * collections only come sooner. A process started with its own
 * --heap-growing-percent keeps it.
 */
import { setFlagsFromString } from 'node:v8';
import { native } from '../netlink/native';

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

/**
 * Typed arrays and Buffers live in malloc'ed memory outside V8's heap, and
 * the daemon keeps its per-route state there. glibc serves a block of at
 * least its mmap threshold with its own mmap, returned to the system when
 * freed; but the threshold is dynamic: it rises to the size of any such
 * block freed (up to 32 MiB), and from then on blocks below it come from
 * the heap, where a freed block stays in the process. Arrays that grow by
 * doubling (a table's index, a dump's columns, a journal's) freed their old
 * copies that way, and the process kept them to its peak. Fixed at glibc's
 * own starting value, large blocks always go back when freed; the price is
 * a fresh mapping (page faults) each time one is made again, which the
 * benchmarks could not tell from noise (docs/benchmarks.md, round 7).
 */
export const MMAP_THRESHOLD = 128 * 1024;

/** Whether the environment already sets glibc's mmap threshold (the operator's choice is kept). */
export function mallocSetByEnv(env: NodeJS.ProcessEnv): boolean {
  return env.MALLOC_MMAP_THRESHOLD_ !== undefined || (env.GLIBC_TUNABLES ?? '').includes('glibc.malloc.mmap_threshold');
}

/** Fixes glibc's mmap threshold unless the environment sets it. Returns whether it was set here. */
export function tuneMalloc(env: NodeJS.ProcessEnv = process.env): boolean {
  if (mallocSetByEnv(env)) return false;
  return native.mallocMmapThreshold(MMAP_THRESHOLD) === 1;
}
