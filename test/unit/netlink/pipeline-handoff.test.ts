/**
 * The pipeline's hand-off to the sender thread, against a fake socket: at most
 * half the ring goes at once, the other half is encoded while the "kernel"
 * works, and it goes out the moment the sender is back, before anything else
 * is encoded; order and results are kept. (The real kernel runs the same
 * pipeline in test/integration/netlink-routes.test.ts.)
 */
import { Prefix, parseAddr } from '../../../src/lib/addr';
import * as C from '../../../src/netlink/constants';
import { RoutePipeline, type RouteOp } from '../../../src/netlink/pipeline';
import type { NetlinkSocket } from '../../../src/netlink/socket';

interface Send {
  /** Seqs of every request in the chunks handed over, in order. */
  seqs: number[];
  fences: number[];
  done: (sent: number, errno: number) => void;
  count: number;
  /** Requests encoded (seqs taken) when this send was handed over. */
  encodedAtHandOver: number;
}

/** Just enough of NetlinkSocket: records each sendAsync, answers every fence with a success ack once its send completed. */
class FakeSocket {
  readonly buffer = Buffer.alloc(1 << 20);
  isClosed = false;
  seq = 0;
  readonly sends: Send[] = [];
  private acks: number[] = [];

  start(): void {}
  ref(): void {}
  wantWritable(): void {}
  close(): void {
    this.isClosed = true;
  }
  nextSeq(): number {
    return ++this.seq;
  }
  sendAsync(buf: Buffer, list: Int32Array, count: number, done: (sent: number, errno: number) => void): void {
    const seqs: number[] = [];
    const fences: number[] = [];
    for (let i = 0; i < count; i++) {
      const end = list[2 * i]! + list[2 * i + 1]!;
      for (let p = list[2 * i]!; p < end; p += (buf.readUInt32LE(p) + 3) & ~3) {
        seqs.push(buf.readUInt32LE(p + 8));
        if (buf.readUInt16LE(p + 6) & C.NLM_F_ACK) fences.push(buf.readUInt32LE(p + 8));
      }
    }
    this.sends.push({ seqs, fences, done, count, encodedAtHandOver: this.seq });
  }
  /** The sender thread finishes send `i`: its fences' acks are queued, then its callback runs. */
  complete(i: number): void {
    const s = this.sends[i]!;
    this.acks.push(...s.fences);
    s.done(s.count, 0);
  }
  receive(): { bytes: number; errno: number; dry: boolean } {
    let p = 0;
    for (const seq of this.acks) {
      this.buffer.writeUInt32LE(36, p);
      this.buffer.writeUInt16LE(C.NLMSG_ERROR, p + 4);
      this.buffer.writeUInt16LE(C.NLM_F_CAPPED, p + 6);
      this.buffer.writeUInt32LE(seq, p + 8);
      this.buffer.writeUInt32LE(0, p + 12);
      this.buffer.writeInt32LE(0, p + 16); // errno 0: success
      this.buffer.fill(0, p + 20, p + 36); // the request's header (capped)
      p += 36;
    }
    this.acks = [];
    return { bytes: p, errno: 0, dry: true };
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('RoutePipeline hand-off', () => {
  it('hands half the ring to the sender and sends the other half, already encoded, the moment it is back', async () => {
    const sock = new FakeSocket();
    const pipe = new RoutePipeline(sock as unknown as NetlinkSocket, { depth: 8, sendChunk: 16384 });
    const gateway = parseAddr('192.0.2.2');
    const ops: RouteOp[] = [];
    for (let i = 0; i < 20000; i++) {
      ops.push({ cmd: 'add', route: { family: 4, dst: Prefix.v4((10 << 24) + i * 256, 24), tos: 0, table: 254, protocol: 144, scope: 0, type: 1, flags: 0, gateway } });
    }
    const result = pipe.submit(ops);
    await tick();
    expect(sock.sends).toHaveLength(1);
    expect(sock.sends[0]!.count).toBe(4); // half the ring
    const perChunk = sock.sends[0]!.seqs.length / 4;
    expect(sock.seq).toBeGreaterThanOrEqual(sock.sends[0]!.seqs.length + 3 * perChunk); // the other half encoded meanwhile (seqs taken)

    for (let i = 0; sock.sends.length > i; i++) {
      const encodedBefore = sock.seq;
      sock.complete(i); // synchronously: onSent hands over what was ready before it encodes more
      if (sock.sends.length > i + 1) {
        const next = sock.sends[i + 1]!;
        expect(next.encodedAtHandOver).toBe(encodedBefore); // nothing encoded between the sender's return and the next hand-off
        expect(next.seqs[0]).toBeGreaterThan(sock.sends[i]!.seqs.at(-1)!); // in order (a seq taken for a request that did not fit is skipped)
      }
      await tick();
    }
    const r = await result;
    expect(r.ok).toBe(20000);
    expect(r.failed).toEqual([]);
    const seqs = sock.sends.flatMap((s) => s.seqs);
    expect(seqs).toHaveLength(20000); // every op once
    expect(seqs.every((q, k) => k === 0 || q > seqs[k - 1]!)).toBe(true); // in order
  });
});
