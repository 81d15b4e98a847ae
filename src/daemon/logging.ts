/**
 * Logging: winston, with two outputs chosen at start.
 *
 * - Under journald (stderr is the journal stream: $JOURNAL_STREAM names its
 *   device and inode), entries go to the journal's native socket as datagrams
 *   with structured fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, and the
 *   entry's fields as KRT_PREFIX=, KRT_TABLE=, KRT_PROTOCOL=, ERRNO= … so
 *   `journalctl KRT_PREFIX=10.0.0.0/8` finds them. A value with a newline uses
 *   the protocol's binary form; an entry too large for a datagram goes as a
 *   sealed memfd, as sd_journal_send does.
 * - Otherwise one line per entry on stderr, with a `<N>` syslog priority
 *   prefix (which systemd and most collectors understand), a UTC timestamp
 *   with milliseconds (RFC 3339) unless stderr is the journal stream (journald
 *   stamps entries itself), and the fields as key=value; newlines inside a
 *   message are escaped so an entry stays one line.
 *
 * Protocols log through the small Logger interface of src/proto/logger, not
 * winston, so the table and protocols stay free of the logging library.
 */
import { fstatSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import winston from 'winston';
import TransportStream from 'winston-transport';
import { UnixDatagramSocket } from '../netlink/socket';
import type { Logger } from '../proto/logger';

export type { Logger };

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
const PRIORITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };
/** Field names with a meaning of their own in the journal; the rest get the KRT_ prefix. */
const JOURNAL_NAMES: Record<string, string> = { errno: 'ERRNO', prefix: 'KRT_PREFIX', table: 'KRT_TABLE', protocol: 'KRT_PROTOCOL' };

/** True when stderr is connected to the journal ($JOURNAL_STREAM is "dev:inode" of that stream). */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const js = env.JOURNAL_STREAM;
  if (!js) return false;
  const [dev, ino] = js.split(':');
  try {
    const st = fstatSync(2, { bigint: true });
    return String(st.dev) === dev && String(st.ino) === ino;
  } catch {
    return false;
  }
}

/** Journal field name for a log field: upper case, [A-Z0-9_], not starting with '_' or a digit. */
export function journalFieldName(key: string): string {
  const known = JOURNAL_NAMES[key];
  if (known) return known;
  const n = key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase().replace(/[^A-Z0-9_]/g, '_');
  return `KRT_${n}`.slice(0, 64);
}

/**
 * One journal entry in the native protocol: "NAME=value\n" per field, or for a
 * value containing a newline "NAME\n", its length as 64-bit little endian,
 * the value, "\n".
 */
export function encodeJournalEntry(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    if (!value.includes('\n')) {
      parts.push(Buffer.from(`${name}=${value}\n`, 'utf8'));
      continue;
    }
    const v = Buffer.from(value, 'utf8');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(v.length));
    parts.push(Buffer.from(`${name}\n`, 'utf8'), len, v, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

function entryFields(info: winston.Logform.TransformableInfo): Array<[string, string]> {
  const { level, message, ...rest } = info as winston.Logform.TransformableInfo & Record<string, unknown>;
  const fields: Array<[string, string]> = [
    ['MESSAGE', String(message)],
    ['PRIORITY', String(PRIORITY[level] ?? 6)],
    ['SYSLOG_IDENTIFIER', 'krtsync'],
  ];
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined || typeof k === 'symbol') continue;
    fields.push([journalFieldName(k), String(v)]);
  }
  return fields;
}

/** Sends entries to the journal's native socket; falls back to stderr lines if the journal refuses. */
export class JournalTransport extends TransportStream {
  private readonly sock = UnixDatagramSocket.open();

  constructor(
    private readonly path = JOURNAL_SOCKET,
    opts: TransportStream.TransportStreamOptions = {},
  ) {
    super(opts);
  }

  override log(info: winston.Logform.TransformableInfo, next: () => void): void {
    const data = encodeJournalEntry(entryFields(info));
    let rc = this.sock.send(this.path, data);
    // EMSGSIZE or ENOBUFS: too large for one datagram, send it as a memfd.
    if (rc === -osConstants.errno.EMSGSIZE || rc === -osConstants.errno.ENOBUFS) rc = this.sock.sendMemfd(this.path, data);
    if (rc < 0) process.stderr.write(formatLine(info) + '\n');
    next();
  }

  override close(): void {
    this.sock.close();
  }
}

function formatValue(v: unknown): string {
  const s = String(v);
  return /[\s"=]/.test(s) || s === '' ? JSON.stringify(s) : s;
}

/** `<6>2026-01-02T03:04:05.678Z message key=value …` on one line (`time` undefined: no timestamp). */
export function formatLine(info: winston.Logform.TransformableInfo, time?: Date): string {
  const { level, message, ...rest } = info as winston.Logform.TransformableInfo & Record<string, unknown>;
  const stamp = time ? `${time.toISOString()} ` : '';
  let line = `<${PRIORITY[level] ?? 6}>${stamp}${String(message).replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`;
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) line += ` ${k}=${formatValue(v)}`;
  return line;
}

export interface LoggerOptions {
  level: 'error' | 'warn' | 'info' | 'debug';
  /** 'auto' picks the journal when stderr is the journal stream. */
  output?: 'auto' | 'journal' | 'stderr';
  journalPath?: string;
}

/** Lines on stderr; `stamped`: with a timestamp (nobody else adds one). */
export function stderrTransport(stamped: boolean, stream: NodeJS.WritableStream = process.stderr): winston.transport {
  return new winston.transports.Stream({ stream, format: winston.format.printf((info) => formatLine(info, stamped ? new Date() : undefined)) });
}

/** The daemon's logger: winston with the journal or stderr transport. */
export function createLogger(opts: LoggerOptions): winston.Logger & Logger {
  const useJournal = opts.output === 'journal' || ((opts.output ?? 'auto') === 'auto' && stderrIsJournal());
  const transport = useJournal
    ? new JournalTransport(opts.journalPath)
    : stderrTransport(!stderrIsJournal());
  return winston.createLogger({ level: opts.level, levels: { error: 0, warn: 1, info: 2, debug: 3 }, transports: [transport] }) as winston.Logger & Logger;
}
