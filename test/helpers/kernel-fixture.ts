/**
 * Fixtures for kernel protocol tests: a table with a static-like source, a
 * kernel protocol inside a throwaway namespace, iproute2 views of the
 * namespace's routes, and a route monitor (`ip monitor route`) that counts
 * what changed. Everything lives in the namespace created by createNetns().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { parseRouteLine } from '../../src/config/route-syntax';
import { RouteSource } from '../../src/route';
import { parsePrefix } from '../../src/lib/addr';
import { NextHopTracker, NO_DAMPING, Table } from '../../src/table';
import { KernelProtocol, type KernelProtocolOptions } from '../../src/proto/kernel/kernel-protocol';
import type { KernelSync } from '../../src/proto/kernel/kernel-sync';
import type { Logger, LogFields } from '../../src/proto/logger';
import { dropNhid, type IpRoute, type Netns } from './netns';

export const PROTO = 144;

export function newTable(name = 'master'): Table {
  return new Table({ name });
}

/**
 * A table whose next-hop tracker knows one link per connected prefix (veth0 index 2, veth1 index 3, ...),
 * each up with carrier; carrier() takes a link's carrier away or gives it back.
 */
export function trackedTable(connected: readonly string[], name = 'master4') {
  const tracker = new NextHopTracker({ damping: NO_DAMPING });
  const links = connected.map((_, i) => ({ index: i + 2, name: `veth${i}`, up: true, carrier: true }));
  tracker.resync(
    links,
    connected.map((p, i) => ({ prefix: parsePrefix(p), ifindex: i + 2 })),
  );
  tracker.flush();
  const carrier = (index: number, on: boolean): void => {
    tracker.setLink({ ...links.find((l) => l.index === index)!, carrier: on });
    tracker.flush();
  };
  return { tracker, links, table: new Table({ name, nexthops: tracker }), carrier };
}

/** Announces route lines (`10.0.0.0/24 via 192.0.2.2`) from `src`. */
export function announce(table: Table, src: RouteSource, lines: readonly string[]): void {
  for (const line of lines) {
    const { net, attrs } = parseRouteLine(line);
    table.announce(net, src, attrs);
  }
}

export function withdraw(table: Table, src: RouteSource, lines: readonly string[]): void {
  for (const line of lines) table.withdraw(parseRouteLine(line).net, src);
}

export interface LogEntry {
  level: string;
  msg: string;
  fields?: LogFields;
}

export function memoryLogger(out: LogEntry[] = []): Logger & { entries: LogEntry[] } {
  const put = (level: string) => (msg: string, fields?: LogFields) => void out.push(fields ? { level, msg, fields } : { level, msg });
  return { entries: out, error: put('error'), warn: put('warn'), info: put('info'), debug: put('debug') };
}

export function kernelProtocol(ns: Netns, table: Table, opts: Partial<KernelProtocolOptions> = {}): KernelProtocol {
  return new KernelProtocol({ name: 'kernel1', table, netns: ns.path, family: 4, scanIntervalMs: 0, ...opts });
}

/** Our routes (protocol 144) as iproute2 sees them. */
export function ourRoutes(ns: Netns, family: '-4' | '-6' = '-4', table = 'main'): IpRoute[] {
  return ns.ipJson<IpRoute[]>(family, 'route', 'show', 'table', table, 'proto', String(PROTO));
}

export function allRoutes(ns: Netns, family: '-4' | '-6' = '-4', table = 'all'): IpRoute[] {
  return ns.ipJson<IpRoute[]>(family, 'route', 'show', 'table', table);
}

/** Our routes as `ip route` prints them, sorted (lines that read well in a failure), without `nhid N` (dropNhid). */
export function routeLines(ns: Netns, family: '-4' | '-6' = '-4', table = 'main', proto = String(PROTO)): string[] {
  return ns
    .ip(family, 'route', 'show', 'table', table, 'proto', proto)
    .split('\n')
    .map((l) => dropNhid(l.trim()))
    .filter(Boolean)
    .sort();
}

export async function until(cond: () => boolean, timeoutMs = 5000, stepMs = 20): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return Date.now() - t0;
}

/**
 * Polls without yielding: the daemon under test shares this thread, so it cannot read its sockets or act
 * meanwhile. For what the kernel does on its own (a link's flush), seen before the daemon can react.
 */
export function untilBlocking(cond: () => boolean, timeoutMs: number): void {
  const t0 = Date.now();
  while (!cond()) if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
}

/**
 * Whether `sync` has a scan asked for that has not begun: a link or address change's (its timer runs 100 ms),
 * a conflict's, one waiting for the sync to be free.
 */
export function scanAsked(sync: KernelSync): boolean {
  return sync.scanPending;
}

/**
 * Waits until `sync` has done what it was asked: no scan asked for or running, and nothing of ours out.
 * settled() alone says only the latter: a scan a link change asked for (its timer late on a loaded machine)
 * holds the nets planned meanwhile until its pruning, and its wait for the sender resolves settled() with
 * them still queued; and before its timer fires, settled() says nothing of it. The caller first waits for a
 * sign that the sync has read the change (a route it put back, a verdict in its status): what is still in
 * the socket has asked for nothing yet.
 */
export async function quiesced(sync: KernelSync, timeoutMs = 10000): Promise<void> {
  const t0 = Date.now();
  const calm = (): boolean => sync.state === 'idle' && !scanAsked(sync);
  for (;;) {
    await until(calm, Math.max(timeoutMs - (Date.now() - t0), 0));
    await sync.settled();
    if (calm()) return;
  }
}

/**
 * Makes an `ip monitor` whose output `seen` searches show a foreign marker route `dst`/32 through `dev`, then
 * deletes it: whatever the kernel notified before has been read by then. Each try changes the marker (its mtu):
 * replacing a route with an identical one sends no notification, so a first add made before the monitor had
 * joined its groups would never be seen again (bgp.test.ts's setup timed out so, under load).
 */
export async function showMarker(ns: Netns, dst: string, dev: string, seen: () => boolean, timeoutMs = 30000): Promise<void> {
  let tries = 0;
  await until(
    () => {
      if (seen()) return true;
      ns.ip('route', 'replace', `${dst}/32`, 'dev', dev, 'proto', 'static', 'mtu', String(1300 + (tries++ % 2) * 100));
      return false;
    },
    timeoutMs,
    50,
  );
  ns.ip('route', 'del', `${dst}/32`, 'dev', dev, 'proto', 'static');
}

/** The table markers go in: no kernel protocol under test syncs it. */
const MARKER_TABLE = '4242';
/** Marker lines (a route in MARKER_TABLE, a nexthop id 4242000-4242999) are the watchers' own, not the test's. */
const MARKER_LINE = new RegExp(`\\btable ${MARKER_TABLE}\\b|^(Deleted )?id 4242\\d{3}\\b`);

/**
 * `ip monitor route` (or `nexthop`, or both) inside the namespace; lines() is what it printed so far, without
 * the watcher's own markers. ip monitor says nothing when it has joined its groups, and prints what the
 * kernel sent a moment after: ready() and stop() add a marker (a route in a table nobody syncs, or a nexthop
 * object of an id out of every protocol's range), a new one each try, until the monitor prints one of them.
 * The kernel queues the notifications of every group on the monitor's one socket in order, so once stop()
 * has seen its marker, every change made before has been printed too. No sleep stands in for either.
 */
export class RouteWatcher {
  /** Watchers not stopped yet: a test that fails before stop() leaves them to stopAll() (else jest cannot exit). */
  private static readonly live = new Set<RouteWatcher>();
  /** Markers made so far, by every watcher: each is new (a watcher beside another must not take its marker for its own). */
  private static marks = 0;
  private readonly proc: ChildProcess;
  private buf = '';
  private readonly started: Promise<void>;
  private readonly kind: 'route' | 'nexthop';

  static stopAll(): void {
    for (const w of RouteWatcher.live) w.proc.kill();
    RouteWatcher.live.clear();
  }

  constructor(
    private readonly ns: Netns,
    objects: readonly string[] = ['route'],
  ) {
    if (objects.includes('route')) this.kind = 'route';
    else if (objects.includes('nexthop')) this.kind = 'nexthop';
    else throw new Error(`RouteWatcher: no marker for ${objects.join(' ')}`);
    this.proc = spawn('ip', ['netns', 'exec', ns.name, 'ip', 'monitor', ...objects], { stdio: ['ignore', 'pipe', 'ignore'] });
    RouteWatcher.live.add(this);
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => (this.buf += d));
    this.started = this.mark();
    this.started.catch(() => undefined); // reported by ready()
  }

  ready(): Promise<void> {
    return this.started;
  }

  lines(): string[] {
    return this.buf.split('\n').filter((l) => l !== '' && !MARKER_LINE.test(l));
  }

  async stop(): Promise<string[]> {
    await this.started.catch(() => undefined);
    await this.mark();
    this.proc.kill();
    RouteWatcher.live.delete(this);
    return this.lines();
  }

  /** Adds a new marker each try until the monitor prints one of them, then removes them all. */
  private async mark(timeoutMs = 30000): Promise<void> {
    const made: string[] = [];
    const printed = (): boolean => this.buf.split('\n').some((l) => !l.startsWith('Deleted') && made.some((m) => l.startsWith(m)));
    try {
      await until(
        () => {
          if (printed()) return true;
          const k = RouteWatcher.marks++ % 1000;
          if (this.kind === 'route') {
            const dst = `198.51.100.${k % 250}`;
            this.ns.ip('route', 'add', `${dst}/32`, 'dev', 'lo', 'table', MARKER_TABLE, 'proto', 'static');
            made.push(`${dst} `);
          } else {
            this.ns.ip('nexthop', 'add', 'id', String(4242000 + k), 'blackhole');
            made.push(`id ${4242000 + k} `);
          }
          return false;
        },
        timeoutMs,
        20,
      );
    } finally {
      for (const m of made) {
        if (this.kind === 'route') this.ns.ip('route', 'del', `${m.trim()}/32`, 'table', MARKER_TABLE);
        else this.ns.ip('nexthop', 'del', ...m.trim().split(' '));
      }
    }
  }
}

/** `ip -force -batch` in the namespace as a separate process (not blocking our event loop, unlike Netns.ipBatch). */
export function runBatch(ns: Netns, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const proc = spawn('ip', ['netns', 'exec', ns.name, 'ip', '-force', '-batch', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
    proc.on('error', reject);
    proc.on('exit', () => resolve());
    proc.stdin.end(lines.join('\n') + '\n');
  });
}

export { RouteSource };
