import { Prefix } from '../../../src/lib/addr';
import { DirtyQueue, EchoWaitQueue } from '../../../src/proto/kernel/entry-queue';
import { NetEntry } from '../../../src/proto/kernel/net-entry';

const entry = (i: number): NetEntry => new NetEntry(Prefix.v4((10 << 24) | (i << 8), 24));

function drain(q: DirtyQueue): NetEntry[] {
  const out: NetEntry[] = [];
  for (let e = q.shift(); e; e = q.shift()) out.push(e);
  return out;
}

describe('DirtyQueue', () => {
  it('lists each entry once, first in first out, and skips deleted ones', () => {
    const q = new DirtyQueue();
    const [a, b, c] = [entry(1), entry(2), entry(3)];
    q.add(a);
    q.add(b);
    q.add(a);
    q.add(c);
    q.delete(b);
    expect(q.size).toBe(2);
    expect(drain(q)).toEqual([a, c]);
    expect(q.size).toBe(0);
    q.delete(a); // not queued: nothing happens
    expect(q.size).toBe(0);
  });

  it('takeAll hands over every queued entry in order and leaves none queued (to queue them again in another order)', () => {
    const q = new DirtyQueue();
    const [a, b, c] = [entry(1), entry(2), entry(3)];
    q.add(a);
    q.add(b);
    q.add(c);
    q.delete(b);
    expect(q.takeAll()).toEqual([a, c]);
    expect(q.size).toBe(0);
    expect([a.queued, b.queued, c.queued]).toEqual([false, false, false]);
    q.add(c);
    q.add(a);
    expect(drain(q)).toEqual([c, a]);
  });

  it('an entry deleted and added again is listed once', () => {
    const q = new DirtyQueue();
    const [a, b] = [entry(1), entry(2)];
    q.add(a);
    q.add(b);
    q.delete(a);
    q.add(a);
    expect(drain(q)).toEqual([a, b]);
  });

  it('keeps its order across compaction, with entries added while it is drained', () => {
    const q = new DirtyQueue();
    const es = Array.from({ length: 10_000 }, (_, i) => entry(i));
    for (const e of es) q.add(e);
    const out: NetEntry[] = [];
    for (let e = q.shift(); e; e = q.shift()) {
      out.push(e);
      if (out.length === 5000) q.add(es[0]!); // already taken: queued again at the end
    }
    expect(out).toEqual([...es, es[0]]);
  });
});

describe('DirtyQueue change times', () => {
  it('hands each entry its first change time, 0 where none was given, across a compaction', () => {
    const q = new DirtyQueue();
    const es = Array.from({ length: 10_000 }, (_, i) => entry(i));
    // Runs: 0..2999 at t=0 (no time), 3000..5999 at 1000 + i/1000 (three runs), 6000.. with no time again.
    es.forEach((e, i) => q.add(e, i < 3000 || i >= 6000 ? 0 : 1000 + Math.floor(i / 1000)));
    q.add(es[3500]!, 99_999); // already queued: keeps its first time
    q.delete(es[4000]!);
    const seen: Array<[number, number]> = [];
    for (let e = q.shift(); e; e = q.shift()) seen.push([es.indexOf(e), q.shiftedAt]);
    expect(seen).toHaveLength(9999);
    for (const [i, at] of seen) expect(at).toBe(i < 3000 || i >= 6000 ? 0 : 1000 + Math.floor(i / 1000));
    expect(q.shiftedAt).toBe(0);
  });

  it('times an entry added again after it was taken by its new change', () => {
    const q = new DirtyQueue();
    const [a, b] = [entry(1), entry(2)];
    q.add(a, 5);
    expect([q.shift(), q.shiftedAt]).toEqual([a, 5]);
    q.add(b);
    q.add(a, 7);
    expect([q.shift(), q.shiftedAt]).toEqual([b, 0]);
    expect([q.shift(), q.shiftedAt]).toEqual([a, 7]);
  });

  it('drops the times of entries taken out together (takeAll)', () => {
    const q = new DirtyQueue();
    const [a, b] = [entry(1), entry(2)];
    q.add(a, 5);
    q.add(b, 6);
    expect(q.takeAll()).toEqual([a, b]);
    q.add(b);
    expect([q.shift(), q.shiftedAt]).toEqual([b, 0]);
  });
});

describe('EchoWaitQueue', () => {
  it('reports an entry overdue only if it still waits, is not in flight and was not sent again', () => {
    const q = new EchoWaitQueue();
    const [waiting, answered, resent, inflight] = [entry(1), entry(2), entry(3), entry(4)];
    for (const e of [waiting, answered, resent, inflight]) {
      e.expectEcho('new');
      e.lastSentAt = 100;
      q.add(e, 100);
    }
    answered.clearEchoes();
    resent.lastSentAt = 7000;
    q.add(resent, 7000);
    inflight.inflight = 1;
    const overdue: NetEntry[] = [];
    q.takeOverdue(6000, (e) => overdue.push(e));
    expect(overdue).toEqual([waiting]);
    // Still in flight: looked at again once what is before it is overdue too.
    inflight.inflight = 0;
    q.takeOverdue(12_000, (e) => overdue.push(e));
    expect(overdue).toEqual([waiting, resent, inflight]);
    expect(q.length).toBe(0);
  });
});
