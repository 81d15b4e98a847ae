/**
 * scripts/install.sh into a DESTDIR: the installed copy must run on its own
 * (production dependencies only), and the unit, snippets, example config and
 * rt_protos.d entry must land where systemd and iproute2 look for them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

describe('scripts/install.sh', () => {
  const dest = mkdtempSync(join(tmpdir(), 'krt-install-'));
  afterAll(() => rmSync(dest, { recursive: true, force: true }));

  it('installs a self-contained daemon, the unit and the snippets below DESTDIR', () => {
    const r = spawnSync('bash', [join(ROOT, 'scripts', 'install.sh'), '--prefix', '/usr'], { env: { ...process.env, DESTDIR: dest }, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lib = join(dest, 'usr/lib/krtsync');
    expect(existsSync(join(lib, 'native/build/Release/krtsync_native.node'))).toBe(true);
    expect(existsSync(join(lib, 'node_modules/yargs'))).toBe(true);
    expect(existsSync(join(lib, 'node_modules/prom-client'))).toBe(true); // the metrics endpoint's runtime dependency
    expect(existsSync(join(lib, 'contrib/prometheus/krtsync.rules.yml'))).toBe(true);
    expect(existsSync(join(lib, 'node_modules/jest'))).toBe(false); // no dev dependencies
    expect(readFileSync(join(dest, 'etc/iproute2/rt_protos.d/krtsync.conf'), 'utf8')).toBe('144\tkrtsync\n');
    const unit = readFileSync(join(dest, 'etc/systemd/system/krtsync.service'), 'utf8');
    expect(unit).toMatch(/^Type=notify$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/krtsync run --config \/etc\/krtsync\/krtsync.yaml$/m);
    expect(existsSync(join(dest, 'usr/lib/sysusers.d/krtsync.conf'))).toBe(true);
    expect(existsSync(join(dest, 'usr/lib/tmpfiles.d/krtsync.conf'))).toBe(true);
  });

  it('runs from the installed copy: check accepts the example config it installed', () => {
    const bin = join(dest, 'usr/lib/krtsync/bin/krtsync');
    const r = spawnSync(process.execPath, [bin, 'check', '--config', join(dest, 'etc/krtsync/krtsync.yaml')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/OK \(2 protocols, 2 tables, 3 inline routes\)/);
    expect(r.status).toBe(0);
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    for (const cmd of ['run', 'check', 'show', 'route', 'reload', 'feed']) expect(help.stdout).toContain(`krtsync ${cmd}`);
  });
});
