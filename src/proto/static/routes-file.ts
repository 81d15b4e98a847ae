/**
 * Routes files: one route a line in ip-route syntax, '#' starts a comment,
 * blank lines are ignored. Read in chunks into one reused buffer (a
 * million-line file is never held in memory as text or as a list of
 * objects): each route goes to the callback as soon as its line is parsed.
 * Problems are collected with file, line and column; the caller decides
 * whether any problem rejects the whole file. A FIFO is read through a
 * non-blocking pipe handle, not the thread pool (a read blocked there holds
 * the process's exit: libuv joins its threads). A `stop` signal ends a read
 * between chunks; the caller checks it (what was read is then incomplete).
 *
 * parseRoutesFile reads a file once into columns (ParsedRoutes: IPv4 nets as
 * words, lengths and attribute indexes, about 9 bytes a route) for the
 * daemon's start: the whole file is known good before its first route is
 * announced, and the routes can then be announced in the kernel's
 * trie-spread order.
 */
import { constants, open as openFd, type Stats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Socket, type OnReadOpts, type SocketConstructorOpts } from 'node:net';
import { promisify } from 'node:util';
import { Prefix } from '../../lib/addr';
import { KrtError } from '../../lib/errors';
import { LineSplitter } from '../../lib/line-splitter';
import { grownTo } from '../../lib/net-list';
import { reverseBits32, spreadOrder, SpreadSort } from '../../lib/net-sort';
import type { RouteAttrs } from '../../route';
import { parseV4ViaBytes, parseV6ViaBytes, scanV4ViaRun, type V4ViaLine, type V6ViaLine } from '../../config/route-bytes';
import { parseRouteLine, RouteSyntaxError } from '../../config/route-syntax';

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

const MAX_ISSUES = 20;
const MAX_LINE = 4096;

/**
 * Streams `file` through the route parser. `onRoute` may be omitted to only
 * validate; with `onV4`, the common IPv4 lines go there as an address word
 * and a length (no Prefix made). Resolves with the number of routes; rejects
 * with RoutesFileError listing the first problems (and how many there were)
 * if any line is bad, after reading the whole file. Once `stop` aborts, the
 * read ends at its next chunk and resolves with the routes so far, problems
 * or not: the caller checks `stop.aborted`. `onSize` hears a regular file's
 * size before its first line is read.
 */
export async function readRoutesFile(
  file: string,
  onRoute?: (net: Prefix, attrs: RouteAttrs) => void,
  onV4?: (word: number, len: number, attrs: RouteAttrs) => void,
  stop?: AbortSignal,
  onSize?: (bytes: number) => void,
): Promise<number> {
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
  const takeV4 = (word: number, len: number, attrs: RouteAttrs): void => {
    lineNo++;
    routes++;
    onV4!(word, len, attrs);
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
        if (onV4 !== undefined) onV4(fast.word, fast.len, fast.attrs!);
        else onRoute?.(new Prefix(4, fast.len, fast.word), fast.attrs!);
        return true;
      }
      if (!parseV6ViaBytes(buf, start, end, fast6)) return false;
      lineNo++;
      routes++;
      onRoute?.(new Prefix(6, fast6.len, fast6.w0, fast6.w1, fast6.w2, fast6.w3), fast6.attrs!);
      return true;
    },
    // The same IPv4 lines, a run at a time: a big file's bulk is read straight through.
    onV4 === undefined ? undefined : (buf, start, end) => scanV4ViaRun(buf, start, end, takeV4),
  );
  // One buffer, read into again and again: a stream's fresh chunk per read is garbage outside
  // V8's heap, freed only at its next full collection, and a big file's chunks pile up till then.
  const buf = Buffer.allocUnsafe(1 << 20);
  const cannotRead = (e: unknown): RoutesFileError => new RoutesFileError([{ file, line: 1, column: 1, message: `cannot read: ${(e as Error).message}` }], 1);
  let st: Stats;
  try {
    st = await stat(file);
  } catch (e) {
    throw cannotRead(e);
  }
  if (st.isFile()) onSize?.(st.size);
  if (st.isFIFO()) {
    await readFifo(file, buf, (chunk) => splitter.push(chunk), cannotRead, stop);
  } else {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      throw cannotRead(e);
    }
    try {
      while (stop?.aborted !== true) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await fh.read(buf, 0, buf.length, null));
        } catch (e) {
          throw cannotRead(e);
        }
        if (bytesRead === 0) break;
        splitter.push(buf.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }
  if (stop?.aborted === true) return routes;
  splitter.push(Buffer.from('\n')); // a last line without a newline
  if (problems) throw new RoutesFileError(issues, problems);
  return routes;
}

const openFile = promisify(openFd);

/**
 * Reads the FIFO `file` to its end into `buf`, chunk by chunk to `onChunk`, through a pipe handle
 * on the event loop (opened O_NONBLOCK: no wait in the thread pool for a writer either; the
 * kernel reports no end before a first writer has come and gone). A stop destroys the handle.
 */
async function readFifo(file: string, buf: Buffer, onChunk: (chunk: Buffer) => void, cannotRead: (e: unknown) => Error, stop?: AbortSignal): Promise<void> {
  let fd: number;
  try {
    fd = await openFile(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw cannotRead(e);
  }
  await new Promise<void>((resolve, reject) => {
    let failed: unknown;
    // The constructor takes `onread` (read into our one buffer) as connect() does; @types/node lists it only there.
    const opts: SocketConstructorOpts & { onread: OnReadOpts } = {
      fd,
      readable: true,
      writable: false,
      onread: {
        buffer: buf,
        callback: (n: number): boolean => {
          try {
            onChunk(buf.subarray(0, n));
            return true;
          } catch (e) {
            failed = e;
            pipe.destroy();
            return false;
          }
        },
      },
    };
    const pipe = new Socket(opts);
    const onStop = (): void => void pipe.destroy();
    stop?.addEventListener('abort', onStop, { once: true });
    if (stop?.aborted === true) pipe.destroy();
    pipe.on('error', (e) => (failed ??= cannotRead(e)));
    pipe.on('close', () => {
      stop?.removeEventListener('abort', onStop);
      if (failed !== undefined) reject(failed);
      else resolve();
    });
  });
}

/**
 * A routes file read whole: IPv4 routes as columns (address word, length, and the index of their
 * attributes among the file's distinct ones, in file order), IPv6 routes as a list. About 9 bytes an
 * IPv4 route (the attributes are interned and shared), where the file's text is about 26.
 */
export class ParsedRoutes {
  private words = new Int32Array(1024);
  private lens = new Uint8Array(1024);
  private attrIds = new Uint32Array(1024);
  private n4 = 0;
  /** The distinct attributes, and each one's index (the parser interns them: a file has a handful). */
  private readonly distinct: RouteAttrs[] = [];
  private readonly attrIndex = new Map<RouteAttrs, number>();
  private last: RouteAttrs | undefined;
  private lastId = 0;
  private readonly v6: { net: Prefix; attrs: RouteAttrs }[] = [];

  get v4Count(): number {
    return this.n4;
  }

  get v6Count(): number {
    return this.v6.length;
  }

  /** Room for `n` IPv4 routes at once (a file's size says about how many): no doubling and copying on the way. */
  reserve4(n: number): void {
    if (n <= this.lens.length) return;
    this.words = grownTo(this.words, n);
    this.lens = grownTo(this.lens, n);
    this.attrIds = grownTo(this.attrIds, n);
  }

  push4(word: number, len: number, attrs: RouteAttrs): void {
    const n = this.n4;
    if (n === this.lens.length) {
      this.words = grownTo(this.words, n * 2);
      this.lens = grownTo(this.lens, n * 2);
      this.attrIds = grownTo(this.attrIds, n * 2);
    }
    if (attrs !== this.last) {
      let id = this.attrIndex.get(attrs);
      if (id === undefined) {
        id = this.distinct.length;
        this.distinct.push(attrs);
        this.attrIndex.set(attrs, id);
      }
      this.last = attrs;
      this.lastId = id;
    }
    this.words[n] = word;
    this.lens[n] = len;
    this.attrIds[n] = this.lastId;
    this.n4 = n + 1;
  }

  push(net: Prefix, attrs: RouteAttrs): void {
    if (net.family === 4) this.push4(net.w0, net.len, attrs);
    else this.v6.push({ net, attrs });
  }

  /**
   * Every route once: IPv4 to `v4` in trie-spread order (the order the kernel's IPv4 FIB adds
   * fastest: src/netlink/order.ts; a net listed twice keeps its lines' order, so the last line wins
   * as when read in file order), then IPv6 to `v6` in file order. The callbacks may await (turns of
   * FIRST_TURN routes, doubling up to `yieldEvery`): writers elsewhere, and a kernel protocol
   * reading the table, run in between. Once only: the sort takes the columns over. IPv4 routes are
   * sorted with their length and attributes' index beside them and read back in order, with no
   * Prefix made per route.
   * With `addressTail` (routes that go on nexthop objects), only the first quarter of the spread
   * order goes so and the rest in address order: the kernel adds them about as fast (the quarter
   * has built the trie's upper nodes), and deletes them with their object at shutdown in half the
   * time, its walk being in address order (docs/benchmarks.md, Rounds 12 and 14). Without objects,
   * routes are deleted one by one in spread order, fastest after spread-order adds. Once `stop`
   * aborts, ends at the next turn of the event loop (the caller checks `stop.aborted`).
   * `warm`, if given, sees each run of IPv4 nets before `v4` does (the table's read-ahead of its
   * index: Table.warm4); its arrays are scratch, valid during the call.
   */
  async forEach(
    v4: (word: number, len: number, attrs: RouteAttrs) => void,
    v6: (net: Prefix, attrs: RouteAttrs) => void,
    yieldEvery: number,
    addressTail = false,
    stop?: AbortSignal,
    warm?: (words: Int32Array, lens: Uint8Array, n: number) => void,
  ): Promise<void> {
    const n = this.n4;
    const distinct = this.distinct;
    // Two turns of the event loop a pause: a reader of the fill (the kernel protocol) reads the routes
    // in the first and sends them in the second (its flush is an immediate the read queues); with one,
    // the first send waited for the next turn's announces, 30 ms on a cold start (Round 18).
    const pause = (): Promise<void> => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
    // The turns start small and double up to `yieldEvery`: the first routes reach a kernel protocol
    // reading the fill (and its adds begin) after a few hundred announces, not after a whole chunk.
    let step = Math.min(FIRST_TURN, yieldEvery);
    let nextYield = step;
    const turnEnds = (done: number): boolean => {
      if (done !== nextYield) return false;
      step = Math.min(step * 2, yieldEvery);
      nextYield += step;
      return true;
    };
    if (distinct.length < 1 << 24) {
      const payload = this.attrIds;
      for (let i = 0; i < n; i++) payload[i] = (payload[i]! << 8) | this.lens[i]!;
      // Sorted as it is read: the first routes go after one pass over the keys, the rest of the sort
      // is done a bucket at a time while the kernel adds what went before.
      const sorted = new SpreadSort(this.words, payload, n, addressTail ? Math.ceil(n * ADDRESS_TAIL_HEAD) : n);
      this.words = new Int32Array(0); // taken over by the sort
      this.attrIds = new Uint32Array(0);
      // In runs: each run's nets decoded first, so `warm` can read ahead for all of them at once.
      const words = new Int32Array(WARM_RUN);
      const lens = new Uint8Array(WARM_RUN);
      for (let j = 0; j < n; ) {
        const m = Math.min(WARM_RUN, n - j);
        sorted.ensure(j + m);
        for (let k = 0; k < m; k++) {
          words[k] = reverseBits32(sorted.keys[j + k]!) | 0;
          lens[k] = sorted.payload[j + k]! & 255;
        }
        warm?.(words, lens, m);
        for (let k = 0; k < m; k++, j++) {
          v4(words[k]!, lens[k]!, distinct[sorted.payload[j]! >>> 8]!);
          if (turnEnds(j + 1)) {
            await pause();
            if (stop?.aborted === true) return;
          }
        }
      }
    } else {
      // More distinct attributes than the payload's 24 bits index: the order as a permutation.
      const order = spreadOrder(this.words, this.lens, n);
      for (let j = 0; j < n; j++) {
        const i = order[j]!;
        v4(this.words[i]!, this.lens[i]!, distinct[this.attrIds[i]!]!);
        if (turnEnds(j + 1)) {
          await pause();
          if (stop?.aborted === true) return;
        }
      }
    }
    for (const r of this.v6) v6(r.net, r.attrs);
  }
}

/** Routes of forEach's first turn; each next turn has twice as many, up to its `yieldEvery`. */
const FIRST_TURN = 512;

/** IPv4 routes decoded (and warmed) at a time: their index slots' cache lines stay in the CPU's cache till announced. */
const WARM_RUN = 1024;

/** The share of a file's IPv4 routes announced in spread order before the rest in address order (addressTail). */
const ADDRESS_TAIL_HEAD = 0.25;

/**
 * A routes file's bytes per route, about: `11.0.0.0/24 via 192.0.2.2` and its newline take 28; the
 * shortest common lines about 22. Sized by it, a file of plain lines gets room for all its routes at
 * once, with a sixth to spare; one of shorter lines or more than this many grows as before.
 */
const BYTES_PER_ROUTE = 24;
/** No more room than this up front, whatever the file's size (9 bytes a route: 36 MB). */
const MAX_RESERVE = 4 << 20;

/** Reads `file` whole into columns (readRoutesFile's errors: nothing is returned from a file with a bad line; incomplete once `stop` aborts). */
export async function parseRoutesFile(file: string, stop?: AbortSignal): Promise<ParsedRoutes> {
  const out = new ParsedRoutes();
  await readRoutesFile(
    file,
    (net, attrs) => out.push(net, attrs),
    (word, len, attrs) => out.push4(word, len, attrs),
    stop,
    (bytes) => out.reserve4(Math.min(Math.ceil(bytes / BYTES_PER_ROUTE), MAX_RESERVE)),
  );
  return out;
}
