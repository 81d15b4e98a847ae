#!/usr/bin/env node
// Failover benchmark: `npm run bench:failover -- [--routes N] [--only krtsync,bird] [--failure source,carrier]
// [--timeout S] [--quiet S] [--probes K] [--probe-rate PPS] [--bird-restart S] [--keep-log DIR]
// [--nexthop-tracking on|off] [--failover objects|backup_routes|off] [--node-args "FLAGS"] [--log-times] [--krtsync DIR]`
// (docs/benchmarks.md, "Failover").
//
// A router namespace with two uplinks (veth pairs to two upstream namespaces, gateways 192.0.2.2 and
// 198.51.100.2) and N IPv4 /24s from 11.0.0.0 (default 1,000,000) reachable through both, from two
// BGP sources with a clear primary (AS path 65001) and backup (65002 65002):
// - krtsync: a stream protocol with the two as neighbours (krtsync's own format, with `neighbor` and
//   `bgp` objects, sent by this script as a BGP speaker's relay would through `krtsync feed`),
//   installed by its kernel protocol;
// - BIRD 2: two eBGP sessions to BIRD 2 speakers in the upstream namespaces, each announcing the N
//   nets (static blackholes there, never installed), exported by the router's kernel protocol. BIRD's
//   own defaults throughout (its direct sessions check the link; an error waits 60 s before a
//   reconnect), unless `--bird-restart S` sets its connect delay, connect retry and error wait to S
//   seconds (the smoke test's, so that BIRD's recoveries take seconds; never for figures).
// Failures, each followed by its recovery:
// - source: the primary source withdrawn (krtsync: the neighbour's `state: down`, then `state: up`
//   and its N routes again; BIRD: `disable` of the primary speaker's session, then `enable`);
// - carrier: the primary link loses carrier (the far end of its veth set down, then up, by one
//   netlink request from this script).
// Measured from outside the daemon, the failure's instant as zero (CLOCK_MONOTONIC everywhere):
// - forwarding, every net: when the router's kernel FIB resolves every one of the N nets via the
//   other link (failover-fib.js: a mirror of routes, nexthop objects and links kept from netlink
//   dumps and notifications, decoded with src/netlink; checked against a fresh dump after each phase);
// - forwarding, probes: UDP probes from the router namespace to K destinations spread over the N
//   nets (default 128, 5,000 a second in bursts every millisecond: each destination every 25.6 ms),
//   received by sinks in the upstream namespaces (`local` routes for the whole range) that tell which
//   link each probe came through (failover-probe.c, compiled here); a destination has moved from the
//   first probe after which every probe to it arrived via the other link;
// - settled: the daemon has finished its own work (krtsync: `show protocols` says no route pending,
//   withdrawing or failed; BIRD: it answers on its control socket within 100 ms) and made no kernel
//   change for `--quiet` (1 s): the time of its last kernel change, or of the first idle answer after
//   it, counting idle answers only from when the FIB moved (before, the daemon may not have been told
//   of the failure yet); and the changes it made (route and nexthop notifications of its protocol number);
// - CPU time (user + system) of the daemon in the phase, and its peak RSS.
// A phase ends once the FIB, the probes and the daemon are all done. One that has not converged when
// `--timeout` (default 120 s: BIRD's recovery from carrier loss waits out its 60 s error wait, then
// reloads the nets) runs out is reported as "> timeout" with how far it got (`timed_out` in its JSON). Everything runs in namespaces this script creates and deletes; no traffic
// leaves them. Output: one Markdown table per failure, then one JSON line per (tool, phase).
//
// This file: arguments, the topology, the phases and the report. The routers under test are in
// failover-routers.js (their control sockets in failover-control.js), the probes and their analysis
// in failover-probes.js, the kernel FIB mirror in failover-fib.js.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { NetlinkClient } = require('../../dist/netlink');
const { FibMirror, nowMs } = require('./failover-fib');
const { compileProbe, startProbe: probeIn, readFrom, analyzeProbes } = require('./failover-probes');
const { birdRouter, krtsyncRouter } = require('./failover-routers');
const { arg, checkArgs, sh, sec, sleep, withTimeout, scratchDir, beforeScratchRemoved, addNamespace, dropNamespace, ensureBird, machine: machineFacts, strayBirdWarning } = require('./harness');

// ------------------------------------------------------------------ arguments
const N = Number(arg('routes', '1000000'));
const ONLY = arg('only', 'krtsync,bird').split(',');
const FAILURES = arg('failure', 'source,carrier').split(',');
const TIMEOUT_MS = Number(arg('timeout', '120')) * 1000;
const BIRD_RESTART = arg('bird-restart', undefined);
const PROBES = Number(arg('probes', '128'));
const RATE = Number(arg('probe-rate', '5000'));
const KEEP_LOG = arg('keep-log', undefined);
// krtsync's nexthop_tracking (docs/nexthop-tracking.md): on, as the daemon's default, or off.
const NHT = arg('nexthop-tracking', 'on');
// krtsync's kernel protocol failover (docs/failover.md): forwarding objects keyed by best and next-best route.
const FAILOVER = arg('failover', 'objects');
// For finding where a phase's time goes: node flags for krtsync (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), and
// "+N ms" on its log lines (with a line marking each phase's t0; keep them with --keep-log).
const NODE_ARGS = arg('node-args', '').split(' ').filter(Boolean);
const LOG_TIMES = process.argv.includes('--log-times');
// Another checkout's krtsync (its bin/krtsync and built dist/) under this script's instruments: a baseline
// measured the same way in the same sitting (its own script may lack a figure this one has).
const KRTSYNC_DIR = arg('krtsync', undefined);
const LOAD_TIMEOUT_MS = Math.max(300_000, TIMEOUT_MS);
const QUIET_MS = Number(arg('quiet', '1')) * 1000; // how long idle and without a kernel change counts as settled
const usage =
  'usage: bench:failover -- [--routes N] [--only krtsync,bird] [--failure source,carrier] [--timeout S] [--quiet S] [--probes K] [--probe-rate PPS] [--bird-restart S] [--keep-log DIR] [--nexthop-tracking on|off] [--failover objects|backup_routes|off] [--node-args "FLAGS"] [--log-times] [--krtsync DIR]';
const KNOWN = ['routes', 'only', 'failure', 'timeout', 'quiet', 'probes', 'probe-rate', 'bird-restart', 'keep-log', 'nexthop-tracking', 'failover', 'node-args', 'krtsync'];
// Every option but the flags takes a value: anything else (a typo, a missing value) is refused rather than starting a
// 1M run; --help prints the usage and exits 0.
checkArgs('bench:failover', usage, KNOWN, ['log-times']);
if (
  !Number.isInteger(N) ||
  N < 2 ||
  N > 1 << 22 ||
  !ONLY.every((t) => ['krtsync', 'bird'].includes(t)) ||
  !FAILURES.every((f) => ['source', 'carrier'].includes(f)) ||
  !(TIMEOUT_MS > 0) ||
  !(QUIET_MS > 0) ||
  !Number.isInteger(PROBES) ||
  PROBES < 1 ||
  !(RATE >= 100 && RATE <= 1e6) ||
  (BIRD_RESTART !== undefined && !(Number.isInteger(Number(BIRD_RESTART)) && Number(BIRD_RESTART) >= 1)) ||
  !['on', 'off'].includes(NHT) ||
  !['objects', 'backup_routes', 'off'].includes(FAILOVER) ||
  (KRTSYNC_DIR !== undefined && !(fs.existsSync(path.join(KRTSYNC_DIR, 'bin', 'krtsync')) && fs.existsSync(path.join(KRTSYNC_DIR, 'dist'))))
) {
  console.error(usage);
  process.exit(2);
}

const PROTO = { krtsync: 144, bird: 12 }; // rtm_protocol of their routes (RTPROT_BIRD = 12)
const LINK = [
  undefined,
  { up: 'up1', down: 'down1', local: '192.0.2.1', gw: '192.0.2.2', as: 65001, path: '65001' },
  { up: 'up2', down: 'down2', local: '198.51.100.1', gw: '198.51.100.2', as: 65002, path: '65002 65002' },
];
const LOCAL_AS = 65000;
const PORT = 47000;
const BASE = 11 << 24; // the nets: 11.0.0.0/24, 11.0.1.0/24, ...
const PROBE_MARGIN_MS = 100; // a probe sent this long ago has arrived if it is going to (the sinks write every few ms)

const netWord = (i) => (BASE + i * 256) >>> 0;
const dotted = (w) => `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
const netText = (i) => `${dotted(netWord(i))}/24`;
/** The index of a /24 of ours, or -1. */
function netIndex(word, len) {
  if (len !== 24) return -1;
  const i = (word - BASE) / 256;
  return i >= 0 && i < N ? i : -1;
}
/** The fewest prefixes covering every net (for the sinks' `local` routes). */
function coverBlocks() {
  const out = [];
  let a = BASE;
  const end = BASE + N * 256;
  while (a < end) {
    let len = 32;
    while (len > 8 && a % 2 ** (33 - len) === 0 && a + 2 ** (33 - len) <= end) len--;
    out.push(`${dotted(a)}/${len}`);
    a += 2 ** (32 - len);
  }
  return out;
}
const K = Math.min(PROBES, N);
const DESTS = Array.from({ length: K }, (_, k) => dotted(netWord(K === 1 ? 0 : Math.round((k * (N - 1)) / (K - 1))) + 1));

// ------------------------------------------------------------------ scratch, probes
const DIR = scratchDir('krtsync-failover-');
if (KEEP_LOG) {
  beforeScratchRemoved(() => {
    fs.mkdirSync(KEEP_LOG, { recursive: true });
    for (const f of fs.readdirSync(DIR).filter((x) => x.endsWith('.log'))) fs.copyFileSync(path.join(DIR, f), path.join(KEEP_LOG, f));
  });
}
const PROBE_BIN = compileProbe(DIR);
const startProbe = (ns, args, input) => probeIn(PROBE_BIN, ns, args, input);
let runId = 0;

// ------------------------------------------------------------------ topology
/** Router namespace `r` with up1/up2, upstream namespaces u1/u2 with down1/down2 and a sink each. */
async function buildTopology(tag) {
  const t = { r: addNamespace(`krtfo-${tag}-r`), u: [undefined, addNamespace(`krtfo-${tag}-u1`), addNamespace(`krtfo-${tag}-u2`)] };
  const blocks = coverBlocks();
  const r = ['link set lo up'];
  for (const k of [1, 2]) {
    const l = LINK[k];
    r.push(`link add ${l.up} type veth peer name ${l.down} netns ${t.u[k]}`, `link set ${l.up} up`, `addr add ${l.local}/24 dev ${l.up}`);
  }
  sh('ip', ['-n', t.r, '-batch', '-'], { input: r.join('\n') + '\n' });
  for (const k of [1, 2]) {
    const l = LINK[k];
    sh('ip', ['netns', 'exec', t.u[k], 'sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    const u = ['link set lo up', `link set ${l.down} up`, `addr add ${l.gw}/24 dev ${l.down}`, ...blocks.map((b) => `route add local ${b} dev lo`)];
    sh('ip', ['-n', t.u[k], '-batch', '-'], { input: u.join('\n') + '\n' });
  }
  t.rClient = NetlinkClient.open({ netns: t.r });
  t.uClient = [undefined, NetlinkClient.open({ netns: t.u[1] }), NetlinkClient.open({ netns: t.u[2] })];
  t.uplinks = [(await t.rClient.getLink({ name: 'up1' })).index, (await t.rClient.getLink({ name: 'up2' })).index];
  t.farIndex = (await t.uClient[1].getLink({ name: 'down1' })).index;
  t.sinkFiles = [undefined, path.join(DIR, `sink-${tag}-1.bin`), path.join(DIR, `sink-${tag}-2.bin`)];
  t.sinks = [await startProbe(t.u[1], ['sink', String(PORT), t.sinkFiles[1]]), await startProbe(t.u[2], ['sink', String(PORT), t.sinkFiles[2]])];
  // Both gateways' neighbour entries resolved, as BGP sessions on the links would keep them: a few
  // probes to the gateways themselves (run 0, which no phase reads).
  const warm = await startProbe(t.r, ['send', String(PORT), '100', '0', path.join(DIR, 'warm-up.bin')], `${LINK[1].gw}\n${LINK[2].gw}\n`);
  await sleep(100);
  await warm.stop();
  t.ignoreLinkdown = sh('ip', ['netns', 'exec', t.r, 'sysctl', '-n', 'net.ipv4.conf.all.ignore_routes_with_linkdown']).trim() === '1';
  /** The far end of uplink 1 down (its carrier goes) or up: one netlink request from here, so its instant is known. */
  t.farEnd = (up) => t.uClient[1].setLink({ op: 'set', index: t.farIndex, up });
  t.close = async () => {
    for (const s of t.sinks) await s.stop();
    t.rClient.close();
    t.uClient[1].close();
    t.uClient[2].close();
    for (const ns of [t.r, t.u[1], t.u[2]]) dropNamespace(ns);
  };
  return t;
}

// ------------------------------------------------------------------ phases
const results = [];
function record(row) {
  const full = { routes: N, ...row };
  results.push(full);
  process.stderr.write(`  ${JSON.stringify(full)}\n`);
}

/**
 * One failure or recovery: probes running, `act` at t0, then until every net forwards via `to` and the
 * daemon has settled (or the timeout), then the probes and a dump are checked.
 */
async function phase(router, topo, mirror, { failure, kind, to, act }) {
  const run = ++runId;
  const sentFile = path.join(DIR, `probes-${run}.bin`);
  const sinkStart = [undefined, fs.statSync(topo.sinkFiles[1]).size, fs.statSync(topo.sinkFiles[2]).size];
  const prober = await startProbe(topo.r, ['send', String(PORT), String(RATE), String(run), sentFile], DESTS.join('\n') + '\n');
  await sleep(300); // the baseline
  const changes0 = mirror.changesOf(router.proto);
  const cpu0 = router.cpu();
  const sinkCpu0 = topo.sinks[0].cpu() + topo.sinks[1].cpu();
  let tFwd;
  // A failure that moved nothing leaves nothing to recover: its recovery's "0 s" says so.
  const alreadyThere = mirror.tally()[to === 1 ? 'via1' : 'via2'] === N;
  mirror.until(to).then((t) => (tFwd = t));
  const t0 = nowMs();
  router.phaseStart(t0, `${failure} ${kind}`);
  // Not awaited before the watch starts: a recovery of krtsync's source streams N routes for seconds.
  let actError;
  const acted = act().catch((e) => (actError = e));
  const deadline = t0 + TIMEOUT_MS;
  // Settled: idle (krtsync: nothing pending; BIRD: answering at once) and no kernel change by the daemon for
  // QUIET_MS; then at the later of its last change and the first idle answer. An idle answer counts only once
  // the FIB has moved: before, the daemon may not have heard of the failure yet (under load the kernel's
  // link notification can come a second late, and "idle" then meant "not told yet"). Once settled, only a new kernel
  // change unsettles it: housekeeping that changes nothing (a periodic scan) does not, and the daemon is no
  // longer asked (the questions cost it CPU time, which is measured).
  let idleSince;
  let settled;
  // The daemon's own word: its first idle answer after its last busy one (polled every 50 ms from t0), with no
  // wait for this script's FIB mirror to decode the kernel's notifications (bench:e2e's churn asks the same);
  // none when it was never seen busy.
  let done;
  let sawBusy = false;
  // The probes moved too: every destination's probes arrive via `to` (the FIB can be done before the
  // data plane is: a neighbour entry that failed with the link resolves again only when probed).
  const sinkBytes = () => [undefined, readFrom(topo.sinkFiles[1], sinkStart[1], 16), readFrom(topo.sinkFiles[2], sinkStart[2], 16)];
  const probesMoved = () => analyzeProbes(sentFile, sinkBytes(), run, t0, to, { K, RATE }, nowMs() - PROBE_MARGIN_MS).moved === K;
  let timedOut = true;
  while (nowMs() < deadline && actError === undefined) {
    const last = () => Math.max(t0, mirror.lastChangeOf(router.proto));
    if (settled !== undefined && last() > settled) settled = idleSince = undefined;
    if (settled === undefined) {
      const asked = nowMs();
      const busy = await Promise.race([router.busy(), sleep(Math.max(0, deadline - asked)).then(() => true)]);
      if (busy) {
        idleSince = undefined;
        sawBusy = true;
      } else if (tFwd !== undefined) idleSince ??= asked;
      const now = nowMs();
      if (idleSince !== undefined && now - last() >= QUIET_MS && now - idleSince >= QUIET_MS) {
        settled = Math.max(last(), idleSince);
        done = idleSince;
      }
    }
    if (settled !== undefined && tFwd !== undefined && probesMoved()) {
      timedOut = false;
      break;
    }
    await sleep(settled === undefined ? 50 : 250);
  }
  mirror.cancel();
  await acted;
  if (actError) throw actError;
  // What happened after the last look does not count: a change since then unsettles, and a phase that
  // timed out has not converged even if the last nets moved while it was being wound up.
  if (settled !== undefined && mirror.lastChangeOf(router.proto) > settled) settled = undefined;
  if (tFwd !== undefined && tFwd > deadline) tFwd = undefined;
  const cpu = router.cpu() - cpu0;
  const c1 = mirror.changesOf(router.proto);
  const changes = Object.fromEntries(Object.entries(c1).map(([k, v]) => [k, v - changes0[k]]));
  const tally = mirror.tally();
  const probeCpu = prober.cpu() + topo.sinks[0].cpu() + topo.sinks[1].cpu() - sinkCpu0;
  const probeSeconds = (nowMs() - t0) / 1000;
  const observedMs = nowMs() - t0;
  await prober.stop();
  await sleep(300); // the sinks write what is still in flight
  const probes = analyzeProbes(sentFile, sinkBytes(), run, t0, to, { K, RATE });
  fs.rmSync(sentFile);
  const check = await mirror.verify();
  if (check.mismatches) await mirror.load(topo.ignoreLinkdown); // the next phase starts from the kernel's truth
  record({
    tool: router.tool,
    failure,
    phase: kind,
    forwarding_s: tFwd !== undefined ? sec(Math.max(0, tFwd - t0)) : null,
    fib_on_target_at_start: alreadyThere,
    fib: tally,
    fib_progress: Object.fromEntries(mirror.progress().map((m) => [`${m.f * 100}%`, m.at !== undefined && m.at <= deadline ? sec(Math.max(0, m.at - t0)) : null])),
    probes,
    settled_s: settled !== undefined ? sec(settled - t0) : null,
    daemon_done_s: settled !== undefined && sawBusy ? sec(Math.max(0, done - t0)) : null, // never seen busy: none
    kernel_changes: changes.route_new + changes.route_del + changes.nexthop_new + changes.nexthop_del,
    kernel_changes_by_kind: changes,
    cpu_s: Number(cpu.toFixed(2)),
    timeout_s: TIMEOUT_MS / 1000,
    timed_out: timedOut, // the phase ran into its bound (otherwise it ended once FIB, probes and daemon were done)
    observed_s: sec(observedMs),
    fib_check: check.mismatches ? { mismatches: check.mismatches, dump: check.tally } : 'dump agrees',
    monitor_overflows: mirror.overflows,
    probe_cpu_share: Number((probeCpu / probeSeconds).toFixed(3)), // the prober's and sinks' CPU per second of the phase
    ...router.notes(),
  });
  return tFwd !== undefined;
}

async function benchRouter(tool) {
  process.stderr.write(`${tool}: ${N} routes, failures: ${FAILURES.join(', ')}${tool === 'krtsync' && KRTSYNC_DIR ? `; krtsync from ${KRTSYNC_DIR}` : ''}\n`);
  const topo = await buildTopology(tool);
  const env = { N, LINK, LOCAL_AS, DIR, NHT, FAILOVER, PROTO, netText, BIRD_RESTART, LOAD_TIMEOUT_MS, NODE_ARGS, LOG_TIMES, ...(KRTSYNC_DIR ? { BIN: path.join(path.resolve(KRTSYNC_DIR), 'bin', 'krtsync') } : {}) };
  const router = tool === 'krtsync' ? krtsyncRouter(topo, env) : birdRouter(topo, env);
  const mirror = new FibMirror({ ns: topo.r, n: N, netIndex, uplinks: topo.uplinks });
  try {
    await mirror.load(topo.ignoreLinkdown);
    // Load: both sources, until every net forwards via the primary and the daemon is idle (krtsync: from
    // the first announcement, the daemon running; BIRD: from the router's start, the speakers loaded).
    await router.start();
    const all = mirror.until(1);
    const t0 = nowMs();
    await router.load();
    const tAll = await withTimeout(all, `${tool}: every net via the primary`, LOAD_TIMEOUT_MS);
    while (await router.busy()) await sleep(200);
    await mirror.load(topo.ignoreLinkdown);
    record({ tool, failure: 'load', phase: 'both sources', forwarding_s: sec(tAll - t0), fib: mirror.tally(), cpu_s: Number(router.cpu().toFixed(2)) });
    for (const failure of FAILURES) {
      const [fail, recover] =
        failure === 'source' ? [() => router.failSource(), () => router.recoverSource()] : [() => topo.farEnd(false), () => topo.farEnd(true)];
      await phase(router, topo, mirror, { failure, kind: 'failure', to: 2, act: fail });
      const back = await phase(router, topo, mirror, { failure, kind: 'recovery', to: 1, act: recover });
      if (!back) {
        process.stderr.write(`  ${tool}: not back on the primary after ${failure}; the remaining failures are skipped\n`);
        break;
      }
    }
    record({ tool, failure: 'all', phase: 'peak rss', rss_mb: router.hwmMb() });
  } catch (e) {
    const log = router.log;
    if (fs.existsSync(log)) process.stderr.write(fs.readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') + '\n');
    throw e;
  } finally {
    await router.stop();
    mirror.close();
    await topo.close();
  }
}

// ------------------------------------------------------------------ report
function table(failure) {
  const tools = ONLY.filter((t) => results.some((r) => r.tool === t));
  const get = (t, kind) => results.find((r) => r.tool === t && r.failure === failure && r.phase === kind);
  // Not there: the phase ran into its bound, or (probes) it ended with the FIB and the daemon done and a probe lost after.
  const timeout = (r) => (r.timed_out ? `> ${r.timeout_s} s` : `not by the end, ${r.observed_s} s`);
  const fwd = (r) =>
    r.fib_on_target_at_start ? `0 s (every net already via uplink ${r.phase === 'failure' ? 2 : 1})` : r.forwarding_s !== null ? `${r.forwarding_s} s` : `${timeout(r)} (${r.fib[r.phase === 'failure' ? 'via2' : 'via1'].toLocaleString('en')} of ${N.toLocaleString('en')} moved)`;
  const probe = (r) =>
    `${r.probes.moved_s !== null ? `${r.probes.moved_s} s` : `${timeout(r)} (${r.probes.moved} of ${r.probes.destinations})`}; last via the old link ${r.probes.last_via_old_s !== null ? `${r.probes.last_via_old_s} s` : '–'}; ${r.probes.lost.toLocaleString('en')} lost`;
  const waits = (r) =>
    r.tool === 'krtsync' ? (r.failed_max ? `${r.failed_max.toLocaleString('en')} failed` : 'none failed') : r.primary_session_established_s !== null ? `session at ${r.primary_session_established_s} s` : '–';
  // [label, cell text, the figure a ratio is taken of]
  const rows = [];
  for (const kind of ['failure', 'recovery']) {
    rows.push(
      [`${kind}: forwarding, every net (FIB)`, fwd, (r) => r.forwarding_s],
      [`${kind}: forwarding, probes (${K} destinations, each every ${((K / RATE) * 1000).toFixed(1)} ms)`, probe, (r) => r.probes.moved_s],
      [`${kind}: settled`, (r) => (r.settled_s !== null ? `${r.settled_s} s` : timeout(r)), (r) => r.settled_s],
      [`${kind}: daemon done (its first idle answer after its last busy one)`, (r) => (r.daemon_done_s != null ? `${r.daemon_done_s} s` : '–'), (r) => r.daemon_done_s],
      [`${kind}: kernel changes`, (r) => r.kernel_changes.toLocaleString('en')],
      [`${kind}: CPU (user+sys)`, (r) => `${r.cpu_s} s`, (r) => r.cpu_s],
      [`${kind}: waits (krtsync: routes failed, to be retried; BIRD: primary session back)`, waits],
    );
  }
  // Ratios only where both daemons failed over: a recovery from a failure that moved nothing is no comparison.
  const ratio = tools.includes('krtsync') && tools.includes('bird') && ['krtsync', 'bird'].every((t) => get(t, 'failure')?.forwarding_s != null);
  const out = [`| ${failure}, ${N.toLocaleString('en')} IPv4 nets | ${tools.join(' | ')} |${ratio ? ' BIRD 2 ÷ krtsync |' : ''}`, `| --- |${tools.map(() => ' --- |').join('')}${ratio ? ' ---: |' : ''}`];
  for (const [label, text, figure] of rows) {
    const cells = tools.map((t) => (get(t, label.split(':')[0]) ? text(get(t, label.split(':')[0])) : '–'));
    let q = '';
    if (ratio) {
      const k = get('krtsync', label.split(':')[0]);
      const b = get('bird', label.split(':')[0]);
      // Only where both converged: a ratio to a phase that timed out says nothing.
      const both = k && b && k.forwarding_s !== null && b.forwarding_s !== null;
      const kv = both && figure?.(k);
      const bv = both && figure?.(b);
      q = ` ${typeof kv === 'number' && typeof bv === 'number' && kv > 0 ? `${(bv / kv).toFixed(1)}×` : '–'} |`;
    }
    out.push(`| ${label} | ${cells.join(' | ')} |${q}`);
  }
  const rss = (t) => `${results.find((r) => r.tool === t && r.phase === 'peak rss')?.rss_mb ?? '–'} MB`;
  out.push(`| peak RSS (whole run) | ${tools.map(rss).join(' | ')} |${ratio ? ' |' : ''}`);
  return out.join('\n');
}

async function main() {
  if (process.getuid && process.getuid() !== 0) throw new Error('bench:failover needs root (network namespaces)');
  const machine = machineFacts();
  process.stderr.write(`machine: ${JSON.stringify(machine)}\n`);
  if (ONLY.includes('bird')) process.stderr.write(`${ensureBird()}\n`);
  for (const tool of ONLY) await benchRouter(tool);
  for (const f of FAILURES) process.stdout.write(`${table(f)}\n\n`);
  for (const r of results) process.stdout.write(`${JSON.stringify({ ...r, machine })}\n`);
  process.stderr.write(strayBirdWarning());
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:failover failed: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
