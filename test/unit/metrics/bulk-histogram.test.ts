/**
 * BulkHistogram must expose exactly what prom-client's own Histogram would
 * for the same samples: same text, line for line, through the registry.
 */
import { Histogram, Registry } from 'prom-client';
import { BulkHistogram } from '../../../src/metrics/bulk-histogram';
import { prng } from '../../helpers/daemon-fixture';

const BUCKETS = [0.001, 0.01, 0.1, 1, 10];

describe('BulkHistogram', () => {
  it('writes the text prom-client writes for the same samples, fed n at a time', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const cfg = { name: 'x_seconds', help: 'x', labelNames: ['op', 'family'] as const, buckets: BUCKETS };
    const bulk = new BulkHistogram({ ...cfg, labelNames: [...cfg.labelNames], registers: [ours] });
    const plain = new Histogram({ ...cfg, labelNames: [...cfg.labelNames], registers: [theirs] });
    const rand = prng(7);
    for (let i = 0; i < 300; i++) {
      const labels = { op: rand() < 0.5 ? 'add' : 'replace', family: 'ipv4' };
      const v = [0.0005, 0.001, 0.05, 0.5, 3, 20][Math.floor(rand() * 6)]!; // on a bound and past the last one too
      const n = 1 + Math.floor(rand() * 4);
      bulk.series(labels).observe(v, n);
      for (let k = 0; k < n; k++) plain.observe(labels, v);
    }
    // Sums differ in the last digits (n × v against v added n times).
    const norm = (t: string): string[] => t.split('\n').map((l) => l.replace(/ ([\d.]+)$/, (_, v: string) => ` ${Number(v).toFixed(6)}`));
    expect(norm(await ours.metrics())).toEqual(norm(await theirs.metrics()));
    expect(await ours.metrics()).toContain('x_seconds_bucket{le="+Inf",op="add",family="ipv4"}');
  });

  it('refuses the one-sample path, ignores nonsense, and forgets a protocol\'s series', async () => {
    const r = new Registry();
    const h = new BulkHistogram({ name: 'y_seconds', help: 'y', labelNames: ['protocol', 'op'], buckets: BUCKETS, registers: [r] });
    expect(() => h.observe(1)).toThrow(/series\(labels\)/);
    expect(() => h.series({ nope: 'x' } as never)).toThrow(/unknown label nope/);
    h.series({ protocol: 'k1', op: 'add' }).observe(Number.NaN, 3);
    h.series({ protocol: 'k1', op: 'add' }).observe(0.5, 0);
    h.series({ protocol: 'k2', op: 'add' }).observe(0.5, 2);
    const text = await r.metrics();
    expect(text).toContain('y_seconds_count{protocol="k1",op="add"} 0');
    expect(text).toContain('y_seconds_count{protocol="k2",op="add"} 2');
    h.forget({ protocol: 'k1' });
    expect(await r.metrics()).not.toContain('protocol="k1"');
  });
});
