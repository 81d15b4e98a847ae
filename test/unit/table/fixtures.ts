/** Test helpers: a few sources, attribute sets and nets. */
import { type Prefix, parseAddr, parsePrefix } from '../../../src/lib/addr';
import { RouteAttrs } from '../../../src/route/attrs';
import { RouteSource } from '../../../src/route/source';

export const p = (s: string): Prefix => parsePrefix(s);
export const via = (gw: string, extra: Parameters<typeof RouteAttrs.of>[0] = {}): RouteAttrs =>
  RouteAttrs.of({ nexthops: [{ gateway: parseAddr(gw) }], ...extra });

const SOURCES = {
  stat: new RouteSource('static', 200),
  api: new RouteSource('api', 150),
  kern: new RouteSource('kernel-learn', 10),
};

/** The same three sources every call (identity is what a table compares). */
export function sources(): typeof SOURCES {
  return SOURCES;
}
