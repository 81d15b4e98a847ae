import { parsePrefix } from '../../../src/lib/addr';
import { PrefixSet, parsePrefixRange, prefixRange } from '../../../src/lib/prefix-set';

describe('prefix ranges and sets', () => {
  it.each([
    ['10.0.0.0/8', 8, 8],
    ['10.0.0.0/8+', 8, 32],
    ['10.0.0.0/8{16,24}', 16, 24],
    ['2001:db8::/32{48,64}', 48, 64],
    ['2001:db8::/32+', 32, 128],
  ])('parses %s', (s, min, max) => {
    const r = parsePrefixRange(s);
    expect([r.min, r.max]).toEqual([min, max]);
  });

  it.each(['10.0.0.0/8{7,24}', '10.0.0.0/8{24,16}', '10.0.0.0/8{16,33}', '10.0.0.1/8', '10.0.0.0/8{16}', 'x'])('rejects %s', (s) => {
    expect(() => parsePrefixRange(s)).toThrow();
  });

  it('matches prefixes inside the range with a length in bounds', () => {
    const set = new PrefixSet(['10.0.0.0/8{16,24}', '192.0.2.0/24']);
    const yes = ['10.1.0.0/16', '10.1.2.0/24', '10.255.255.0/24', '192.0.2.0/24'];
    const no = ['10.0.0.0/8', '10.1.2.128/25', '11.1.0.0/16', '192.0.2.0/25', '2001:db8::/32'];
    for (const p of yes) expect(set.matches(parsePrefix(p))).toBe(true);
    for (const p of no) expect(set.matches(parsePrefix(p))).toBe(false);
    expect(set.toString()).toBe('10.0.0.0/8{16,24}, 192.0.2.0/24{24,24}');
  });

  it('builds ranges in code', () => {
    expect(prefixRange(parsePrefix('10.0.0.0/8'))).toEqual({ prefix: parsePrefix('10.0.0.0/8'), min: 8, max: 8 });
  });
});
