/**
 * Every krtsync metric, in one prom-client registry (docs/metrics.md lists
 * them with their meaning and labels).
 *
 * Two kinds, and why a scrape never walks a table:
 *  - events are counted as they happen, in plain numbers kept from the
 *    daemon's start (daemon-counts.ts): kernel operations, repairs,
 *    overflows, resyncs, scans (kernel-metrics.ts, fed by the kernel sync per
 *    batch), control requests, reloads; read here at scrape time. This
 *    module (and prom-client with it) is loaded only when a listener is
 *    configured (daemon/metrics-wiring.ts);
 *  - levels are read at scrape time from what the daemon keeps anyway, each
 *    an O(1) read or a walk over a handful of objects: a table's route count
 *    per source, a kernel sync's tally of routes per state
 *    (route-status.ts, SyncTally), the stream clients, the protocols.
 * The daemon hands in a MetricsView for the second kind; nothing here holds
 * a reference to a table or a protocol between scrapes.
 *
 * Process metrics (memory, event-loop lag, GC) are prom-client's defaults,
 * under their standard names (process_*, nodejs_*), so the usual dashboards
 * work; they are started with the HTTP listener, not before.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { ControlStats, DisconnectReason } from '../control/server';
import type { Family } from '../lib/addr';
import type { SyncCounts } from '../proto/kernel/route-status';
import type { FailoverStatus } from '../proto/kernel/sync-failover';
import type { LimitScope } from '../proto/stream/limits';
import type { StreamClientStats } from '../proto/stream/stream';
import { BulkHistogram } from './bulk-histogram';
import { DaemonCounts, familyLabel } from './daemon-counts';
import { LATENCY_BUCKETS, SCAN_BUCKETS, type KernelLabel, type KernelSyncCounters } from './kernel-metrics';

export { familyLabel };

/** A kernel sync's nexthop objects: how many by state, and what was done to them since the start. */
export interface KernelNexthopView {
  counts: { live: number; new: number; failed: number; retired: number };
  stats: { created: number; deleted: number; adopted: number; failed: number; repaired: number };
}

/** What the daemon shows at scrape time (see the header). */
export interface MetricsView {
  ready(): boolean;
  tables(): Iterable<{ name: string; family: Family; nets: number; forEachSource(fn: (source: string, routes: number) => void): void }>;
  protocols(): Iterable<{ name: string; type: string; up: boolean }>;
  kernelSyncs(): Iterable<{ protocol: string; kernelTable: number; family: Family; counts: SyncCounts; failedByErrno: ReadonlyMap<string, number>; nexthops?: KernelNexthopView; failover?: FailoverStatus }>;
  streamClients(): Iterable<{ protocol: string; stats: StreamClientStats }>;
  /** `damping`: sources suppressed now and failures so far (flap damping; absent: damping off). */
  streamProtocols(): Iterable<{ protocol: string; startupHold: boolean; refused: Record<LimitScope, number>; limitDisconnects: number; damping?: { suppressed: number; failures: number } }>;
  controlStats(): ControlStats;
  /** Next-hop tracking's counts (undefined: off). */
  nexthops(): NextHopMetricsView | undefined;
}

/** What next-hop tracking reports at scrape time: O(tracked next hops), never a walk of routes. */
export interface NextHopMetricsView {
  /** Tracked next hops: usable, unusable by the kernel's facts, held down by damping. */
  usable: number;
  down: number;
  held: number;
  /** Next-hop sets whose verdict changed, failures of next hops, fresh dumps after lost notifications. */
  changes: number;
  flaps: number;
  resyncs: number;
}

const KERNEL: KernelLabel[] = ['protocol', 'kernel_table', 'family'];
const STATES = ['installed', 'pending', 'failed', 'withdrawing'] as const;

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly scrapeSeconds: Gauge;
  private defaults = false;

  /** `counts`: the events counted since the daemon's start (daemon-counts.ts); a fresh set when absent (tests). */
  constructor(
    view: MetricsView,
    build: { version: string },
    readonly counts = new DaemonCounts(),
  ) {
    const registers = [this.registry];
    const sinks = (): Iterable<KernelSyncCounters> => counts.kernelSinks();
    new Gauge({ name: 'krtsync_build_info', help: 'Always 1; the labels say which krtsync and Node.js run.', labelNames: ['version', 'node_version'], registers }).set(
      { version: build.version, node_version: process.version },
      1,
    );
    new Gauge({
      name: 'krtsync_ready',
      help: '1 once the first sync is done and READY=1 was sent (every kernel protocol has reconciled the kernel), else 0.',
      registers,
      collect() {
        this.set(view.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'krtsync_startup_seconds',
      help: 'Time from the start to READY=1 (absent before).',
      registers,
      collect() {
        if (counts.startupSeconds !== undefined) this.set(counts.startupSeconds);
      },
    });
    this.scrapeSeconds = new Gauge({ name: 'krtsync_scrape_duration_seconds', help: 'Time the previous scrape of this endpoint took to collect and format.', registers });

    new Gauge({
      name: 'krtsync_table_nets',
      help: 'Nets (prefixes) with at least one route, per table.',
      labelNames: ['table', 'family'],
      registers,
      collect() {
        this.reset();
        for (const t of view.tables()) this.set({ table: t.name, family: familyLabel(t.family) }, t.nets);
      },
    });
    new Gauge({
      name: 'krtsync_table_routes',
      help: 'Routes per table and source (a protocol, or a stream client and neighbour); sources with none are left out.',
      labelNames: ['table', 'family', 'source'],
      registers,
      collect() {
        this.reset();
        for (const t of view.tables()) t.forEachSource((source, routes) => routes > 0 && this.set({ table: t.name, family: familyLabel(t.family), source }, routes));
      },
    });
    new Gauge({
      name: 'krtsync_protocol_up',
      help: '1 when the protocol is up, 0 while it starts, stops or is down.',
      labelNames: ['protocol', 'type'],
      registers,
      collect() {
        this.reset();
        for (const p of view.protocols()) this.set({ protocol: p.name, type: p.type }, p.up ? 1 : 0);
      },
    });

    new Gauge({
      name: 'krtsync_kernel_routes',
      help: 'Routes of ours per kernel sync state: installed, pending (sent, no answer yet, or waiting to be sent), failed (refused; retried with backoff), withdrawing.',
      labelNames: [...KERNEL, 'state'],
      registers,
      collect() {
        this.reset();
        for (const k of view.kernelSyncs()) for (const state of STATES) this.set({ ...kernelLabels(k), state }, k.counts[state]);
      },
    });
    new Gauge({
      name: 'krtsync_kernel_routes_failed',
      help: 'Routes of ours the kernel refused (or that cannot be expressed now), by the errno of the last attempt.',
      labelNames: [...KERNEL, 'errno'],
      registers,
      collect() {
        this.reset();
        for (const k of view.kernelSyncs()) for (const [errno, n] of k.failedByErrno) this.set({ ...kernelLabels(k), errno }, n);
      },
    });
    new Gauge({
      name: 'krtsync_kernel_nexthop_objects',
      help: 'Nexthop objects of ours by state: live (in the kernel as wanted), new (to be made, e.g. after the kernel flushed them with a link), failed (refused; retried with backoff), retired (nothing of ours uses it; deleted soon, or kept while a foreign route uses it).',
      labelNames: [...KERNEL, 'state'],
      registers,
      collect() {
        this.reset();
        for (const k of view.kernelSyncs()) if (k.nexthops) for (const [state, n] of Object.entries(k.nexthops.counts)) this.set({ ...kernelLabels(k), state }, n);
      },
    });
    new Counter({
      name: 'krtsync_kernel_nexthop_changes_total',
      help: 'What happened to nexthop objects of ours: created, deleted, adopted (found at start), failed (the kernel refused one), repaired (lost to a link flush or someone else, then made again).',
      labelNames: [...KERNEL, 'event'],
      registers,
      collect() {
        this.reset();
        for (const k of view.kernelSyncs()) if (k.nexthops) for (const event of ['created', 'deleted', 'adopted', 'failed', 'repaired'] as const) this.inc({ ...kernelLabels(k), event }, k.nexthops.stats[event]);
      },
    });
    new Gauge({
      name: 'krtsync_kernel_forwarding_objects',
      help: 'Forwarding objects of failover by what they forward to: primary, switched (to the backup after its source was withdrawn, until the nets catch up), degraded (to the backup while the primary links are down), held (to the backup while next-hop tracking holds the primary unusable), adopted (found at start, not claimed yet). Absent with failover off.',
      labelNames: [...KERNEL, 'state'],
      registers,
      collect() {
        this.reset();
        for (const k of view.kernelSyncs()) if (k.failover) for (const [state, n] of Object.entries(k.failover.objects)) this.set({ ...kernelLabels(k), state }, n);
      },
    });
    new Gauge({
      name: 'krtsync_kernel_backup_routes',
      help: 'Backup routes of failover: backup_routes (the next-best at the backup metric) per sync state: installed, pending, failed, withdrawing.',
      labelNames: [...KERNEL, 'state'],
      registers,
      collect() {
        this.reset();
        for (const k of view.kernelSyncs()) if (k.failover?.backupRoutes) for (const state of STATES) this.set({ ...kernelLabels(k), state }, k.failover.backupRoutes[state]);
      },
    });
    new Counter({
      name: 'krtsync_kernel_failover_switches_total',
      help: 'Forwarding objects switched or held onto their backup by one nexthop replace (a source withdrawn, next hops unusable), by result: ok, or refused by the kernel.',
      labelNames: [...KERNEL, 'result'],
      registers,
      collect() {
        this.reset();
        for (const k of view.kernelSyncs()) {
          if (!k.failover) continue;
          this.inc({ ...kernelLabels(k), result: 'ok' }, k.failover.events.switched - k.failover.events.refused);
          this.inc({ ...kernelLabels(k), result: 'refused' }, k.failover.events.refused);
        }
      },
    });
    // The kernel syncs' events: counted in plain sinks since the start, read here at each scrape.
    const perSink = (name: string, help: string, read: (k: KernelSyncCounters, inc: (extra: Record<string, string>, n: number) => void) => void, extra: string[] = []): void => {
      new Counter({
        name,
        help,
        labelNames: [...KERNEL, ...extra],
        registers,
        collect() {
          this.reset();
          for (const k of sinks()) read(k, (more, n) => this.inc({ ...k.labels, ...more }, n));
        },
      });
    };
    perSink('krtsync_kernel_operations_total', "Route changes sent to the kernel and answered, by kind (add, replace, delete) and result ('ok' or the errno name).", (k, inc) => {
      for (const o of k.operations.values()) inc({ op: o.op, result: o.result }, o.n);
    }, ['op', 'result']);
    new BulkHistogram({
      name: 'krtsync_kernel_change_latency_seconds',
      help: "Time from a table change reaching the kernel protocol to the kernel's answer, per route change (after the first sync).",
      labelNames: [...KERNEL, 'op'],
      buckets: LATENCY_BUCKETS,
      registers,
      source: function* () {
        for (const k of sinks()) yield* k.latencies.values();
      },
    });
    perSink('krtsync_kernel_repairs_total', 'Routes of ours put back after someone else deleted or changed them.', (k, inc) => {
      for (const kind of ['deleted', 'changed'] as const) inc({ kind }, k.repairs[kind]);
    }, ['kind']);
    perSink('krtsync_kernel_foreign_changes_total', "Changes of other protocols' routes seen in the kernel table.", (k, inc) => inc({}, k.foreignChanges));
    perSink('krtsync_kernel_notification_overflows_total', 'Overflows (ENOBUFS) of the notification socket; each loses changes and causes a resync.', (k, inc) => inc({}, k.overflows));
    perSink('krtsync_kernel_resyncs_total', 'Scans that an event caused rather than the periodic timer, by reason.', (k, inc) => {
      for (const [reason, n] of k.resyncs) inc({ reason }, n);
    }, ['reason']);
    perSink('krtsync_kernel_dump_retries_total', 'Dumps of the kernel table interrupted by changes (NLM_F_DUMP_INTR) and started over.', (k, inc) => inc({}, k.dumpRetries));
    perSink('krtsync_kernel_scan_failures_total', 'Scans whose dump failed (retried a second later).', (k, inc) => inc({}, k.scanFailures));
    new BulkHistogram({
      name: 'krtsync_kernel_scan_duration_seconds',
      help: 'Scans (dump, compare, send the differences), periodic and resyncs.',
      labelNames: KERNEL,
      buckets: SCAN_BUCKETS,
      registers,
      source: function* () {
        for (const k of sinks()) yield k.scans;
      },
    });
    new Gauge({
      name: 'krtsync_kernel_first_sync_seconds',
      help: 'Time of the first sync: dump, first feed and reconcile (absent before it ends).',
      labelNames: KERNEL,
      registers,
      collect() {
        this.reset();
        for (const k of sinks()) if (k.firstSyncSeconds !== undefined) this.set(k.labels, k.firstSyncSeconds);
      },
    });

    new Gauge({
      name: 'krtsync_stream_clients',
      help: 'Stream clients connected, per stream protocol.',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        const n = new Map<string, number>();
        for (const c of view.streamClients()) n.set(c.protocol, (n.get(c.protocol) ?? 0) + (c.stats.connected ? 1 : 0));
        for (const [protocol, count] of n) this.set({ protocol }, count);
      },
    });
    new Gauge({
      name: 'krtsync_stream_client_routes',
      help: 'Routes per stream client (all its neighbours), connected or within its grace period.',
      labelNames: ['protocol', 'client'],
      registers,
      collect() {
        this.reset();
        for (const c of view.streamClients()) this.set({ protocol: c.protocol, client: c.stats.client }, c.stats.routes);
      },
    });
    for (const [field, name, help] of [
      ['lines', 'krtsync_stream_client_lines_total', 'Lines a stream client sent.'],
      ['errors', 'krtsync_stream_client_errors_total', 'Lines of a stream client that were refused (answered with an error).'],
      ['refused', 'krtsync_stream_client_refused_routes_total', "Routes of a stream client refused by an import limit (limits.*)."],
      ['filtered', 'krtsync_stream_client_filtered_routes_total', "Routes of a stream client its protocol's import filter rejected."],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ['protocol', 'client'],
        registers,
        collect() {
          this.reset();
          for (const c of view.streamClients()) this.inc({ protocol: c.protocol, client: c.stats.client }, c.stats[field]);
        },
      });
    }

    new Counter({
      name: 'krtsync_stream_refused_routes_total',
      help: 'Routes a stream protocol refused, by the import limit that was full (protocol: limits.routes, client: routes_per_client, neighbor: routes_per_neighbor).',
      labelNames: ['protocol', 'limit'],
      registers,
      collect() {
        this.reset();
        for (const p of view.streamProtocols()) for (const [limit, n] of Object.entries(p.refused)) this.inc({ protocol: p.protocol, limit }, n);
      },
    });
    new Counter({
      name: 'krtsync_stream_limit_disconnects_total',
      help: 'Stream clients disconnected because they went over an import limit (limits.action: disconnect).',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        for (const p of view.streamProtocols()) this.inc({ protocol: p.protocol }, p.limitDisconnects);
      },
    });
    new Gauge({
      name: 'krtsync_stream_startup_hold',
      help: '1 while a stream protocol holds its routes back at start (waiting for its neighbours, docs/bgp.md), else 0.',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        for (const p of view.streamProtocols()) this.set({ protocol: p.protocol }, p.startupHold ? 1 : 0);
      },
    });
    new Gauge({
      name: 'krtsync_stream_sources_suppressed',
      help: "Sources (neighbours, clients) of a stream protocol whose return its flap damping suppresses now: their routes wait outside the table (docs/failover.md).",
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        for (const p of view.streamProtocols()) if (p.damping) this.set({ protocol: p.protocol }, p.damping.suppressed);
      },
    });
    new Counter({
      name: 'krtsync_stream_source_failures_total',
      help: "Failures of a stream protocol's sources counted by its flap damping: a neighbour down, or a client gone, with routes.",
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        for (const p of view.streamProtocols()) if (p.damping) this.inc({ protocol: p.protocol }, p.damping.failures);
      },
    });

    new Gauge({
      name: 'krtsync_nexthops',
      help: 'Next hops tracked (nexthop_tracking), by state: usable, down (the kernel says it cannot be used), held (usable again but held down after flapping).',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const n = view.nexthops();
        if (n) for (const state of ['usable', 'down', 'held'] as const) this.set({ state }, n[state]);
      },
    });
    for (const [field, name, help] of [
      ['changes', 'krtsync_nexthop_set_changes_total', 'Times a next-hop set became usable, unusable, or lost or regained members (each moves the routes using it).'],
      ['flaps', 'krtsync_nexthop_failures_total', 'Times a tracked next hop went from usable to unusable.'],
      ['resyncs', 'krtsync_nexthop_resyncs_total', 'Dumps of links and addresses after notifications were lost (ENOBUFS), and the first one.'],
    ] as const) {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          const n = view.nexthops();
          if (n) this.inc(n[field]);
        },
      });
    }

    new Gauge({
      name: 'krtsync_control_clients',
      help: 'Connections to the control socket, now.',
      registers,
      collect() {
        this.set(view.controlStats().clients);
      },
    });
    new Gauge({
      name: 'krtsync_control_unread_bytes',
      help: 'Answers written to control socket clients and not yet read by them, now.',
      registers,
      collect() {
        this.set(view.controlStats().unreadBytes);
      },
    });
    new Counter({
      name: 'krtsync_control_connections_total',
      help: "Connections to the control socket: accepted, or refused because max clients were connected (result 'refused').",
      labelNames: ['result'],
      registers,
      collect() {
        const c = view.controlStats();
        this.reset();
        this.inc({ result: 'accepted' }, c.accepted);
        this.inc({ result: 'refused' }, c.refused);
      },
    });
    new Counter({
      name: 'krtsync_control_disconnects_total',
      help: 'Control socket clients disconnected by a bound: stalled (read none of its answers for send_timeout), idle, request-timeout.',
      labelNames: ['reason'],
      registers,
      collect() {
        const c = view.controlStats();
        this.reset();
        for (const [reason, n] of Object.entries(c.disconnected) as Array<[DisconnectReason, number]>) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'krtsync_control_requests_total',
      help: "Control socket requests by command and result ('ok' or the error code).",
      labelNames: ['command', 'result'],
      registers,
      collect() {
        this.reset();
        for (const r of counts.requests.values()) this.inc({ command: r.command, result: r.result }, r.n);
      },
    });
    new Counter({
      name: 'krtsync_reloads_total',
      help: "Reloads (SIGHUP, krtsync reload) by result: 'ok', or 'error' (the running config stayed).",
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        for (const result of ['ok', 'error'] as const) this.inc({ result }, counts.reloads[result]);
      },
    });
  }

  /** Process metrics (memory, event-loop lag, GC): started once, with the first listener. */
  startProcessMetrics(): void {
    if (this.defaults) return;
    this.defaults = true;
    collectDefaultMetrics({ register: this.registry });
  }

  /** One scrape: the text and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const t0 = process.hrtime.bigint();
    const body = await this.registry.metrics();
    this.scrapeSeconds.set(Number(process.hrtime.bigint() - t0) / 1e9);
    return { contentType: this.registry.contentType, body };
  }
}

function kernelLabels(k: { protocol: string; kernelTable: number; family: Family }): Record<KernelLabel, string> {
  return { protocol: k.protocol, kernel_table: String(k.kernelTable), family: familyLabel(k.family) };
}
