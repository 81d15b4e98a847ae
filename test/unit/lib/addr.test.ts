import fc from 'fast-check';
import {
  Addr,
  Prefix,
  comparePrefix,
  parseAddr,
  parsePrefix,
  prefixFromKey,
  prefixKey,
  tryParseAddr,
} from '../../../src/lib/addr';

describe('addresses', () => {
  it('parses and formats IPv4', () => {
    expect(parseAddr('192.0.2.1').toString()).toBe('192.0.2.1');
    expect(parseAddr('255.255.255.255').toString()).toBe('255.255.255.255');
    expect(parseAddr('0.0.0.0').isUnspecified()).toBe(true);
  });

  it.each(['256.0.0.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', '', 'a.b.c.d', ' 1.2.3.4'])('rejects IPv4 %j', (s) => {
    expect(tryParseAddr(s)).toBeUndefined();
    expect(() => parseAddr(s)).toThrow(/not an IPv4 or IPv6 address/);
  });

  it.each([
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not shortened
    ['fe80::1:2', 'fe80::1:2'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::c000:201'],
    ['1:2:3:4:5:6:192.0.2.1', '1:2:3:4:5:6:c000:201'],
  ])('formats IPv6 %s as %s (RFC 5952)', (input, out) => {
    expect(parseAddr(input).toString()).toBe(out);
  });

  it.each([':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7', ':1:2:3:4:5:6:7', '::1.2.3'])(
    'rejects IPv6 %j',
    (s) => expect(tryParseAddr(s)).toBeUndefined(),
  );

  it('round-trips bytes', () => {
    const a = parseAddr('2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff');
    expect(Addr.fromBytes(a.toBytes(), 0, 6).equals(a)).toBe(true);
    expect(Array.from(parseAddr('192.0.2.200').toBytes())).toEqual([192, 0, 2, 200]);
  });

  it('round-trips any IPv6 address through text', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), (g) => {
        const s = g.map((x) => x.toString(16)).join(':');
        const a = parseAddr(s);
        expect(parseAddr(a.toString()).equals(a)).toBe(true);
      }),
    );
  });
});

describe('prefixes', () => {
  it('says what was meant when host bits are set', () => {
    expect(() => parsePrefix('10.0.0.1/8')).toThrow('10.0.0.1/8: host bits set, did you mean 10.0.0.0/8?');
    expect(() => parsePrefix('2001:db8::1/32')).toThrow('did you mean 2001:db8::/32?');
    expect(parsePrefix('10.0.0.1/8', { clearHostBits: true }).toString()).toBe('10.0.0.0/8');
  });

  it('parses bare addresses as host prefixes', () => {
    expect(parsePrefix('192.0.2.1').toString()).toBe('192.0.2.1/32');
    expect(parsePrefix('2001:db8::1').len).toBe(128);
  });

  it.each(['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/a', '::/129', 'x/8'])('rejects %j', (s) => {
    expect(() => parsePrefix(s)).toThrow();
  });

  it('contains', () => {
    const p = parsePrefix('10.0.0.0/8');
    expect(p.contains(parsePrefix('10.1.0.0/16'))).toBe(true);
    expect(p.contains(p)).toBe(true);
    expect(p.contains(parsePrefix('11.0.0.0/16'))).toBe(false);
    expect(parsePrefix('10.1.0.0/16').contains(p)).toBe(false);
    expect(parsePrefix('0.0.0.0/0').contains(parseAddr('255.1.2.3'))).toBe(true);
    expect(parsePrefix('::/0').contains(parseAddr('10.0.0.1'))).toBe(false);
    expect(parsePrefix('2001:db8::/32').contains(parseAddr('2001:db8:ffff::1'))).toBe(true);
  });

  it('orders by family, address (unsigned), then length', () => {
    const s = ['::/0', '200.0.0.0/8', '10.0.0.0/16', '10.0.0.0/8', '0.0.0.0/0', '2001:db8::/32'];
    const sorted = s.map((x) => parsePrefix(x)).sort(comparePrefix).map(String);
    expect(sorted).toEqual(['0.0.0.0/0', '10.0.0.0/8', '10.0.0.0/16', '200.0.0.0/8', '::/0', '2001:db8::/32']);
  });

  it('keys are unique and invertible', () => {
    const arb = fc.oneof(
      fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })).map(([w, l]) => Prefix.v4(w, l)),
      fc
        .tuple(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 128 }))
        .map(([w, l]) => Prefix.of(new Addr(6, w[0]! | 0, w[1]! | 0, w[2]! | 0, w[3]! | 0), l)),
    );
    fc.assert(
      fc.property(arb, arb, (a, b) => {
        expect(prefixFromKey(prefixKey(a)).equals(a)).toBe(true);
        expect(prefixKey(a) === prefixKey(b)).toBe(a.equals(b));
        expect(comparePrefix(a, b) === 0).toBe(a.equals(b));
      }),
    );
  });
});

describe('IPv4 text parsing, against a reference', () => {
  // The obvious definition the fast scanner must agree with on any string.
  const reference = (s: string): number | undefined => {
    const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
    if (!m) return undefined;
    let w = 0;
    for (let i = 1; i <= 4; i++) {
      const part = m[i]!;
      if (part.length > 1 && part[0] === '0') return undefined;
      if (Number(part) > 255) return undefined;
      w = (w << 8) | Number(part);
    }
    return w | 0;
  };
  const parsed = (s: string): number | undefined => {
    const a = tryParseAddr(s);
    return a !== undefined && a.family === 4 ? a.w0 : undefined;
  };

  it('agrees on dotted quads and near misses', () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('', '00', '01', '007', '0255', 'a', '-1', ' 1', '1 ', '+1', '1e2', '0x1'));
    fc.assert(
      fc.property(fc.array(octet, { minLength: 1, maxLength: 6 }), fc.constantFrom('.', '..', ':'), (parts, sep) => {
        const s = parts.join(sep === '..' ? '.' : sep);
        expect(parsed(s)).toBe(reference(s));
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees on arbitrary short strings', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9.a ]{0,16}$/), (s) => {
        expect(parsed(s)).toBe(reference(s));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('IPv6 text parsing, against a reference', () => {
  const referenceV4 = (s: string): number | undefined => {
    const a = tryParseAddr(s);
    return a !== undefined && a.family === 4 ? a.w0 : undefined;
  };
  // The split-and-regex parser the character scanner replaced, which it must agree with on any string.
  const referenceV6 = (s: string): number[] | undefined => {
    if (s.length < 2 || s.length > 45) return undefined;
    let head = s;
    let v4tail: number | undefined;
    const lastColon = s.lastIndexOf(':');
    if (s.indexOf('.', lastColon) !== -1) {
      v4tail = referenceV4(s.slice(lastColon + 1));
      if (v4tail === undefined) return undefined;
      // "::ffff:1.2.3.4" leaves "::ffff", "::1.2.3.4" leaves "::".
      head = s.slice(0, lastColon + 1);
      if (!head.endsWith('::')) head = head.slice(0, -1);
    }
    const groupsWanted = v4tail === undefined ? 8 : 6;
    const dbl = head.indexOf('::');
    if (dbl !== -1 && head.indexOf('::', dbl + 1) !== -1) return undefined;
    const parseGroups = (part: string): number[] | undefined => {
      if (part === '') return [];
      const out: number[] = [];
      for (const g of part.split(':')) {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
      return out;
    };
    let groups: number[];
    if (dbl === -1) {
      const g = parseGroups(head);
      if (!g || g.length !== groupsWanted) return undefined;
      groups = g;
    } else {
      const left = parseGroups(head.slice(0, dbl));
      const right = parseGroups(head.slice(dbl + 2));
      if (!left || !right) return undefined;
      const fill = groupsWanted - left.length - right.length;
      if (fill < 1) return undefined;
      groups = [...left, ...new Array<number>(fill).fill(0), ...right];
    }
    if (v4tail !== undefined) groups.push(v4tail >>> 16, v4tail & 0xffff);
    const words: number[] = [];
    for (let i = 0; i < 4; i++) words.push(((groups[2 * i]! << 16) | groups[2 * i + 1]!) | 0);
    return words;
  };
  const parsed = (s: string): number[] | undefined => {
    const a = s.includes(':') ? tryParseAddr(s) : undefined;
    return a !== undefined && a.family === 6 ? [a.w0, a.w1, a.w2, a.w3] : undefined;
  };
  const check = (s: string): void => {
    if (!s.includes(':')) return; // tryParseAddr takes those as IPv4
    expect(parsed(s)).toEqual(referenceV6(s));
  };

  it('agrees on addresses, compressed or not, with and without a dotted quad', () => {
    const group = fc.oneof(fc.integer({ min: 0, max: 0xffff }).map((v) => v.toString(16)), fc.constantFrom('0', '00', '000', '0000', 'FFFF', 'aBc', '', '12345', 'g', ' 1', '1.2.3.4', '256.1.1.1'));
    fc.assert(
      fc.property(fc.array(group, { minLength: 0, maxLength: 10 }), fc.integer({ min: -1, max: 10 }), fc.constantFrom(':', '::', ':::'), (groups, at, sep) => {
        const s = at < 0 ? groups.join(':') : [groups.slice(0, at).join(':'), groups.slice(at).join(':')].join(sep);
        check(s);
      }),
      { numRuns: 20000 },
    );
    for (const s of ['::', '::1', '1::', '::ffff:192.0.2.1', '::192.0.2.1', '2001:db8::1', '2001:db8:0:0:0:0:0:1', '1:2:3:4:5:6:192.0.2.1', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', ':1::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:192.0.2.1', 'fe80::1%eth0']) check(s);
  });

  it('agrees on arbitrary short strings', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-fA-G:.]{0,46}$/), (s) => {
        check(s);
      }),
      { numRuns: 20000 },
    );
  });
});
