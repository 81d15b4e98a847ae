/**
 * Control socket commands: what `krtsync show|route|reload|feed` ask the
 * daemon. Each validates its arguments and answers with plain JSON (the
 * documented `--json` output of the CLI). Changes (route add/del, reload) go
 * through the daemon's management queue; reads do not need to, because a
 * table read never awaits.
 *
 *   show-status                      version, uptime, ready, tables and counts
 *   show-protocols                   one entry per protocol
 *   show-routes {prefix?, table?, all?}   streamed: routes of the tables, best first
 *   show-kernel {protocol?, prefix?, failed?}   streamed: per-route kernel sync status
 *   show-kernel {protocol?, nexthops: true}     our nexthop objects and the nets on each
 *   show-nexthops {table?}           next-hop tracking's view: each next hop, its state, damping, routes through it
 *   route-add {route, protocol?} / route-del {prefix, protocol?}
 *   route-list {protocol?}            streamed: the api protocol's route lines
 *   reload
 *   feed {protocol?, client?, format?}   the connection becomes a route stream
 */
import type { Prefix } from '../lib/addr';
import { KrtError } from '../lib/errors';
import type { ControlRequest } from '../control/protocol';
import type { ControlContext } from '../control/server';
import { STREAM_FORMATS, type StreamFormat } from '../proto/stream/formats';
import type { SuppressedRoute } from '../proto/stream/source-damping';
import { whyBefore, type BgpAttrs, type BgpAttrsJson, type DecisionStep, type Route } from '../route';
import type { Prefilter, Table } from '../table';
import type { DaemonCore } from './daemon-core';

// eslint-disable-next-line @typescript-eslint/no-require-imports
export const VERSION = (require('../../package.json') as { version: string }).version;
/** Every command this file answers (metrics count any other as "unknown"). */
export const CONTROL_COMMANDS: readonly string[] = ['show-status', 'show-protocols', 'show-routes', 'show-kernel', 'show-nexthops', 'route-add', 'route-del', 'route-list', 'reload', 'feed'];
const CHUNK = 2048;
const MAX_CLIENT_NAME = 64;
const CLIENT_NAME_RE = new RegExp(`^[\\x21-\\x7e]{1,${MAX_CLIENT_NAME}}$`);

function bad(message: string): KrtError {
  return new KrtError('KRT_ERR_BAD_REQUEST', message);
}

function optString(args: Record<string, unknown>, key: string): string | undefined {
  const v = args[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '') throw bad(`"${key}" must be a non-empty string`);
  return v;
}

function checkArgs(args: Record<string, unknown>, allowed: readonly string[], command: string): void {
  for (const k of Object.keys(args)) if (!allowed.includes(k)) throw bad(`${command}: unknown argument "${k}" (expected: ${allowed.join(', ') || 'none'})`);
}

export interface RouteJson {
  prefix: string;
  table: string;
  source: string;
  preference: number;
  best: boolean;
  route: string;
  /** The route's BGP attributes, when it has them. */
  bgp?: BgpAttrsJson;
  /**
   * The step of the decision process that placed the route (docs/bgp.md):
   * for the best, why it beat the next one; for another, why it ranks after
   * the one before it. Absent when the net has one route. With next-hop
   * tracking, 'next hop' when a route whose next hops can be used ranks
   * before one whose cannot.
   */
  reason?: DecisionStep;
  /** Next-hop tracking: false when the route's next hops cannot be used (it is not eligible to be best). */
  eligible?: false;
  /** Why the route is not used: next-hop tracking ("next hop via 192.0.2.2: dev veth0 has no carrier"), or its source's flap damping. */
  unusable?: string;
  /** A stream source's flap damping keeps the route out of the table until `until` (ISO time); it is not in the table's chain. */
  suppressed?: { until: string; flaps: number };
}

/** A route a stream protocol's flap damping keeps out of the table (docs/failover.md, "A flapping source"). */
function suppressedJson(t: Table, r: SuppressedRoute, preference: number): RouteJson {
  const secs = Math.max(0, Math.ceil((r.until - Date.now()) / 1000));
  const out: RouteJson = { prefix: r.net.toString(), table: t.name, source: r.source, preference, best: false, route: r.attrs.toString(), eligible: false };
  out.suppressed = { until: new Date(r.until).toISOString(), flaps: r.flaps };
  out.unusable = `source flapping (${r.flaps} failures), suppressed for ${secs} s more, until ${out.suppressed.until}`;
  const bgp = r.attrs.bgp;
  if (bgp) out.bgp = bgpJsonOf(bgp);
  return out;
}

/** The JSON of each (interned) BGP attribute set, made once: a million routes share a few. */
const bgpJson = new WeakMap<BgpAttrs, BgpAttrsJson>();

function bgpJsonOf(bgp: BgpAttrs): BgpAttrsJson {
  let j = bgpJson.get(bgp);
  if (!j) bgpJson.set(bgp, (j = bgp.toJSON()));
  return j;
}

/** Why `a` ranks before `b` in a chain of table `t` (eligibility first, then the decision process). */
function rankedBy(t: Table, a: Route, b: Route): DecisionStep | undefined {
  return t.eligible(a) && !t.eligible(b) ? 'next hop' : whyBefore(a, b);
}

function routeJson(t: Table, r: Route, net: Prefix, best: boolean, reason: DecisionStep | undefined): RouteJson {
  const out: RouteJson = { prefix: net.toString(), table: t.name, source: r.src.name, preference: r.src.preference, best, route: r.attrs.toString() };
  const set = r.attrs.nexthops;
  const why = set && t.nexthops?.why(set);
  if (why) {
    if (!t.eligible(r)) out.eligible = false;
    out.unusable = why;
  }
  const bgp = r.attrs.bgp;
  if (bgp) out.bgp = bgpJsonOf(bgp);
  if (reason) out.reason = reason;
  return out;
}

export async function handleControlRequest(d: DaemonCore, req: ControlRequest, ctx: ControlContext): Promise<unknown> {
  const a = req.args;
  switch (req.command) {
    case 'show-status': {
      checkArgs(a, [], req.command);
      return {
        version: VERSION,
        pid: process.pid,
        started: d.startedAt.toISOString(),
        uptimeSeconds: Math.round((Date.now() - d.startedAt.getTime()) / 1000),
        ready: d.ready,
        config: d.opts.configFile,
        status: d.statusLine(),
        tables: [...d.tables].map(([name, t]) => ({ name, nets: t.netCount, routes: t.routeTotal, sources: t.sourceCount })),
        control: d.controlStats(),
      };
    }
    case 'show-protocols': {
      checkArgs(a, [], req.command);
      return [...d.protocols.values()].map((p) => {
        const base = { name: p.config.name, type: p.type, state: p.proto.state, tables: p.config.tables };
        switch (p.type) {
          case 'static':
            return { ...base, routes: p.proto.routeCount, lastLoad: p.proto.lastLoad ?? null };
          case 'api':
            return { ...base, routes: p.proto.routeCount };
          case 'stream':
            return { ...base, ...p.proto.summary(), clients: p.proto.stats() };
          case 'kernel':
            return { ...base, ...p.proto.summary() };
        }
      });
    }
    case 'show-routes': {
      checkArgs(a, ['prefix', 'table', 'all'], req.command);
      const prefix = d.parsePrefixArg(a.prefix);
      const tableName = optString(a, 'table');
      if (a.all !== undefined && typeof a.all !== 'boolean') throw bad('"all" must be true or false');
      const tables = [...d.tables].filter(([name]) => tableName === undefined || name === tableName);
      if (tableName !== undefined && !tables.length) throw bad(`no table named "${tableName}" (tables: ${[...d.tables.keys()].join(', ')})`);
      const prefilter: Prefilter | undefined = prefix ? { kind: 'prefix', prefix } : undefined;
      let count = 0;
      let chunk: RouteJson[] = [];
      for (const [, t] of tables) {
        // `all`, not `best`: a net whose routes are all ineligible (next-hop tracking) has no best but is shown.
        for await (const batch of t.all.feed(prefilter ? { prefilter } : {})) {
          for (const item of batch) {
            if (item.kind !== 'feed') continue;
            // The chain as it is now (the feed's may be older by a moment): the reasons compare neighbours in it.
            const now = t.routes(item.net);
            const chain = now.length ? now : item.routes;
            const shown = a.all === true ? chain : chain.slice(0, 1);
            const best = t.bestRoute(item.net);
            shown.forEach((r, i) => chunk.push(routeJson(t, r, item.net, r === best, i === 0 ? (chain[1] ? rankedBy(t, r, chain[1]) : undefined) : rankedBy(t, chain[i - 1]!, r))));
          }
          if (chunk.length >= CHUNK) {
            count += chunk.length;
            await ctx.more(chunk);
            chunk = [];
          }
        }
        // Routes of a flapping source suppressed by its stream protocol's damping: out of the table until reused, but shown (not used).
        if (a.all !== true) continue;
        for (const p of d.protocols.values()) {
          if (p.type !== 'stream') continue;
          p.proto.forEachSuppressed(prefix, (r, into, preference) => {
            if (into === t) chunk.push(suppressedJson(t, r, preference));
          });
        }
      }
      count += chunk.length;
      if (chunk.length) await ctx.more(chunk);
      return { routes: count };
    }
    case 'show-kernel': {
      checkArgs(a, ['protocol', 'prefix', 'failed', 'nexthops'], req.command);
      const name = optString(a, 'protocol');
      const prefix = d.parsePrefixArg(a.prefix);
      const kernels = [...d.protocols.values()].filter((p) => p.type === 'kernel' && (name === undefined || p.config.name === name));
      if (name !== undefined && !kernels.length) throw bad(`no kernel protocol named "${name}"`);
      if (a.nexthops === true) {
        const nexthops = kernels.flatMap((k) => (k.type === 'kernel' ? k.proto.nexthops().map((n) => ({ protocol: k.config.name, ...n })) : []));
        return { nexthops };
      }
      let count = 0;
      for (const k of kernels) {
        if (k.type !== 'kernel') continue;
        let entries = k.proto.status(prefix).map((s) => ({ protocol: k.config.name, ...s }));
        if (a.failed === true) entries = entries.filter((e) => e.state === 'failed');
        for (let i = 0; i < entries.length; i += CHUNK) await ctx.more(entries.slice(i, i + CHUNK));
        count += entries.length;
      }
      return { routes: count };
    }
    case 'show-nexthops': {
      checkArgs(a, ['table'], req.command);
      const tracking = d.nexthops;
      if (tracking === undefined) throw new KrtError('KRT_ERR_NEXTHOP', 'next-hop tracking is off (nexthop_tracking in the config, docs/nexthop-tracking.md): no next hop is tracked');
      const tableName = optString(a, 'table');
      const tables = [...d.tables].filter(([name]) => tableName === undefined || name === tableName).map(([, t]) => t);
      if (tableName !== undefined && !tables.length) throw bad(`no table named "${tableName}" (tables: ${[...d.tables.keys()].join(', ')})`);
      const nexthops = tracking.tracker.report((set) => tables.reduce((n, t) => n + t.routesUsing(set), 0));
      nexthops.sort((x, y) => (x.hop < y.hop ? -1 : x.hop > y.hop ? 1 : 0));
      return { nexthops };
    }
    case 'route-add': {
      checkArgs(a, ['route', 'protocol'], req.command);
      const route = optString(a, 'route');
      if (route === undefined) throw bad('route-add needs "route", e.g. "10.0.0.0/24 via 192.0.2.1"');
      // The change is made in the queue; its write to the state file is awaited outside it, so
      // changes from other clients join the same write (group commit).
      const added = await d.enqueue(async () => d.apiProtocol(optString(a, 'protocol')).add(route));
      await added.saved;
      return { added: added.line };
    }
    case 'route-del': {
      checkArgs(a, ['prefix', 'protocol'], req.command);
      const prefix = optString(a, 'prefix');
      if (prefix === undefined) throw bad('route-del needs "prefix"');
      const deleted = await d.enqueue(async () => {
        const api = d.apiProtocol(optString(a, 'protocol'));
        const r = api.del(prefix);
        if (!r.found) throw new KrtError('KRT_ERR_NO_ROUTE', `protocol ${api.name} has no route for ${prefix}`);
        return r;
      });
      await deleted.saved;
      return { deleted: prefix };
    }
    case 'route-list': {
      checkArgs(a, ['protocol'], req.command);
      // Streamed like show-routes: one answer line never holds every route, and a client that
      // does not read holds at most a chunk of them.
      const lines = d.apiProtocol(optString(a, 'protocol')).list();
      for (let i = 0; i < lines.length; i += CHUNK) await ctx.more(lines.slice(i, i + CHUNK));
      return { routes: lines.length };
    }
    case 'reload': {
      checkArgs(a, [], req.command);
      return { changes: await d.reload() };
    }
    case 'feed': {
      checkArgs(a, ['protocol', 'client', 'format'], req.command);
      const format = (optString(a, 'format') ?? 'krtsync') as StreamFormat;
      if (!STREAM_FORMATS.includes(format)) throw bad(`"format" must be one of ${STREAM_FORMATS.join(', ')}`);
      const proto = d.streamProtocol(optString(a, 'protocol'));
      const client = optString(a, 'client');
      // The name goes into logs, status output and source names: bounded and printable.
      if (client !== undefined && !CLIENT_NAME_RE.test(client)) throw bad(`"client" must be 1 to ${MAX_CLIENT_NAME} printable characters without spaces`);
      const session = proto.connect(client, format, (msg) => ctx.send(msg), () => ctx.hangUp());
      ctx.takeOver(session);
      return { protocol: proto.name, format };
    }
    default:
      throw new KrtError(
        'KRT_ERR_UNKNOWN_COMMAND',
        `unknown command "${req.command}" (commands: ${CONTROL_COMMANDS.join(', ')})`,
      );
  }
}
