/**
 * Routes files: one route a line in ip-route syntax, '#' starts a comment,
 * blank lines are ignored. Read in chunks into one reused buffer (a
 * million-line file is never held in memory as text or as a list): each
 * route goes to the callback as soon as its line is parsed. Problems are collected with file, line and
 * column; the caller decides whether any problem rejects the whole file.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { LineSplitter } from '../../lib/line-splitter';
import type { RouteAttrs } from '../../route';
import { parseRouteLine, parseV4ViaBytes, parseV6ViaBytes, RouteSyntaxError, type V4ViaLine, type V6ViaLine } from '../../config/route-syntax';

export interface RoutesFileIssue {
  file: string;
  line: number;
  column: number;
  message: string;
}

export class RoutesFileError extends KrtError {
  constructor(
    readonly issues: readonly RoutesFileIssue[],
    readonly total: number,
  ) {
    const shown = issues.map((i) => `${i.file}:${i.line}:${i.column}: ${i.message}`).join('\n');
    super('KRT_ERR_ROUTES_FILE', total > issues.length ? `${shown}\n… and ${total - issues.length} more problems` : shown);
  }
}

/** Routes per family (readRoutesFile's `counts`, filled when the whole file is good). */
export interface RoutesFileCounts {
  v4: number;
  v6: number;
}

/** An open routes file, and whether it can be read twice (a regular file, not a FIFO). */
export interface RoutesFileHandle {
  readonly fh: FileHandle;
  readonly seekable: boolean;
}

function cannotRead(file: string, e: unknown): RoutesFileError {
  return new RoutesFileError([{ file, line: 1, column: 1, message: `cannot read: ${(e as Error).message}` }], 1);
}

/** Opens a routes file (the error is a RoutesFileError naming it). The caller closes `fh`. */
export async function openRoutesFile(file: string): Promise<RoutesFileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw cannotRead(file, e);
  }
  try {
    return { fh, seekable: (await fh.stat()).isFile() };
  } catch (e) {
    await fh.close();
    throw cannotRead(file, e);
  }
}

const MAX_ISSUES = 20;
const MAX_LINE = 4096;

/**
 * Streams `file` through the route parser. `onRoute` may be omitted to only
 * validate. Resolves with the number of routes; rejects with RoutesFileError
 * listing the first problems (and how many there were) if any line is bad,
 * after reading the whole file. With `handle` (an open RoutesFileHandle) the
 * file is read from its start through that descriptor and left open: two
 * passes read the same file even if it is replaced in between.
 */
export async function readRoutesFile(file: string, onRoute?: (net: Prefix, attrs: RouteAttrs) => void, handle?: RoutesFileHandle, counts?: RoutesFileCounts): Promise<number> {
  const issues: RoutesFileIssue[] = [];
  let problems = 0;
  let lineNo = 0;
  let routes = 0;
  const fast: V4ViaLine = { word: 0, len: 0, attrs: undefined };
  const fast6: V6ViaLine = { w0: 0, w1: 0, w2: 0, w3: 0, len: 0, attrs: undefined };
  const issue = (column: number, message: string): void => {
    problems++;
    if (issues.length < MAX_ISSUES) issues.push({ file, line: lineNo, column, message });
  };
  const splitter = new LineSplitter(
    MAX_LINE,
    (line) => {
      lineNo++;
      const hash = line.indexOf('#');
      const text = hash === -1 ? line : line.slice(0, hash);
      if (text.trim() === '') return;
      try {
        const r = parseRouteLine(text);
        routes++;
        if (counts !== undefined && r.net.family === 6) counts.v6++;
        onRoute?.(r.net, r.attrs);
      } catch (e) {
        if (e instanceof RouteSyntaxError) issue(e.column, e.message);
        else throw e;
      }
    },
    () => {
      // The splitter skips this line without calling onLine for it: count it here.
      lineNo++;
      issue(1, `line longer than ${MAX_LINE} bytes`);
    },
    // `A.B.C.D/L via E.F.G.H` and `X:X::/L via Y:Y::`, nearly every line of a big file, read on
    // the bytes (no string, token or regex per line); anything
    // else goes to onLine.
    (buf, start, end) => {
      if (parseV4ViaBytes(buf, start, end, fast)) {
        lineNo++;
        routes++;
        onRoute?.(new Prefix(4, fast.len, fast.word), fast.attrs!);
        return true;
      }
      if (!parseV6ViaBytes(buf, start, end, fast6)) return false;
      lineNo++;
      routes++;
      if (counts !== undefined) counts.v6++;
      onRoute?.(new Prefix(6, fast6.len, fast6.w0, fast6.w1, fast6.w2, fast6.w3), fast6.attrs!);
      return true;
    },
  );
  // One buffer, read into again and again: a stream's fresh chunk per read is garbage outside
  // V8's heap, freed only at its next full collection, and a big file's chunks pile up till then.
  const buf = Buffer.allocUnsafe(1 << 20);
  const own = handle === undefined ? await openRoutesFile(file) : undefined;
  const h = handle ?? own!;
  try {
    // A regular file is read by position (a second pass starts over); a FIFO as it comes.
    let at = 0;
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await h.fh.read(buf, 0, buf.length, h.seekable ? at : null));
      } catch (e) {
        throw cannotRead(file, e);
      }
      if (bytesRead === 0) break;
      at += bytesRead;
      splitter.push(buf.subarray(0, bytesRead));
    }
  } finally {
    if (own !== undefined) await own.fh.close();
  }
  splitter.push(Buffer.from('\n')); // a last line without a newline
  if (problems) throw new RoutesFileError(issues, problems);
  if (counts !== undefined) counts.v4 = routes - counts.v6;
  return routes;
}
