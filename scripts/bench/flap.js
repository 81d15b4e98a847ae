#!/usr/bin/env node
// A flapping stream source: `npm run bench:flap` (builds dist/ first). Root: it makes a scratch namespace.
//
// A router namespace with two veths (192.0.2.0/24 and 198.51.100.0/24; no traffic is sent). N /24s from
// two sources: the primary a BGP neighbour (192.0.2.2) behind an ExaBGP-format stream client, the backup
// a static-like source (via 198.51.100.2). The stream and kernel protocols (failover: objects) run
// in-process. The neighbour flaps K times on a fixed clock, as a real session does whatever the daemon
// is doing: down at k*P ms, back with its N routes (1,000 a line) and end-of-RIB at k*P + P/2. Then it
// stays up. Per variant:
//   - route messages the kernel protocol sent from the first flap until every net forwards via the
//     primary again and the sync is settled;
//   - CPU time of the process meanwhile (user + system: the system part is the kernel's work for us);
//     nothing dumps the kernel meanwhile;
//   - the time from the last return until the suppression is over and the sync has settled; then one
//     dump (route -> object -> gateway) checks that every net forwards via the primary.
// Baseline in the same run: the same flaps with `damping: false`.
//
// Environment: N (default 100000), K (flaps, default 6), P (period in ms, default 2000),
// DAMPING (the damped variant's setting, default the protocol's default).
// Figures are in docs/benchmarks.md ("A flapping source").
'use strict';
const W = require('node:path').join(__dirname, '..', '..', 'dist');
const { execFileSync } = require('node:child_process');
const { parseConfig } = require(`${W}/config/config`);
const { parseRouteLine } = require(`${W}/config/route-syntax`);
const { RouteSource } = require(`${W}/route`);
const { Table } = require(`${W}/table`);
const { KernelProtocol } = require(`${W}/proto/kernel/kernel-protocol`);
const { StreamProtocol } = require(`${W}/proto/stream/stream`);
const { TableSet } = require(`${W}/proto/table-set`);
const N = Number(process.env.N || 100000);
const K = Number(process.env.K || 6);
const P = Number(process.env.P || 2000);
const DAMPING = process.env.DAMPING || '';
const sh = (...a) => execFileSync(a[0], a.slice(1), { encoding: 'utf8', maxBuffer: 1 << 30 });
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const nets = Array.from({ length: N }, (_, i) => `${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`);

const header = (type) => `{ "exabgp": "4.0.1", "type": "${type}", "neighbor": { "address": { "local": "192.0.2.1", "peer": "192.0.2.2" }, "asn": { "local": 65000, "peer": 65001 } `;
const up = () => `${header('state')}, "state": "up" } }`;
const down = () => `${header('state')}, "state": "down", "reason": "flap" } }`;
const eor = () => `${header('update')}, "direction": "receive", "message": { "eor": { "afi" : "ipv4", "safi" : "unicast" } } } }`;
const updates = [];
for (let i = 0; i < N; i += 1000) {
  const list = nets.slice(i, i + 1000).map((n) => `{ "nlri": "${n}" }`).join(', ');
  updates.push(`${header('update')}, "direction": "receive", "message": { "update": { "attribute": { "origin": "igp", "as-path": [ 65001 ] }, "announce": { "ipv4 unicast": { "192.0.2.2": [ ${list} ] } } } } } }`);
}

/** Nets of ours that forward via `gw`, from one dump of routes and objects. */
function countVia(ns, gw) {
  const objs = new Map(JSON.parse(sh('ip', '-n', ns, '-j', 'nexthop', 'show') || '[]').map((o) => [o.id, o]));
  let n = 0;
  for (const r of JSON.parse(sh('ip', '-n', ns, '-j', '-4', 'route', 'show', 'proto', '144') || '[]')) {
    const o = objs.get(r.nhid);
    const hops = o?.group ? o.group.map((g) => objs.get(g.id)) : [o ?? r];
    if (hops.length === 1 && hops[0]?.gateway === gw) n++;
  }
  return n;
}
async function until(cond, ms) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) return undefined;
    await sleep(10);
  }
  return Date.now() - t0;
}

/** Waits until the sync has sent nothing for 500 ms and is settled; returns when it last sent (or now, when it sent nothing). */
async function quiet(kernel) {
  const sync = kernel.sync(4);
  let sent = sync.stats.sent;
  let at = Date.now();
  for (;;) {
    await sleep(50);
    await sync.settled();
    if (sync.stats.sent !== sent) {
      sent = sync.stats.sent;
      at = Date.now();
    } else if (Date.now() - at >= 500 && kernel.counts().pending === 0) return at;
  }
}

async function run(damped) {
  const ns = `flap${process.pid}${damped ? 'd' : 'u'}`;
  sh('ip', 'netns', 'add', ns);
  try {
    for (const l of ['link set lo up', 'link add veth0 type veth peer name veth1', 'link set veth0 up', 'link set veth1 up', 'addr add 192.0.2.1/24 dev veth0', 'addr add 198.51.100.1/24 dev veth1']) sh('ip', '-n', ns, ...l.split(' '));
    const table = new Table({ name: 'master4' });
    const backup = new RouteSource('backup', 50);
    for (const n of nets) {
      const r = parseRouteLine(`${n} via 198.51.100.2`);
      table.announce(r.net, backup, r.attrs);
    }
    const yaml = `protocols:\n  - name: bgp\n    type: stream\n    startup_wait: 0s\n${damped ? (DAMPING ? `    damping: ${DAMPING}\n` : '') : '    damping: false\n'}`;
    const log = { error() {}, warn() {}, info() {}, debug() {} };
    const stream = new StreamProtocol(parseConfig('/bench/k.yaml', yaml).protocols[0], new TableSet('bgp', new Map([[4, table]])), log);
    await stream.start();
    const kernel = new KernelProtocol({ name: 'kernel1', table, netns: `/run/netns/${ns}`, family: 4, scanIntervalMs: 0, failover: 'objects' });
    await kernel.start();
    const s = stream.connect('exabgp', 'exabgp', () => undefined);
    let line = 0;
    const send = (...ls) => ls.forEach((l) => s.onLine(l, ++line));
    send(up(), ...updates, eor());
    await quiet(kernel);
    if (countVia(ns, '192.0.2.2') !== N) throw new Error('the first load did not settle');

    const sent0 = kernel.sync(4).stats.sent;
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    let suppressed = 0;
    for (let k = 0; k < K; k++) {
      await sleep(t0 + k * P - Date.now());
      send(down());
      await sleep(t0 + k * P + P / 2 - Date.now());
      send(up(), ...updates, eor());
      if ((stream.summary().damping?.suppressed ?? 0) > 0) suppressed++;
    }
    const last = Date.now();
    // No dumps meanwhile (they would cost this process CPU): the suppression's end, then the sync's.
    const reused = await until(() => (stream.summary().damping?.suppressed ?? 0) === 0, 300_000);
    const settled = (await quiet(kernel)) - last;
    const cpu = process.cpuUsage(cpu0);
    const via = countVia(ns, '192.0.2.2');
    if (reused === undefined || via !== N) throw new Error(`${via} of ${N} nets via the primary after the flaps`);
    const out = {
      variant: damped ? 'damped' : 'undamped',
      n: N,
      flaps: K,
      periodMs: P,
      suppressedReturns: suppressed,
      routeMessages: kernel.sync(4).stats.sent - sent0,
      cpuUserS: +(cpu.user / 1e6).toFixed(2),
      cpuSystemS: +(cpu.system / 1e6).toFixed(2),
      suppressionEndMs: reused,
      settledMs: settled,
      totalS: +((Date.now() - t0) / 1000).toFixed(1),
    };
    await stream.shutdown();
    await kernel.shutdown();
    return out;
  } finally {
    sh('ip', 'netns', 'del', ns);
  }
}

(async () => {
  const results = [];
  for (const damped of [false, true]) results.push(await run(damped));
  const rows = [
    ['returns suppressed', (r) => `${r.suppressedReturns} of ${r.flaps}`],
    ['route messages sent (flaps until settled)', (r) => r.routeMessages.toLocaleString('en')],
    ['CPU user / system', (r) => `${r.cpuUserS} / ${r.cpuSystemS} s`],
    ['last return -> suppression over', (r) => `${(r.suppressionEndMs / 1000).toFixed(2)} s`],
    ['last return -> sync settled, every net via the primary', (r) => `${(r.settledMs / 1000).toFixed(2)} s`],
  ];
  console.log(`\n${N.toLocaleString('en')} nets, ${K} flaps every ${P} ms (down, back after ${P / 2} ms)\n`);
  console.log(`| | ${results.map((r) => r.variant).join(' | ')} |\n|---|${results.map(() => '---:').join('|')}|`);
  for (const [name, f] of rows) console.log(`| ${name} | ${results.map(f).join(' | ')} |`);
  for (const r of results) console.log(JSON.stringify(r));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
