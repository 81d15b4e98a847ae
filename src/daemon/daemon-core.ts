/**
 * What the daemon's parts see of it: the running protocols and tables, the
 * work queue, status, and the lookups the control commands use. commands.ts
 * and metrics-wiring.ts take a DaemonCore, not the Daemon class, so the
 * imports point one way (daemon.ts -> them -> this) with no cycle.
 */
import type { parsePrefix } from '../lib/addr';
import type { KrtConfig, ProtocolConfig, StaticProtocolConfig } from '../config/config';
import type { ControlStats } from '../control/server';
import type { ApiProtocol } from '../proto/api/api';
import type { Logger } from '../proto/logger';
import type { StaticProtocol } from '../proto/static/static';
import type { StreamProtocol } from '../proto/stream/stream';
import type { Table } from '../table';
import type { KernelHandle } from './kernel-wiring';
import type { NextHopTracking } from './nexthop-wiring';
import type { SystemdNotifier } from './systemd';

export type RunningProtocol =
  | { type: 'static'; config: StaticProtocolConfig; proto: StaticProtocol }
  | { type: 'api'; config: Extract<ProtocolConfig, { type: 'api' }>; proto: ApiProtocol }
  | { type: 'stream'; config: Extract<ProtocolConfig, { type: 'stream' }>; proto: StreamProtocol }
  | { type: 'kernel'; config: Extract<ProtocolConfig, { type: 'kernel' }>; proto: KernelHandle };

export interface DaemonOptions {
  configFile: string;
  log: Logger & { level?: string };
  notifier: SystemdNotifier;
  /** Work in this network namespace (name or path) instead of the process's own. */
  netns?: string;
  /** Where the one-instance locks live; default /run/krtsync. */
  lockDir?: string;
}

/** The implicit api protocol that exists when the config has none, so `krtsync route add` always works. */
export const IMPLICIT_API = 'api';

/** The daemon as its control commands and metrics see it (implemented by Daemon). */
export interface DaemonCore {
  readonly config: KrtConfig | undefined;
  readonly tables: ReadonlyMap<string, Table>;
  readonly protocols: ReadonlyMap<string, RunningProtocol>;
  readonly startedAt: Date;
  readonly opts: DaemonOptions;
  readonly log: Logger;
  readonly ready: boolean;
  /** Next-hop tracking, when on. */
  readonly nexthops: NextHopTracking | undefined;
  /** Runs `work` after every management job queued before it (a reload and a command never interleave). */
  enqueue<T>(work: () => Promise<T>): Promise<T>;
  controlStats(): ControlStats;
  statusLine(): string;
  reload(): Promise<string[]>;
  apiProtocol(name: string | undefined): ApiProtocol;
  streamProtocol(name: string | undefined): StreamProtocol;
  parsePrefixArg(s: unknown): ReturnType<typeof parsePrefix> | undefined;
}
