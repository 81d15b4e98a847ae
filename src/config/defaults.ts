/**
 * The config's defaults that a client of the daemon needs too, in a module of
 * their own: the CLI's control commands (`krtsync show …`) import this, not
 * config.ts, which would load the YAML parser into every command an operator
 * types (docs/benchmarks.md, Round 16b).
 */

/** Where the daemon's control socket listens unless `control.socket` says otherwise. */
export const DEFAULT_SOCKET = '/run/krtsync/krtsync.sock';
