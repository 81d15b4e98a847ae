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
});
