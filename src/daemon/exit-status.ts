/**
 * The one exit-status rule of the daemon and its CLI, in a module of its own
 * so the CLI's client commands can use it without loading the validation
 * path (config, YAML, the protocols; src/daemon/validate.ts re-exports it).
 */

export const EXIT_OK = 0;
/** The daemon failed or refused (a client's request, a missing capability, the kernel). */
export const EXIT_FAIL = 1;
/** Bad usage or a bad config: fixing the input is the remedy, retrying is not. */
export const EXIT_CONFIG = 2;

/** Error codes that mean "the config (or a routes file) is wrong", whoever reports them (the daemon answers reload with them). */
const CONFIG_CODES: ReadonlySet<unknown> = new Set(['KRT_ERR_CONFIG', 'KRT_ERR_ROUTES_FILE']);

export function exitStatusOf(e: unknown): number {
  return CONFIG_CODES.has((e as { code?: unknown } | undefined)?.code) ? EXIT_CONFIG : EXIT_FAIL;
}
