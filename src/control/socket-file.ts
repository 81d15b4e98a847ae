/**
 * The control socket's file on disk: made with its final permissions, and
 * removed only by the instance that made it, and only while it is still that
 * socket.
 *
 * - Something already at the path: a live socket means another daemon is
 *   listening (refused, nothing touched); a socket nobody listens on is a
 *   leftover of a crash and is removed; anything else (a regular file, a
 *   directory, a symlink) is refused, never unlinked.
 * - The socket is bound in a private directory, given its group and mode
 *   there, and only then linked to its path: nobody can connect before the
 *   mode is final (a non-member connecting in that window was a finding).
 * - The file's device and inode are recorded at bind; removal checks them, so
 *   a failed start, or a daemon whose socket was replaced by another one's,
 *   never deletes a socket it did not create.
 */
import { chmodSync, chownSync, linkSync, lstatSync, mkdtempSync, rmSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { KrtError } from '../lib/errors';

export interface SocketIdentity {
  dev: number;
  ino: number;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a regular file';
  return 'not a socket';
}

/** True when something accepts connections at `path` (a live daemon, not a stale file). */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Makes `path` free for a new socket: nothing there, or a stale socket removed.
 * Throws (touching nothing) when a daemon listens there or the path holds something else.
 */
export async function clearStaleSocket(path: string): Promise<void> {
  const st = lstatOrUndefined(path);
  if (!st) return;
  if (!st.isSocket()) throw new Error(`control socket ${path}: the path holds ${kindOf(st)}, not a socket; krtsync removes only stale sockets (move it away or choose another control.socket)`);
  if (await socketIsLive(path)) throw new Error(`control socket ${path}: another krtsync is already listening there`);
  const again = lstatOrUndefined(path);
  // Only the socket we probed: if it was replaced meanwhile, leave it to whoever replaced it.
  if (again && again.isSocket() && again.ino === st.ino && again.dev === st.dev) unlinkSync(path);
}

/**
 * Listens on `path`, with the socket's final group and mode from the moment
 * it can be reached: the socket is bound inside a fresh private directory
 * (mode 0700, next to `path`), given its group and mode there, then
 * hard-linked into place (link(2) never replaces: if anything appeared at
 * `path` meanwhile, this fails and touches it not) and its private name
 * removed. Node's pipe server remembers only the private name, which is gone,
 * so closing the server never unlinks anything at `path`: removeOwnSocket()
 * does, after checking it is still this socket.
 */
export async function listenWithMode(server: Server, path: string, mode: number, gid: number | undefined, group = String(gid)): Promise<SocketIdentity> {
  const dir = mkdtempSync(join(dirname(path), '.krtsync-'));
  const tmp = join(dir, 's');
  let listening = false;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(tmp, () => {
        server.off('error', reject);
        resolve();
      });
    });
    listening = true;
    if (gid !== undefined) giveToGroup(tmp, path, gid, group);
    chmodSync(tmp, mode);
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`control socket ${path}: something appeared at the path while krtsync was starting; it was left alone`);
      throw e;
    }
    const st = lstatSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch (e) {
    if (listening) await new Promise<void>((r) => server.close(() => r()));
    throw e;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A socket is born with our group (or its directory's, when that is setgid: the private
 * directory inherits it), which under the systemd unit is the wanted one: no chown then, and
 * the unit's syscall filter forbids chown. Where one is needed and refused, the daemon says
 * what to change instead of starting with a socket that the group cannot use.
 */
function giveToGroup(tmp: string, path: string, gid: number, group: string): void {
  if (statSync(tmp).gid === gid) return;
  try {
    chownSync(tmp, -1, gid);
  } catch (e) {
    throw new KrtError(
      'KRT_ERR_CONTROL_GROUP',
      `control socket ${path}: cannot give it to group "${group}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ` +
        'run krtsync with that group as its own (under systemd: Group= in a drop-in, see docs/config.md), or as root',
    );
  }
}

/** Unlinks `path` only if it is still the socket `id` describes. Returns whether it did. */
export function removeOwnSocket(path: string, id: SocketIdentity): boolean {
  const st = lstatOrUndefined(path);
  if (!st || !st.isSocket() || st.dev !== id.dev || st.ino !== id.ino) return false;
  try {
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}
