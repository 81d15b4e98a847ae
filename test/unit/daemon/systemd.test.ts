import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SystemdNotifier } from '../../../src/daemon/systemd';
import { UnixDatagramSocket } from '../../../src/netlink/socket';

function notifySocket(): { path: string; sock: UnixDatagramSocket; received: string[]; wait: (n: number) => Promise<void> } {
  const path = join(mkdtempSync(join(tmpdir(), 'krt-notify-')), 'notify');
  const sock = UnixDatagramSocket.open(path);
  const received: string[] = [];
  let wake: (() => void) | undefined;
  sock.start((dgs) => {
    for (const d of dgs) received.push(d.data.toString());
    wake?.();
  });
  const wait = async (n: number): Promise<void> => {
    while (received.length < n) await new Promise<void>((r) => (wake = r));
  };
  return { path, sock, received, wait };
}

describe('sd_notify', () => {
  it('sends READY, STATUS, RELOADING and STOPPING datagrams to $NOTIFY_SOCKET', async () => {
    const s = notifySocket();
    const n = new SystemdNotifier({ NOTIFY_SOCKET: s.path });
    try {
      n.ready('3 routes installed');
      n.status('syncing 10 of 20');
      n.reloading();
      n.stopping();
      await s.wait(4);
      expect(s.received[0]).toBe('READY=1\nSTATUS=3 routes installed');
      expect(s.received[1]).toBe('STATUS=syncing 10 of 20');
      expect(s.received[2]).toMatch(/^RELOADING=1\nMONOTONIC_USEC=\d+$/);
      expect(s.received[3]).toBe('STOPPING=1');
    } finally {
      n.close();
      s.sock.close();
    }
  });

  it('pings the watchdog at half of WATCHDOG_USEC, only for our own pid', async () => {
    expect(new SystemdNotifier({ WATCHDOG_USEC: '4000000', WATCHDOG_PID: '1' }).watchdogIntervalMs()).toBeUndefined();
    expect(new SystemdNotifier({ WATCHDOG_USEC: '4000000' }).watchdogIntervalMs()).toBe(4000);
    const s = notifySocket();
    const n = new SystemdNotifier({ NOTIFY_SOCKET: s.path, WATCHDOG_USEC: '40000', WATCHDOG_PID: String(process.pid) });
    try {
      n.startWatchdog();
      await s.wait(3);
      expect(s.received.slice(0, 3)).toEqual(['WATCHDOG=1', 'WATCHDOG=1', 'WATCHDOG=1']);
    } finally {
      n.close();
      s.sock.close();
    }
  });

  it('does nothing outside systemd, and reports a dead socket once', () => {
    expect(new SystemdNotifier({}).notify('READY=1')).toBe(false);
    const errors: string[] = [];
    const n = new SystemdNotifier({ NOTIFY_SOCKET: '/nonexistent/notify' }, (m) => errors.push(m));
    expect(n.notify('READY=1')).toBe(false);
    expect(n.notify('READY=1')).toBe(false);
    expect(errors).toHaveLength(1);
    n.close();
  });
});
