/**
 * Bounded line splitting for byte streams (control socket, route streams, routes files).
 */

/**
 * Splits a byte stream into lines, bounded: a line longer than `maxLine`
 * bytes is reported once (onOverflow) and skipped up to its newline, so one
 * huge line never costs unbounded memory and never loses the lines after it.
 * push() keeps nothing of the chunk it is given (an unfinished line is
 * copied), so a reader may pass the same buffer again and again.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly maxLine: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: () => void,
    /**
     * Offered each line's bytes (start..end, without the newline) before it is
     * decoded; returning true consumes the line there, with no string made
     * (the routes file's fast path). A line longer than maxLine is never offered.
     */
    private readonly onBytes?: (buf: Buffer, start: number, end: number) => boolean,
    /**
     * Offered the chunk from each line's start while no unfinished line is held: consumes whole
     * lines there, each with its newline, and returns the start of the first it left (the chunk's
     * end when it took them all); those are split as usual. A bulk reader's run of lines with no
     * search for each one's end (the routes file's IPv4 fast path).
     */
    private readonly onRun?: (buf: Buffer, start: number, end: number) => number,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      if (this.onRun !== undefined && this.size === 0 && !this.skipping) start = this.onRun(chunk, start, chunk.length);
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        this.append(chunk.subarray(start));
        return;
      }
      const skipped = this.skipping;
      let line = '';
      if (!skipped && this.size === 0) {
        // The common case: the whole line is inside this chunk; decode it without copying.
        if (nl - start > this.maxLine) this.append(chunk.subarray(start, nl));
        else if (this.onBytes?.(chunk, start, nl)) {
          start = nl + 1;
          continue;
        } else line = chunk.toString('utf8', start, nl);
      } else {
        this.append(chunk.subarray(start, nl));
        if (!this.skipping) {
          const whole = Buffer.concat(this.parts, this.size);
          if (this.onBytes?.(whole, 0, whole.length)) {
            this.parts = [];
            this.size = 0;
            start = nl + 1;
            continue;
          }
          line = whole.toString('utf8');
        }
      }
      const dropped = skipped || this.skipping;
      this.parts = [];
      this.size = 0;
      this.skipping = false;
      if (!dropped) this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
      start = nl + 1;
    }
  }

  /** Bytes of an unfinished line held. */
  get pending(): number {
    return this.size;
  }

  private append(b: Buffer): void {
    if (this.skipping || b.length === 0) return;
    if (this.size + b.length > this.maxLine) {
      this.parts = [];
      this.size = 0;
      this.skipping = true;
      this.onOverflow();
      return;
    }
    this.parts.push(Buffer.from(b)); // a copy: the caller may reuse its buffer
    this.size += b.length;
  }
}
