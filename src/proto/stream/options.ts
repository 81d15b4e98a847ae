/**
 * A stream protocol's settings in the form it runs with: the import filter
 * parsed, the neighbour settings found by address. streamOptionIssues() runs
 * the filter parser for `krtsync check`, start and reload (validateConfig),
 * every problem at the file, line and column of the bad value.
 */
import { parseAddr, type Family } from '../../lib/addr';
import { positionOf, type KrtConfig, type StreamProtocolConfig } from '../../config/config';
import type { StreamNeighborConfig } from '../../config/stream-config';
import type { ConfigIssue } from '../../config/yaml-reader';
import { importFilterErrors, parseImportFilter, type ExportFilter } from '../filter';
import { hostPrefix } from '../filter-bgp';

export interface StreamOptions {
  importFilter: ExportFilter | undefined;
  /** Neighbours the startup hold waits for: the configured exact addresses, canonical. */
  expected: ReadonlySet<string>;
  /** The first configured entry covering the neighbour at `peer` (its canonical address). */
  neighbor(peer: string): StreamNeighborConfig | undefined;
}

export function streamOptions(cfg: StreamProtocolConfig): StreamOptions {
  const importFilter = cfg.importFilter === undefined ? undefined : parseImportFilter(cfg.importFilter.value, 'import');
  const expected = new Set<string>();
  for (const n of cfg.neighbors) if (n.match.len === n.match.maxLen) expected.add(n.match.addr.toString());
  const found = new Map<string, StreamNeighborConfig | undefined>();
  return {
    importFilter,
    expected,
    neighbor: (peer) => {
      if (peer === '') return undefined;
      if (found.has(peer)) return found.get(peer);
      const at = hostPrefix(parseAddr(peer));
      const n = cfg.neighbors.find((x) => x.match.contains(at));
      if (found.size < 4096) found.set(peer, n);
      return n;
    },
  };
}

/** Every problem of every stream protocol's import filter, at the position of the value that is wrong. */
export function streamOptionIssues(c: KrtConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const p of c.protocols) {
    if (p.type !== 'stream' || !p.importFilter) continue;
    for (const e of importFilterErrors(p.importFilter.value, 'import')) issues.push({ file: c.file, ...positionOf(c, `${p.name}.${e.path}`), message: `protocol ${p.name}: ${e.message}` });
  }
  return issues;
}

/** The families a protocol's tables serve. */
export function familiesOf(has: (f: Family) => boolean): Family[] {
  return ([4, 6] as Family[]).filter(has);
}
