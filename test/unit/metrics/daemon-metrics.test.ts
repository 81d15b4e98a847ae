/**
 * DaemonMetrics with a view made up by the test: levels are read from the
 * view at each scrape (series come and go with what it shows), events are
 * counted through the kernel sinks, and a kernel protocol's series go when
 * it does.
 */
import { DaemonMetrics, type MetricsView } from '../../../src/metrics/daemon-metrics';
import { sample, samples } from '../../helpers/http';

function view(): MetricsView & { state: { ready: boolean; failed: Map<string, number>; clients: number; nexthops: boolean } } {
  const state = { ready: false, failed: new Map([['ENETUNREACH', 2]]), clients: 1, nexthops: true };
  return {
    state,
    ready: () => state.ready,
    tables: () => [
      { name: 'master4', family: 4 as const, nets: 3, forEachSource: (fn: (s: string, n: number) => void) => (fn('static1', 3), fn('gone', 0)) },
    ],
    protocols: () => [{ name: 'kernel1', type: 'kernel', up: true }],
    kernelSyncs: () => [{ protocol: 'kernel1', kernelTable: 254, family: 4 as const, counts: { installed: 1, pending: 0, failed: 2, withdrawing: 0 }, failedByErrno: state.failed }],
    streamClients: () =>
      Array.from({ length: state.clients }, () => ({
        protocol: 'bgp',
        stats: { client: 'exa1', format: 'exabgp' as const, connected: true, neighbors: 1, lines: 7, announces: 5, withdraws: 1, errors: 1, refused: 2, filtered: 0, routes: 4 },
      })),
    streamProtocols: () => [
      { protocol: 'bgp', startupHold: false, refused: { protocol: 0, client: 2, neighbor: 0 }, limitDisconnects: 1, damping: { suppressed: 1, failures: 7 } },
      { protocol: 'undamped', startupHold: false, refused: { protocol: 0, client: 0, neighbor: 0 }, limitDisconnects: 0 },
    ],
    controlStats: () => ({ clients: 3, accepted: 10, refused: 1, disconnected: { stalled: 2, idle: 0, 'request-timeout': 0 }, unreadBytes: 0 }),
    nexthops: () => (state.nexthops ? { usable: 4, down: 1, held: 2, changes: 9, flaps: 5, resyncs: 1 } : undefined),
  };
}

const K = { protocol: 'kernel1', kernel_table: '254', family: 'ipv4' };

describe('DaemonMetrics', () => {
  it('reads levels from the view at every scrape', async () => {
    const v = view();
    const m = new DaemonMetrics(v, { version: '9.9.9' });
    let s = samples((await m.scrape()).body);
    expect(sample(s, 'krtsync_ready')).toBe(0);
    expect(sample(s, 'krtsync_build_info', { version: '9.9.9', node_version: process.version })).toBe(1);
    expect(sample(s, 'krtsync_table_routes', { table: 'master4', family: 'ipv4', source: 'static1' })).toBe(3);
    expect(sample(s, 'krtsync_table_routes', { table: 'master4', family: 'ipv4', source: 'gone' })).toBeUndefined();
    expect(sample(s, 'krtsync_kernel_routes', { ...K, state: 'failed' })).toBe(2);
    expect(sample(s, 'krtsync_kernel_routes_failed', { ...K, errno: 'ENETUNREACH' })).toBe(2);
    expect(sample(s, 'krtsync_stream_client_routes', { protocol: 'bgp', client: 'exa1' })).toBe(4);
    expect(sample(s, 'krtsync_stream_client_errors_total', { protocol: 'bgp', client: 'exa1' })).toBe(1);
    expect(sample(s, 'krtsync_control_clients')).toBe(3);
    expect(sample(s, 'krtsync_control_connections_total', { result: 'refused' })).toBe(1);
    expect(sample(s, 'krtsync_control_disconnects_total', { reason: 'stalled' })).toBe(2);
    expect(sample(s, 'krtsync_stream_refused_routes_total', { protocol: 'bgp', limit: 'client' })).toBe(2);
    expect(sample(s, 'krtsync_stream_limit_disconnects_total', { protocol: 'bgp' })).toBe(1);
    expect(sample(s, 'krtsync_stream_client_refused_routes_total', { protocol: 'bgp', client: 'exa1' })).toBe(2);
    expect(sample(s, 'krtsync_stream_startup_hold', { protocol: 'bgp' })).toBe(0);
    expect(sample(s, 'krtsync_stream_sources_suppressed', { protocol: 'bgp' })).toBe(1);
    expect(sample(s, 'krtsync_stream_source_failures_total', { protocol: 'bgp' })).toBe(7);
    expect(sample(s, 'krtsync_stream_sources_suppressed', { protocol: 'undamped' })).toBeUndefined();
    expect(sample(s, 'krtsync_nexthops', { state: 'held' })).toBe(2);
    expect(sample(s, 'krtsync_nexthops', { state: 'down' })).toBe(1);
    expect(sample(s, 'krtsync_nexthop_set_changes_total')).toBe(9);
    expect(sample(s, 'krtsync_nexthop_failures_total')).toBe(5);
    v.state.ready = true;
    v.state.nexthops = false;
    v.state.failed = new Map();
    v.state.clients = 0;
    m.counts.ready(1.5);
    s = samples((await m.scrape()).body);
    expect(sample(s, 'krtsync_ready')).toBe(1);
    expect(sample(s, 'krtsync_startup_seconds')).toBe(1.5);
    expect(sample(s, 'krtsync_nexthops', { state: 'usable' })).toBeUndefined(); // tracking off: no series
    expect(sample(s, 'krtsync_kernel_routes_failed', { ...K, errno: 'ENETUNREACH' })).toBeUndefined(); // gone with its routes
    expect(sample(s, 'krtsync_stream_client_routes', { protocol: 'bgp', client: 'exa1' })).toBeUndefined();
  });

  it('counts kernel events through a sink, and forgets a protocol\'s series', async () => {
    const m = new DaemonMetrics(view(), { version: '1' });
    const sink = m.counts.kernelSink('kernel1', 254, 4);
    sink.answered('add', 'ok', 4096);
    sink.answered('add', 'EEXIST', 1);
    sink.latency('replace', 0.004, 100);
    sink.repaired('deleted');
    sink.resync('overflow');
    sink.scanned(0.2);
    sink.firstSync(3.5);
    m.counts.controlRequest('show-status', 'ok');
    m.counts.reloaded(false);
    let s = samples((await m.scrape()).body);
    expect(sample(s, 'krtsync_kernel_operations_total', { ...K, op: 'add', result: 'ok' })).toBe(4096);
    expect(sample(s, 'krtsync_kernel_operations_total', { ...K, op: 'add', result: 'EEXIST' })).toBe(1);
    expect(sample(s, 'krtsync_kernel_change_latency_seconds_bucket', { ...K, op: 'replace', le: '0.005' })).toBe(100);
    expect(sample(s, 'krtsync_kernel_change_latency_seconds_bucket', { ...K, op: 'replace', le: '0.0025' })).toBe(0);
    expect(sample(s, 'krtsync_kernel_repairs_total', { ...K, kind: 'deleted' })).toBe(1);
    expect(sample(s, 'krtsync_kernel_repairs_total', { ...K, kind: 'changed' })).toBe(0); // there from the start
    expect(sample(s, 'krtsync_kernel_resyncs_total', { ...K, reason: 'overflow' })).toBe(1);
    expect(sample(s, 'krtsync_kernel_scan_duration_seconds_count', K)).toBe(1);
    expect(sample(s, 'krtsync_kernel_first_sync_seconds', K)).toBe(3.5);
    expect(sample(s, 'krtsync_control_requests_total', { command: 'show-status', result: 'ok' })).toBe(1);
    expect(sample(s, 'krtsync_reloads_total', { result: 'error' })).toBe(1);
    m.counts.forgetKernel('kernel1');
    s = samples((await m.scrape()).body);
    expect([...s.keys()].filter((k) => /^krtsync_kernel_(?!routes)/.test(k))).toEqual([]);
  });
});
