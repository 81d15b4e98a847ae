/**
 * Malformed input: random bytes and mutated valid messages. Decoding never
 * throws, never hangs, and every failure is a NetlinkDecodeError with an
 * offset inside the buffer; good messages around a bad one still decode.
 */
import fc from 'fast-check';
import { parsePrefix } from '../../../src/lib/addr';
import { NetlinkDecodeError } from '../../../src/netlink/errors';
import { NetlinkMessage, decodeMessages } from '../../../src/netlink/message-codec';
import { encodeRouteRequest } from '../../../src/netlink/route-codec';
import { encodeLinkRequest } from '../../../src/netlink/link-codec';
import { routeArb } from './arbitraries';

function checkDecoded(msgs: NetlinkMessage[], len: number): void {
  for (const m of msgs) {
    if (m.kind === 'malformed') {
      expect(m.error).toBeInstanceOf(NetlinkDecodeError);
      expect(m.error.code).toBe('KRT_ERR_NETLINK_DECODE');
      expect(m.error.offset).toBeGreaterThanOrEqual(0);
      expect(m.error.offset).toBeLessThanOrEqual(len);
    }
  }
}

/** `npm run fuzz` raises this (KRTSYNC_FUZZ_RUNS). */
const RUNS = Number(process.env.KRTSYNC_FUZZ_RUNS ?? 3000);

const kinds = ['route', 'link', 'addr', 'error', 'done', 'other', 'malformed'];

describe('decoding malformed input', () => {
  it('turns random bytes into decode errors, never exceptions', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const buf = Buffer.from(bytes);
        const msgs = decodeMessages(buf);
        for (const m of msgs) expect(kinds).toContain(m.kind);
        checkDecoded(msgs, buf.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('survives random bytes behind a plausible header of every message type', () => {
    const types = fc.constantFrom(2, 3, 16, 17, 20, 21, 24, 25, 99);
    fc.assert(
      fc.property(types, fc.uint8Array({ minLength: 0, maxLength: 300 }), (type, body) => {
        const buf = Buffer.alloc(16 + body.length);
        buf.writeUInt32LE(buf.length, 0);
        buf.writeUInt16LE(type, 4);
        buf.set(body, 16);
        checkDecoded(decodeMessages(buf), buf.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('survives mutated valid messages (flipped bytes, truncation)', () => {
    const buf = Buffer.alloc(8192);
    fc.assert(
      fc.property(
        routeArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.nat(),
        (r, flips, cut) => {
          const n = encodeRouteRequest(buf, 0, 1, 'add', r);
          const copy = Buffer.from(buf.subarray(0, n));
          for (const [at, v] of flips) copy[at % n] = v;
          const truncated = copy.subarray(0, n - (cut % (n + 1)));
          checkDecoded(decodeMessages(truncated), truncated.length);
          checkDecoded(decodeMessages(copy), copy.length);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('reports a bad message with its offset and keeps decoding the next one', () => {
    const buf = Buffer.alloc(512);
    const r = { family: 4 as const, dst: parsePrefix('203.0.113.0/24'), tos: 0, table: 254, protocol: 4, scope: 0, type: 1, flags: 0 };
    const a = encodeRouteRequest(buf, 0, 1, 'add', r);
    const b = encodeRouteRequest(buf, a, 2, 'add', r);
    buf.writeUInt16LE(200, a + 16 + 12); // second message: RTA_TABLE claims 200 bytes
    const c = encodeLinkRequest(buf, a + b, 3, { op: 'set', index: 2, up: true });
    const msgs = decodeMessages(buf, 0, a + b + c);
    expect(msgs.map((m) => m.kind)).toEqual(['route', 'malformed', 'link']);
    const bad = msgs[1]!;
    if (bad.kind !== 'malformed') throw new Error('expected malformed');
    expect(bad.error.offset).toBe(a + 16 + 12);
    expect(bad.error.message).toMatch(/attribute length 200 out of bounds at offset/);
    expect(bad.header?.seq).toBe(2);
  });

  it('ends the walk at a header that cannot be framed, with its offset', () => {
    const buf = Buffer.alloc(40);
    buf.writeUInt32LE(20, 0);
    buf.writeUInt16LE(3, 4); // NLMSG_DONE
    buf.writeUInt32LE(4000, 20); // claims more than is there
    const msgs = decodeMessages(buf);
    expect(msgs.map((m) => m.kind)).toEqual(['done', 'malformed']);
    expect((msgs[1] as { error: NetlinkDecodeError }).error.offset).toBe(20);
  });
});
