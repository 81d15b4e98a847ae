import { LineSplitter } from '../../../src/lib/line-splitter';

describe('LineSplitter', () => {
  it('offers each line`s bytes first, within a chunk or across chunks, and decodes only the lines declined', () => {
    const offered: string[] = [];
    const lines: string[] = [];
    let overflows = 0;
    const s = new LineSplitter(
      10,
      (l) => lines.push(l),
      () => overflows++,
      (buf, start, end) => {
        const text = buf.toString('latin1', start, end);
        offered.push(text);
        return text.startsWith('ok');
      },
    );
    s.push(Buffer.from('ok1\nno1\r\nok-sp'));
    s.push(Buffer.from('lit\n0123456789ABC\nno-split'));
    s.push(Buffer.from('\n'));
    expect(offered).toEqual(['ok1', 'no1\r', 'ok-split', 'no-split']); // the overlong line is never offered
    expect(lines).toEqual(['no1', 'no-split']);
    expect(overflows).toBe(1);
    expect(s.pending).toBe(0);
  });

  it('offers the chunk from each line start to a run reader while no unfinished line is held; what it leaves is split as usual', () => {
    const runs: string[] = [];
    const taken: string[] = [];
    const lines: string[] = [];
    const s = new LineSplitter(
      100,
      (l) => lines.push(l),
      () => undefined,
      undefined,
      (buf, start, end) => {
        runs.push(buf.toString('latin1', start, end));
        // Takes whole lines that start with "r", each with its newline.
        let p = start;
        while (p < end && buf[p] === 114) {
          const nl = buf.indexOf(10, p);
          if (nl === -1 || nl >= end) break;
          taken.push(buf.toString('latin1', p, nl));
          p = nl + 1;
        }
        return p;
      },
    );
    s.push(Buffer.from('r1\nr2\nx1\nr3\nr4'));
    s.push(Buffer.from('-split\nr5\n'));
    expect(taken).toEqual(['r1', 'r2', 'r3', 'r5']);
    expect(lines).toEqual(['x1', 'r4-split']); // a line across chunks is never offered to the run
    // Offered at the first chunk's start, again after the declined x1, and after the line that crossed chunks.
    expect(runs).toEqual(['r1\nr2\nx1\nr3\nr4', 'r3\nr4', 'r5\n']);
    expect(s.pending).toBe(0);
  });
});
