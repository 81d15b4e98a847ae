/**
 * KernelAttrs: what an export filter may set on a route on its way into the
 * kernel (metric, prefsrc, realm, scope, router preference, RTAX metrics and
 * locks, congestion control). They override the route's own attributes for
 * the kernel only; the table's route is never changed.
 */
import type { Addr } from '../lib/addr';
import type { LockableName, MetricName, RouterPref } from '../route';

export interface KernelAttrs {
  metric?: number;
  prefsrc?: Addr;
  realm?: number;
  scope?: number;
  pref?: RouterPref;
  metrics?: Partial<Record<MetricName, number>>;
  locked?: LockableName[];
  congctl?: string;
}

/** `b` applied over `a` (later filter rules win; metrics merge per name). */
export function mergeKernelAttrs(a: KernelAttrs, b: KernelAttrs): KernelAttrs {
  const out: KernelAttrs = { ...a, ...b };
  if (a.metrics || b.metrics) out.metrics = { ...a.metrics, ...b.metrics };
  if (a.locked || b.locked) out.locked = [...new Set([...(a.locked ?? []), ...(b.locked ?? [])])];
  return out;
}
