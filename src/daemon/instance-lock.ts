/**
 * One daemon per kernel table, protocol number and family in a network
 * namespace: a second one would adopt the first one's routes as its own,
 * prune them, and the two would fight.
 *
 * The lock is flock(2) on a file named after the namespace (its nsfs inode,
 * which stays unique while anyone holds a socket in it), the kernel table,
 * the protocol number and the family, in a fixed directory (/run/krtsync, the
 * unit's RuntimeDirectory) so that a second daemon finds it whatever its
 * config or control socket path. The kernel releases it when the holder
 * dies, so a crash leaves no stale lock; the file records the holder (pid,
 * config, protocol, control socket, start time) for the refusal message.
 *
 * The holder removes the file when it lets go, while still holding it. A
 * starter that opened the file just before that removal would lock a file
 * nobody can find any more: after flock it checks that the path still names
 * the inode it locked, and starts over otherwise. A daemon that was killed
 * leaves its file (not its lock) behind; sweep() removes such files the same
 * way, holding each while it unlinks it, and every start sweeps.
 */
import { closeSync, constants, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Family } from '../lib/addr';
import { KrtError } from '../lib/errors';
import { native } from '../netlink/native';
import { netnsPath } from '../netlink/socket';

export const DEFAULT_LOCK_DIR = '/run/krtsync';
const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;

/** What one lock guards. */
export interface LockKey {
  kernelTable: number;
  protocol: number;
  family: Family;
}

/** Who holds a lock: written into the lock file, read back by a refused starter. */
export interface LockHolder {
  pid: number;
  config: string;
  protocol: string;
  socket: string;
  since: string;
}

export class InstanceLockError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_ALREADY_RUNNING', message);
  }
}

/** The network namespace's identity: the inode of its nsfs file. */
export function netnsInode(netns?: string): number {
  return statSync(netns !== undefined ? netnsPath(netns) : '/proc/self/ns/net').ino;
}

export function describeKey(k: LockKey): string {
  return `kernel table ${k.kernelTable}, protocol number ${k.protocol}, IPv${k.family}`;
}

export function lockFileName(netns: number, k: LockKey): string {
  return `kernel-net${netns}-table${k.kernelTable}-proto${k.protocol}-ipv${k.family}.lock`;
}

function describeHolder(text: string, path: string): string {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid === 'number') {
      return `krtsync pid ${h.pid} (protocol ${h.protocol ?? '?'}, config ${h.config ?? '?'}, control socket ${h.socket ?? '?'}, since ${h.since ?? '?'})`;
    }
  } catch {
    /* not written yet, or not ours */
  }
  return `another process (it holds ${path})`;
}

export class InstanceLock {
  private fd: number | undefined;

  private constructor(
    readonly path: string,
    fd: number,
  ) {
    this.fd = fd;
  }

  /**
   * Takes the lock or throws InstanceLockError naming the holder. Touches
   * nothing else. `netns` is the namespace the kernel protocols work in.
   */
  static acquire(dir: string, key: LockKey, holder: LockHolder, netns?: string): InstanceLock {
    const ns = netnsInode(netns);
    const path = join(dir, lockFileName(ns, key));
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (let attempt = 0; ; attempt++) {
      // Node opens every file close-on-exec.
      const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
      const r = native.flock(fd, LOCK_EX | LOCK_NB);
      if (r === -EWOULDBLOCK) {
        let text = '';
        try {
          text = readFileSync(fd, 'utf8');
        } finally {
          closeSync(fd);
        }
        throw new InstanceLockError(`${describeKey(key)} in network namespace ${ns} is already managed by ${describeHolder(text, path)}; this krtsync changed nothing and exits`);
      }
      if (r < 0) {
        closeSync(fd);
        throw new InstanceLockError(`cannot lock ${path}: errno ${-r}`);
      }
      if (InstanceLock.stillNamed(path, fd)) {
        const lock = new InstanceLock(path, fd);
        lock.record(holder);
        return lock;
      }
      closeSync(fd); // its holder removed it between our open and our flock: take the new one
      if (attempt >= 100) throw new InstanceLockError(`cannot lock ${path}: it keeps being replaced`);
    }
  }

  /**
   * Removes lock files nobody holds (left by killed daemons), those of one
   * namespace when `netns` (an inode) is given. Returns how many it removed.
   */
  static sweep(dir: string, netns?: number): number {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return 0;
    }
    let removed = 0;
    const prefix = netns === undefined ? 'kernel-net' : `kernel-net${netns}-`;
    for (const name of names) {
      if (!name.startsWith(prefix) || !name.endsWith('.lock')) continue;
      const path = join(dir, name);
      let fd: number;
      try {
        fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch {
        continue;
      }
      try {
        if (native.flock(fd, LOCK_EX | LOCK_NB) === 0 && InstanceLock.stillNamed(path, fd)) {
          unlinkSync(path);
          removed++;
        }
      } catch {
        /* gone meanwhile */
      } finally {
        closeSync(fd);
      }
    }
    return removed;
  }

  private static stillNamed(path: string, fd: number): boolean {
    try {
      const a = fstatSync(fd);
      const b = statSync(path);
      return a.ino === b.ino && a.dev === b.dev;
    } catch {
      return false;
    }
  }

  private record(holder: LockHolder): void {
    if (this.fd === undefined) return;
    const text = Buffer.from(JSON.stringify(holder) + '\n');
    ftruncateSync(this.fd, 0);
    writeSync(this.fd, text, 0, text.length, 0);
  }

  get held(): boolean {
    return this.fd !== undefined;
  }

  /** Removes the file while still holding it, then lets go. Idempotent. */
  release(): void {
    if (this.fd === undefined) return;
    try {
      if (InstanceLock.stillNamed(this.path, this.fd)) unlinkSync(this.path);
    } catch {
      /* gone already */
    }
    closeSync(this.fd);
    this.fd = undefined;
  }
}
