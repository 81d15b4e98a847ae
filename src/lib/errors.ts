/**
 * Error classes with stable string codes (after undici): code is what tests and
 * callers match on, message is for the operator and says what was wrong and where.
 */

export class KrtError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A malformed address or prefix at an edge (config, CLI, control socket, stream). */
export class AddrError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_ADDR', message);
  }
}

/** A violated internal invariant: a bug, never bad input. */
export class InvariantError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_INVARIANT', message);
  }
}
