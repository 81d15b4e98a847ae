import fc from 'fast-check';
import { parseV4ViaBytes, parseV6ViaBytes, scanV4ViaRun, type V4ViaLine, type V6ViaLine } from '../../../src/config/route-bytes';
import { parseRouteLine, RouteSyntaxError } from '../../../src/config/route-syntax';
import { RouteAttrs } from '../../../src/route';
import { Prefix } from '../../../src/lib/addr';

function errorOf(line: string): RouteSyntaxError {
  try {
    parseRouteLine(line);
  } catch (e) {
    if (e instanceof RouteSyntaxError) return e;
    throw new Error(`expected a RouteSyntaxError for ${JSON.stringify(line)}, got ${String(e)}`);
  }
  throw new Error(`expected ${JSON.stringify(line)} to be rejected`);
}

describe('route lines (ip route syntax)', () => {
  it.each([
    ['10.10.0.0/16 via 192.0.2.2', '10.10.0.0/16', 'via 192.0.2.2'],
    ['10.20.0.0/16 dev eth1', '10.20.0.0/16', 'dev eth1'],
    ['blackhole 10.30.0.0/16', '10.30.0.0/16', 'blackhole'],
    ['unreachable 2001:db8:30::/48', '2001:db8:30::/48', 'unreachable'],
    ['prohibit 198.51.100.0/24 metric 7', '198.51.100.0/24', 'prohibit metric 7'],
    ['10.1.0.0/16 via 192.0.2.2 dev veth0 onlink', '10.1.0.0/16', 'via 192.0.2.2 dev veth0 onlink'],
    ['10.2.0.0/16 via inet6 2001:db8:1::2 dev veth0', '10.2.0.0/16', 'via 2001:db8:1::2 dev veth0'],
    ['default via 192.0.2.1', '0.0.0.0/0', 'via 192.0.2.1'],
    ['default via 2001:db8::1', '::/0', 'via 2001:db8::1'],
    ['10.3.0.0/16 via 192.0.2.2 src 192.0.2.1 realm 5 scope link priority 10', '10.3.0.0/16', 'via 192.0.2.2 metric 10 src 192.0.2.1 realm 5 scope 253'],
    ['2001:db8:5::/48 via 2001:db8:1::2 pref high', '2001:db8:5::/48', 'via 2001:db8:1::2 pref high'],
    ['10.4.0.0/16 via 192.0.2.2 mtu lock 1400 advmss 1360 initcwnd 10', '10.4.0.0/16', 'via 192.0.2.2 mtu lock 1400 advmss 1360 initcwnd 10'],
    ['10.5.0.0/16 via 192.0.2.2 congctl lock cubic', '10.5.0.0/16', 'via 192.0.2.2 congctl lock cubic'],
  ])('parses %j', (line, net, attrs) => {
    const r = parseRouteLine(line);
    expect(r.net.toString()).toBe(net);
    expect(r.attrs.toString()).toBe(attrs);
  });

  it('parses multipath with weights, in any order of hops, to one shared set', () => {
    const a = parseRouteLine('10.40.0.0/16 nexthop via 192.0.2.2 weight 1 nexthop via 192.0.2.3 weight 2');
    const b = parseRouteLine('10.40.0.0/16 nexthop via 192.0.2.3 weight 2 nexthop via 192.0.2.2');
    expect(a.attrs.nexthops!.hops.map((h) => h.weight)).toEqual([1, 2]);
    expect(a.attrs).toBe(b.attrs);
    const c = parseRouteLine('10.41.0.0/16 nexthop via 192.0.2.2 dev veth0 onlink nexthop dev veth1 metric 5');
    expect(c.attrs.metric).toBe(5);
    expect(c.attrs.nexthops!.hops).toHaveLength(2);
  });

  it('interns equal attributes across lines', () => {
    expect(parseRouteLine('10.0.0.0/24 via 192.0.2.2').attrs).toBe(parseRouteLine('10.0.1.0/24  via  192.0.2.2').attrs);
    expect(parseRouteLine('10.0.0.0/24 via 192.0.2.2').attrs).toBe(RouteAttrs.of({ nexthops: [{ gateway: parseRouteLine('1.0.0.0/8 via 192.0.2.2').attrs.nexthops!.hops[0]!.gateway! }] }));
  });

  it.each([
    ['', 1, /empty route/],
    ['10.0.0.1/8 via 192.0.2.2', 1, /host bits set, did you mean 10.0.0.0\/8\?/],
    ['10.0.0.0/8', 1, /needs "via ADDR"/],
    ['10.0.0.0/8 via', 15, /gateway address expected after "via"/],
    ['10.0.0.0/8 via 192.0.2.300', 16, /gateway "192.0.2.300": not an IPv4 or IPv6 address/],
    ['10.0.0.0/8 via 192.0.2.2 metric x', 33, /metric "x"/],
    ['10.0.0.0/8 via 192.0.2.2 metric 4294967296', 33, /metric/],
    ['10.0.0.0/8 via 192.0.2.2 table 100', 26, /kernel_table/],
    ['10.0.0.0/8 via 192.0.2.2 proto static', 26, /protocol number/],
    ['10.0.0.0/8 via 192.0.2.2 frobnicate', 26, /unknown word "frobnicate"/],
    ['10.0.0.0/8 via 192.0.2.2 blackhole', 26, /must come first/],
    ['blackhole 10.0.0.0/8 via 192.0.2.2', 1, /blackhole route has no next hop/],
    ['10.0.0.0/8 via 192.0.2.2 metric 1 metric 2', 35, /given twice/],
    ['10.0.0.0/8 via 192.0.2.2 pref high', 1, /only to IPv6/],
    ['2001:db8::/32 via 192.0.2.2', 1, /cannot have the IPv4 gateway/],
    ['10.0.0.0/8 nexthop weight 2', 12, /needs "via ADDR" or "dev IFNAME"/],
    ['10.0.0.0/8 nexthop via 192.0.2.2 metric 1 dev eth0', 43, /belongs inside a nexthop/],
    ['10.0.0.0/8 via 192.0.2.2 nexthop via 192.0.2.3', 1, /either one next hop/],
    ['10.0.0.0/8 nexthop via 192.0.2.2 nexthop via 192.0.2.2', 1, /duplicate next hop/],
    ['10.0.0.0/8 nexthop via 192.0.2.2 weight 0', 41, /weight/],
    ['10.0.0.0/8 dev this-name-is-far-too-long', 16, /not a valid interface name/],
    ['10.0.0.0/8 via 192.0.2.2 scope nowhereland', 32, /scope/],
  ])('rejects %j at column %d', (line, col, msg) => {
    const e = errorOf(line);
    expect(e.message).toMatch(msg);
    expect(e.column).toBe(col);
  });

  it('never throws anything but a RouteSyntaxError on arbitrary words', () => {
    const words = ['via', 'dev', 'nexthop', 'weight', 'onlink', 'metric', 'mtu', 'lock', 'src', 'blackhole', '10.0.0.0/8', '192.0.2.2', '2001:db8::1', 'eth0', '7', 'x', 'default', 'pref', 'high', 'congctl'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...words), { maxLength: 12 }), (ws) => {
        try {
          const r = parseRouteLine(ws.join(' '));
          // Whatever parses prints back to a line that parses to the same route.
          const again = parseRouteLine(`${r.attrs.type === 'unicast' ? '' : r.attrs.type + ' '}${r.net} ${r.attrs.type === 'unicast' ? r.attrs.toString() : r.attrs.toString().slice(r.attrs.type.length)}`);
          expect(again.attrs).toBe(r.attrs);
        } catch (e) {
          expect(e).toBeInstanceOf(RouteSyntaxError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the routes file fast path on bytes', () => {
  const octet = fc.oneof(fc.integer({ min: 0, max: 255 }).map(String), fc.constantFrom('256', '01', '00', '1000', '', 'a', '-1'));
  const quad = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
  const len = fc.oneof(fc.integer({ min: 0, max: 32 }).map(String), fc.constantFrom('024', '33', '', '1a', '100'));
  const sep = fc.constantFrom(' via ', ' via ', ' via ', '  via ', ' via  ', ' VIA ', '\tvia ', ' via\t');
  const line = fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })).map(([a, l, g]) => {
      const w = l === 0 ? 0 : (a >>> (32 - l)) << (32 - l); // host bits zero
      const q = (x: number): string => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.');
      return `${q(w >>> 0)}/${l} via ${q(g)}`;
    }),
    fc.tuple(quad, len, sep, quad, fc.constantFrom('', ' ', '\r', ' metric 5', '#x', ' dev veth0')).map(([a, l, s, g, tail]) => `${a}/${l}${s}${g}${tail}`),
    // Well formed, host bits as they fall.
    fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 2 ** 32 - 1 })).map(([a, l, g]) => {
      const q = (x: number): string => [x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join('.');
      return `${q(a)}/${l} via ${q(g)}`;
    }),
  );

  it('reads exactly what parseRouteLine reads, and declines whatever it does not read the same', () => {
    fc.assert(
      fc.property(line, (text) => {
        const buf = Buffer.from(`xx${text}yy`, 'latin1');
        const out: V4ViaLine = { word: 0, len: 0, attrs: undefined };
        const fast = parseV4ViaBytes(buf, 2, 2 + text.length, out);
        let full: ReturnType<typeof parseRouteLine> | undefined;
        try {
          full = parseRouteLine(text);
        } catch (e) {
          if (!(e instanceof RouteSyntaxError)) throw e;
        }
        if (fast) {
          expect(full).toBeDefined();
          expect([out.word, out.len]).toEqual([full!.net.w0 | 0, full!.net.len]);
          expect(full!.net.family).toBe(4);
          expect(out.attrs).toBe(full!.attrs);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('over a run of lines, takes exactly the lines it takes one by one, up to the first it declines or that has no newline yet', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.boolean(), (lines, ended) => {
        const text = lines.join('\n') + (ended ? '\n' : '');
        const buf = Buffer.from(`xx${text}yy`, 'latin1');
        const end = 2 + text.length;
        const took: string[] = [];
        const stop = scanV4ViaRun(buf, 2, end, (word, len, attrs) => took.push(`${word} ${len} ${attrs}`));
        // One by one: each line while parseV4ViaBytes takes it, the last only if a newline ends it.
        const want: string[] = [];
        let at = 2;
        for (let i = 0; i < lines.length; i++) {
          const out: V4ViaLine = { word: 0, len: 0, attrs: undefined };
          const lineEnd = at + lines[i]!.length;
          if (lineEnd >= end || !parseV4ViaBytes(buf, at, lineEnd, out)) break;
          want.push(`${out.word} ${out.len} ${out.attrs}`);
          at = lineEnd + 1;
        }
        expect(took).toEqual(want);
        expect(stop).toBe(at === end ? end : at);
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the plain shape, even through a gateway seen before', () => {
    const out: V4ViaLine = { word: 0, len: 0, attrs: undefined };
    for (const text of ['10.1.0.0/16 via 192.0.2.2', '0.0.0.0/0 via 192.0.2.2', '255.255.255.255/32 via 198.51.100.7']) {
      expect(parseV4ViaBytes(Buffer.from(text), 0, text.length, out)).toBe(true);
      expect(out.attrs).toBe(parseRouteLine(text).attrs);
    }
    for (const text of ['10.1.0.1/16 via 192.0.2.2', '10.1.0.0/16 via 192.0.2.2 metric 5', ' 10.1.0.0/16 via 192.0.2.2', '10.1.0.0/016 via 192.0.2.2']) {
      expect(parseV4ViaBytes(Buffer.from(text), 0, text.length, out)).toBe(false);
    }
  });
});

describe('the routes file fast path on bytes, IPv6', () => {
  const word = fc.integer({ min: 0, max: 2 ** 32 - 1 });
  const words = fc.tuple(word, word, word, word);
  const groups = (w: number[]): string[] => w.flatMap((x) => [(x >>> 16).toString(16), (x & 0xffff).toString(16)]);
  // Ways to write an address: RFC 5952 (Prefix/Addr toString), every group in full, upper case, a '::' anywhere it fits.
  const text = (w: number[], style: number): string => {
    const g = groups(w);
    if (style === 0) return new Prefix(6, 128, w[0]! | 0, w[1]! | 0, w[2]! | 0, w[3]! | 0).toString().replace('/128', '');
    if (style === 1) return g.map((x) => x.padStart(4, '0')).join(':');
    if (style === 2) return g.join(':').toUpperCase();
    const at = style % 8;
    const run = g.findIndex((x, i) => i >= at && x === '0');
    if (run < 0) return g.join(':');
    let e = run;
    while (e < 8 && g[e] === '0') e++;
    return `${g.slice(0, run).join(':')}::${g.slice(e).join(':')}`;
  };
  const odd = fc.constantFrom(':::', '::ffff:192.0.2.1', '1::2::3', '12345::', 'g::', ':1::', '1:', '1:2:3:4:5:6:7:8:9', '::', '2001:db8::/', '', '1::2:', '1:2:3:4:5:6:7:8:', '2001:db8:', '::1:', '1:::2');
  const len = fc.oneof(fc.integer({ min: 0, max: 128 }).map(String), fc.constantFrom('048', '129', '', '1a', '1000'));
  const sep = fc.constantFrom(' via ', ' via ', ' via ', '  via ', ' VIA ', '\tvia ');
  const line = fc.oneof(
    fc.tuple(words, fc.integer({ min: 0, max: 128 }), words, fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 })).map(([a, l, g, s1, s2]) => {
      const net = a.map((x, k) => {
        const bits = l - 32 * k;
        return bits <= 0 ? 0 : bits >= 32 ? x : (x >>> (32 - bits)) << (32 - bits);
      });
      return `${text(net, s1)}/${l} via ${text(g, s2)}`;
    }),
    // A net with exactly one host bit set, in any of its words: the full parser says "host bits set".
    // Through a gateway seen before: the first line through a gateway is parsed in full (which would catch it).
    fc.tuple(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 0, max: 127 }), fc.constantFrom('2001:db8:1::2', '2001:db8:1::3')).map(([l, bit, g]) => {
      const host = l + (bit % (128 - l));
      const net = [0, 1, 2, 3].map((k) => (k === host >> 5 ? (1 << (31 - (host & 31))) >>> 0 : 0));
      return `${text(net, 0)}/${l} via ${g}`;
    }),
    fc.tuple(odd, fc.oneof(len, fc.constant('128')), fc.constantFrom('2001:db8:1::2', '2001:db8:1::3')).map(([a, l, g]) => `${a}/${l} via ${g}`),
    fc.tuple(fc.oneof(words.map((w) => text(w, 0)), odd), len, sep, fc.oneof(words.map((w) => text(w, 3)), odd), fc.constantFrom('', ' ', '\r', ' metric 5', '#x')).map(
      ([a, l, s, g, tail]) => `${a}/${l}${s}${g}${tail}`,
    ),
  );

  it('reads exactly what parseRouteLine reads, and declines whatever it does not read the same', () => {
    let taken = 0;
    for (const t of ['2001:db8::/32 via 2001:db8:1::2', '2001:db8::/32 via 2001:db8:1::3']) parseV6ViaBytes(Buffer.from(t), 0, t.length, { w0: 0, w1: 0, w2: 0, w3: 0, len: 0, attrs: undefined });
    fc.assert(
      fc.property(line, (t) => {
        const buf = Buffer.from(`xx${t}yy`, 'latin1');
        const out: V6ViaLine = { w0: 0, w1: 0, w2: 0, w3: 0, len: 0, attrs: undefined };
        const fast = parseV6ViaBytes(buf, 2, 2 + t.length, out);
        let full: ReturnType<typeof parseRouteLine> | undefined;
        try {
          full = parseRouteLine(t);
        } catch (e) {
          if (!(e instanceof RouteSyntaxError)) throw e;
        }
        if (fast) {
          taken++;
          expect(full).toBeDefined();
          expect(full!.net.family).toBe(6);
          expect([out.w0, out.w1, out.w2, out.w3, out.len]).toEqual([full!.net.w0 | 0, full!.net.w1 | 0, full!.net.w2 | 0, full!.net.w3 | 0, full!.net.len]);
          expect(out.attrs).toBe(full!.attrs);
        }
      }),
      { numRuns: 3000 },
    );
    expect(taken).toBeGreaterThan(500); // the well-formed half is read, not declined
  });

  it('takes the plain shape, through a gateway seen before or another one, and declines the rest', () => {
    const out: V6ViaLine = { w0: 0, w1: 0, w2: 0, w3: 0, len: 0, attrs: undefined };
    for (const t of ['2001:db8::/48 via 2001:db8:1::2', '2001:db8:1::/48 via 2001:db8:1::3', '::/0 via 2001:db8:1::2', '2001:db8:1::/48 via 2001:db8:1::2', '2001:DB8:0:0:0:0:0:1/128 via 2001:db8:1::2']) {
      expect(parseV6ViaBytes(Buffer.from(t), 0, t.length, out)).toBe(true);
      expect(out.attrs).toBe(parseRouteLine(t).attrs);
      expect(new Prefix(6, out.len, out.w0, out.w1, out.w2, out.w3).toString()).toBe(parseRouteLine(t).net.toString());
    }
    for (const t of ['2001:db8::1/48 via 2001:db8:1::2', '2001:db8::/48 via 2001:db8:1::2 metric 5', '2001:db8::/048 via ::1', '::ffff:192.0.2.0/120 via ::1', '2001:db8::/48 via 192.0.2.1', '::/0 via fe80::1']) {
      expect(parseV6ViaBytes(Buffer.from(t), 0, t.length, out)).toBe(false);
    }
  });
});
