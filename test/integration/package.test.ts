/**
 * The package as a new machine gets it: `npm pack` of this checkout, then
 * `npm install -g` of the tarball into a temporary prefix (dependencies from
 * the registry, or npm's cache; the addon built by node-gyp with the
 * machine's g++ and make), `krtsync` run from PATH, and scripts/install.sh
 * run from that install into a DESTDIR. Nothing outside the temporary
 * directory is written but npm's own cache.
 *
 * `npm pack --ignore-scripts`: `npm test` has just built dist/ (prepare), so
 * the tarball holds the same build without compiling it again.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/daemon-fixture';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION = (require('../../package.json') as { version: string }).version;

/** npm's settings for the outer `npm test` (npm_config_*, npm_package_*) must not steer these runs. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));

function run(cmd: string, args: string[], opts: { cwd?: string; path?: string } = {}): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: 240000,
    env: { ...env, ...(opts.path ? { PATH: `${opts.path}:${env.PATH ?? ''}` } : {}) },
  });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

describe('the npm package', () => {
  const dir = mkdtempSync(join(tmpdir(), `krt-pkg-${process.pid}-`));
  const prefix = join(dir, 'prefix');
  const pkg = join(prefix, 'lib', 'node_modules', 'krtsync');
  const tarball = join(dir, `krtsync-${VERSION}.tgz`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('packs what a machine needs to run and install krtsync, and nothing of the tests', () => {
    const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir]);
    expect(r.code).toBe(0);
    const files = (JSON.parse(r.out) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    for (const f of ['bin/krtsync', 'dist/cli/main.js', 'native/binding.gyp', 'native/krtsync_native.c', 'native/send_queue.c', 'native/ksock.h', 'scripts/install.sh', 'systemd/krtsync.service', 'systemd/krtsync.yaml', 'contrib/prometheus/krtsync.rules.yml', 'contrib/grafana/krtsync-dashboard.json', 'README.md', 'package.json']) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /^(src|test|native\/build|node_modules)\//.test(f))).toEqual([]);
    expect(existsSync(tarball)).toBe(true);
  });

  it('installs with npm install -g: the addon is built and krtsync runs from PATH', () => {
    const r = run('npm', ['install', '-g', '--no-audit', '--no-fund', '--prefix', prefix, tarball], { cwd: dir });
    expect(r.err).not.toMatch(/npm error/i);
    expect(r.code).toBe(0);
    expect(existsSync(join(pkg, 'native', 'build', 'Release', 'krtsync_native.node'))).toBe(true);
    expect(readdirSync(join(pkg, 'node_modules'))).not.toContain('jest'); // production dependencies only
    const bin = join(prefix, 'bin');
    const help = run('krtsync', ['--help'], { path: bin });
    expect(help.code).toBe(0);
    for (const cmd of ['run', 'check', 'show', 'route', 'reload', 'feed']) expect(help.out).toContain(`krtsync ${cmd}`);
    // The addon built for this Node loads and works: a socket opened and closed through it.
    const native = JSON.stringify(join(pkg, 'dist', 'netlink', 'native.js'));
    const addon = run(process.execPath, ['-e', `const { native } = require(${native}); const s = native.unixOpen(null); console.log(native.fd(s) > 2); native.close(s);`]);
    expect(addon).toMatchObject({ code: 0, out: 'true\n', err: '' });
    const check = run('krtsync', ['check', '--config', join(pkg, 'systemd', 'krtsync.yaml')], { path: bin });
    expect(check).toMatchObject({ code: 0, err: '' });
    expect(check.out).toMatch(/OK \(2 protocols, 2 tables, 3 inline routes\)/);
  });

  it('gives scripts/install.sh what it needs: a self-contained copy below DESTDIR that runs', () => {
    const dest = join(dir, 'dest');
    const r = spawnSync('bash', [join(pkg, 'scripts', 'install.sh'), '--prefix', '/usr'], { env: { ...env, DESTDIR: dest }, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lib = join(dest, 'usr', 'lib', 'krtsync');
    expect(existsSync(join(lib, 'native', 'build', 'Release', 'krtsync_native.node'))).toBe(true);
    expect(readFileSync(join(dest, 'etc', 'iproute2', 'rt_protos.d', 'krtsync.conf'), 'utf8')).toBe('144\tkrtsync\n');
    expect(readFileSync(join(dest, 'etc', 'systemd', 'system', 'krtsync.service'), 'utf8')).toMatch(/^ExecStart=\/usr\/bin\/krtsync run --config \/etc\/krtsync\/krtsync.yaml$/m);
    const check = run(process.execPath, [join(lib, 'bin', 'krtsync'), 'check', '--config', join(dest, 'etc', 'krtsync', 'krtsync.yaml')]);
    expect(check).toMatchObject({ code: 0, err: '' });
  });
});
