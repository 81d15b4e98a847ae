/**
 * The daemon's side of metrics: what a scrape reads (a MetricsView over the
 * daemon's tables, protocols and control socket) and the listener's life.
 *
 * The events are counted from the start whether or not a listener is
 * configured (DaemonCounts: plain numbers, a few increments per batch), so a
 * reload that turns metrics on shows everything since the start. The
 * registry (prom-client, with @opentelemetry/api: about 90 modules) and the
 * HTTP server are loaded and built with the first listener, never without
 * one: a daemon without `metrics:` does not load them (docs/benchmarks.md,
 * Round 16b). The listener follows the config: started before any protocol (a
 * long first sync can be watched: krtsync_ready 0, routes pending), moved by
 * a reload that changes `metrics.listen` (the old one is closed first, since
 * the new one may want the same port; if the new one cannot listen, the old
 * one is opened again and the reload fails with nothing else changed), and
 * closed last on shutdown.
 */
import type { ListenAddress, MetricsConfig } from '../config/config';
import { DaemonCounts } from '../metrics/daemon-counts';
import type { DaemonMetrics, MetricsView } from '../metrics/daemon-metrics';
import type { MetricsServer } from '../metrics/metrics-server';
import type { KernelMetricsFactory } from './kernel-wiring';
import type { DaemonCore } from './daemon-core';

export class MetricsEndpoint {
  readonly counts = new DaemonCounts();
  /** The registry, once a listener was configured (it stays: process metrics run from then on). */
  private registry: DaemonMetrics | undefined;
  private server: MetricsServer | undefined;

  constructor(
    private readonly daemon: DaemonCore,
    private readonly version: string,
  ) {}

  /** The listener's port, when one listens. */
  get port(): number | undefined {
    return this.server?.port;
  }

  kernelMetrics(protocol: string): KernelMetricsFactory {
    return (family, kernelTable) => this.counts.kernelSink(protocol, kernelTable, family);
  }

  /** Listens as `config` says (nothing when undefined); returns what changed, for the reload's log line. */
  async apply(config: MetricsConfig | undefined): Promise<string | undefined> {
    const cur = this.server?.listen.text;
    const next = config?.listen.text;
    if (cur === next) return undefined;
    const old = this.server;
    await old?.close();
    this.server = undefined;
    if (config) {
      const { registry, Server } = await this.load();
      const serverFor = (listen: ListenAddress): MetricsServer => new Server({ listen, scrape: () => registry.scrape(), onError: (m) => this.daemon.log.warn(m) });
      const server = serverFor(config.listen);
      try {
        await server.start();
      } catch (e) {
        if (old) {
          const back = serverFor(old.listen);
          await back.start().then(
            () => (this.server = back),
            (e2: Error) => this.daemon.log.error(`metrics: the old listener ${cur} could not be opened again: ${e2.message}`),
          );
        }
        throw e;
      }
      this.server = server;
      registry.startProcessMetrics();
    }
    return next === undefined ? `metrics listener ${cur} closed` : `metrics listening on ${next}`;
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  /** The registry (built on first use, over the counts kept since the start) and the listener's class. */
  private async load(): Promise<{ registry: DaemonMetrics; Server: typeof MetricsServer }> {
    const [{ DaemonMetrics }, { MetricsServer: Server }] = await Promise.all([import('../metrics/daemon-metrics'), import('../metrics/metrics-server')]);
    this.registry ??= new DaemonMetrics(viewOf(this.daemon), { version: this.version }, this.counts);
    return { registry: this.registry, Server };
  }
}

function viewOf(d: DaemonCore): MetricsView {
  return {
    ready: () => d.ready,
    *tables() {
      for (const [name, t] of d.tables) {
        const family = d.config?.tables.find((x) => x.name === name)?.family;
        if (family === undefined) continue;
        yield { name, family, nets: t.netCount, forEachSource: (fn: (source: string, routes: number) => void) => t.forEachSource((src, n) => fn(src.name, n)) };
      }
    },
    *protocols() {
      for (const p of d.protocols.values()) yield { name: p.config.name, type: p.type, up: p.proto.state === 'up' };
    },
    *kernelSyncs() {
      for (const p of d.protocols.values()) {
        if (p.type !== 'kernel') continue;
        for (const s of p.proto.syncCounts()) yield { protocol: p.config.name, ...s };
      }
    },
    *streamClients() {
      for (const p of d.protocols.values()) {
        if (p.type !== 'stream') continue;
        for (const stats of p.proto.stats()) yield { protocol: p.config.name, stats };
      }
    },
    *streamProtocols() {
      for (const p of d.protocols.values()) {
        if (p.type !== 'stream') continue;
        const { startupHold, limits, damping } = p.proto.summary();
        yield { protocol: p.config.name, startupHold, refused: limits.refused, limitDisconnects: limits.disconnects, ...(damping ? { damping: { suppressed: damping.suppressed, failures: damping.failures } } : {}) };
      }
    },
    controlStats: () => d.controlStats(),
    nexthops: () => d.nexthops?.metrics(),
  };
}
