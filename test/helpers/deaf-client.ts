/**
 * A control-socket client that never reads: the kernel's socket buffers fill,
 * then the daemon's output buffer. It never sees the daemon close the
 * connection either (a paused socket reads no EOF), so tests watch the
 * server's side.
 */
import { createConnection, type Socket } from 'node:net';

export function deafClient(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(path);
    sock.pause();
    sock.on('error', () => undefined);
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}
