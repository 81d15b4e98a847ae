/**
 * A real systemd, for tests of what is deployed: systemd 252 booted as PID 1
 * of throwaway namespaces (pid, mount, net, uts, ipc, cgroup) on an overlay of
 * the host's root whose upper layer is a tmpfs (test/helpers/systemd-boot.sh).
 * Whatever a test installs, creates or starts in there (scripts/install.sh,
 * users, units, routes) lives in that tmpfs, that network namespace and that
 * cgroup, and disappears with the container: nothing on the host changes.
 *
 *   const c = await SystemdContainer.boot({ src: ROOT });   // ROOT is bound read-only at c.src
 *   c.sh('cd /opt/krtsync-src && scripts/install.sh --no-start');
 *   c.systemctl('start', 'krtsync');                         // { code, out, err }
 *   c.journal('-u', 'krtsync');                              // journalctl -o json, parsed
 *   await c.destroy();                                       // always: poweroff, then SIGKILL
 *
 * Teardown is guaranteed three ways: destroy() powers off (SIGRTMIN+4 to PID
 * 1, which stops the units as on a real machine) and kills what is left after
 * a bound; the launcher dies with the test process (PR_SET_PDEATHSIG via
 * setpriv) and takes PID 1 with it (unshare --kill-child), so a crashed jest
 * worker leaves no container; and boot() removes the empty cgroups and
 * directories of containers whose test process is gone. A container has its
 * own network namespace with only `lo`: add links (veth works) with exec().
 *
 * The host's enabled units are masked inside, so only systemd's own units
 * boot (journald, dbus, logind): about 0.2 s on 2 cores.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureDebianPackage } = require('../../scripts/debian-package') as { ensureDebianPackage: (pkg: string, opts: { probe: string }) => boolean };

const BOOT_SCRIPT = join(__dirname, 'systemd-boot.sh');
/** Where the source directory appears inside the container (read-only). */
export const CONTAINER_SRC = '/opt/krtsync-src';
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', HOME: '/root', SYSTEMD_PAGER: 'cat', SYSTEMD_COLORS: '0' };
const TAG = 'krt-sd';
/** systemd's "power off" signal, SIGRTMIN+4 (glibc's SIGRTMIN is 34 on Linux; Node has no name for it). */
const SIGRTMIN_4 = 38;

export interface ExecResult {
  code: number;
  out: string;
  err: string;
}

export interface JournalEntry {
  MESSAGE?: string;
  PRIORITY?: string;
  _PID?: string;
  [field: string]: string | undefined;
}

let counter = 0;

/** The cgroup2 mount and this process's own cgroup in it. */
function ownCgroup(): string {
  const mount = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[f.indexOf('-') + 1] === 'cgroup2')?.[4];
  if (!mount) throw new Error('systemd container: no cgroup2 hierarchy is mounted on this host');
  const path = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  return join(mount, path);
}

/** Removes a cgroup and its children, deepest first (they are empty once their processes are gone). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeCgroup(join(dir, e.name));
  rmdirSync(dir);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Left over by a test process that died before its teardown: the kernel has already taken the rest. */
function removeStale(cgroupParent: string): void {
  const mine = (name: string): number | undefined => {
    const m = new RegExp(`^${TAG}-(\\d+)-\\d+$`).exec(name);
    return m ? Number(m[1]) : undefined;
  };
  for (const [dir, remove] of [
    [cgroupParent, removeCgroup],
    [tmpdir(), rmdirSync],
  ] as const) {
    for (const name of readdirSync(dir)) {
      const pid = mine(name);
      if (pid === undefined || pid === process.pid || pidAlive(pid)) continue;
      try {
        remove(join(dir, name));
      } catch {
        /* still busy: a later run tries again */
      }
    }
  }
}

export class SystemdContainer {
  /** Host pid of the container's PID 1 (systemd). */
  readonly pid: number;
  readonly src = CONTAINER_SRC;
  private destroyed: Promise<void> | undefined;

  private constructor(
    readonly name: string,
    private readonly launcher: ChildProcess,
    private readonly exited: Promise<void>,
    pid: number,
    private readonly cgroup: string,
    private readonly dir: string,
    private readonly bootLog: () => string,
  ) {
    this.pid = pid;
  }

  /** Boots systemd with `src` bound read-only at /opt/krtsync-src; resolves once the boot has finished. */
  static async boot(opts: { src: string; timeoutMs?: number }): Promise<SystemdContainer> {
    // The suite installs what it runs (CI is a fresh machine); systemd's own services never start on the host.
    ensureDebianPackage('systemd', { probe: '/lib/systemd/systemd' });
    const name = `${TAG}-${process.pid}-${++counter}`;
    const parent = ownCgroup();
    removeStale(parent);
    const cgroup = join(parent, name);
    const dir = join(tmpdir(), name);
    mkdirSync(cgroup);
    mkdirSync(dir);
    // The launcher joins the new cgroup first, so the container's cgroup namespace is rooted there.
    const launcher = spawn(
      'sh',
      [
        '-c',
        'echo $$ > "$1/cgroup.procs" && exec setpriv --pdeathsig KILL unshare --pid --fork --mount --net --uts --ipc --cgroup --kill-child=SIGKILL bash "$2" "$3" "$4"',
        'sh',
        cgroup,
        BOOT_SCRIPT,
        dir,
        opts.src,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: ENV },
    );
    let log = '';
    launcher.stdout!.on('data', (c: Buffer) => (log += String(c)));
    launcher.stderr!.on('data', (c: Buffer) => (log += String(c)));
    const exited = new Promise<void>((resolve) => launcher.once('exit', () => resolve()));
    const cleanup = (): void => {
      try {
        removeCgroup(cgroup);
        rmdirSync(dir);
      } catch {
        /* left for removeStale */
      }
    };
    const deadline = Date.now() + (opts.timeoutMs ?? 30000);
    let pid: number | undefined;
    let done = false;
    void exited.then(() => (done = true));
    // PID 1 is unshare's only child; it is systemd once the boot script has exec'd it.
    while (pid === undefined) {
      if (done || Date.now() > deadline) {
        launcher.kill('SIGKILL');
        await exited;
        cleanup();
        throw new Error(`systemd container did not start:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
      const child = readChildren(launcher.pid!);
      if (child !== undefined && readComm(child) === 'systemd') pid = child;
    }
    const c = new SystemdContainer(name, launcher, exited, pid, cgroup, dir, () => log);
    // systemctl answers "offline" until systemd has made /run/systemd/system (sd_booted()), and
    // fails to connect until it has opened its private socket; once both exist it waits for the boot.
    // On a loaded machine the first of these can take a while after the exec.
    let wait: ExecResult;
    const notYet = (r: ExecResult): boolean => r.err.includes('Failed to connect to bus') || /^offline$/m.test(r.out);
    while (notYet((wait = c.exec('systemctl', ['is-system-running', '--wait'], { timeoutMs: Math.max(1000, deadline - Date.now()) }))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    // "degraded" is a finished boot with a failed unit: the test decides whether that matters.
    if (!/^(running|degraded)$/m.test(wait.out)) {
      const failed = c.exec('systemctl', ['--failed', '--no-legend']).out;
      await c.destroy();
      throw new Error(`systemd container did not finish booting (${wait.out.trim() || wait.err.trim()}); failed units:\n${failed}\n${log}`);
    }
    return c;
  }

  /** Runs a command inside every namespace of the container, as root, with a clean environment. */
  exec(cmd: string, args: readonly string[] = [], opts: { input?: string; timeoutMs?: number } = {}): ExecResult {
    const r = spawnSync('nsenter', ['-t', String(this.pid), '-a', '--', cmd, ...args], {
      encoding: 'utf8',
      env: ENV,
      input: opts.input ?? '',
      timeout: opts.timeoutMs ?? 60000,
      maxBuffer: 64 << 20,
    });
    return { code: r.status ?? -1, out: r.stdout ?? '', err: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  }

  /** A bash script inside; throws with its output when it fails. */
  sh(script: string, input?: string): string {
    // --norc: bash reads bash.bashrc when stdin is a socket (it takes that for rshd), and Node's is one.
    const r = this.exec('bash', ['--norc', '--noprofile', '-euo', 'pipefail', '-c', script], input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`in container ${this.name}: ${script}\nexit ${r.code}\n${r.out}${r.err}`);
    return r.out;
  }

  systemctl(...args: string[]): ExecResult {
    return this.exec('systemctl', ['--no-pager', ...args]);
  }

  /** One property of a unit (`systemctl show -p NAME --value`). */
  property(unit: string, name: string): string {
    return this.systemctl('show', '-p', name, '--value', unit).out.trim();
  }

  /** `journalctl -o json ARGS`, parsed (matches like KRT_PREFIX=… go in args). */
  journal(...args: string[]): JournalEntry[] {
    const r = this.exec('journalctl', ['--no-pager', '-o', 'json', ...args]);
    if (r.code !== 0 && !/No entries/.test(r.err + r.out)) throw new Error(`journalctl ${args.join(' ')}: ${r.err}`);
    return r.out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as JournalEntry);
  }

  /** Writes a file inside the container (its tmpfs upper layer). */
  writeFile(path: string, text: string, mode = '0644'): void {
    const p = JSON.stringify(path);
    this.sh(`mkdir -p "$(dirname ${p})" && cat > ${p} && chmod ${mode} ${p}`, text);
  }

  /** What the boot script and systemd printed outside the journal (for failure messages). */
  get bootOutput(): string {
    return this.bootLog();
  }

  /**
   * Powers the container off (units are stopped as on a real shutdown), waits
   * at most `graceMs`, then kills whatever is left; removes its cgroup and
   * mount point. Idempotent.
   */
  destroy(graceMs = 20000): Promise<void> {
    this.destroyed ??= (async () => {
      if (this.launcher.exitCode === null && this.launcher.signalCode === null) {
        try {
          process.kill(this.pid, SIGRTMIN_4);
        } catch {
          /* already gone */
        }
        const timer = setTimeout(() => {
          try {
            process.kill(this.pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
          this.launcher.kill('SIGKILL');
        }, graceMs);
        await this.exited;
        clearTimeout(timer);
      }
      // The namespaces' last process is gone, so are its mounts; the empty cgroups and directory remain.
      for (let i = 0; ; i++) {
        try {
          removeCgroup(this.cgroup);
          break;
        } catch (e) {
          if (i >= 250) throw e;
          await new Promise((r) => setTimeout(r, 20)); // the kernel frees a dying cgroup asynchronously
        }
      }
      if (existsSync(this.dir)) rmdirSync(this.dir);
    })();
    return this.destroyed;
  }
}

function readChildren(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}
