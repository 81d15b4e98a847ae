/**
 * The one privilege krtsync needs: CAP_NET_ADMIN, to change kernel routes.
 *
 * Checked once at start, after the config is valid and before anything else
 * happens (no control socket, no source, no netlink socket), so a daemon that
 * could not do its job says so plainly and exits instead of starting up and
 * failing every route with EPERM. The check reads the effective set from
 * /proc/self/status (CapEff), which is what the kernel tests for a netlink
 * request from this process; a process without it gets a message naming the
 * capability and the two usual ways to grant it.
 */
import { readFileSync } from 'node:fs';
import { KrtError } from '../lib/errors';

/** linux/capability.h */
export const CAP_NET_ADMIN = 12;

/** The effective capability set of this process (bit N = capability N), or undefined off Linux. */
export function effectiveCapabilities(statusText?: string): bigint | undefined {
  let text = statusText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/status', 'utf8');
    } catch {
      return undefined;
    }
  }
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(text);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

export class MissingCapabilityError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_NO_CAP_NET_ADMIN', message);
  }
}

/** Throws MissingCapabilityError unless the effective set holds CAP_NET_ADMIN (unknown set: trusted, the kernel will tell). */
export function requireNetAdmin(caps: bigint | undefined = effectiveCapabilities()): void {
  if (caps === undefined || (caps >> BigInt(CAP_NET_ADMIN)) & 1n) return;
  throw new MissingCapabilityError(
    'krtsync needs CAP_NET_ADMIN to change kernel routes, and this process does not have it ' +
      '(run it as root, or give it AmbientCapabilities=CAP_NET_ADMIN as systemd/krtsync.service does); nothing was changed',
  );
}
