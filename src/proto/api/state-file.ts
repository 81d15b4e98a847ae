/**
 * The api protocol's state file: the routes added with `krtsync route add`,
 * kept across restarts, in a form that cannot silently lose or change one.
 *
 *   krtsync-api-state 1
 *   + 10.9.0.0/16 via 192.0.2.2 *1c291ca3
 *   - 10.9.0.0/16 *8b1a9953
 *
 * A header, then one record a line: `+ ROUTE` (add or replace the route of
 * its prefix) or `- PREFIX` (remove it), each ending with the CRC-32 of what
 * precedes it. Reading replays the records in order.
 *
 * - A change is appended and fdatasync'ed before the request that made it is
 *   answered (group commit: the changes that arrive while one write is in
 *   flight go out together in the next). A change costs one append, not a
 *   rewrite of the file.
 * - The file is rewritten (compacted) when its records outnumber the routes
 *   by far, at start when it needs it, and after a failed append: written to
 *   a fresh temporary file (O_EXCL, never through a symlink), fsync'ed,
 *   renamed over the file, and the directory fsync'ed.
 * - A record cut short at the end (the start of a record, without its
 *   newline: a crash during the append, which therefore was never confirmed)
 *   is dropped and reported. Anything
 *   else wrong (a checksum mismatch, an unknown record, a bad route, a file
 *   that cannot be read, a symlink) is a StateFileError naming file and line:
 *   the start stops, and the file is never overwritten unread.
 * - A file without the header is the older format (plain route lines); it is
 *   read once, every line must be valid, and it is rewritten in this format.
 */
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { parsePrefix, prefixKey } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { parseRouteLine } from '../../config/route-syntax';

export const STATE_HEADER = 'krtsync-api-state 1';

/** What is wrong with a state file, and where: `state file FILE:LINE: detail`. */
export class StateFileError extends KrtError {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly detail: string,
  ) {
    super('KRT_ERR_STATE_FILE', `state file ${file}${line === undefined ? '' : `:${line}`}: ${detail}`);
  }
}

export interface StateFileContents {
  /** The live route lines, in the order their prefixes were first added. */
  lines: string[];
  /** Records in the file (the header not counted). */
  records: number;
  /** A last record cut short by a crash (never confirmed), dropped. */
  torn: string | undefined;
  /** Written in the older plain-lines format. */
  legacy: boolean;
  /** The file did not exist. */
  missing: boolean;
}

/** One record as written: text, a space, '*', 8 hex digits of its CRC-32, newline. */
export function record(op: '+' | '-', text: string): string {
  const body = `${op} ${text}`;
  return `${body} *${crc32(body).toString(16).padStart(8, '0')}\n`;
}

function keyOfPrefix(text: string, path: string, line: number): string | number {
  try {
    return prefixKey(parsePrefix(text));
  } catch (e) {
    throw new StateFileError(path, line, `${(e as Error).message}; ${HOW_TO_GO_ON}`);
  }
}

function keyOfRoute(text: string, path: string, line: number, note = ''): string | number {
  try {
    return prefixKey(parseRouteLine(text).net);
  } catch (e) {
    throw new StateFileError(path, line, `${note}${(e as Error).message}; ${HOW_TO_GO_ON}`);
  }
}

const HOW_TO_GO_ON = 'krtsync did not start and changed nothing; fix the file, or move it aside to start without the routes it holds';

/** Reads and checks a state file without changing it. Throws StateFileError saying what is wrong and where. */
export function readStateFile(path: string): StateFileContents {
  let text: string;
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { lines: [], records: 0, torn: undefined, legacy: false, missing: true };
    if (code === 'ELOOP') throw new StateFileError(path, undefined, 'is a symbolic link; krtsync replaces the file by rename, which would replace the link: name the real file in state_file');
    throw new StateFileError(path, undefined, `cannot read it: ${(e as Error).message}; ${HOW_TO_GO_ON}`);
  }
  const routes = new Map<string | number, string>();
  const rows = text.split('\n');
  const last = rows.pop()!; // '' when the file ends with a newline, as every complete file does
  const first = rows[0] ?? last;
  if (first === '' && rows.length <= 1 && last === '') return { lines: [], records: 0, torn: undefined, legacy: false, missing: false };
  if (first.startsWith('krtsync-api-state')) {
    if (first !== STATE_HEADER || rows.length === 0) throw new StateFileError(path, 1, `not a state file this krtsync can read (header "${first.slice(0, 40)}"); ${HOW_TO_GO_ON}`);
  } else {
    // The older format: plain route lines, no checksums. Every line must be valid.
    [...rows, last].forEach((line, i) => {
      if (line.trim() === '') return;
      routes.set(keyOfRoute(line, path, i + 1, '(older format, no checksum) '), line.trim().replace(/\s+/g, ' '));
    });
    return { lines: [...routes.values()], records: routes.size, torn: undefined, legacy: true, missing: false };
  }
  for (let i = 1; i < rows.length; i++) {
    const m = /^([+-]) (.*) \*([0-9a-f]{8})$/.exec(rows[i]!);
    if (!m || crc32(`${m[1]} ${m[2]}`) !== parseInt(m[3]!, 16)) {
      throw new StateFileError(path, i + 1, `${m ? 'checksum mismatch' : 'not a record'} (the file was damaged or edited by hand); ${HOW_TO_GO_ON}`);
    }
    if (m[1] === '+') routes.set(keyOfRoute(m[2]!, path, i + 1), m[2]!);
    else routes.delete(keyOfPrefix(m[2]!, path, i + 1));
  }
  // A last line without its newline is an append a crash cut short (it was never confirmed), if it
  // is the start of a record; anything else there is damage like anywhere else.
  if (last !== '' && !/^[+-]( [^*]*( \*[0-9a-f]{0,8})?)?$/.test(last)) {
    throw new StateFileError(path, rows.length + 1, `not a record, nor the start of one cut short by a crash (the file was damaged or edited by hand); ${HOW_TO_GO_ON}`);
  }
  return { lines: [...routes.values()], records: rows.length - 1, torn: last === '' ? undefined : last, legacy: false, missing: false };
}

/** Writes `lines` as a fresh state file: temporary file, fsync, rename, fsync of the directory. */
export async function writeStateFileAtomically(path: string, lines: readonly string[]): Promise<void> {
  const dir = dirname(path);
  // A fresh name, created exclusively: never an existing file, never through a symlink. node:crypto
  // is loaded here, at the first write, not with the daemon: a start does not need it (Round 16b).
  const { randomBytes } = await import('node:crypto');
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
  let renamed = false;
  try {
    const chunks = [STATE_HEADER + '\n'];
    for (const l of lines) chunks.push(record('+', l));
    await fh.writeFile(chunks.join(''));
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
    }
  }
  const d = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** What the state file mirrors: the live routes. */
export interface StateSource {
  /** How many routes there are (cheap). */
  readonly size: number;
  /** Every route line (for a rewrite). */
  lines(): readonly string[];
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

/**
 * The open state file: changes appended in batches, each batch made durable
 * before its changes are confirmed.
 */
export class StateFile {
  private fh: FileHandle | undefined;
  private records = 0;
  private pending: string[] = [];
  private waiters: Waiter[] = [];
  /** File work runs one piece at a time, in order: open, flushes, close. */
  private tail: Promise<void> = Promise.resolve();
  private flushQueued = false;
  /** Not open, or an append failed (the file may end in a partial record): the next write rewrites it. */
  private mustRewrite = true;
  /** Appends and rewrites so far (each one fsync'ed), for status and metrics. */
  readonly counts = { appends: 0, rewrites: 0, failures: 0 };

  constructor(
    readonly path: string,
    private readonly source: StateSource,
  ) {}

  /** Opens for appending after a read; rewrites first when `contents` says the file needs it (missing, older format, torn, long). */
  open(contents: StateFileContents): Promise<void> {
    this.records = contents.records;
    this.mustRewrite = contents.missing || contents.legacy || contents.torn !== undefined || this.tooLong(0);
    return this.serial(() => this.reopen());
  }

  /** Queues a change; resolves once it is on disk (rejects with the write's error). */
  change(op: '+' | '-', text: string): Promise<void> {
    this.pending.push(record(op, text));
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.flushQueued) {
      this.flushQueued = true;
      void this.serial(() => this.flush());
    }
    return done;
  }

  /** Waits for queued changes, then closes. */
  close(): Promise<void> {
    return this.serial(async () => {
      const fh = this.fh;
      this.fh = undefined;
      this.mustRewrite = true;
      await fh?.close();
    });
  }

  private serial(work: () => Promise<void>): Promise<void> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Records in the file now (for tests and status). */
  get recordCount(): number {
    return this.records;
  }

  private tooLong(adding: number): boolean {
    return this.records + adding > 1024 + 2 * this.source.size;
  }

  /** Rewrites if it must, and opens for appending. */
  private async reopen(): Promise<void> {
    if (this.mustRewrite) {
      const fh = this.fh;
      this.fh = undefined;
      await fh?.close();
      // The snapshot holds every change made so far; later ones are appended after it.
      const lines = this.source.lines();
      await writeStateFileAtomically(this.path, lines);
      this.counts.rewrites++;
      this.records = lines.length;
      this.mustRewrite = false;
    }
    this.fh ??= await open(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW);
  }

  private async flush(): Promise<void> {
    this.flushQueued = false; // changes from now on are taken by this loop, or queue the next flush
    while (this.pending.length > 0) {
      const batch = this.pending;
      const waiters = this.waiters;
      this.pending = [];
      this.waiters = [];
      try {
        if (this.tooLong(batch.length)) this.mustRewrite = true;
        if (this.mustRewrite || !this.fh) {
          await this.reopen(); // the rewrite holds this batch's changes
        } else {
          await this.fh.write(batch.join(''));
          await this.fh.datasync();
          this.counts.appends++;
          this.records += batch.length;
        }
        waiters.forEach((w) => w.resolve());
      } catch (e) {
        this.mustRewrite = true;
        this.counts.failures++;
        waiters.forEach((w) => w.reject(e as Error));
      }
    }
  }
}
