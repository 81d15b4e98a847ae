/**
 * Errors of the netlink layer, with stable codes (see src/lib/errors.ts).
 *
 * - NetlinkDecodeError: one message (or the rest of a buffer, when even its
 *   header is unusable) could not be decoded; `offset` is where in the buffer.
 * - NetlinkRequestError: the kernel refused a request. `errno` is the number,
 *   `errnoName` the symbolic name (EEXIST, ESRCH, ...), `extAck` the kernel's
 *   extended-ack text when it sent one. This is a value as often as it is
 *   thrown: the pipeline reports per-route failures as these.
 * - NetlinkSocketError: a socket call failed (open, setsockopt, send, or a
 *   receive error other than an overflow, which is an event, not an error).
 */
import { constants as osConstants } from 'node:os';
import { KrtError } from '../lib/errors';

const errnoNames: string[] = [];
for (const [name, num] of Object.entries(osConstants.errno)) {
  // Prefer the first (canonical) name: EAGAIN over EWOULDBLOCK, ENOTSUP over EOPNOTSUPP.
  if (errnoNames[num] === undefined) errnoNames[num] = name;
}

/** Symbolic name of a positive errno value ("EEXIST"), or "E<number>" when unknown. */
export function errnoName(errno: number): string {
  return errnoNames[errno] ?? `E${errno}`;
}

export class NetlinkDecodeError extends KrtError {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super('KRT_ERR_NETLINK_DECODE', `${message} at offset ${offset}`);
  }
}

export class NetlinkRequestError extends KrtError {
  readonly errnoName: string;
  constructor(
    readonly errno: number,
    readonly extAck?: string,
    context?: string,
  ) {
    const name = errnoName(errno);
    super('KRT_ERR_NETLINK_REQUEST', `${context ? `${context}: ` : ''}${name}${extAck ? `: ${extAck}` : ''}`);
    this.errnoName = name;
  }
}

export class NetlinkSocketError extends KrtError {
  readonly errnoName: string;
  constructor(
    readonly errno: number,
    what: string,
    options?: { cause?: unknown },
  ) {
    const name = errnoName(errno);
    super('KRT_ERR_NETLINK_SOCKET', `${what}: ${name}`, options);
    this.errnoName = name;
  }
}
