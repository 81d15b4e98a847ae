/**
 * The metrics endpoint of the real daemon (`krtsync run` in a throwaway
 * namespace), scraped from inside that namespace: what it serves and
 * refuses, that its route counts agree with what the daemon lists route by
 * route (`show kernel`) and with iproute2, that requests and stream clients
 * are counted, and the listener's life through reloads and a taken port.
 */
import { createConnection } from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { KrtsyncDaemon, ours, until } from '../helpers/daemon-fixture';
import { httpIn, sample, samples } from '../helpers/http';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

const URL = 'http://127.0.0.1:9725/metrics';
const K4 = { protocol: 'kernel1', kernel_table: '254', family: 'ipv4' };

function config(listen: string | undefined): string {
  // Next-hop tracking off: the failed-route series need a route the kernel refuses (with tracking, a gateway
  // no connected prefix covers is never sent: nexthop-tracking.test.ts).
  return `${listen ? `metrics: { listen: "${listen}" }\n` : ''}nexthop_tracking: false
protocols:
  - name: static1
    type: static
    routes: [ "10.20.0.0/24 via 192.0.2.2", "10.20.1.0/24 via 192.0.2.2", "blackhole 10.20.2.0/24", "10.20.3.0/24 via 203.0.113.9" ]
  - { name: stream1, type: stream, grace: 60s, startup_wait: 0s, limits: { routes_per_client: 2 } }
  - { name: kernel1, type: kernel, family: ipv4 }
`;
}

function scrape(ns: Netns, url = URL): Map<string, number> {
  const r = httpIn(ns, url);
  if (r.status !== 200) throw new Error(`scrape ${url}: ${JSON.stringify(r)}`);
  return samples(r.body!);
}

kernelDescribe('the metrics endpoint', () => {
  let ns: Netns;
  let d: KrtsyncDaemon;
  const others: ChildProcess[] = [];
  beforeEach(() => {
    ns = createNetns('krtmx');
    d = new KrtsyncDaemon(ns, 'krt-mx');
  });
  afterEach(async () => {
    for (const p of others.splice(0)) p.kill('SIGKILL');
    await d.dispose();
    ns.destroy();
  });

  it('serves /metrics and nothing else, with counts that agree with show kernel and iproute2', async () => {
    d.writeConfig(config('127.0.0.1:9725'));
    await d.startReady();
    expect(httpIn(ns, 'http://127.0.0.1:9725/')).toMatchObject({ status: 200, body: expect.stringMatching(/\/metrics/) });
    expect(httpIn(ns, 'http://127.0.0.1:9725/nope')).toMatchObject({ status: 404 });
    expect(httpIn(ns, URL, 'POST')).toMatchObject({ status: 405, headers: { allow: 'GET, HEAD' } });
    expect(httpIn(ns, URL, 'HEAD')).toMatchObject({ status: 200, body: '' });
    const full = httpIn(ns, URL);
    expect(full.headers!['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);

    const m = samples(full.body!);
    expect(sample(m, 'krtsync_ready')).toBe(1);
    expect([...m.keys()].some((k) => k.startsWith('krtsync_build_info{version="0.1.0",node_version="v'))).toBe(true);
    expect(sample(m, 'krtsync_table_routes', { table: 'master4', family: 'ipv4', source: 'static1' })).toBe(4);
    expect(sample(m, 'krtsync_table_nets', { table: 'master4', family: 'ipv4' })).toBe(4);
    expect(sample(m, 'krtsync_protocol_up', { protocol: 'kernel1', type: 'kernel' })).toBe(1);
    // Route by route, as the daemon lists them, and in the kernel.
    const listed = d.kernelStatus();
    for (const state of ['installed', 'pending', 'failed', 'withdrawing']) {
      expect([state, sample(m, 'krtsync_kernel_routes', { ...K4, state })]).toEqual([state, listed.filter((s) => s.state === state).length]);
    }
    expect(sample(m, 'krtsync_kernel_routes', { ...K4, state: 'installed' })).toBe(ours(ns).length);
    expect(sample(m, 'krtsync_kernel_routes_failed', { ...K4, errno: 'ENETUNREACH' })).toBe(1);
    expect(sample(m, 'krtsync_kernel_operations_total', { ...K4, op: 'add', result: 'ok' })).toBe(3);
    expect(sample(m, 'krtsync_kernel_first_sync_seconds', K4)).toBeGreaterThan(0);
    expect(sample(m, 'krtsync_startup_seconds')).toBeGreaterThan(0);
    // Process metrics under their standard names.
    expect(sample(m, 'process_resident_memory_bytes')).toBeGreaterThan(10e6);
    expect(sample(m, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(full.body).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m);

    // Control requests by command and result; a route the kernel refuses shows with its errno.
    expect(d.cli(['route', 'del', '10.99.0.0/24']).code).not.toBe(0);
    expect(d.cli(['route', 'add', '10.20.9.0/24 via 198.51.100.77']).code).toBe(0);
    await until('the added route', () => ours(ns).length === 4);
    const after = scrape(ns);
    expect(sample(after, 'krtsync_control_requests_total', { command: 'show-kernel', result: 'ok' })).toBe(1);
    expect(sample(after, 'krtsync_control_requests_total', { command: 'route-del', result: 'KRT_ERR_NO_ROUTE' })).toBe(1);
    expect(sample(after, 'krtsync_control_requests_total', { command: 'route-add', result: 'ok' })).toBe(1);
    expect(sample(after, 'krtsync_table_routes', { table: 'master4', family: 'ipv4', source: 'api' })).toBe(1);
    expect(sample(after, 'krtsync_kernel_change_latency_seconds_count', { ...K4, op: 'add' })).toBe(1);
    expect(sample(after, 'krtsync_scrape_duration_seconds')).toBeGreaterThan(0);
  });

  it('counts stream clients, their routes and what their import limit refused, connected and within their grace period', async () => {
    d.writeConfig(config('127.0.0.1:9725'));
    await d.startReady();
    const c = createConnection(d.socket);
    await new Promise((r, j) => c.once('connect', r).once('error', j));
    c.write(`${JSON.stringify({ id: 1, command: 'feed', args: { client: 'bgp1' } })}\n`);
    await new Promise((r) => c.once('data', r));
    c.write(`${JSON.stringify({ announce: ['10.30.0.0/24 via 192.0.2.2', '10.30.1.0/24 via 192.0.2.2', '10.30.2.0/24 via 192.0.2.2'] })}\nnot json\n`);
    await until('the stream routes', () => sample(scrape(ns), 'krtsync_stream_client_routes', { protocol: 'stream1', client: 'bgp1' }) === 2);
    const m = scrape(ns);
    expect(sample(m, 'krtsync_stream_clients', { protocol: 'stream1' })).toBe(1);
    expect(sample(m, 'krtsync_stream_client_lines_total', { protocol: 'stream1', client: 'bgp1' })).toBe(2);
    expect(sample(m, 'krtsync_stream_client_errors_total', { protocol: 'stream1', client: 'bgp1' })).toBeGreaterThanOrEqual(1); // the bad line (and the refusal's answer)
    expect(sample(m, 'krtsync_stream_client_refused_routes_total', { protocol: 'stream1', client: 'bgp1' })).toBe(1);
    expect(sample(m, 'krtsync_stream_refused_routes_total', { protocol: 'stream1', limit: 'client' })).toBe(1);
    expect(sample(m, 'krtsync_stream_startup_hold', { protocol: 'stream1' })).toBe(0);
    expect(sample(m, 'krtsync_control_connections_total', { result: 'accepted' })).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'krtsync_table_routes', { table: 'master4', family: 'ipv4', source: 'stream1/bgp1' })).toBe(2);
    c.destroy();
    await until('the client gone', () => sample(scrape(ns), 'krtsync_stream_clients', { protocol: 'stream1' }) === 0);
    expect(sample(scrape(ns), 'krtsync_stream_client_routes', { protocol: 'stream1', client: 'bgp1' })).toBe(2); // kept for the grace period
  });

  it('moves its listener on reload, refuses a reload whose listener cannot listen (the old one stays), and closes it when turned off', async () => {
    d.writeConfig(config('127.0.0.1:9725'));
    await d.startReady();
    d.writeConfig(config('127.0.0.1:9726'));
    expect(d.cli(['reload']).code).toBe(0);
    expect(httpIn(ns, URL)).toEqual({ error: 'ECONNREFUSED' });
    expect(sample(scrape(ns, 'http://127.0.0.1:9726/metrics'), 'krtsync_reloads_total', { result: 'ok' })).toBe(1);

    // Something else holds 9727 in the namespace: the reload fails, and 9726 still answers.
    const holder = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', "require('net').createServer().listen(9727, '127.0.0.1', () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
    others.push(holder);
    await new Promise((r) => holder.stdout!.once('data', r));
    d.writeConfig(config('127.0.0.1:9727'));
    const r = d.cli(['reload']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/metrics\.listen 127\.0\.0\.1:9727: the port is in use/);
    const m = scrape(ns, 'http://127.0.0.1:9726/metrics');
    expect(sample(m, 'krtsync_reloads_total', { result: 'error' })).toBe(1);
    await until('the reload failure logged', () => /reload failed, the running config stays: metrics\.listen 127\.0\.0\.1:9727/.test(d.log), 2000);

    d.writeConfig(config(undefined));
    expect(d.cli(['reload']).code).toBe(0);
    expect(httpIn(ns, 'http://127.0.0.1:9726/metrics')).toEqual({ error: 'ECONNREFUSED' });
    expect(ours(ns)).toHaveLength(3); // the routes never moved
  });

  it('counts from the start without a listener, loading prom-client only when a reload turns metrics on', async () => {
    d.writeConfig(config(undefined));
    // The daemon's module loads on its stderr (node's own debug output), beside its log lines.
    const debug = process.env.NODE_DEBUG;
    process.env.NODE_DEBUG = 'module';
    try {
      await d.startReady();
    } finally {
      if (debug === undefined) delete process.env.NODE_DEBUG;
      else process.env.NODE_DEBUG = debug;
    }
    // Everything the daemon wrote up to READY has come through the pipe once its ready line has.
    await until('the ready line', () => /krtsync ready in/.test(d.log), 5000);
    expect(d.log).toMatch(/MODULE \d+: load .*\/dist\/daemon\/daemon\.js/);
    expect(d.log).not.toMatch(/node_modules\/(prom-client|@opentelemetry)\//);
    expect(d.cli(['show', 'status']).code).toBe(0);
    d.writeConfig(config('127.0.0.1:9725'));
    expect(d.cli(['reload']).code).toBe(0);
    await until('prom-client loaded', () => /node_modules\/prom-client\//.test(d.log), 5000);
    // Everything since the start: the first sync's adds, its time, the request and the reload before the listener.
    const m = scrape(ns);
    expect(sample(m, 'krtsync_kernel_operations_total', { ...K4, op: 'add', result: 'ok' })).toBe(3);
    expect(sample(m, 'krtsync_kernel_operations_total', { ...K4, op: 'add', result: 'ENETUNREACH' })).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'krtsync_kernel_first_sync_seconds', K4)).toBeGreaterThan(0);
    expect(sample(m, 'krtsync_kernel_repairs_total', { ...K4, kind: 'deleted' })).toBe(0);
    expect(sample(m, 'krtsync_kernel_scan_duration_seconds_count', K4)).toBeDefined();
    expect(sample(m, 'krtsync_startup_seconds')).toBeGreaterThan(0);
    expect(sample(m, 'krtsync_control_requests_total', { command: 'show-status', result: 'ok' })).toBe(1);
    expect(sample(m, 'krtsync_reloads_total', { result: 'ok' })).toBe(1);
    expect(sample(m, 'krtsync_ready')).toBe(1);
    expect(sample(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('does not start when its port is taken, and says so', async () => {
    const holder = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', "require('net').createServer().listen(9725, '127.0.0.1', () => console.log('up'))"], { stdio: ['ignore', 'pipe', 'ignore'] });
    others.push(holder);
    await new Promise((r) => holder.stdout!.once('data', r));
    d.writeConfig(config('127.0.0.1:9725'));
    d.start();
    expect(await d.exit()).toBe(1);
    expect(d.log).toMatch(/cannot start: metrics\.listen 127\.0\.0\.1:9725: the port is in use/);
    expect(ours(ns)).toEqual([]);
  });
});
