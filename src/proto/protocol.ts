/**
 * The protocol contract (after BIRD): a protocol is an object of named hooks,
 * not a class hierarchy. The daemon owns the lifecycle and calls:
 *
 *  - init(): check options and resources; nothing visible happens yet;
 *  - start(): begin work; resolves once the protocol is up (for the kernel
 *    protocol: after its first sync, so READY=1 means the kernel is in sync);
 *  - shutdown(): stop and clean up (withdraw, unless told to persist);
 *    resolves once the protocol is down. Idempotent.
 *  - reconfigure(next): apply new options in place; false means "I cannot
 *    do this in place, restart me" and leaves the running state untouched.
 *
 * Protocol states are a small explicit machine; an impossible transition is
 * a bug and throws InvariantError instead of being ignored.
 */
import { InvariantError } from '../lib/errors';

export type ProtocolState = 'down' | 'starting' | 'up' | 'stopping';

export interface Protocol<Options> {
  readonly name: string;
  readonly state: ProtocolState;
  init(): void;
  start(): Promise<void>;
  shutdown(): Promise<void>;
  reconfigure(next: Options): boolean;
}

/**
 * A finite state machine over string states: `go(to)` throws on a transition
 * the table does not list. Transitions to the same state are not implied.
 */
export class StateMachine<S extends string> {
  private current: S;

  constructor(
    readonly what: string,
    initial: S,
    private readonly allowed: Readonly<Record<S, readonly S[]>>,
    private readonly onChange?: (from: S, to: S) => void,
  ) {
    this.current = initial;
  }

  get state(): S {
    return this.current;
  }

  can(to: S): boolean {
    return this.allowed[this.current].includes(to);
  }

  go(to: S): void {
    if (!this.can(to)) throw new InvariantError(`${this.what}: impossible transition ${this.current} -> ${to}`);
    const from = this.current;
    this.current = to;
    this.onChange?.(from, to);
  }
}

export const PROTOCOL_TRANSITIONS: Readonly<Record<ProtocolState, readonly ProtocolState[]>> = {
  down: ['starting'],
  starting: ['up', 'stopping'],
  up: ['stopping'],
  stopping: ['down'],
};
