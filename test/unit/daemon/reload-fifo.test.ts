/**
 * A FIFO as a routes file, through the daemon's reload (daemon.ts, validate.ts;
 * docs/config.md): one writer a reload, since the validation's read is what the
 * protocol announces; and a shutdown during a reload that waits for a writer
 * ends that reload instead of waiting. The daemon runs with a static protocol
 * only (no kernel), its control socket in a temporary directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon } from '../../../src/daemon/daemon';
import { SystemdNotifier } from '../../../src/daemon/systemd';
import { validateConfig } from '../../../src/daemon/validate';
import { parsePrefix } from '../../../src/lib/addr';
import { nullLogger } from '../../../src/proto/logger';

let dir: string;
let fifo: string;
let daemon: Daemon | undefined;
const writers: ChildProcess[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), `krt-fifo-${process.pid}-`));
  fifo = join(dir, 'routes.fifo');
  execFileSync('mkfifo', [fifo]);
  writeFileSync(join(dir, 'krtsync.yaml'), `control: { socket: ${join(dir, 'krtsync.sock')} }\nprotocols:\n  - { name: s, type: static, routes_file: ${fifo} }\n`);
});
afterEach(async () => {
  await daemon?.stop('test over');
  daemon = undefined;
  for (const w of writers.splice(0)) w.kill();
  rmSync(dir, { recursive: true, force: true });
});

/** One writer: writes `lines` into the FIFO and closes it (the reader's end of file). */
function writeOnce(lines: readonly string[]): ChildProcess {
  const w = spawn('sh', ['-c', `exec cat > ${fifo}`], { stdio: ['pipe', 'ignore', 'ignore'] });
  writers.push(w);
  w.stdin!.end(lines.map((l) => `${l}\n`).join(''));
  return w;
}

async function started(lines: readonly string[]): Promise<Daemon> {
  const file = join(dir, 'krtsync.yaml');
  const d = (daemon = new Daemon({ configFile: file, log: nullLogger, notifier: new SystemdNotifier({}, () => undefined) }));
  writeOnce(lines);
  await d.start(await validateConfig(file, { routesFiles: false }));
  return d;
}

const best = (d: Daemon, net: string): string | undefined => d.tables.get('master4')!.bestRoute(parsePrefix(net))?.attrs.toString();

describe('a FIFO routes file through a reload', () => {
  it('is read once a reload (one writer): validated whole, then announced from that read', async () => {
    const d = await started(['10.1.0.0/16 via 192.0.2.2', '10.2.0.0/16 via 192.0.2.2']);
    expect(best(d, '10.1.0.0/16')).toBe('via 192.0.2.2');
    writeOnce(['10.1.0.0/16 via 192.0.2.3', '10.3.0.0/16 via 192.0.2.2']);
    expect(await d.reload()).toEqual(['protocol s reloaded (2 routes, 1 withdrawn)']);
    expect(best(d, '10.1.0.0/16')).toBe('via 192.0.2.3');
    expect(best(d, '10.2.0.0/16')).toBeUndefined();
    expect(best(d, '10.3.0.0/16')).toBe('via 192.0.2.2');
  });

  it('a bad line in what the writer sent fails the reload and changes nothing', async () => {
    const d = await started(['10.1.0.0/16 via 192.0.2.2']);
    writeOnce(['10.1.0.0/16 via 192.0.2.3', '10.4.0.0/16 via nowhere']);
    await expect(d.reload()).rejects.toThrow(/routes\.fifo:2:\d+: .*nowhere/);
    expect(best(d, '10.1.0.0/16')).toBe('via 192.0.2.2');
  });

  it('a shutdown during a reload that waits for a writer ends the reload, and does not wait for the writer', async () => {
    const d = await started(['10.1.0.0/16 via 192.0.2.2']);
    const reload = d.reload(); // no writer comes
    await new Promise((r) => setImmediate(r));
    await d.stop('SIGTERM');
    daemon = undefined;
    await expect(reload).rejects.toThrow(/KRT_ERR_STOPPED|stopped while reading routes file .*routes\.fifo: krtsync is shutting down/);
  });
});
