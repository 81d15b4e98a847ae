import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InstanceLock, InstanceLockError, lockFileName, netnsInode, type LockKey } from '../../../src/daemon/instance-lock';

const key: LockKey = { kernelTable: 254, protocol: 144, family: 4 };
const holder = { pid: process.pid, config: '/etc/krtsync/a.yaml', protocol: 'kernel1', socket: '/run/krtsync/a.sock', since: '2026-01-01T00:00:00.000Z' };

describe('instance lock', () => {
  let dir: string;
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'krt-lock-')), 'run'); // created by the lock itself
  });

  it('refuses a second holder, naming the first; released, it can be taken again and leaves no file', () => {
    const a = InstanceLock.acquire(dir, key, holder);
    expect(JSON.parse(readFileSync(a.path, 'utf8'))).toEqual(holder);
    expect(a.path).toBe(join(dir, lockFileName(netnsInode(), key)));
    let err: unknown;
    try {
      InstanceLock.acquire(dir, key, { ...holder, config: '/etc/krtsync/b.yaml', socket: '/tmp/b.sock' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InstanceLockError);
    expect((err as InstanceLockError).code).toBe('KRT_ERR_ALREADY_RUNNING');
    expect((err as Error).message).toMatch(
      new RegExp(`^kernel table 254, protocol number 144, IPv4 in network namespace \\d+ is already managed by krtsync pid ${process.pid} \\(protocol kernel1, config /etc/krtsync/a.yaml, control socket /run/krtsync/a.sock, since 2026-01-01T00:00:00.000Z\\); this krtsync changed nothing and exits$`),
    );
    expect(JSON.parse(readFileSync(a.path, 'utf8'))).toEqual(holder); // the refused one wrote nothing
    a.release();
    a.release();
    expect(readdirSync(dir)).toEqual([]);
    const b = InstanceLock.acquire(dir, key, holder);
    b.release();
  });

  it('keys on table, protocol number and family: other ones are independent', () => {
    const locks = [key, { ...key, family: 6 as const }, { ...key, kernelTable: 100 }, { ...key, protocol: 201 }].map((k) => InstanceLock.acquire(dir, k, holder));
    expect(new Set(locks.map((l) => l.path)).size).toBe(4);
    locks.forEach((l) => l.release());
  });

  it('is held by another process until it dies, and a killed holder leaves no stale lock', async () => {
    const src = join(__dirname, '..', '..', '..', 'dist', 'daemon', 'instance-lock.js'); // built by npm test
    const child = spawn(process.execPath, [
      '-e',
      `const { InstanceLock } = require(${JSON.stringify(src)}); InstanceLock.acquire(${JSON.stringify(dir)}, ${JSON.stringify(key)}, { ...${JSON.stringify(holder)}, pid: process.pid }); console.log('locked'); setInterval(() => {}, 1000);`,
    ]);
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c) => String(c).includes('locked') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    expect(() => InstanceLock.acquire(dir, key, holder)).toThrow(`krtsync pid ${child.pid} `);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(existsSync(join(dir, lockFileName(netnsInode(), key)))).toBe(true); // the file stays, the lock does not
    const held = InstanceLock.acquire(dir, { ...key, family: 6 }, holder);
    expect(InstanceLock.sweep(dir)).toBe(1); // the dead holder's file; not the one held
    expect(readdirSync(dir)).toEqual([lockFileName(netnsInode(), { ...key, family: 6 })]);
    const b = InstanceLock.acquire(dir, key, holder);
    b.release();
    held.release();
  });
});
