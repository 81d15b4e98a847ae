/**
 * The real daemon for whole-daemon tests: `node bin/krtsync run` inside a
 * namespace from createNetns() (via `ip netns exec`, which execs it: the pid
 * we signal is the daemon's), with sd_notify going to a test-side socket so
 * READY=1 is observable, its stderr log kept, and the CLI at hand.
 *
 * Oracles are iproute2's: `ours()` is every route with our protocol number,
 * `foreign()` every other route of every table, as text, sorted. Tests compare
 * them with sets they compute themselves from what they asked for, never with
 * what the daemon says about itself.
 *
 * Sizes scale with KRTSYNC_SOAK (scripts/soak.js sets it): `soakScale(small,
 * large)` gives the CI size normally and the soak size under the soak run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_LOCK_DIR, InstanceLock } from '../../src/daemon/instance-lock';
import { UnixDatagramSocket } from '../../src/netlink/socket';
import { OUR_PROTO_SHOWN, dropNhid, type Netns } from './netns';

export const ROOT = join(__dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'krtsync');
export const PROTO = '144';

export const soak = process.env.KRTSYNC_SOAK === '1';
export function soakScale<T>(ci: T, soakSize: T): T {
  return soak ? soakSize : ci;
}

/** A small seeded PRNG (mulberry32): a failing run is repeated with its seed (KRTSYNC_SEED). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export const seed = Number(process.env.KRTSYNC_SEED ?? Date.now() % 1_000_000);

export async function until(what: string, test: () => boolean, ms = 15000, stepMs = 50): Promise<number> {
  const t0 = Date.now();
  while (!test()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return Date.now() - t0;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Resolves to 'timeout' after ms, without keeping the process alive (for races). */
const deadline = (ms: number): Promise<'timeout'> => new Promise((r) => setTimeout(() => r('timeout'), ms).unref());

/** Route lines of `ip route show` for one family, first lines only (multipath hops folded in). */
function lines(ns: Netns, fam: '-4' | '-6', ...sel: string[]): string[] {
  const out: string[] = [];
  for (const l of ns.ip(fam, 'route', 'show', ...sel).split('\n')) {
    if (!l.trim()) continue;
    if (/^\s/.test(l) && out.length) out[out.length - 1] += ` ${l.trim()}`;
    else out.push(dropNhid(l.trim()));
  }
  return out.sort();
}

/** Our routes (main table unless given), as `ip route` prints them, sorted. */
export function ours(ns: Netns, fam: '-4' | '-6' = '-4', table = 'main'): string[] {
  return lines(ns, fam, 'table', table, 'proto', PROTO);
}

/** Every route that is not ours, in every table, both families: must never change under us. */
export function foreign(ns: Netns): string[] {
  return [...lines(ns, '-4', 'table', 'all'), ...lines(ns, '-6', 'table', 'all')].filter((l) => !OUR_PROTO_SHOWN.test(l));
}

/** Our routes as a map dst -> the rest of the line without the device ("via 192.0.2.2 metric 20"). */
export function oursByDst(ns: Netns, fam: '-4' | '-6' = '-4'): Map<string, string> {
  const m = new Map<string, string>();
  for (const r of ns.ipJson<Array<{ dst: string; gateway?: string; type?: string; metric?: number }>>(fam, 'route', 'show', 'proto', PROTO)) {
    const kind = r.type && r.type !== 'unicast' ? `${r.type} ` : '';
    m.set(r.dst, `${kind}${r.gateway ? `via ${r.gateway}` : ''}${r.metric ? ` metric ${r.metric}` : ''}`.trim());
  }
  return m;
}

/** Differences between two maps, for failure messages that say what is wrong (first 10). */
export function mapDiff(want: ReadonlyMap<string, string>, got: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of want) if (got.get(k) !== v) out.push(`${k}: want "${v}", kernel has ${got.has(k) ? `"${got.get(k)}"` : 'nothing'}`);
  for (const [k, v] of got) if (!want.has(k)) out.push(`${k}: not wanted, kernel has "${v}"`);
  return out.slice(0, 10);
}

/** A raw control connection: write anything, collect answer lines. */
export function controlConnection(path: string): Promise<{ sock: Socket; got: string[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    const got: string[] = [];
    let buf = '';
    sock.on('data', (c) => {
      buf += String(c);
      const parts = buf.split('\n');
      buf = parts.pop()!;
      got.push(...parts);
    });
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.once('connect', () => resolve({ sock, got, closed }));
    sock.once('error', reject);
  });
}

/** Resident memory of a process in MiB, now and at its peak (VmRSS, VmHWM). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

export class KrtsyncDaemon {
  readonly dir: string;
  readonly socket: string;
  readonly config: string;
  proc: ChildProcess | undefined;
  log = '';
  readonly notes: string[] = [];
  private readonly notify: UnixDatagramSocket;
  private exited: Promise<number | null> | undefined;

  constructor(
    readonly ns: Netns,
    tag = 'krt-d',
  ) {
    this.dir = mkdtempSync(join(tmpdir(), `${tag}-`));
    this.socket = join(this.dir, 'krtsync.sock');
    this.config = join(this.dir, 'krtsync.yaml');
    this.notify = UnixDatagramSocket.open(join(this.dir, 'notify'));
    this.notify.start((dgs) => dgs.forEach((d) => this.notes.push(d.data.toString())));
  }

  /** Writes the config; `body` is the protocols section and anything else, the control socket is added (with `control` extras). */
  writeConfig(body: string, control = ''): void {
    writeFileSync(this.config, `control: { socket: ${this.socket}${control ? `, ${control}` : ''} }\n${body}`);
  }

  file(name: string, text: string): string {
    const p = join(this.dir, name);
    writeFileSync(p, text);
    return p;
  }

  get readyCount(): number {
    return this.notes.filter((n) => n.startsWith('READY=1')).length;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  /** Starts `krtsync run`; resolves at once (use ready() to wait for READY=1). */
  start(args: string[] = []): void {
    if (this.proc) throw new Error('daemon already running');
    const proc = spawn('ip', ['netns', 'exec', this.ns.name, process.execPath, BIN, 'run', '--config', this.config, ...args], {
      env: { ...process.env, NOTIFY_SOCKET: join(this.dir, 'notify') },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr!.on('data', (c) => (this.log += String(c)));
    this.exited = new Promise((r) => proc.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
    this.proc = proc;
  }

  /** Starts and waits for the next READY=1. */
  async startReady(ms = 60000): Promise<number> {
    const n = this.readyCount;
    const t0 = Date.now();
    this.start();
    await this.waitReady(n, ms);
    return Date.now() - t0;
  }

  async waitReady(before: number, ms = 60000): Promise<void> {
    await until(`READY=1 (log so far:\n${this.log.slice(-2000)})`, () => this.readyCount > before || this.proc === undefined, ms);
    if (this.readyCount <= before) throw new Error(`daemon exited before READY=1:\n${this.log.slice(-2000)}`);
  }

  /** Sends a signal; resolves with the exit code (-1 when killed by a signal). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 60000): Promise<number | null> {
    const proc = this.proc;
    if (!proc) return null;
    proc.kill(signal);
    const code = await Promise.race([this.exited!, deadline(ms)]);
    if (code === 'timeout') {
      proc.kill('SIGKILL');
      await this.exited;
      this.proc = undefined;
      throw new Error(`daemon did not exit within ${ms} ms after ${signal}`);
    }
    this.proc = undefined;
    return code;
  }

  /** Resolves when the daemon exits by itself. */
  async exit(ms = 30000): Promise<number | null> {
    const code = await Promise.race([this.exited!, deadline(ms)]);
    if (code === 'timeout') throw new Error(`daemon still running after ${ms} ms`);
    this.proc = undefined;
    return code;
  }

  cli(args: string[], input?: string): CliResult {
    const r = spawnSync(process.execPath, [BIN, ...args, '--socket', this.socket], { input, encoding: 'utf8', timeout: 60000, maxBuffer: 1 << 28 });
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
  }

  /** `show kernel --json` entries. */
  kernelStatus(failedOnly = false): Array<{ net: string; state: string; attempts: number; error?: { errno: number; errnoName: string; message: string }; retryAt?: number }> {
    const r = this.cli(['show', 'kernel', '--json', ...(failedOnly ? ['--failed'] : [])]);
    if (r.code !== 0) throw new Error(`show kernel: ${r.err}`);
    return JSON.parse(r.out);
  }

  /** Kills a running daemon and removes the work directory, and the lock files killed daemons left in this namespace. */
  async dispose(): Promise<void> {
    if (this.proc) await this.stop('SIGKILL').catch(() => undefined);
    this.notify.close();
    rmSync(this.dir, { recursive: true, force: true });
    try {
      InstanceLock.sweep(DEFAULT_LOCK_DIR, statSync(this.ns.path).ino);
    } catch {
      /* the namespace is gone already */
    }
  }
}
