/**
 * Kernel protocol options, their defaults, and kernel table names.
 *
 * Default protocol number: 144. The kernel's rtnetlink.h and iproute2's
 * rt_protos use 0-18, 42 (babel), 99 (openr) and 186-192; FRR uses 186-198;
 * BIRD uses 12; nothing we know of uses 144. (`ip route` shows it as "proto
 * 144"; add `144 krtsync` to /etc/iproute2/rt_protos.d/krtsync.conf for a name.)
 *
 * Table names resolve like iproute2: main/local/default, then
 * /etc/iproute2/rt_tables, /etc/iproute2/rt_tables.d/*.conf, and
 * /usr/share/iproute2/rt_tables (newer iproute2 ships its defaults there).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { KrtError } from '../../lib/errors';

export const DEFAULT_KERNEL_PROTOCOL = 144;
/** rt_protos numbers krtsync refuses to use: they belong to the kernel, iproute2, BIRD and FRR. */
export const RESERVED_PROTOCOLS: ReadonlySet<number> = new Set([
  0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 42, 99, ...Array.from({ length: 13 }, (_, i) => 186 + i),
]);

export class KernelOptionError extends KrtError {
  constructor(message: string) {
    super('KRT_ERR_KERNEL_OPTION', message);
  }
}

const BUILTIN_TABLES: Record<string, number> = { main: 254, local: 255, default: 253 };

/** Parses rt_tables text into name -> id (comments and blanks skipped). */
export function parseRtTables(text: string, into = new Map<string, number>()): Map<string, number> {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    const m = /^(0x[0-9a-fA-F]+|\d+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const id = Number(m[1]);
    if (id >= 0 && id <= 0xffffffff && !into.has(m[2]!)) into.set(m[2]!, id);
  }
  return into;
}

export interface TableFiles {
  read(path: string): string | undefined;
  list(dir: string): string[];
}

const realFiles: TableFiles = {
  read: (p) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return undefined;
    }
  },
  list: (d) => {
    try {
      return readdirSync(d);
    } catch {
      return [];
    }
  },
};

/** A kernel table id from a number, a numeric string, or a name (iproute2's files). */
export function resolveKernelTable(t: number | string, files: TableFiles = realFiles): number {
  if (typeof t === 'number' || /^\d+$/.test(t)) {
    const id = Number(t);
    if (!Number.isInteger(id) || id < 1 || id > 0xffffffff) throw new KernelOptionError(`kernel table ${t}: must be 1..4294967295`);
    if (id === 255) throw new KernelOptionError('kernel table 255 (local) belongs to the kernel');
    return id;
  }
  if (t in BUILTIN_TABLES) {
    if (t === 'local') throw new KernelOptionError('kernel table local belongs to the kernel');
    return BUILTIN_TABLES[t]!;
  }
  const names = new Map<string, number>();
  for (const base of ['/etc/iproute2', '/usr/share/iproute2']) {
    const main = files.read(join(base, 'rt_tables'));
    if (main) parseRtTables(main, names);
    for (const f of files.list(join(base, 'rt_tables.d')).sort()) {
      if (!f.endsWith('.conf')) continue;
      const text = files.read(join(base, 'rt_tables.d', f));
      if (text) parseRtTables(text, names);
    }
  }
  const id = names.get(t);
  if (id === undefined) throw new KernelOptionError(`kernel table ${JSON.stringify(t)}: no such name in rt_tables or rt_tables.d (use a number, or add the name there)`);
  return resolveKernelTable(id, files);
}

export function checkProtocolNumber(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 255) throw new KernelOptionError(`protocol ${n}: must be an integer 1..255`);
  if (RESERVED_PROTOCOLS.has(n)) throw new KernelOptionError(`protocol ${n} belongs to the kernel, iproute2, BIRD or FRR; pick another (default ${DEFAULT_KERNEL_PROTOCOL})`);
  return n;
}
