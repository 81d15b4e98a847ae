/**
 * Prefix ranges and prefix sets (BIRD's `10.0.0.0/8{16,24}`).
 *
 * A PrefixRange matches the prefixes inside `prefix` whose length is within
 * [min, max]. Text forms: `10.0.0.0/8` (exactly that prefix), `10.0.0.0/8+`
 * (it and everything inside: {8,32}), `10.0.0.0/8{16,24}`. A PrefixSet is a
 * list of ranges and matches a prefix when any range does.
 */
import { AddrError } from './errors';
import { type Prefix, maxLen, parsePrefix } from './addr';

export interface PrefixRange {
  readonly prefix: Prefix;
  readonly min: number;
  readonly max: number;
}

export function prefixRange(prefix: Prefix, min = prefix.len, max = min): PrefixRange {
  if (!(Number.isInteger(min) && Number.isInteger(max) && prefix.len <= min && min <= max && max <= prefix.maxLen)) {
    throw new AddrError(`${prefix}{${min},${max}}: lengths must satisfy ${prefix.len} <= min <= max <= ${prefix.maxLen}`);
  }
  return Object.freeze({ prefix, min, max });
}

export function parsePrefixRange(s: string): PrefixRange {
  const m = /^([^{+]+)(\+|\{(\d{1,3}),(\d{1,3})\})?$/.exec(s.trim());
  if (!m) throw new AddrError(`${JSON.stringify(s)}: not a prefix range (10.0.0.0/8, 10.0.0.0/8+, 10.0.0.0/8{16,24})`);
  const prefix = parsePrefix(m[1]!);
  if (m[2] === '+') return prefixRange(prefix, prefix.len, maxLen(prefix.family));
  if (m[3] !== undefined) return prefixRange(prefix, Number(m[3]), Number(m[4]));
  return prefixRange(prefix);
}

export function rangeMatches(r: PrefixRange, p: Prefix): boolean {
  return p.len >= r.min && p.len <= r.max && r.prefix.contains(p);
}

export class PrefixSet {
  readonly ranges: readonly PrefixRange[];

  constructor(ranges: readonly (PrefixRange | string)[]) {
    this.ranges = Object.freeze(ranges.map((r) => (typeof r === 'string' ? parsePrefixRange(r) : r)));
  }

  matches(p: Prefix): boolean {
    for (const r of this.ranges) if (rangeMatches(r, p)) return true;
    return false;
  }

  toString(): string {
    return this.ranges.map((r) => `${r.prefix}{${r.min},${r.max}}`).join(', ');
  }
}
