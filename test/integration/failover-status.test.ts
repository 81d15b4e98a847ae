/**
 * What an operator sees of failover (docs/failover.md) through the real
 * control socket and the daemon's metrics endpoint: `show protocols` (text
 * and JSON) counts a kernel protocol's forwarding objects and backup routes
 * and says when a failover is in force; the Prometheus series say the same.
 * A real daemon in a throwaway namespace, both families, carrier loss of the
 * primary's link (the far end of its veth taken down) and its return.
 */
import { KrtsyncDaemon, until } from '../helpers/daemon-fixture';
import { httpIn } from '../helpers/http';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';

interface FailoverJson {
  mode: string;
  active: boolean;
  objects: Record<string, number>;
  inForce: number;
  backupRoutes?: Record<string, number>;
}

const v4 = ['10.40.0.0/24', '10.40.1.0/24', '10.40.2.0/24'];
const v6 = ['2001:db8:40::/64', '2001:db8:41::/64'];

kernelDescribe('failover in show protocols and the metrics (daemon, real kernel)', () => {
  jest.setTimeout(60_000);
  let ns: Netns;
  let d: KrtsyncDaemon;

  const protocols = (): Array<Record<string, unknown>> => JSON.parse(d.cli(['show', 'protocols', '--json']).out) as Array<Record<string, unknown>>;
  const failover = (name: string): FailoverJson | undefined => protocols().find((p) => p.name === name)!.failover as FailoverJson | undefined;
  const metrics = (): string => {
    const r = httpIn(ns, 'http://127.0.0.1:9726/metrics');
    if (r.status !== 200) throw new Error(`metrics: ${JSON.stringify(r)}`);
    return r.body!;
  };
  const series = (text: string, name: string, labels: Record<string, string>): number | undefined => {
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      const want = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
      if (want) return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return undefined;
  };

  beforeAll(async () => {
    ns = createNetns('krt-fos');
    ns.ipBatch(['link add veth2 type veth peer name veth3', 'link set veth2 up', 'link set veth3 up', 'addr add 203.0.113.1/24 dev veth2', 'addr add 2001:db8:3::1/64 dev veth2 nodad']);
    d = new KrtsyncDaemon(ns, 'krt-fos');
    const routes = (gw4: string, gw6: string): string => JSON.stringify([...v4.map((n) => `${n} via ${gw4}`), ...v6.map((n) => `${n} via ${gw6}`)]);
    d.writeConfig(`metrics: { listen: "127.0.0.1:9726" }
nexthop_tracking: { damping: false }
protocols:
  - { name: primary, type: static, preference: 200, routes: ${routes('203.0.113.2', '2001:db8:3::2')} }
  - { name: backup, type: static, preference: 100, routes: ${routes('192.0.2.2', '2001:db8:1::2')} }
  - { name: kernel1, type: kernel, family: both, failover: backup_routes }
  - { name: kernel2, type: kernel, family: ipv4, kernel_table: 100 }
`);
    await d.startReady();
  });
  afterAll(async () => {
    await d?.dispose();
    ns?.destroy();
  });

  it('counts the forwarding objects and backup routes; no failover in force while the primary forwards', async () => {
    await until('the backup routes in', () => failover('kernel1')?.backupRoutes?.installed === 5);
    expect(failover('kernel1')).toEqual({
      mode: 'backup_routes',
      active: true,
      objects: { primary: 2, switched: 0, degraded: 0, held: 0, adopted: 0 }, // one per family: every net has the same pair
      inForce: 0,
      backupRoutes: { installed: 5, pending: 0, failed: 0, withdrawing: 0 },
      events: { failovers: 0, switched: 0, refused: 0 },
    });
    // A kernel protocol without failover says nothing of it.
    expect(failover('kernel2')).toBeUndefined();
    const text = d.cli(['show', 'protocols']).out;
    expect(text).toMatch(/^kernel1 +kernel +up +master4,master6 +5 +ipv4 idle, ipv6 idle, table 254, failover backup_routes: 2 forwarding objects, 5 backup routes$/m);
    expect(text).not.toMatch(/^kernel2 .*failover/m);
    const m = metrics();
    for (const family of ['ipv4', 'ipv6']) {
      expect(series(m, 'krtsync_kernel_forwarding_objects', { protocol: 'kernel1', family, state: 'primary' })).toBe(1);
      expect(series(m, 'krtsync_kernel_forwarding_objects', { protocol: 'kernel1', family, state: 'held' })).toBe(0);
    }
    expect(series(m, 'krtsync_kernel_backup_routes', { protocol: 'kernel1', family: 'ipv4', state: 'installed' })).toBe(3);
    expect(series(m, 'krtsync_kernel_backup_routes', { protocol: 'kernel1', family: 'ipv6', state: 'installed' })).toBe(2);
    expect(series(m, 'krtsync_kernel_failover_switches_total', { protocol: 'kernel1', family: 'ipv4', result: 'ok' })).toBe(0);
    expect(series(m, 'krtsync_kernel_forwarding_objects', { protocol: 'kernel2' })).toBeUndefined();
    expect(series(m, 'krtsync_kernel_backup_routes', { protocol: 'kernel2' })).toBeUndefined();
  });

  it('says a failover is in force while the primary link has no carrier (its objects held on the backup), and not once it is back', async () => {
    ns.ip('link', 'set', 'veth3', 'down');
    await until('the objects held', () => failover('kernel1')?.inForce === 2);
    expect(failover('kernel1')).toMatchObject({ objects: { primary: 0, switched: 0, degraded: 0, held: 2, adopted: 0 }, backupRoutes: { installed: 5 }, events: { switched: 2, refused: 0 } });
    expect(d.cli(['show', 'protocols']).out).toMatch(/^kernel1 .*failover backup_routes: 2 forwarding objects, 5 backup routes; in force: 2 held on backup$/m);
    const m = metrics();
    for (const family of ['ipv4', 'ipv6']) {
      expect(series(m, 'krtsync_kernel_forwarding_objects', { protocol: 'kernel1', family, state: 'held' })).toBe(1);
      expect(series(m, 'krtsync_kernel_forwarding_objects', { protocol: 'kernel1', family, state: 'primary' })).toBe(0);
      expect(series(m, 'krtsync_kernel_failover_switches_total', { protocol: 'kernel1', family, result: 'ok' })).toBe(1);
    }
    // show kernel --nexthops says which objects are held.
    const objs = JSON.parse(d.cli(['show', 'kernel', '--nexthops', '--json']).out) as Array<{ failover?: { state: string } }>;
    expect(objs.filter((o) => o.failover?.state === 'held')).toHaveLength(2);
    expect(d.cli(['show', 'kernel', '--nexthops']).out).toMatch(/\(failover: primary, backup backup; held on backup\)/);

    ns.ip('link', 'set', 'veth3', 'up');
    await until('the objects back on the primary', () => failover('kernel1')?.inForce === 0);
    expect(failover('kernel1')).toMatchObject({ objects: { primary: 2, held: 0 }, backupRoutes: { installed: 5 } });
    expect(d.cli(['show', 'protocols']).out).not.toMatch(/in force/);
    expect(series(metrics(), 'krtsync_kernel_forwarding_objects', { protocol: 'kernel1', family: 'ipv4', state: 'primary' })).toBe(1);
  });
});
