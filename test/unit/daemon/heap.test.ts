import { HEAP_GROWING_PERCENT, heapGrowthFlag, mallocSetByEnv, tuneMalloc } from '../../../src/daemon/heap';

describe('heap growth', () => {
  it('sets a fixed heap growth by default', () => {
    expect(heapGrowthFlag([])).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    expect(heapGrowthFlag(['--enable-source-maps', '--max-semi-space-size=32'])).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  });

  it('leaves a heap growth the process was started with, in either spelling', () => {
    expect(heapGrowthFlag(['--heap-growing-percent=20'])).toBeUndefined();
    expect(heapGrowthFlag(['--heap_growing_percent=300'])).toBeUndefined();
    expect(heapGrowthFlag(['--heap-growing-percent', '20'])).toBeUndefined();
  });
});

describe('malloc', () => {
  it('leaves an mmap threshold the environment sets, in either form', () => {
    expect(mallocSetByEnv({})).toBe(false);
    expect(mallocSetByEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' })).toBe(false);
    expect(mallocSetByEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=65536' })).toBe(true);
    expect(mallocSetByEnv({ MALLOC_MMAP_THRESHOLD_: '65536' })).toBe(true);
    expect(tuneMalloc({ MALLOC_MMAP_THRESHOLD_: '65536' })).toBe(false);
  });

  it('fixes the threshold where the C library is glibc', () => {
    const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;
    expect(tuneMalloc({})).toBe(glibc !== undefined);
  });
});
