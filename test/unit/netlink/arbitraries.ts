/** fast-check generators of codec values: every field in its wire range, unknown attributes of unused types. */
import fc from 'fast-check';
import { Addr, Family, Prefix } from '../../../src/lib/addr';
import { RawAttr } from '../../../src/netlink/wire';
import { METRIC_NAMES, RouteMessage, RouteMetrics, RouteNextHop } from '../../../src/netlink/route-codec';

const u8 = fc.integer({ min: 0, max: 255 });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const i32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });

export function addrArb(family: Family): fc.Arbitrary<Addr> {
  return family === 4 ? i32.map((w) => new Addr(4, w)) : fc.tuple(i32, i32, i32, i32).map(([a, b, c, d]) => new Addr(6, a, b, c, d));
}

export function prefixArb(family: Family, minLen = 0): fc.Arbitrary<Prefix> {
  return fc.tuple(addrArb(family), fc.integer({ min: minLen, max: family === 4 ? 32 : 128 })).map(([a, len]) => Prefix.of(a, len));
}

/** Unknown attributes: types the decoder does not interpret, any payload (padding is the codec's job). */
export function rawAttrsArb(types: readonly number[]): fc.Arbitrary<RawAttr[] | undefined> {
  const one = fc.record({ type: fc.constantFrom(...types), bytes: fc.uint8Array({ maxLength: 24 }).map((b) => Buffer.from(b)) });
  return fc.option(fc.array(one, { minLength: 1, maxLength: 3 }), { nil: undefined });
}

function opt<T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(a, { nil: undefined });
}

const metricsArb: fc.Arbitrary<RouteMetrics> = fc
  .tuple(
    fc.array(opt(u32), { minLength: METRIC_NAMES.length, maxLength: METRIC_NAMES.length }),
    opt(fc.stringMatching(/^[a-z0-9_]{1,15}$/)),
    rawAttrsArb([18, 19, 20, 30]),
  )
  .map(([nums, cc, unknown]) => {
    const m: Record<string, unknown> = {};
    METRIC_NAMES.forEach((name, t) => {
      if (name !== undefined && name !== 'ccAlgo' && nums[t] !== undefined) m[name] = nums[t];
    });
    if (cc !== undefined) m.ccAlgo = cc;
    if (unknown) m.unknown = unknown;
    return m as RouteMetrics;
  });

function hopArb(family: Family): fc.Arbitrary<RouteNextHop> {
  return fc.record(
    {
      gateway: opt(addrArb(family)),
      via: opt(fc.constantFrom<Family>(4, 6).chain(addrArb)),
      oif: fc.integer({ min: 0, max: 0x7fffffff }),
      weight: fc.integer({ min: 1, max: 256 }),
      flags: u8,
      flow: opt(u32),
      unknown: rawAttrsArb([1, 2, 3, 12, 16]),
    },
    { requiredKeys: ['oif', 'weight', 'flags'] },
  ) as fc.Arbitrary<RouteNextHop>;
}

export const routeArb: fc.Arbitrary<RouteMessage> = fc.constantFrom<Family>(4, 6).chain((family) =>
  fc.record(
    {
      family: fc.constant(family),
      dst: prefixArb(family),
      src: opt(prefixArb(family, 1)),
      tos: u8,
      table: u32,
      protocol: u8,
      scope: u8,
      type: u8,
      flags: u32,
      oif: opt(u32),
      iif: opt(u32),
      gateway: opt(addrArb(family)),
      via: opt(fc.constantFrom<Family>(4, 6).chain(addrArb)),
      priority: opt(u32),
      prefsrc: opt(addrArb(family)),
      metrics: opt(metricsArb),
      multipath: opt(fc.array(hopArb(family), { minLength: 1, maxLength: 4 })),
      flow: opt(u32),
      pref: opt(u8),
      nhId: opt(u32),
      unknown: rawAttrsArb([12, 13, 14, 16, 17, 19, 21, 23, 25, 31, 40]),
    },
    { requiredKeys: ['family', 'dst', 'tos', 'table', 'protocol', 'scope', 'type', 'flags'] },
  ) as fc.Arbitrary<RouteMessage>,
);
