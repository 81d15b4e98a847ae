/**
 * Who may steer routes: only members of the control socket's group, and only
 * a daemon that holds CAP_NET_ADMIN can change the kernel at all.
 *
 * Real users, created here with useradd/groupadd and removed afterwards
 * whatever happens: one outside the group (refused by the kernel, EACCES) and
 * one inside (served). The daemon started with CAP_NET_ADMIN dropped
 * (setpriv, util-linux), as root and as an unprivileged user, must exit
 * non-zero with a message naming the capability, having created nothing.
 * The systemd unit's exposure score is checked against what the docs say.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import { createNetns, kernelDescribe, type Netns } from '../helpers/netns';
import { BIN, KrtsyncDaemon, ours, ROOT } from '../helpers/daemon-fixture';

const tag = `krt${process.pid % 100000}`;
const GROUP = `${tag}-ctl`;
const OUTSIDER = `${tag}-out`;
const MEMBER = `${tag}-in`;

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs the CLI as `user` (runuser: no shell, no login environment). */
function cliAs(user: string, args: string[]): { code: number; out: string; err: string } {
  const r = spawnSync('runuser', ['-u', user, '--', process.execPath, BIN, ...args], { encoding: 'utf8', timeout: 30000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

kernelDescribe('security (real users, real capabilities)', () => {
  let ns: Netns;
  let d: KrtsyncDaemon;

  beforeAll(async () => {
    ns = createNetns('krt-sec');
    sh('groupadd', '--system', GROUP);
    sh('useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OUTSIDER);
    sh('useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', '--groups', GROUP, MEMBER);
    d = new KrtsyncDaemon(ns, 'krt-sec');
    // The directory is open to everyone: only the socket's own mode and group may decide.
    chmodSync(d.dir, 0o755);
    d.writeConfig(
      `protocols:
  - name: static1
    type: static
    routes: [ "10.10.0.0/16 via 192.0.2.2" ]
  - name: kernel1
    type: kernel
    family: ipv4
`,
      `group: ${GROUP}, mode: 0660`,
    );
  });

  afterAll(async () => {
    // Users first: nothing below may keep them on the system.
    for (const u of [OUTSIDER, MEMBER]) spawnSync('userdel', ['--force', u]);
    spawnSync('groupdel', [GROUP]);
    await d?.dispose();
    ns?.destroy();
  });

  it('serves a member of the control group and refuses a user outside it (EACCES from the kernel)', async () => {
    await d.startReady();
    const member = cliAs(MEMBER, ['show', 'status', '--socket', d.socket]);
    expect(member).toMatchObject({ code: 0 });
    expect(member.out).toMatch(/ready/);
    const outsider = cliAs(OUTSIDER, ['route', 'add', '203.0.113.0/24', 'via', '192.0.2.2', '--socket', d.socket]);
    expect(outsider.code).toBe(1);
    expect(outsider.err).toMatch(/EACCES|permission denied/i);
    expect(ours(ns)).toEqual(['10.10.0.0/16 via 192.0.2.2 dev veth0']);
    // The member may steer routes; that is what the group is for.
    expect(cliAs(MEMBER, ['route', 'add', '203.0.113.0/24', 'via', '192.0.2.2', '--socket', d.socket]).code).toBe(0);
    await d.stop('SIGTERM');
  });

  it.each([
    ['as root with CAP_NET_ADMIN dropped', ['setpriv', '--inh-caps=-all', '--bounding-set=-net_admin']],
    ['as an unprivileged user', ['setpriv', `--reuid=${OUTSIDER}`, `--regid=${OUTSIDER}`, '--clear-groups', '--inh-caps=-all']],
  ])('exits non-zero with a message naming CAP_NET_ADMIN %s, and touches nothing', (_, drop) => {
    chmodSync(d.config, 0o644);
    const r = spawnSync('ip', ['netns', 'exec', ns.name, ...drop, process.execPath, BIN, 'run', '--config', d.config], { encoding: 'utf8', timeout: 30000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot start: krtsync needs CAP_NET_ADMIN to change kernel routes/);
    expect(existsSync(d.socket)).toBe(false);
    expect(ours(ns)).toEqual([]);
  });

  it('hardens the systemd unit to an exposure of 1.4 or better ("OK" is anything below 5)', () => {
    const out = spawnSync('systemd-analyze', ['security', '--offline=yes', `${ROOT}/systemd/krtsync.service`], { encoding: 'utf8' });
    const m = /Overall exposure level for krtsync\.service: (\d+\.\d) (\S+)/.exec(out.stdout + out.stderr);
    expect(m).not.toBeNull();
    // 1.1 with no IP at all; the metrics listener's AF_INET/AF_INET6 sockets cost 0.3, its localhost allow list 0.1.
    expect(Number(m![1])).toBeLessThanOrEqual(1.4);
    expect(['SAFE', 'OK', 'PERFECT']).toContain(m![2]);
  });
});
