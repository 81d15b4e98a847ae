/**
 * The deployment as an operator meets it, under a real systemd (PID 1 of a
 * throwaway container, test/helpers/systemd-container.ts): scripts/install.sh
 * into the container's root, the shipped unit and example config, then
 * systemctl and journalctl as the README tells operators to use them. The
 * container has its own network namespace, with a veth pair for the example
 * config's next hops; iproute2 inside it is the oracle. Nothing on the host
 * changes.
 *
 * One scenario, in order (each step needs the state the last one left):
 * start, routes, repair, journal, reload good and bad, watchdog, security
 * score, the metrics listener through the unit's IP lockdown, stop, a
 * refused syscall, a bad config.
 */
import { dropNhid, kernelDescribe } from '../helpers/netns';
import { ROOT, until } from '../helpers/daemon-fixture';
import { fetchCommand, sample, samples, type HttpAnswer } from '../helpers/http';
import { SystemdContainer, type JournalEntry } from '../helpers/systemd-container';

const UNIT = 'krtsync';
const CONFIG = '/etc/krtsync/krtsync.yaml';
/** The example config's routes, as `ip route` shows them once the installer has named protocol 144. */
const EXAMPLE_V4 = ['10.10.0.0/16 via 192.0.2.2 dev veth0 proto krtsync', 'blackhole 10.30.0.0/16 proto krtsync'];
const EXAMPLE_V6 = ['2001:db8:30::/48 via 2001:db8:1::2 dev veth0 proto krtsync metric 1024 pref medium'];
const FOREIGN = '198.51.100.0/25 via 192.0.2.2 dev veth0 proto static';

kernelDescribe('the systemd unit under a real systemd', () => {
  let c: SystemdContainer;

  /** Our IPv4 and IPv6 routes plus the foreign one, as `ip route` prints them (names, not numbers). */
  const routes = (fam: '-4' | '-6' = '-4'): string[] =>
    c
      .sh(`ip ${fam} route show table main`)
      .split('\n')
      .map((l) => dropNhid(l.trim()))
      .filter((l) => / proto (krtsync|static)\b/.test(l))
      .sort();
  const mainPid = (): string => c.property(UNIT, 'MainPID');
  /** An address list property of the unit, sorted (systemd lists it in no fixed order). */
  const addresses = (name: string): string[] => c.property(UNIT, name).split(' ').sort();
  /** An HTTP GET from inside the container, outside the unit (so only the unit's own filters apply). */
  const get = (url: string, timeoutMs = 3000): HttpAnswer => {
    const [cmd, ...args] = fetchCommand(url, 'GET', timeoutMs);
    return JSON.parse(c.exec(cmd!, args, { timeoutMs: timeoutMs + 10_000 }).out) as HttpAnswer;
  };
  /** journald writes what it receives a moment later: wait for the entry rather than read once. */
  const journalHas = async (re: RegExp, ...args: string[]): Promise<void> => {
    let text = '';
    try {
      await until(`${re}`, () => re.test((text = c.journal(...args).map((e) => e.MESSAGE).join('\n'))), 5000);
    } catch {
      expect(text).toMatch(re); // fails showing what the journal has
    }
  };

  beforeAll(async () => {
    c = await SystemdContainer.boot({ src: ROOT });
    c.sh(`ip link set lo up
      ip link add veth0 type veth peer name veth1
      sysctl -qw net.ipv6.conf.veth0.accept_dad=0
      ip link set veth0 up && ip link set veth1 up
      ip addr add 192.0.2.1/24 dev veth0
      ip addr add 2001:db8:1::1/64 dev veth0 nodad
      ip route add ${FOREIGN.replace(' dev veth0', '')}`);
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('installs with scripts/install.sh into the container root', () => {
    const out = c.sh(`cd ${c.src} && scripts/install.sh --no-start`);
    expect(out).toMatch(/krtsync installed: \/usr\/bin\/krtsync, config \/etc\/krtsync\/krtsync.yaml/);
    expect(c.sh('id krtsync')).toMatch(/\(krtsync\)/);
    expect(c.property(UNIT, 'LoadState')).toBe('loaded');
    // A short watchdog, so that several pings must arrive while the scenario runs.
    c.writeFile('/etc/systemd/system/krtsync.service.d/test.conf', '[Service]\nWatchdogSec=2s\n');
    c.sh('systemctl daemon-reload');
  });

  it('starts: systemctl returns once READY=1 arrived, and the unit is active', async () => {
    const r = c.systemctl('start', UNIT);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(c.property(UNIT, 'ActiveState')).toBe('active');
    expect(c.property(UNIT, 'StatusText')).toMatch(/^3 routes in 2 tables; 3 installed in the kernel$/);
    await journalHas(/krtsync ready in \d+ ms/, '-u', UNIT);
  });

  it('puts the example routes into the kernel as "proto krtsync", beside a foreign route', () => {
    expect(routes('-4')).toEqual([...EXAMPLE_V4, FOREIGN].sort());
    expect(routes('-6')).toEqual(EXAMPLE_V6);
  });

  it('repairs a route deleted behind its back, and the journal finds the repair by KRT_PREFIX', async () => {
    c.sh('ip route del 10.10.0.0/16 proto krtsync');
    await until('the repair', () => routes('-4').includes(EXAMPLE_V4[0]!), 10000);
    let repair: JournalEntry[] = [];
    await until('the repair in the journal', () => (repair = c.journal('-u', UNIT, 'KRT_PREFIX=10.10.0.0/16')).some((e) => /repairing/.test(e.MESSAGE ?? '')), 5000);
    expect(repair.find((e) => /repairing/.test(e.MESSAGE ?? ''))).toMatchObject({
      MESSAGE: 'route 10.10.0.0/16 deleted by someone else; repairing',
      PRIORITY: '6',
      KRT_PREFIX: '10.10.0.0/16',
      KRT_TABLE: '254',
      KRT_PROTOCOL: 'kernel1',
      SYSLOG_IDENTIFIER: 'krtsync',
      _SYSTEMD_UNIT: 'krtsync.service',
    });
  });

  it('writes structured KRT_* fields to the journal', () => {
    const all = c.journal('-u', UNIT);
    expect(all.some((e) => e.KRT_PROTOCOL === 'kernel1' && e.KRT_FAMILY === 'ipv6')).toBe(true);
    expect(all.some((e) => e.KRT_PROTOCOL === 'static1')).toBe(true);
  });

  it('reloads a good file in place: same MainPID, the new route in the kernel', async () => {
    const pid = mainPid();
    c.sh(`sed -i 's|      - blackhole 10.30.0.0/16|      - blackhole 10.30.0.0/16\\n      - 203.0.113.0/24 via 192.0.2.2|' ${CONFIG}`);
    const r = c.systemctl('reload', UNIT);
    expect(r).toMatchObject({ code: 0 });
    expect(mainPid()).toBe(pid);
    // The reload returns once the table has the route; the kernel protocol installs it right after.
    await until('the new route in the kernel', () => routes('-4').includes('203.0.113.0/24 via 192.0.2.2 dev veth0 proto krtsync'), 5000);
    expect(c.property(UNIT, 'ActiveState')).toBe('active');
  });

  it('refuses a bad file on reload: the reload fails, routes and running config stay', async () => {
    const pid = mainPid();
    const before = routes('-4');
    const good = c.sh(`cat ${CONFIG}`);
    c.sh(`sed -i 's|203.0.113.0/24 via 192.0.2.2|203.0.113.0/24 via 192.0.2.2 bogus|; s|10.10.0.0/16 via|10.11.0.0/16 via|' ${CONFIG}`);
    const r = c.systemctl('reload', UNIT);
    expect(r.code).not.toBe(0);
    expect(mainPid()).toBe(pid);
    expect(c.property(UNIT, 'ActiveState')).toBe('active');
    expect(routes('-4')).toEqual(before);
    await journalHas(/reload failed, the running config stays: .*krtsync\.yaml:\d+:\d+: /, '-u', UNIT, '-p', 'err');
    // The running config is still the good one: put it back and reload, nothing changes.
    c.writeFile(CONFIG, good, '0640');
    expect(c.systemctl('reload', UNIT).code).toBe(0);
    expect(routes('-4')).toEqual(before);
  });

  it('pings the watchdog, and nothing restarted', async () => {
    const pid = mainPid();
    const started = Number(c.property(UNIT, 'ExecMainStartTimestampMonotonic'));
    // WatchdogSec=2s: the daemon pings every second, and a ping 2 s late would have systemd kill and
    // restart it. Pings that keep arriving for 5 s after the start, with the same process, show both.
    await until('watchdog pings 5 s after the start', () => Number(c.property(UNIT, 'WatchdogTimestampMonotonic')) - started > 5_000_000, 10000);
    expect(c.property(UNIT, 'NRestarts')).toBe('0');
    expect(mainPid()).toBe(pid);
    expect(c.property(UNIT, 'WatchdogUSec')).toBe('2s');
  });

  it('scores the running unit with systemd-analyze security: 1.4 OK', () => {
    const r = c.exec('systemd-analyze', ['security', '--no-pager', UNIT]);
    const m = /Overall exposure level for krtsync\.service: (\d+\.\d) (\S+)/.exec(r.out + r.err);
    expect(m).not.toBeNull();
    // 1.1 without IP at all; the metrics listener costs 0.3 (AF_INET/AF_INET6 sockets) and 0.1 (an allow list, localhost only).
    expect(Number(m![1])).toBeLessThanOrEqual(1.4);
    expect(m![2]).toBe('OK');
  });

  it('serves metrics to this host through the unit\'s IP lockdown (IPAddressDeny=any, localhost allowed)', () => {
    expect(addresses('IPAddressDeny')).toEqual(['0.0.0.0/0', '::/0']);
    expect(addresses('IPAddressAllow')).toEqual(['127.0.0.0/8', '::1/128']);
    const r = get('http://127.0.0.1:9725/metrics');
    expect(r.status).toBe(200);
    const m = samples(r.body!);
    expect(sample(m, 'krtsync_ready')).toBe(1);
    expect(sample(m, 'krtsync_kernel_routes', { protocol: 'kernel1', kernel_table: '254', family: 'ipv4', state: 'installed' })).toBe(3);
    expect(sample(m, 'krtsync_kernel_repairs_total', { protocol: 'kernel1', kernel_table: '254', family: 'ipv4', kind: 'deleted' })).toBe(1);
  });

  it('refuses every other peer, even on its own listener, until the unit allows it', () => {
    // The listener on every address: the socket accepts 192.0.2.1, the unit's filter drops its packets.
    c.sh(`sed -i 's|listen: "127.0.0.1:9725"|listen: "0.0.0.0:9725"|' ${CONFIG}`);
    expect(c.systemctl('reload', UNIT).code).toBe(0);
    expect(c.sh('ss -Hltn sport = :9725')).toMatch(/0\.0\.0\.0:9725/);
    expect(get('http://127.0.0.1:9725/metrics').status).toBe(200);
    expect(get('http://192.0.2.1:9725/metrics', 1500)).toEqual({ error: 'TimeoutError' });
    // The same listener answers once the unit allows that address: it was the unit's filter.
    expect(c.systemctl('set-property', '--runtime', UNIT, 'IPAddressAllow=127.0.0.0/8 ::1/128 192.0.2.0/24')).toMatchObject({ code: 0 });
    expect(get('http://192.0.2.1:9725/metrics').status).toBe(200);
    // Back to the shipped list (set-property adds to it; an empty assignment clears it first).
    expect(c.systemctl('set-property', '--runtime', UNIT, 'IPAddressAllow=', 'IPAddressAllow=127.0.0.0/8 ::1/128')).toMatchObject({ code: 0 });
    expect(addresses('IPAddressAllow')).toEqual(['127.0.0.0/8', '::1/128']);
    expect(get('http://192.0.2.1:9725/metrics', 1500)).toEqual({ error: 'TimeoutError' });
    c.sh(`sed -i 's|listen: "0.0.0.0:9725"|listen: "127.0.0.1:9725"|' ${CONFIG}`);
    expect(c.systemctl('reload', UNIT).code).toBe(0);
  });

  it('binds only the metrics port where systemd enforces SocketBindAllow= (not Debian 12\'s: built without BPF_FRAMEWORK)', async () => {
    expect(c.property(UNIT, 'SocketBindAllow')).toBe('tcp9725');
    expect(c.property(UNIT, 'SocketBindDeny')).toBe('any');
    const enforced = /\+BPF_FRAMEWORK/.test(c.exec('systemctl', ['--version']).out);
    const pid = mainPid();
    c.sh(`sed -i 's|listen: "127.0.0.1:9725"|listen: "127.0.0.1:9726"|' ${CONFIG}`);
    if (enforced) {
      expect(c.systemctl('reload', UNIT).code).not.toBe(0);
      await journalHas(/reload failed, the running config stays: metrics\.listen 127\.0\.0\.1:9726: EPERM: not allowed to bind it/, '-u', UNIT, '-p', 'err');
      expect(get('http://127.0.0.1:9725/metrics').status).toBe(200);
    } else {
      // The setting is there for systemd builds that enforce it; this one binds, and IPAddressDeny= still holds.
      expect(c.systemctl('reload', UNIT).code).toBe(0);
      expect(get('http://127.0.0.1:9726/metrics').status).toBe(200);
    }
    expect(mainPid()).toBe(pid);
    c.sh(`sed -i 's|listen: "127.0.0.1:9726"|listen: "127.0.0.1:9725"|' ${CONFIG}`);
    expect(c.systemctl('reload', UNIT).code).toBe(0);
    expect(get('http://127.0.0.1:9725/metrics').status).toBe(200);
  });

  it('stops: our routes are withdrawn, the foreign one stays', async () => {
    expect(c.systemctl('stop', UNIT).code).toBe(0);
    expect(c.property(UNIT, 'ActiveState')).toBe('inactive');
    expect(c.property(UNIT, 'Result')).toBe('success');
    expect(routes('-4')).toEqual([FOREIGN]);
    expect(routes('-6')).toEqual([]);
    await journalHas(/krtsync stopped/, '-u', UNIT);
  });

  it('turns a syscall the filter refuses into an error the daemon reports, not a kill (chown to a group it is not in)', async () => {
    c.sh(`sed -i 's|group: krtsync|group: root|' ${CONFIG}`);
    const r = c.systemctl('start', UNIT);
    expect(r.code).not.toBe(0);
    // Exited with status 1 and a message; SIGSYS would be ExecMainCode=2 (killed), Result=signal.
    expect(c.property(UNIT, 'ExecMainCode')).toBe('1');
    expect(c.property(UNIT, 'ExecMainStatus')).toBe('1');
    await journalHas(/cannot start: control socket \/run\/krtsync\/krtsync\.sock: cannot give it to group "root" \(EPERM\)/, '-u', UNIT, '-p', 'err');
    c.systemctl('stop', UNIT);
    expect(routes('-4')).toEqual([FOREIGN]);
  });

  it('does not loop on a bad config: exit 2 fails the unit without restarting it', async () => {
    c.sh(`sed -i 's|group: root|group: krtsync|; s|type: static|type: statik|' ${CONFIG}`);
    expect(c.systemctl('start', UNIT).code).not.toBe(0);
    expect(c.property(UNIT, 'ExecMainStatus')).toBe('2');
    // A restart would be scheduled at once (SubState auto-restart); a prevented one leaves it failed.
    expect(c.property(UNIT, 'ActiveState')).toBe('failed');
    expect(c.property(UNIT, 'SubState')).toBe('failed');
    expect(c.property(UNIT, 'NRestarts')).toBe('0');
    await journalHas(/krtsync\.yaml:\d+:\d+: protocol static1: type: expected one of static, kernel, api, stream/, '-u', UNIT, '-p', 'err');
  });
});
