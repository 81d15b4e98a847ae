/**
 * krtsync scraped by a real Prometheus (Debian's package, installed by the
 * suite through scripts/debian-package.js with its service kept from
 * starting), both running in the test's network namespace: Prometheus
 * scrapes the daemon every second, the test asks Prometheus's HTTP API.
 * The shipped alert rules pass `promtool check rules` and are evaluated by
 * that Prometheus against the live metrics, and every query of the shipped
 * Grafana dashboard is one Prometheus accepts. Prometheus is stopped at the
 * end whatever happens (and killed with the test process if that dies: it
 * runs under setpriv --pdeathsig).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KrtsyncDaemon, ours, ROOT, until } from '../helpers/daemon-fixture';
import { httpIn, httpManyIn } from '../helpers/http';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureDebianPackage } = require('../../scripts/debian-package') as {
  ensureDebianPackage: (pkg: string, opts: { probe: string; services?: string[]; noRecommends?: boolean }) => boolean;
};

const RULES = join(ROOT, 'contrib', 'prometheus', 'krtsync.rules.yml');
const DASHBOARD = join(ROOT, 'contrib', 'grafana', 'krtsync-dashboard.json');
const PROM = 'http://127.0.0.1:9090';

interface Vector {
  metric: Record<string, string>;
  value: [number, string];
}

kernelDescribe('metrics as a real Prometheus sees them', () => {
  let ns: Netns;
  let d: KrtsyncDaemon;
  let prom: ChildProcess | undefined;
  let promExited: Promise<void> = Promise.resolve();
  let promLog = '';
  let dir: string;

  const api = <T>(path: string): T => {
    const r = httpIn(ns, `${PROM}${path}`);
    if (r.status !== 200) throw new Error(`Prometheus ${path}: ${JSON.stringify(r)}\n${promLog.slice(-2000)}`);
    const body = JSON.parse(r.body!) as { status: string; data: T };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${r.body}`);
    return body.data;
  };
  const query = (q: string): Vector[] => api<{ resultType: string; result: Vector[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`).result;
  const value = (q: string): number | undefined => {
    const r = query(q);
    return r.length ? Number(r[0]!.value[1]) : undefined;
  };

  beforeAll(async () => {
    ensureDebianPackage('prometheus', { probe: '/usr/bin/prometheus', services: ['prometheus.service'], noRecommends: true });
    ns = createNetns('krtprom');
    d = new KrtsyncDaemon(ns, 'krt-prom');
    // Next-hop tracking off: the failed-route series and alert need routes the kernel refuses (with tracking, a
    // gateway no connected prefix covers is never sent).
    d.writeConfig(`metrics: { listen: "127.0.0.1:9725" }
nexthop_tracking: false
protocols:
  - name: static1
    type: static
    routes: [ "10.20.0.0/24 via 192.0.2.2", "10.20.1.0/24 via 192.0.2.2", "10.20.2.0/24 via 203.0.113.9" ]
  - { name: kernel1, type: kernel, family: ipv4 }
`);
    await d.startReady();
    dir = mkdtempSync(join(tmpdir(), `krt-prom-${process.pid}-`));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [ ${JSON.stringify(RULES)} ]
scrape_configs:
  - job_name: krtsync
    static_configs: [ { targets: [ "127.0.0.1:9725" ] } ]
`,
    );
    prom = spawn(
      'ip',
      ['netns', 'exec', ns.name, 'setpriv', '--pdeathsig', 'KILL', 'prometheus', `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:9090'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prom.stdout!.on('data', (c: Buffer) => (promLog += String(c)));
    prom.stderr!.on('data', (c: Buffer) => (promLog += String(c)));
    const p = prom;
    promExited = new Promise((r) => p.once('exit', () => r()));
    await until(`Prometheus ready (log:\n${promLog.slice(-1000)})`, () => httpIn(ns, `${PROM}/-/ready`, 'GET', 1000).status === 200, 30_000, 200);
  });

  afterAll(async () => {
    if (prom && prom.exitCode === null && prom.signalCode === null) {
      prom.kill('SIGTERM');
      const t = setTimeout(() => prom?.kill('SIGKILL'), 5000);
      await promExited;
      clearTimeout(t);
    }
    await d?.dispose();
    ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ships alert rules that promtool accepts', () => {
    const r = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
    expect(r.stderr + r.stdout).toMatch(/SUCCESS: 8 rules found/);
    expect(r.status).toBe(0);
  });

  it('scrapes the daemon: the target is up and krtsync is ready', async () => {
    await until('the first scrape', () => value('up{job="krtsync"}') === 1 && value('krtsync_ready') === 1, 15_000, 250);
    const [target] = api<{ activeTargets: Array<{ health: string; lastError: string }> }>('/api/v1/targets').activeTargets;
    expect(target).toMatchObject({ health: 'up', lastError: '' });
    expect(value('krtsync_kernel_routes{state="installed"}')).toBe(2);
    // Both routes go through one nexthop object (on by default), made once.
    expect(value('krtsync_kernel_nexthop_objects{state="live"}')).toBe(1);
    expect(value('krtsync_kernel_nexthop_changes_total{event="created"}')).toBe(1);
  });

  it('shows a repair after one of our routes is deleted behind krtsync\'s back', async () => {
    const before = value('sum(krtsync_kernel_repairs_total{kind="deleted"})');
    expect(before).toBe(0);
    ns.ip('route', 'del', '10.20.0.0/24', 'proto', '144');
    await until('the repair back in the kernel', () => ours(ns).length === 2, 5000);
    await until('the repair counter in Prometheus', () => value('sum(krtsync_kernel_repairs_total{kind="deleted"})') === 1, 15_000, 250);
    expect(value('sum(increase(krtsync_kernel_repairs_total[1m]))')).toBeGreaterThan(0);
  });

  it('shows the routes the kernel refuses in the failed gauge, with their errno', async () => {
    await until('the failed gauge', () => value('krtsync_kernel_routes_failed{errno="ENETUNREACH"}') === 1, 15_000, 250);
    // One more, refused at run time: the gauge follows.
    expect(d.cli(['route', 'add', '10.20.9.0/24 via 203.0.113.77']).code).toBe(0);
    await until('two failed', () => value('krtsync_kernel_routes_failed{errno="ENETUNREACH"}') === 2, 15_000, 250);
    const [s] = query('krtsync_kernel_routes_failed');
    expect(s!.metric).toMatchObject({ job: 'krtsync', protocol: 'kernel1', kernel_table: '254', family: 'ipv4', errno: 'ENETUNREACH' });
    expect(value('krtsync_kernel_routes{state="failed"}')).toBe(2);
    expect(value('sum(krtsync_kernel_operations_total{op="add",result="ENETUNREACH"})')).toBeGreaterThanOrEqual(2);
  });

  it('evaluates the shipped rules against the live metrics: routes failing is pending', async () => {
    await until('the rules evaluated', () => api<{ groups: Array<{ name: string; rules: Array<{ health: string }> }> }>('/api/v1/rules').groups.some((g) => g.name === 'krtsync' && g.rules.every((r) => r.health === 'ok')), 15_000, 250);
    await until('KrtsyncRoutesFailing pending', () => api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>('/api/v1/alerts').alerts.some((a) => a.labels.alertname === 'KrtsyncRoutesFailing' && a.labels.errno === 'ENETUNREACH' && a.state === 'pending'), 15_000, 250);
    const alerts = api<{ alerts: Array<{ labels: Record<string, string> }> }>('/api/v1/alerts').alerts.map((a) => a.labels.alertname);
    expect(alerts).not.toContain('KrtsyncNotReady');
    expect(alerts).not.toContain('KrtsyncDown');
  });

  it('accepts every query of the shipped Grafana dashboard', () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const targets = dash.panels.flatMap((p) => p.targets.map((t) => ({ title: p.title, expr: t.expr.replaceAll('$instance', '.*').replaceAll('$__rate_interval', '1m') })));
    const answers = httpManyIn(ns, targets.map((t) => `${PROM}/api/v1/query?query=${encodeURIComponent(t.expr)}`));
    const n = targets.length;
    targets.forEach((t, i) => expect([t.title, t.expr, answers[i]!.status, JSON.parse(answers[i]!.body ?? '{}').status]).toEqual([t.title, t.expr, 200, 'success']));
    expect(n).toBeGreaterThan(15);
    expect(query('krtsync_table_routes{source="static1"}')).toHaveLength(1);
  });
});
