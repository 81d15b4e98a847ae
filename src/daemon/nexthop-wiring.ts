/**
 * Next-hop tracking for the daemon: one tracker per daemon (links and
 * addresses belong to the network namespace, not to a table), fed by one
 * NextHopWatch, shared by every table and kernel protocol. It starts before
 * the tables are filled, so the first feed is already judged, and stops
 * after the kernel protocols.
 */
import type { NexthopTrackingConfig } from '../config/nexthop-config';
import type { NextHopMetricsView } from '../metrics/daemon-metrics';
import { NextHopWatch } from '../proto/kernel/nexthop-watch';
import { withFields, type Logger } from '../proto/logger';
import { NO_DAMPING, NextHopTracker } from '../table';

export class NextHopTracking {
  private constructor(
    readonly tracker: NextHopTracker,
    private readonly watch: NextHopWatch,
    /** The settings it runs with (a reload that changes them takes effect at the next restart). */
    readonly config: NexthopTrackingConfig,
  ) {}

  static async open(config: NexthopTrackingConfig, netns: string | undefined, log: Logger): Promise<NextHopTracking> {
    const tracker = new NextHopTracker({ damping: config.damping ?? NO_DAMPING });
    const watch = await NextHopWatch.open({ tracker, neighbours: config.neighbours, ...(netns !== undefined ? { netns } : {}), log: withFields(log, { protocol: 'nexthop-tracking' }) });
    return new NextHopTracking(tracker, watch, config);
  }

  /** What a scrape shows (O(tracked next hops)). */
  metrics(): NextHopMetricsView {
    const c = this.tracker.counts();
    return { usable: c.hops - c.unusable, down: c.unusable - c.held, held: c.held, changes: this.tracker.changes, flaps: c.flaps, resyncs: this.watch.stats.dumps };
  }

  close(): void {
    this.watch.close();
    this.tracker.close();
  }
}
