/**
 * `krtsync run`: the daemon's process from a config file to its exit, and
 * `krtsync check`. The CLI loads this module only for those two commands
 * (src/cli/main.ts), so a client command (`krtsync show …`) starts without the
 * daemon's modules: the YAML parser, winston, the protocols, the netlink
 * codec (docs/benchmarks.md, Round 16b).
 *
 * Order at start: the config is validated before the logger exists (the log
 * level comes from it); a bad config is still logged, so that under systemd
 * the journal keeps it at error priority. Signals: SIGTERM and SIGINT stop
 * (once), SIGHUP reloads; exit statuses are exit-status.ts's.
 */
import { ConfigError, type KrtConfig } from '../config/config';
import { KrtError } from '../lib/errors';
import { Daemon } from './daemon';
import { EXIT_FAIL, exitStatusOf } from './exit-status';
import { tuneHeap, tuneMalloc } from './heap';
import { createLogger } from './logging';
import { SystemdNotifier } from './systemd';
import { validateConfig } from './validate';

export interface RunArgs {
  config: string;
  'log-level'?: string;
  'log-output': string;
  netns?: string;
}

export async function runDaemon(args: RunArgs): Promise<void> {
  let config: KrtConfig | undefined;
  let invalid: unknown;
  try {
    config = await validateConfig(args.config, { routesFiles: false });
  } catch (e) {
    invalid = e;
  }
  const log = createLogger({ level: (args['log-level'] ?? config?.logLevel ?? 'info') as 'info', output: args['log-output'] as 'auto' });
  if (!config) {
    // Logged, not just printed: under systemd the journal keeps it at error priority.
    log.error(`cannot start: ${invalid instanceof ConfigError ? `invalid config:\n${invalid.message}` : (invalid as Error).message}`);
    log.on('finish', () => process.exit(exitStatusOf(invalid))).end();
    return;
  }
  tuneHeap();
  tuneMalloc();
  const notifier = new SystemdNotifier(process.env, (m) => log.warn(m));
  const daemon = new Daemon({ configFile: args.config, log, notifier, ...(args.netns !== undefined ? { netns: args.netns } : {}) });
  let exiting = false;
  const stop = (signal: string): void => {
    if (exiting) return;
    exiting = true;
    daemon.stop(signal).then(
      () => log.on('finish', () => process.exit(0)).end(),
      (e: Error) => {
        log.error(`shutdown failed: ${e.message}`);
        process.exit(EXIT_FAIL);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Failures are logged by the daemon; the running config stays.
  process.on('SIGHUP', () => void daemon.reload().catch(() => undefined));
  process.on('uncaughtException', (e) => {
    log.error(`internal error: ${e.stack ?? e.message}`);
    process.exit(EXIT_FAIL);
  });
  try {
    await daemon.start(config);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // A bare EPERM from the kernel means the capability; our own errors already say what to change.
    const denied = !(e instanceof KrtError) && (err.code === 'EPERM' || err.code === 'EACCES' || /\bEPERM\b/.test(err.message));
    const msg = denied ? `${err.message}: krtsync needs CAP_NET_ADMIN (run as root, or with AmbientCapabilities=CAP_NET_ADMIN)` : err.message;
    log.error(`cannot start: ${msg}`);
    // Whatever started is stopped again (kernel protocols withdraw what they installed).
    await daemon.stop('start failed').catch(() => undefined);
    log.on('finish', () => process.exit(exitStatusOf(e))).end();
  }
}

/** `krtsync check`: a line saying what the file holds, or every problem found (and the exit status). */
export async function checkConfig(file: string): Promise<{ ok: true; summary: string } | { ok: false; message: string; status: number }> {
  try {
    const c = await validateConfig(file);
    const routes = c.protocols.reduce((n, p) => n + (p.type === 'static' ? p.routes.length : 0), 0);
    return { ok: true, summary: `${file}: OK (${c.protocols.length} protocols, ${c.tables.length} tables, ${routes} inline routes)` };
  } catch (e) {
    const n = e instanceof ConfigError ? e.issues.length + e.more : 0;
    return { ok: false, message: `${(e as Error).message}${n > 1 ? `\n${n} problems` : ''}`, status: exitStatusOf(e) };
  }
}
