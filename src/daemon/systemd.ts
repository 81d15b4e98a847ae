/**
 * sd_notify(3) without libsystemd: datagrams to $NOTIFY_SOCKET through the
 * native AF_UNIX sender. READY=1 after the first sync, STATUS= with counts,
 * WATCHDOG=1 from a timer at half of $WATCHDOG_USEC, STOPPING=1 on shutdown,
 * RELOADING=1 / READY=1 around a reload. Without $NOTIFY_SOCKET (not under
 * systemd) every call is a no-op. A failed send is reported once and never
 * stops the daemon.
 */
import { UnixDatagramSocket } from '../netlink/socket';

export class SystemdNotifier {
  private sock: UnixDatagramSocket | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private warned = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv = process.env,
    private readonly onError: (message: string) => void = () => {},
  ) {}

  get enabled(): boolean {
    return !!this.env.NOTIFY_SOCKET;
  }

  /** Sends "KEY=value" lines; returns false when not under systemd or the send failed. */
  notify(state: string): boolean {
    const path = this.env.NOTIFY_SOCKET;
    if (!path) return false;
    this.sock ??= UnixDatagramSocket.open();
    const rc = this.sock.send(path, Buffer.from(state, 'utf8'));
    if (rc < 0 && !this.warned) {
      this.warned = true;
      this.onError(`sd_notify to ${path} failed (errno ${-rc}); further failures are not logged`);
    }
    return rc >= 0;
  }

  ready(status?: string): void {
    this.notify(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${status}`);
  }

  status(status: string): void {
    this.notify(`STATUS=${status}`);
  }

  reloading(): void {
    this.notify(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  stopping(status?: string): void {
    this.notify(status === undefined ? 'STOPPING=1' : `STOPPING=1\nSTATUS=${status}`);
  }

  /** Watchdog interval in ms from $WATCHDOG_USEC (when $WATCHDOG_PID, if set, is us), else undefined. */
  watchdogIntervalMs(): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    if (this.env.WATCHDOG_PID && Number(this.env.WATCHDOG_PID) !== process.pid) return undefined;
    return usec / 1000;
  }

  /** Pings WATCHDOG=1 at half the interval systemd asked for; the timer does not keep the process alive. */
  startWatchdog(): void {
    const ms = this.watchdogIntervalMs();
    if (ms === undefined || this.watchdog) return;
    this.notify('WATCHDOG=1');
    this.watchdog = setInterval(() => this.notify('WATCHDOG=1'), Math.max(1, Math.floor(ms / 2)));
    this.watchdog.unref();
  }

  close(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.sock?.close();
    this.sock = undefined;
  }
}
