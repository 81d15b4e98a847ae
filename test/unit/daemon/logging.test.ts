import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, encodeJournalEntry, formatLine, journalFieldName, JournalTransport, stderrIsJournal, stderrTransport } from '../../../src/daemon/logging';
import { closeFd, UnixDatagramSocket, type UnixDatagram } from '../../../src/netlink/socket';
import { debugOn, nullLogger, withFields } from '../../../src/proto/logger';

/** Parses the journal's native protocol back into fields (what journald does). */
function parseJournalEntry(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < buf.length) {
    const nl = buf.indexOf(10, p);
    const line = buf.subarray(p, nl).toString('utf8');
    const eq = line.indexOf('=');
    if (eq >= 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1);
      p = nl + 1;
    } else {
      const len = Number(buf.readBigUInt64LE(nl + 1));
      out[line] = buf.subarray(nl + 9, nl + 9 + len).toString('utf8');
      expect(buf[nl + 9 + len]).toBe(10);
      p = nl + 10 + len;
    }
  }
  return out;
}

function receiver(): { path: string; sock: UnixDatagramSocket; next: () => Promise<UnixDatagram> } {
  const path = join(mkdtempSync(join(tmpdir(), 'krt-journal-')), 'socket');
  const sock = UnixDatagramSocket.open(path);
  const queue: UnixDatagram[] = [];
  let wake: (() => void) | undefined;
  sock.start((dgs) => {
    queue.push(...dgs);
    wake?.();
  });
  const next = async (): Promise<UnixDatagram> => {
    while (!queue.length) await new Promise<void>((r) => (wake = r));
    return queue.shift()!;
  };
  return { path, sock, next };
}

describe('journal native protocol', () => {
  it('frames plain and multi-line fields the way journald parses them', () => {
    const buf = encodeJournalEntry([
      ['MESSAGE', 'route 10.0.0.0/8 failed\nsecond line'],
      ['PRIORITY', '3'],
    ]);
    expect(buf.subarray(0, 8).toString()).toBe('MESSAGE\n');
    expect(buf.readBigUInt64LE(8)).toBe(BigInt('route 10.0.0.0/8 failed\nsecond line'.length));
    expect(parseJournalEntry(buf)).toEqual({ MESSAGE: 'route 10.0.0.0/8 failed\nsecond line', PRIORITY: '3' });
  });

  it('names structured fields for journalctl', () => {
    expect(journalFieldName('prefix')).toBe('KRT_PREFIX');
    expect(journalFieldName('table')).toBe('KRT_TABLE');
    expect(journalFieldName('protocol')).toBe('KRT_PROTOCOL');
    expect(journalFieldName('errno')).toBe('ERRNO');
    expect(journalFieldName('extAck')).toBe('KRT_EXT_ACK');
    expect(journalFieldName('routes-left')).toBe('KRT_ROUTES_LEFT');
  });

  it('sends entries with fields to the journal socket, and large ones as a memfd', async () => {
    const rx = receiver();
    try {
      const log = winston.createLogger({ level: 'debug', levels: { error: 0, warn: 1, info: 2, debug: 3 }, transports: [new JournalTransport(rx.path)] });
      log.warn('route rejected\nby the kernel', { prefix: '10.0.0.0/8', table: 254, protocol: 'kernel1', errno: 101 });
      const small = await rx.next();
      expect(small.fd).toBeUndefined();
      expect(parseJournalEntry(small.data)).toEqual({
        MESSAGE: 'route rejected\nby the kernel',
        PRIORITY: '4',
        SYSLOG_IDENTIFIER: 'krtsync',
        KRT_PREFIX: '10.0.0.0/8',
        KRT_TABLE: '254',
        KRT_PROTOCOL: 'kernel1',
        ERRNO: '101',
      });
      const huge = 'x'.repeat(4 << 20);
      log.info(huge);
      const big = await rx.next();
      expect(big.fd).toBeGreaterThanOrEqual(0);
      const content = readFileSync(`/proc/self/fd/${big.fd}`);
      closeFd(big.fd!);
      expect(parseJournalEntry(content).MESSAGE).toBe(huge);
      log.close();
    } finally {
      rx.sock.close();
    }
  });
});

describe('stderr lines', () => {
  it('prefixes the syslog priority and keeps an entry on one line', () => {
    expect(formatLine({ level: 'error', message: 'a\nb', prefix: '10.0.0.0/8', why: 'no route' })).toBe('<3>a\\nb prefix=10.0.0.0/8 why="no route"');
    expect(formatLine({ level: 'debug', message: 'x' })).toBe('<7>x');
  });

  it('is what createLogger writes when stderr is not the journal', () => {
    expect(stderrIsJournal({})).toBe(false);
    expect(stderrIsJournal({ JOURNAL_STREAM: '1:1' })).toBe(false);
    const log = createLogger({ level: 'info', output: 'stderr' });
    expect(log.transports[0]).toBeInstanceOf(winston.transports.Stream);
    const lines: string[] = [];
    const sink = new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) });
    const before = Date.now();
    winston.createLogger({ transports: [stderrTransport(true, sink)] }).info('synced', { routes: 3 });
    // Outside journald nobody else stamps the line: a UTC time with milliseconds follows the priority.
    const m = /^<6>(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) synced routes=3\n$/.exec(lines.join(''));
    expect(m).not.toBeNull();
    expect(Date.parse(m![1]!)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(Date.parse(m![1]!)).toBeLessThanOrEqual(Date.now());
    // Into the journal stream (--log-output stderr under systemd): journald's own timestamp is enough.
    lines.length = 0;
    winston.createLogger({ transports: [stderrTransport(false, sink)] }).info('synced');
    expect(lines.join('')).toBe('<6>synced\n');
    expect(formatLine({ level: 'warn', message: 'x' }, new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe('<4>2026-01-02T03:04:05.006Z x');
  });

  it('says whether debug entries go anywhere, through withFields too (a debug line that walks every net is skipped)', () => {
    const info = createLogger({ level: 'info', output: 'stderr' });
    expect(debugOn(info)).toBe(false);
    expect(debugOn(withFields(info, { protocol: 'kernel1' }))).toBe(false);
    info.level = 'debug'; // a reload that turns debug on
    expect(debugOn(withFields(info, { protocol: 'kernel1' }))).toBe(true);
    expect(debugOn(nullLogger)).toBe(false);
    const plain = { error: (): void => undefined, warn: (): void => undefined, info: (): void => undefined, debug: (): void => undefined };
    expect(debugOn(plain)).toBe(true); // a logger that cannot say: assume it logs
  });
});
