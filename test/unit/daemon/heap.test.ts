import { HEAP_GROWING_PERCENT, heapGrowthFlag } from '../../../src/daemon/heap';

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
