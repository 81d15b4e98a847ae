/**
 * The daemon's event counts, kept from its start as plain numbers: the kernel
 * syncs' sinks (kernel-metrics.ts), control requests, reloads, the time to
 * READY. Metrics of the other kind (levels) are read from the daemon at
 * scrape time and need nothing kept.
 *
 * Why a module apart from the registry (daemon-metrics.ts): counting must
 * start with the daemon, so that a reload that turns `metrics:` on shows
 * everything since the start, but prom-client (about 90 modules, with
 * @opentelemetry/api) should load only when a listener is configured. The
 * registry, when it is built, reads these counts at every scrape.
 */
import type { Family } from '../lib/addr';
import { KernelSyncCounters } from './kernel-metrics';

export const familyLabel = (f: Family): string => `ipv${f}`;

export class DaemonCounts {
  /** The kernel syncs' sinks, by kernel protocol (one per family). */
  private readonly sinks = new Map<string, KernelSyncCounters[]>();
  /** Control requests by `${command} ${result}`. */
  readonly requests = new Map<string, { command: string; result: string; n: number }>();
  readonly reloads = { ok: 0, error: 0 };
  /** Time from the start to READY=1; absent before. */
  startupSeconds: number | undefined;

  /** The sink for one kernel sync; its series go when the protocol does (forgetKernel). */
  kernelSink(protocol: string, kernelTable: number, family: Family): KernelSyncCounters {
    const sink = new KernelSyncCounters({ protocol, kernel_table: String(kernelTable), family: familyLabel(family) });
    const list = this.sinks.get(protocol) ?? [];
    list.push(sink);
    this.sinks.set(protocol, list);
    return sink;
  }

  /** A kernel protocol was removed or restarted: its counts stop being reported (a restart starts new ones). */
  forgetKernel(protocol: string): void {
    this.sinks.delete(protocol);
  }

  *kernelSinks(): Iterable<KernelSyncCounters> {
    for (const list of this.sinks.values()) yield* list;
  }

  controlRequest(command: string, result: string): void {
    const key = `${command} ${result}`;
    const c = this.requests.get(key);
    if (c === undefined) this.requests.set(key, { command, result, n: 1 });
    else c.n++;
  }

  reloaded(ok: boolean): void {
    this.reloads[ok ? 'ok' : 'error']++;
  }

  ready(startupSeconds: number): void {
    this.startupSeconds = startupSeconds;
  }
}
