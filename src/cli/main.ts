/**
 * The krtsync command line (yargs).
 *
 *   krtsync run --config FILE          the daemon, in the foreground (logs to the journal or stderr)
 *   krtsync check --config FILE        validate only: exit 0, or 2 with every error
 *   krtsync show status|protocols|routes [PREFIX]|kernel [PREFIX] [--nexthops] [--json]
 *   krtsync route add ROUTE… | del PREFIX | list  [--source NAME]
 *   krtsync reload
 *   krtsync feed [--format krtsync|exabgp] [--client NAME]   JSON lines on stdin (an ExaBGP process)
 *
 * Client commands talk to the daemon over --socket. Exit status: 0 done,
 * 1 the daemon refused or failed, 2 bad usage or bad config.
 */
import { createInterface } from 'node:readline';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DEFAULT_SOCKET } from '../config/defaults';
import { ControlClient } from '../control/client';
import { EXIT_CONFIG, EXIT_FAIL, exitStatusOf } from '../daemon/exit-status';
import type { RunArgs } from '../daemon/run';
import { duration, table } from './format';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../package.json') as { version: string };

/** Bad usage shares the config's status: the input is wrong (src/daemon/exit-status.ts). */
const EXIT_USAGE = EXIT_CONFIG;

function fail(message: string, code = EXIT_FAIL): never {
  process.stderr.write(`krtsync: ${message}\n`);
  process.exit(code);
}

async function withClient<T>(socket: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  let c: ControlClient;
  try {
    c = await ControlClient.connect(socket);
  } catch (e) {
    return fail((e as Error).message);
  }
  try {
    return await fn(c);
  } catch (e) {
    // The daemon's error code decides: a reload refused for a bad file is a bad config (2), as for check.
    return fail((e as Error).message, exitStatusOf(e));
  } finally {
    c.close();
  }
}

/** One nexthop object as the daemon lists it (src/proto/kernel/sync-nexthops.ts). */
interface NexthopRow {
  id: number;
  protocol: string;
  family: number;
  kind: string;
  gateway?: string;
  dev?: string;
  onlink?: boolean;
  members?: { id: number; weight: number }[];
  routes: number;
  state: string;
  error?: { errnoName?: string; message?: string };
  failover?: { primary?: string; backup?: string; switched: boolean; state?: string };
}

/** A forwarding object's failover state in words, where it forwards to its backup. */
const ON_BACKUP: Record<string, string> = { degraded: '; links down, on backup', held: '; held on backup' };

function nexthopRow(n: NexthopRow): string[] {
  const f = n.failover;
  const role = f === undefined ? '' : f.switched ? ' (failover: switched)' : ` (failover: ${f.primary ?? '?'}${f.backup !== undefined ? `, backup ${f.backup}` : ', no backup'}${ON_BACKUP[f.state ?? ''] ?? ''})`;
  const hop = n.members
    ? `group ${n.members.map((m) => (m.weight === 1 ? String(m.id) : `${m.id},${m.weight}`)).join('/')}${role}`
    : [n.gateway ? `via ${n.gateway}` : '', n.dev ? `dev ${n.dev}` : '', n.onlink ? 'onlink' : ''].filter(Boolean).join(' ');
  const state = n.error ? `${n.state} ${n.error.errnoName ?? ''} ${n.error.message ?? ''}`.trim() : n.state;
  return [String(n.id), n.protocol, `ipv${n.family}`, hop, String(n.routes), state];
}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : human() + '\n');
}

/** The daemon's modules load here, for `run` and `check` only: a client command needs none of them. */
async function run(args: RunArgs): Promise<void> {
  const { runDaemon } = await import('../daemon/run');
  await runDaemon(args);
}

async function check(args: { config: string }): Promise<void> {
  const { checkConfig } = await import('../daemon/run');
  const r = await checkConfig(args.config);
  if (!r.ok) fail(r.message, r.status);
  process.stdout.write(`${r.summary}\n`);
}

interface StatusJson {
  version: string;
  pid: number;
  uptimeSeconds: number;
  ready: boolean;
  config: string;
  status: string;
  tables: Array<{ name: string; nets: number; routes: number }>;
}

async function show(args: { what: string; prefix?: string; socket: string; json: boolean; table?: string; all: boolean; protocol?: string; failed: boolean; nexthops?: boolean }): Promise<void> {
  await withClient(args.socket, async (c) => {
    switch (args.what) {
      case 'status': {
        const s = (await c.request('show-status')).result as StatusJson;
        print(args.json, s, () =>
          [
            `krtsync ${s.version}, pid ${s.pid}, up ${duration(s.uptimeSeconds)}, ${s.ready ? 'ready' : 'starting'}`,
            `config ${s.config}`,
            s.status,
            '',
            table(['TABLE', 'NETS', 'ROUTES'], s.tables.map((t) => [t.name, t.nets, t.routes])),
          ].join('\n'),
        );
        return;
      }
      case 'protocols': {
        const ps = (await c.request('show-protocols')).result as Array<Record<string, unknown>>;
        print(args.json, ps, () =>
          table(
            ['NAME', 'TYPE', 'STATE', 'TABLES', 'ROUTES', 'INFO'],
            ps.map((p) => [p.name, p.type, p.state, (p.tables as string[]).join(','), p.routes ?? p.installed, protocolInfo(p)]),
          ),
        );
        return;
      }
      case 'routes': {
        const args2: Record<string, unknown> = {};
        if (args.prefix) args2.prefix = args.prefix;
        if (args.table) args2.table = args.table;
        if (args.all) args2.all = true;
        if (args.json) {
          // Stream the JSON array as it arrives: a million routes never sit in the CLI's memory twice.
          let first = true;
          process.stdout.write('[');
          await c.request('show-routes', args2, (items) => {
            for (const it of items) {
              process.stdout.write((first ? '\n  ' : ',\n  ') + JSON.stringify(it));
              first = false;
            }
          });
          process.stdout.write(first ? ']\n' : '\n]\n');
          return;
        }
        const rows: unknown[][] = [];
        const { result } = await c.request('show-routes', args2, (items) => {
          for (const r of items as Array<Record<string, unknown>>) rows.push([r.prefix, r.best ? '*' : '', r.route, r.source, r.preference, r.table, bgpText(r.bgp), whyText(r)]);
        });
        const withBgp = rows.some((r) => r[6] !== '');
        const headers = ['PREFIX', 'BEST', 'ROUTE', 'SOURCE', 'PREF', 'TABLE', ...(withBgp ? ['BGP', 'WHY'] : ['WHY'])];
        const shown = withBgp ? rows : rows.map((r) => [...r.slice(0, 6), r[7]]);
        process.stdout.write(table(headers, shown) + `\n${(result as { routes: number }).routes} routes\n`);
        return;
      }
      case 'kernel': {
        const args2: Record<string, unknown> = {};
        if (args.prefix) args2.prefix = args.prefix;
        if (args.protocol) args2.protocol = args.protocol;
        if (args.nexthops) {
          const { result } = await c.request('show-kernel', { ...args2, nexthops: true });
          const list = (result as { nexthops: NexthopRow[] }).nexthops;
          print(args.json, list, () => table(['ID', 'PROTOCOL', 'FAMILY', 'NEXT HOP', 'ROUTES', 'STATE'], list.map(nexthopRow)) + `\n${list.length} nexthop objects`);
          return;
        }
        if (args.failed) args2.failed = true;
        const { result, more } = await c.request('show-kernel', args2);
        print(args.json, more, () => {
          const rows = (more as Array<Record<string, unknown>>).map((s) => {
            const err = s.error as { errno?: string; message?: string } | undefined;
            return [s.net, s.state, s.protocol, s.attempts, err ? `${err.errno ?? ''} ${err.message ?? ''}`.trim() : '', s.retryAt ? new Date(s.retryAt as number).toISOString() : ''];
          });
          return table(['PREFIX', 'STATE', 'PROTOCOL', 'ATTEMPTS', 'ERROR', 'RETRY AT'], rows) + `\n${(result as { routes: number }).routes} routes`;
        });
        return;
      }
      case 'nexthops': {
        const { result } = await c.request('show-nexthops', args.table ? { table: args.table } : {});
        const list = (result as { nexthops: HopRow[] }).nexthops;
        print(args.json, list, () => table(['NEXT HOP', 'DEV', 'STATE', 'ROUTES', 'FLAPS', 'PENALTY', 'HELD UNTIL', 'WHY'], list.map(hopRow)) + `\n${list.length} next hops`);
        return;
      }
      default:
        fail(`show what? status, protocols, routes, kernel or nexthops (not "${args.what}")`, EXIT_USAGE);
    }
  });
}

interface HopRow {
  hop: string;
  dev?: string;
  state: string;
  reason?: string;
  flaps: number;
  penalty: number;
  heldUntil?: number;
  routes?: number;
}

/** One tracked next hop as a row of `show nexthops`: a hold that is over shows no time. */
function hopRow(h: HopRow): unknown[] {
  const held = h.heldUntil !== undefined && h.state === 'held' ? new Date(h.heldUntil).toISOString() : '';
  return [h.hop, h.dev ?? '', h.state, h.routes ?? 0, h.flaps, h.penalty, held, h.reason ?? ''];
}

/** The WHY column: the decision step, and what next-hop tracking says of the route's next hops. */
function whyText(r: Record<string, unknown>): string {
  const reason = typeof r.reason === 'string' ? r.reason : '';
  if (typeof r.unusable !== 'string') return reason;
  const what = r.eligible === false ? 'not used' : 'hops left out';
  return `${reason ? `${reason}; ` : ''}${what}: ${r.unusable}`;
}

/** A route's BGP attributes in one column, the way birdc shows them: path, then what is set. */
function bgpText(b: unknown): string {
  if (b === undefined || b === null) return '';
  const x = b as Record<string, unknown>;
  const parts = [`[${String(x.as_path)}]`];
  if (x.origin !== undefined) parts.push(String(x.origin));
  if (x.local_pref !== undefined) parts.push(`lp ${String(x.local_pref)}`);
  if (x.med !== undefined) parts.push(`med ${String(x.med)}`);
  if (x.router_id !== undefined) parts.push(`id ${String(x.router_id)}`);
  if (Array.isArray(x.communities)) parts.push(`comm ${x.communities.join(',')}`);
  if (Array.isArray(x.large_communities)) parts.push(`lcomm ${x.large_communities.join(',')}`);
  return parts.join(' ');
}

interface FailoverJson {
  mode: string;
  active: boolean;
  objects: Record<'primary' | 'switched' | 'degraded' | 'held' | 'adopted', number>;
  inForce: number;
  backupRoutes?: { installed: number; pending: number; failed: number };
}

/** A kernel protocol's failover in a few words (docs/failover.md): its objects and backup routes, and a failover in force. */
function failoverInfo(f: FailoverJson | undefined): string {
  if (f === undefined) return '';
  if (!f.active) return `failover ${f.mode} inactive (no nexthop objects)`;
  const objects = Object.values(f.objects).reduce((a, b) => a + b, 0);
  const parts = [`${objects} forwarding objects`];
  if (f.backupRoutes) parts.push(`${f.backupRoutes.installed} backup routes${f.backupRoutes.failed ? ` (${f.backupRoutes.failed} failed)` : ''}`);
  const force = (['switched', 'degraded', 'held'] as const).filter((k) => f.objects[k] > 0).map((k) => `${f.objects[k]} ${k}`);
  return `failover ${f.mode}: ${parts.join(', ')}${force.length ? `; in force: ${force.join(', ')} on backup` : ''}`;
}

function protocolInfo(p: Record<string, unknown>): string {
  if (p.type === 'stream') {
    const limits = p.limits as { refused: Record<string, number>; disconnects: number; filtered: number } | undefined;
    const refused = limits ? Object.values(limits.refused).reduce((a, b) => a + b, 0) : 0;
    const damping = p.damping as { suppressed: number } | undefined;
    return [`${(p.clients as unknown[]).length} clients`, p.startupHold ? 'waiting for end-of-RIB' : '', damping?.suppressed ? `${damping.suppressed} suppressed (flapping)` : '', refused ? `${refused} refused by limits` : '', limits?.disconnects ? `${limits.disconnects} dropped` : '', limits?.filtered ? `${limits.filtered} filtered` : ''].filter(Boolean).join(', ');
  }
  if (p.type === 'kernel') return [p.syncState, p.kernelTable !== undefined ? `table ${String(p.kernelTable)}` : '', p.failed ? `${String(p.failed)} failed` : '', failoverInfo(p.failover as FailoverJson | undefined)].filter(Boolean).join(', ');
  if (p.type === 'static' && p.lastLoad) return `loaded ${(p.lastLoad as { at: string }).at}`;
  return '';
}

async function feed(args: { socket: string; format: string; client?: string; protocol?: string }): Promise<void> {
  await withClient(args.socket, async (c) => {
    const req: Record<string, unknown> = { format: args.format };
    if (args.client) req.client = args.client;
    if (args.protocol) req.protocol = args.protocol;
    let errors = 0;
    c.onUnsolicited = (msg) => {
      errors++;
      const e = msg.error as { message?: string } | undefined;
      process.stderr.write(`krtsync feed: line ${String(msg.line)}: ${e?.message ?? JSON.stringify(msg)}\n`);
    };
    await c.request('feed', req);
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of rl) await c.writeLine(line);
    // Let the daemon answer the last lines before we hang up.
    await new Promise((r) => setTimeout(r, 200));
    if (errors) process.exitCode = EXIT_FAIL;
  });
}

export function main(argv: readonly string[]): void {
  const socketOpt = (y: Argv) => y.option('socket', { type: 'string', default: DEFAULT_SOCKET, describe: 'control socket of the daemon' });
  void yargs(hideBin([...argv]))
    .scriptName('krtsync')
    .usage('$0 <command> [options]\n\nLinux kernel route sync daemon.')
    .command(
      'run',
      'run the daemon in the foreground',
      (y) =>
        y
          .option('config', { alias: 'c', type: 'string', demandOption: true, describe: 'config file (YAML)' })
          .option('log-level', { type: 'string', choices: ['error', 'warn', 'info', 'debug'], describe: 'overrides log.level of the config' })
          .option('log-output', { type: 'string', choices: ['auto', 'journal', 'stderr'], default: 'auto', describe: 'auto: the journal when stderr is the journal stream' })
          .option('netns', { type: 'string', describe: 'work in this network namespace (name or path)' }),
      (a) => run(a as never),
    )
    .command('check', 'validate a config file (and its routes and state files) without touching anything', (y) => y.option('config', { alias: 'c', type: 'string', demandOption: true }), (a) => check(a))
    .command(
      'show <what> [prefix]',
      'show status | protocols | routes [PREFIX] | kernel [PREFIX] | nexthops',
      (y) =>
        socketOpt(y)
          .positional('what', { type: 'string', choices: ['status', 'protocols', 'routes', 'kernel', 'nexthops'], demandOption: true })
          .positional('prefix', { type: 'string', describe: 'a prefix: it and everything inside it' })
          .option('json', { type: 'boolean', default: false, describe: 'stable JSON output (docs/cli.md)' })
          .option('table', { type: 'string', describe: 'routes: only this table; nexthops: count routes of this table only' })
          .option('all', { type: 'boolean', default: false, describe: 'routes: every route of a prefix, not only the best' })
          .option('protocol', { type: 'string', describe: 'kernel: only this kernel protocol' })
          .option('failed', { type: 'boolean', default: false, describe: 'kernel: only routes the kernel rejected' })
          .option('nexthops', { type: 'boolean', default: false, describe: 'kernel: our nexthop objects and how many routes use each' }),
      (a) => show(a as never),
    )
    .command('route', 'add, delete or list routes of an api protocol', (y) =>
      socketOpt(y)
        .option('source', { type: 'string', describe: 'the api protocol (default: the first one)' })
        .option('json', { type: 'boolean', default: false })
        .command(
          'add <route..>',
          'add or replace a route, e.g. route add 10.0.0.0/24 via 192.0.2.1',
          (z) => z.positional('route', { type: 'string', array: true, demandOption: true }),
          (a) =>
            withClient(a.socket, async (c) => {
              const r = (await c.request('route-add', { route: (a.route as string[]).join(' '), ...(a.source ? { protocol: a.source } : {}) })).result as { added: string };
              print(a.json, r, () => `added ${r.added}`);
            }),
        )
        .command(
          'del <prefix>',
          'delete the route for a prefix',
          (z) => z.positional('prefix', { type: 'string', demandOption: true }),
          (a) =>
            withClient(a.socket, async (c) => {
              const r = (await c.request('route-del', { prefix: a.prefix, ...(a.source ? { protocol: a.source } : {}) })).result as { deleted: string };
              print(a.json, r, () => `deleted ${r.deleted}`);
            }),
        )
        .command(
          'list',
          'list the routes added through the control socket',
          (z) => z,
          (a) =>
            withClient(a.socket, async (c) => {
              const r = (await c.request('route-list', a.source ? { protocol: a.source } : {})).more as string[];
              print(a.json, r, () => r.join('\n'));
            }),
        )
        .demandCommand(1, 'route add, route del or route list'),
    )
    .command(
      'reload',
      'reload the config file (like SIGHUP); a bad file leaves the running config in place',
      (y) => socketOpt(y),
      (a) =>
        withClient(a.socket, async (c) => {
          const r = (await c.request('reload')).result as { changes: string[] };
          process.stdout.write(r.changes.length ? r.changes.join('\n') + '\n' : 'reloaded, no changes\n');
        }),
    )
    .command(
      'feed',
      'send routes as JSON lines from stdin (krtsync format, or ExaBGP JSON API output)',
      (y) =>
        socketOpt(y)
          .option('format', { type: 'string', choices: ['krtsync', 'exabgp'], default: 'krtsync' })
          .option('client', { type: 'string', describe: 'a name that lets a reconnect keep its routes' })
          .option('protocol', { type: 'string', describe: 'the stream protocol (default: the first one)' }),
      (a) => feed(a as never),
    )
    .version(pkg.version)
    .strict()
    .demandCommand(1, 'Name a command; see --help.')
    .fail((msg, err) => {
      if (err) fail(err.message);
      process.stderr.write(`krtsync: ${msg}\nRun "krtsync --help" for usage.\n`);
      process.exit(EXIT_USAGE);
    })
    .help()
    .parseAsync()
    .catch((e: Error) => fail(e.message));
}

