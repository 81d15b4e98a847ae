/**
 * The one validation path for a config file, and the one exit-status rule.
 *
 * `krtsync check`, start and reload all run validateConfig: the file's own
 * checks (YAML, keys, types, route lines), then what only the kernel
 * protocol's code can judge (protocol numbers, kernel table names, export
 * filters) and the stream protocol's (import filters), then the routes files. It never stops at the first failing stage:
 * every problem comes back at once, each at file:line:column, sorted as they
 * appear in the file. Nothing here touches the kernel or the running daemon.
 *
 * Start leaves the routes files out: its static protocols read each file
 * once, with the same parser and the same error (exit 2) before any kernel
 * protocol starts, so a million-line file is not read twice. The api state
 * files go with them: check and reload read each one (read only, a torn last
 * record is not a problem), start leaves it to its api protocol, which stops
 * the start the same way.
 */
import { stat } from 'node:fs/promises';
import { ConfigError, positionOf, readConfigFile, type KrtConfig } from '../config/config';
import { KrtError } from '../lib/errors';
import type { ConfigIssue } from '../config/yaml-reader';
import { readStateFile, StateFileError } from '../proto/api/state-file';
import { parseRoutesFile, readRoutesFile, RoutesFileError, type ParsedRoutes } from '../proto/static/routes-file';
import { streamOptionIssues } from '../proto/stream/options';
import { kernelOptionIssues } from './kernel-wiring';

export { EXIT_CONFIG, EXIT_FAIL, EXIT_OK, exitStatusOf } from './exit-status';

export interface ValidateOptions {
  /** Read the routes files and api state files too (check, reload); start leaves them to their protocols. */
  routesFiles: boolean;
  /**
   * A reload's: a FIFO routes file cannot be read twice (each read takes what one writer wrote), so it
   * is read here whole, into columns (parseRoutesFile), and kept by protocol name for its protocol
   * to announce (StaticProtocol.usePreread) instead of reading it again.
   */
  fifos?: Map<string, ParsedRoutes>;
  /** Ends the routes files' reads at their next chunk (a shutdown during a reload): then KRT_ERR_STOPPED. */
  stop?: AbortSignal;
}

/** Reads and checks everything; throws ConfigError with every problem found. */
export async function validateConfig(file: string, opts: ValidateOptions = { routesFiles: true }): Promise<KrtConfig> {
  const { config, issues } = readConfigFile(file);
  let more = 0;
  if (config) {
    issues.push(...kernelOptionIssues(config), ...streamOptionIssues(config));
    for (const p of config.protocols) {
      if (!opts.routesFiles || p.type !== 'static' || p.routesFile === undefined) continue;
      try {
        if (opts.fifos !== undefined && (await isFifo(p.routesFile))) opts.fifos.set(p.name, await parseRoutesFile(p.routesFile, opts.stop));
        else await readRoutesFile(p.routesFile, undefined, undefined, opts.stop);
      } catch (e) {
        if (!(e instanceof RoutesFileError)) throw e;
        issues.push(...e.issues);
        more += e.total - e.issues.length;
      }
      if (opts.stop?.aborted === true) throw new KrtError('KRT_ERR_STOPPED', `stopped while reading routes file ${p.routesFile}: krtsync is shutting down`);
    }
    if (opts.routesFiles) issues.push(...stateFileIssues(config));
  }
  if (issues.length || !config) throw new ConfigError(sortIssues(file, issues), more);
  return config;
}

/** A FIFO (what cannot be stat'ed is left to the read, which names the error). */
async function isFifo(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFIFO();
  } catch {
    return false;
  }
}

/** Each api state file: named by one protocol only, readable and intact. */
function stateFileIssues(c: KrtConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const owner = new Map<string, string>();
  for (const p of c.protocols) {
    if (p.type !== 'api' || p.stateFile === undefined) continue;
    const other = owner.get(p.stateFile);
    if (other !== undefined) {
      issues.push({ file: c.file, ...positionOf(c, `${p.name}.state_file`), message: `protocols ${other} and ${p.name} both name state file ${p.stateFile}; each would overwrite the other's routes` });
      continue;
    }
    owner.set(p.stateFile, p.name);
    try {
      readStateFile(p.stateFile);
    } catch (e) {
      if (!(e instanceof StateFileError)) throw e;
      issues.push({ file: e.file, line: e.line ?? 1, column: 1, message: `state file: ${e.detail}` });
    }
  }
  return issues;
}

/** The config file's problems first, top to bottom, then each routes file's. */
function sortIssues(file: string, issues: ConfigIssue[]): ConfigIssue[] {
  const order = new Map<string, number>([[file, 0]]);
  for (const i of issues) if (!order.has(i.file)) order.set(i.file, order.size);
  return issues
    .map((i, n) => ({ i, n }))
    .sort((a, b) => order.get(a.i.file)! - order.get(b.i.file)! || a.i.line - b.i.line || a.i.column - b.i.column || a.n - b.n)
    .map((x) => x.i);
}
