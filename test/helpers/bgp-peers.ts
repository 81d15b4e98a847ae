/**
 * Real BGP peers for the tests: BIRD 2 speakers and an ExaBGP that feeds
 * `krtsync feed --format exabgp`, each run inside a namespace the test
 * made, installed by the suite itself (scripts/debian-package.js: their
 * own services never start on the host). Every process is started here and
 * killed by stop(); nothing is left running.
 *
 * A BIRD speaker announces static blackhole routes over one iBGP session
 * (passive: ExaBGP connects), with `next hop self`, and an export filter the
 * test writes (bgp_path.prepend, bgp_local_pref, bgp_med per prefix range).
 * It installs nothing in its namespace's kernel.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, until } from './daemon-fixture';
import type { Netns } from './netns';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureDebianPackage } = require('../../scripts/debian-package') as { ensureDebianPackage: (pkg: string, opts: { probe: string; services?: string[]; log?: (line: string) => void }) => boolean };

/** Installs BIRD 2 and ExaBGP if missing (apt-get takes its own lock). */
export function ensureBgpPackages(): void {
  const log = (line: string): void => void process.stderr.write(`[bgp-peers] ${line}\n`);
  ensureDebianPackage('bird2', { probe: '/usr/sbin/bird', services: ['bird'], log });
  ensureDebianPackage('exabgp', { probe: '/usr/sbin/exabgp', services: ['exabgp'], log });
}

class Proc {
  log = '';
  private readonly exited: Promise<void>;

  constructor(
    readonly what: string,
    readonly proc: ChildProcess,
  ) {
    proc.stdout?.on('data', (c) => (this.log += String(c)));
    proc.stderr?.on('data', (c) => (this.log += String(c)));
    this.exited = new Promise((r) => proc.on('exit', () => r()));
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

export interface BirdSpeaker {
  readonly ns: Netns;
  readonly address: string;
  readonly routerId: string;
  /** `birdc` in the speaker's namespace. */
  birdc(...args: string[]): string;
  stop(): Promise<void>;
  readonly log: () => string;
}

export interface BirdOptions {
  ns: Netns;
  dir: string;
  name: string;
  address: string;
  routerId: string;
  as: number;
  neighbor: string;
  neighborAs: number;
  /** Prefixes to announce (each a static blackhole in BIRD). */
  routes: readonly string[];
  /** The body of BIRD's export filter (before `accept;`). */
  exportFilter: string;
}

export async function startBird(o: BirdOptions): Promise<BirdSpeaker> {
  const conf = join(o.dir, `${o.name}.conf`);
  const sock = join(o.dir, `${o.name}.ctl`);
  writeFileSync(
    conf,
    `router id ${o.routerId};
protocol device {}
protocol static s4 {
  ipv4;
${o.routes.map((r) => `  route ${r} blackhole;`).join('\n')}
}
filter to_exabgp {
${o.exportFilter}
  accept;
}
protocol bgp exa {
  local ${o.address} as ${o.as};
  neighbor ${o.neighbor} as ${o.neighborAs};
  passive on;
  ipv4 { import none; export filter to_exabgp; next hop self; };
}
`,
  );
  const p = new Proc(`bird ${o.name}`, spawn('ip', ['netns', 'exec', o.ns.name, 'bird', '-f', '-c', conf, '-s', sock, '-P', join(o.dir, `${o.name}.pid`)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const birdc = (...args: string[]): string => {
    const r = spawnSync('ip', ['netns', 'exec', o.ns.name, 'birdc', '-s', sock, ...args], { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`;
  };
  await until(`BIRD ${o.name} to answer (its log: ${p.log})`, () => p.running && /BIRD .* ready/.test(birdc('show', 'status')), 15000);
  await until(`BIRD ${o.name} to load its routes`, () => new RegExp(`${o.routes.length} imported`).test(birdc('show', 'protocols', 'all', 's4')), 15000);
  return { ns: o.ns, address: o.address, routerId: o.routerId, birdc, stop: () => p.stop(), log: () => p.log };
}

export interface ExabgpNeighbor {
  address: string;
  localAddress: string;
  routerId: string;
  localAs: number;
  peerAs: number;
}

export interface Exabgp {
  stop(): Promise<void>;
  readonly log: () => string;
}

/** ExaBGP in `ns`, connecting to `neighbors`, its API process `krtsync feed --format exabgp` on `socket`. */
export function startExabgp(ns: Netns, dir: string, socket: string, neighbors: readonly ExabgpNeighbor[]): Exabgp {
  const conf = join(dir, 'exabgp.conf');
  writeFileSync(
    conf,
    `process krtsync {
  run ${process.execPath} ${BIN} feed --format exabgp --client exabgp --socket ${socket};
  encoder json;
}
${neighbors
  .map(
    (n) => `neighbor ${n.address} {
  router-id ${n.routerId};
  local-address ${n.localAddress};
  local-as ${n.localAs};
  peer-as ${n.peerAs};
  family { ipv4 unicast; }
  api { processes [ krtsync ]; neighbor-changes; receive { parsed; update; open; } }
}`,
  )
  .join('\n')}
`,
  );
  const env = {
    ...process.env,
    // As root, in the foreground, no named pipes for exabgpcli, no listening socket (it connects out).
    exabgp_daemon_user: 'root',
    exabgp_daemon_drop: 'false',
    exabgp_daemon_daemonize: 'false',
    exabgp_api_cli: 'false',
    exabgp_log_destination: 'stdout',
    exabgp_tcp_bind: '',
  };
  const p = new Proc('exabgp', spawn('ip', ['netns', 'exec', ns.name, 'exabgp', conf], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  return { stop: () => p.stop(), log: () => p.log };
}
