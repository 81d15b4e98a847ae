#!/usr/bin/env node
// End-to-end benchmark: `npm run bench:e2e -- --routes N [--family ipv4|ipv6] [--only krtsync,bird,ip]`
// (default 1,000,000 IPv4 /24s from 11.0.0.0; IPv6 uses /48s from 3fff::/20, the documentation
// prefix of RFC 9637). krtsync, BIRD 2 and `ip -batch` side by side, in the same run, each in a
// scratch network namespace of its own (created here, deleted on exit, error or Ctrl-C; nothing in
// the root namespace is touched and no traffic is sent). Everything is measured from outside the
// process under test: kernel state through a netlink monitor opened inside the namespace (every
// RTM_NEWROUTE/DELROUTE is parsed for protocol, destination and gateway), READY=1 through a
// NOTIFY_SOCKET this script binds, peak RSS from /proc/PID/status (VmHWM).
//
// krtsync: config = static protocol with a routes file of N routes, a stream protocol (preference
// 300, so its routes win), a kernel protocol for the family.
// krtsync+metrics: the same, with the metrics listener on (metrics.listen) and a scraper in the
// namespace fetching /metrics every second through every phase (Prometheus scrapes every 15-60 s):
// its cost is the difference to the krtsync row of the same run; the scrape times are printed too
// (as the scraper timed them, and as the daemon reports them in krtsync_scrape_duration_seconds).
// krtsync-tracking: the same as krtsync, with nexthop_tracking: false (on by default: the difference
// to the krtsync row of the same run is tracking's cost; docs/nexthop-tracking.md, "On by default").
//   cold     start -> all N in the kernel, and -> READY=1; CPU to READY, also split: the JS thread / every other thread
//   restart  SIGKILL with N installed, start again -> READY=1; kernel route changes meanwhile (must be 0)
//   flap     a second link, through which nothing goes, loses carrier for 0.5 s: krtsync's CPU until 2 s later
//   churn    a stream client announces every net with a new next hop as fast as the socket takes it
//            -> the kernel holds every new next hop
//   shutdown SIGTERM -> process exit; none of ours left, the foreign route untouched
// BIRD 2 (installed with apt-get if missing, never left running): static protocol with the same
// routes, exported by its kernel protocol. cold, restart (SIGKILL, start again -> its kernel protocol
// has logged a prune after its first scan and birdc gets prompt answers again; changes counted as for
// krtsync), churn (`birdc configure` with every next hop changed), shutdown (`birdc down`).
// ip -batch: add, replace (churn), delete, in address order.
// C floor (IPv4): scripts/bench/c-floor.c, compiled with cc, adds the same N routes with the same
// gateway in batched requests through one socket, in krtsync's trie-spread order (cold start: until the observer has seen all N),
// then deletes them (shutdown: until it exits, every delete answered); every tool's cold start and
// shutdown is printed as a ratio to it too. It runs right before krtsync.
// The observer also counts nexthop object notifications (RTNLGRP_NEXTHOP) by nh_protocol: restart
// prints route changes / nexthop object changes.
//
// krtsync runs as deployed: node with the flags of bin/krtsync's shebang (the daemon's V8 settings),
// then --node-args. --dual-stack adds a kernel protocol for the other family (no routes of its own).
//
// --baseline LABEL=DIR[,LABEL=DIR...]: the krtsync scenarios once more for each other checkout (its
// dist/ built, e.g. a clone of main after `npm ci`), run by its own bin/krtsync, so a change is
// compared with what it replaces in the same run and the same machine state (tool "krtsync LABEL").
//
// Output: a Markdown table, then one JSON line per (tool, scenario).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { NetlinkSocket, UnixDatagramSocket } = require('../../dist/netlink/socket');
const { BIN, arg, checkArgs, shebangFlags, sh, sec, sleep, settle, threadCpuSeconds, schedstat, withTimeout: withTimeoutMs, scratchDir, beforeScratchRemoved, addNamespace, dropNamespace, track, startIn: harnessStartIn, ensureBird, machine: machineFacts, strayBirdWarning } = require('./harness');
const C = require('../../dist/netlink/constants');
const { krtsyncBusy, krtsyncControl } = require('./failover-control');
const { trieSpreadOrder } = require('../../dist/netlink/order');

/**
 * The scheduler's view at READY: seconds the JS thread, and the other threads together (nearly all
 * of it the route pipeline's send queue, `krtsync-send`), were runnable but waiting for a CPU. A
 * loaded machine shows here; what is neither CPU nor wait is sleep (for the sender: nothing queued).
 */
function schedFields(threads) {
  if (!threads || !threads.mainSched) return {};
  const r = (x) => Number(x.toFixed(2));
  return { js_wait_s: r(threads.mainSched.wait), threads_wait_s: r(threads.others.wait) };
}

// ------------------------------------------------------------------ arguments
const USAGE =
  'usage: bench:e2e -- [--routes N] [--family ipv4|ipv6] [--only cfloor,krtsync,krtsync+metrics,krtsync-tracking,bird,ip|none] [--baseline LABEL=DIR[,...]] [--timeout S] [--scrape-every S] [--keep-log DIR] [--node-args "FLAGS"] [--log-times] [--no-observer] [--threads] [--dual-stack] [--cold-only] [--restart-only] [--snapshot-at-sent]';
checkArgs(
  'bench:e2e',
  USAGE,
  ['routes', 'family', 'only', 'baseline', 'timeout', 'scrape-every', 'keep-log', 'node-args'],
  ['log-times', 'cold-only', 'restart-only', 'snapshot-at-sent', 'dual-stack', 'no-observer', 'threads'],
);
const N = Number(arg('routes', '1000000'));
const FAMILY = arg('family', 'ipv4');
const ONLY = new Set(arg('only', 'cfloor,krtsync,krtsync+metrics,bird,ip').split(','));
const LOG_TIMES = process.argv.includes('--log-times'); // krtsync's log lines get "+N ms" since its start
const COLD_ONLY = process.argv.includes('--cold-only');
const THREADS = process.argv.includes('--threads'); // each krtsync thread's CPU at READY (cold start), on stderr
// No observer (with --cold-only only): "all N in the kernel" is the tool's own word, krtsync's READY=1 and
// the C floor's exit (each after the kernel answered its last add), checked by a count of the kernel's
// routes after the clock stopped. The observer decodes every notification in this process, on the same
// two cores: about 1.5 s of CPU for a million adds, beside a floor that leaves it a core and beside a
// krtsync that does not (observer_cpu_s).
const NO_OBSERVER = process.argv.includes('--no-observer');
if (NO_OBSERVER && (!COLD_ONLY || [...ONLY].some((t) => !['cfloor', 'krtsync', 'none'].includes(t)))) {
  console.error('bench:e2e: --no-observer goes with --cold-only and --only cfloor,krtsync (the other scenarios count changes with the observer)');
  process.exit(2);
}
// A kernel protocol for the other family too (with no routes): its monitor hears this family's route changes and filters them.
const DUAL_STACK = process.argv.includes('--dual-stack');
const SNAPSHOT_AT_SENT = process.argv.includes('--snapshot-at-sent');
const KEEP_LOG = arg('keep-log', undefined); // copy krtsync's log here (a baseline's to KEEP_LOG.LABEL) before the scratch directory goes
const RESTART_ONLY = process.argv.includes('--restart-only'); // krtsync: cold start, SIGKILL, restart, SIGTERM // krtsync: cold start, then SIGTERM (no restart or churn)
const NODE_ARGS = arg('node-args', '').split(' ').filter(Boolean); // e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
const TIMEOUT_MS = Number(arg('timeout', '300')) * 1000;
const BASELINES = arg('baseline', '')
  .split(',')
  .filter(Boolean)
  .map((spec) => {
    const m = /^([\w.-]+)=(.+)$/.exec(spec);
    const bin = m ? path.join(path.resolve(m[2]), 'bin', 'krtsync') : '';
    if (!m || !fs.existsSync(bin) || !fs.existsSync(path.join(path.resolve(m[2]), 'dist'))) {
      console.error(`bench:e2e: --baseline ${spec}: want LABEL=DIR, DIR a checkout with bin/krtsync and a built dist/`);
      process.exit(2);
    }
    return { tool: `krtsync ${m[1]}`, bin };
  });
const SCRAPE_MS = Number(arg('scrape-every', '1000')); // krtsync+metrics: ms between scrapes; 0: listener on, nobody scrapes
if (!Number.isInteger(N) || N < 1 || N > 1 << 24 || !['ipv4', 'ipv6'].includes(FAMILY)) {
  console.error(USAGE);
  process.exit(2);
}
const V6 = FAMILY === 'ipv6';
const GW1 = V6 ? '2001:db8:1::2' : '192.0.2.2';
const GW2 = V6 ? '2001:db8:1::3' : '192.0.2.3';
const FOREIGN = V6 ? '2001:db8:99::/48 via 2001:db8:1::9 proto static' : '198.51.100.0/24 via 192.0.2.9 proto static';
const PROTO_KRT = 144;
const PROTO_BIRD = 12; // RTPROT_BIRD
const PROTO_IP = 145; // what the ip -batch runs mark their routes with

function netText(i) {
  if (V6) return `3fff:${(i >>> 16).toString(16)}:${(i & 0xffff).toString(16)}::/48`;
  const w = ((11 << 24) + i * 256) >>> 0;
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.0/24`;
}
/** Route index of a destination in the notification buffer, or -1 when it is not one of ours. */
function netIndex(buf, off, dstLen) {
  if (V6) {
    if (dstLen !== 48 || buf.readUInt16BE(off) !== 0x3fff) return -1;
    return (buf.readUInt16BE(off + 2) << 16) | buf.readUInt16BE(off + 4);
  }
  if (dstLen !== 24) return -1;
  const i = (buf.readUInt32BE(off) - (11 << 24)) / 256;
  return i >= 0 && i < N ? i : -1;
}
function ipv6Bytes(a) {
  const [head, tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const words = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((x) => parseInt(x, 16));
  return words.flatMap((w) => [w >> 8, w & 255]);
}

// ------------------------------------------------------------------ namespaces and cleanup
const DIR = scratchDir('krtsync-e2e-');
if (KEEP_LOG)
  beforeScratchRemoved(() => {
    for (const f of fs.readdirSync(DIR)) {
      if (f === 'krtsync.log') fs.copyFileSync(path.join(DIR, f), KEEP_LOG);
      else if (f.startsWith('krtsync-') && f.endsWith('.log')) fs.copyFileSync(path.join(DIR, f), `${KEEP_LOG}.${f.slice('krtsync-'.length, -'.log'.length)}`);
    }
  });

function makeNamespace(tag) {
  const ns = addNamespace(`krte2e-${tag}`);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
  sh('ip', ['-n', ns, '-batch', '-'], {
    input:
      ['link set lo up', 'link add veth0 type veth peer name veth1', 'link set veth0 up', 'link set veth1 up', 'addr add 192.0.2.1/24 dev veth0', 'addr add 2001:db8:1::1/64 dev veth0 nodad', `route add ${FOREIGN}`,
      // A second link, through which nothing goes: the flap scenario takes its carrier away and back.
      'link add veth2 type veth peer name veth3', 'link set veth2 up', 'link set veth3 up', 'addr add 198.51.100.1/24 dev veth2'].join(
        '\n',
      ) + '\n',
  });
  return ns;
}
/** Routes of `proto` in the namespace's main table, and whether the foreign route is still there. */
function kernelCount(ns, proto) {
  const fam = V6 ? '-6' : '-4';
  const n = Number(sh('sh', ['-c', `ip -n ${ns} ${fam} route show table main proto ${proto} | wc -l`]).trim());
  const foreign = sh('ip', ['-n', ns, fam, 'route', 'show', 'proto', 'static']).includes(FOREIGN.split(' ')[0].replace(/\/(24|48)$/, ''));
  return { n, foreign };
}

// ------------------------------------------------------------------ the observer
/**
 * The daemon's own word on a phase: its first idle answer after its last busy one (`show protocols` every
 * 50 ms from the phase's start, as bench:failover's "daemon done"), once `over()` (the observer has seen every
 * change); undefined when it was never seen busy. No wait for an observer that decodes the kernel's
 * notifications on the same two cores.
 */
async function daemonDone(ctl, over) {
  let idleSince;
  let sawBusy = false;
  for (;;) {
    const asked = performance.now();
    if (krtsyncBusy(await ctl.request('show-protocols'))) {
      idleSince = undefined;
      sawBusy = true;
    } else idleSince ??= asked;
    // Never seen busy (a phase shorter than the polls): no figure.
    if (idleSince !== undefined && over()) return sawBusy ? idleSince : undefined;
    await sleep(50);
  }
}

/**
 * A netlink monitor inside the namespace. Counts every route notification by protocol, and for a
 * watch (protocol, gateway or deletion) marks each of our N nets once, noting when all N are marked.
 */
class Observer {
  constructor(ns) {
    this.changes = new Map(); // protocol -> route notifications seen
    this.nhChanges = new Map(); // protocol -> nexthop object notifications seen
    this.overflows = 0;
    this.watch = undefined;
    if (NO_OBSERVER) return; // until() never resolves: the callers take the tool's own word instead
    this.sock = NetlinkSocket.open({ netns: ns, groups: [V6 ? C.RTNLGRP_IPV6_ROUTE : C.RTNLGRP_IPV4_ROUTE, C.RTNLGRP_NEXTHOP], rcvbuf: 1 << 30, recvBufferSize: 8 << 20 });
    this.sock.start((bytes, errno) => {
      if (bytes > 0) this.parse(this.sock.buffer, bytes);
      if (errno === 105) this.overflows++;
    });
  }
  changesOf(proto) {
    return this.changes.get(proto) ?? 0;
  }
  nexthopChangesOf(proto) {
    return this.nhChanges.get(proto) ?? 0;
  }
  /**
   * Resolves with the time (performance.now()) at which every net carries `gw` from `proto` (or, with
   * del, is deleted); `first` is then the time the first of them did.
   */
  until(proto, gw, del = false) {
    return new Promise((resolve) => {
      this.watch = { proto, gw: gw ? Buffer.from(V6 ? ipv6Bytes(gw) : gw.split('.').map(Number)) : undefined, del, seen: new Uint8Array(N), count: 0, resolve };
    });
  }
  parse(buf, len) {
    let p = 0;
    while (p + 16 <= len) {
      const mlen = buf.readUInt32LE(p);
      const type = buf.readUInt16LE(p + 4);
      if (mlen < 16 || p + mlen > len) break;
      if ((type === C.RTM_NEWNEXTHOP || type === C.RTM_DELNEXTHOP) && mlen >= 24) this.nhChanges.set(buf[p + 18], (this.nhChanges.get(buf[p + 18]) ?? 0) + 1); // nhmsg: family, scope, protocol
      if ((type === C.RTM_NEWROUTE || type === C.RTM_DELROUTE) && mlen >= 28) {
        const r = p + 16;
        const dstLen = buf[r + 1];
        const proto = buf[r + 5];
        this.changes.set(proto, (this.changes.get(proto) ?? 0) + 1);
        const w = this.watch;
        if (w && w.proto === proto && w.del === (type === C.RTM_DELROUTE)) {
          let dst = -1;
          let gwOk = w.gw === undefined;
          let a = r + 12;
          while (a + 4 <= p + mlen) {
            const alen = buf.readUInt16LE(a);
            const atype = buf.readUInt16LE(a + 2) & 0x3fff;
            if (alen < 4) break;
            if (atype === 1) dst = netIndex(buf, a + 4, dstLen);
            else if (atype === 5 && w.gw) gwOk = buf.compare(w.gw, 0, w.gw.length, a + 4, a + 4 + w.gw.length) === 0;
            a += (alen + 3) & ~3;
          }
          if (dst >= 0 && gwOk && w.seen[dst] === 0) {
            w.seen[dst] = 1;
            if (w.count === 0) this.first = performance.now();
            if (++w.count === N) {
              this.watch = undefined;
              w.resolve(performance.now());
            }
          }
        }
      }
      p += (mlen + 3) & ~3;
    }
  }
  close() {
    this.sock?.close();
  }
}

// ------------------------------------------------------------------ helpers
const withTimeout = (p, what, ms = TIMEOUT_MS) => withTimeoutMs(p, what, ms);
/** Spawns `cmd` inside the namespace; tracks its exit and its peak RSS. */
const startIn = (ns, cmd, args, env = {}, logFile) => harnessStartIn(ns, cmd, args, { env, logFile, logTimes: LOG_TIMES });

/** CPU seconds (user + system) of this process, the observer's, since `u0`: it shares the two cores with what it watches. */
const cpuSince = (u0) => {
  const u = process.cpuUsage(u0);
  return Number(((u.user + u.system) / 1e6).toFixed(2));
};

const results = [];
function record(tool, scenario, fields) {
  const row = { tool, scenario, routes: N, family: FAMILY, ...fields };
  results.push(row);
  process.stderr.write(`  ${JSON.stringify(row)}\n`);
}

// ------------------------------------------------------------------ scraper
const SCRAPER = `
const url = process.argv[1];
const loop = async () => {
  const t0 = performance.now();
  try {
    const r = await fetch(url);
    const body = await r.text();
    const m = /^krtsync_scrape_duration_seconds (\\S+)$/m.exec(body);
    process.stdout.write(JSON.stringify({ at: Date.now(), ms: performance.now() - t0, status: r.status, bytes: body.length, server_ms: m ? Number(m[1]) * 1000 : null }) + '\\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ at: Date.now(), error: String(e.cause?.code ?? e.message) }) + '\\n');
  }
  setTimeout(loop, Math.max(0, Number(process.argv[2]) - (performance.now() - t0)));
};
loop();`;

/** Scrapes url every second from inside the namespace until stop(); scrapes() is what it saw. */
function startScraper(ns, url) {
  const child = track(spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SCRAPER, url, String(SCRAPE_MS)], { stdio: ['ignore', 'pipe', 'ignore'] }));
  const seen = [];
  let rest = '';
  child.stdout.on('data', (c) => {
    const lines = (rest + c).split('\n');
    rest = lines.pop();
    for (const l of lines) seen.push(JSON.parse(l));
  });
  const exited = new Promise((r) => child.on('exit', r));
  return {
    scrapes: () => seen,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

function scrapeStats(list) {
  const ok = list.filter((x) => x.status === 200);
  const pct = (a, q) => (a.length ? Number(a[Math.min(a.length - 1, Math.floor(q * a.length))].toFixed(1)) : null);
  const ms = ok.map((x) => x.ms).sort((a, b) => a - b);
  const server = ok.map((x) => x.server_ms).filter((x) => x !== null).sort((a, b) => a - b);
  // failed: while no daemon listened (between the kill and the restart).
  return { scrapes: ok.length, failed: list.length - ok.length, ms_p50: pct(ms, 0.5), ms_p99: pct(ms, 0.99), ms_max: pct(ms, 1), server_ms_p50: pct(server, 0.5), server_ms_max: pct(server, 1), bytes: ok.length ? ok[ok.length - 1].bytes : null };
}

// ------------------------------------------------------------------ krtsync
async function benchKrtsync(tool = 'krtsync', bin = BIN) {
  const withMetrics = tool === 'krtsync+metrics';
  const withoutTracking = tool === 'krtsync-tracking';
  process.stderr.write(`${tool}: ${N} routes\n`);
  const ns = makeNamespace(withMetrics ? 'krtm' : withoutTracking ? 'krtt' : bin === BIN ? 'krt' : 'krtb');
  const scraper = withMetrics && SCRAPE_MS > 0 ? startScraper(ns, 'http://127.0.0.1:9725/metrics') : undefined;
  const phases = {};
  const obs = new Observer(ns);
  const tag = tool.replace(/[^\w-]+/g, '-');
  const sock = path.join(DIR, `${tag}.sock`);
  const notifyPath = path.join(DIR, `${tag}-notify.sock`);
  const notify = UnixDatagramSocket.open(notifyPath);
  let onReady;
  notify.start((datagrams) => {
    for (const d of datagrams) if (/^READY=1$/m.test(d.data.toString()) && onReady) onReady(performance.now());
  });
  const readyOnce = () => new Promise((resolve) => (onReady = resolve));
  const routes = path.join(DIR, 'routes.txt');
  const lines = new Array(N);
  for (let i = 0; i < N; i++) lines[i] = `${netText(i)} via ${GW1}`;
  fs.writeFileSync(routes, lines.join('\n') + '\n');
  const config = path.join(DIR, `${tag}.yaml`);
  fs.writeFileSync(
    config,
    `log: { level: info }
control: { socket: ${sock} }
${withMetrics ? 'metrics: { listen: "127.0.0.1:9725" }\n' : ''}${withoutTracking ? 'nexthop_tracking: false\n' : ''}protocols:
  - { name: static1, type: static, routes_file: ${routes} }
  - { name: stream1, type: stream, preference: 300 }
  - { name: kernel1, type: kernel, family: ${FAMILY}, kernel_table: main }
${DUAL_STACK ? `  - { name: kernel2, type: kernel, family: ${V6 ? 'ipv4' : 'ipv6'}, kernel_table: main }\n` : ''}`,
  );
  const log = path.join(DIR, `${tag}.log`);
  // The scraper's own start (a node process) must not land on the daemon's cold start.
  if (scraper) await withTimeout((async () => { while (scraper.scrapes().length === 0) await sleep(50); })(), 'scraper start');
  // As deployed: with the node flags of the command's shebang, then --node-args.
  const start = () => startIn(ns, process.execPath, [...shebangFlags(bin), ...NODE_ARGS, bin, 'run', '--config', config, '--log-output', 'stderr'], { NOTIFY_SOCKET: notifyPath }, log);
  const hwm = [];
  try {
    // cold start, on a quiet machine (what the run before left the kernel to do is done)
    const settled = await settle();
    let ready = readyOnce();
    let full = obs.until(PROTO_KRT, GW1);
    const u0 = process.cpuUsage();
    let t0 = performance.now();
    let d = start();
    const [tFull, tReady] = NO_OBSERVER ? await withTimeout(ready, 'krtsync cold start').then((t) => [t, t]) : await withTimeout(Promise.all([full, ready]), 'krtsync cold start');
    const observerCpu = cpuSince(u0);
    const threads = threadCpuSeconds(d.pid);
    if (THREADS) {
      // Each thread's CPU and wait for a CPU at READY, by name: the JS thread and V8's workers are all "node".
      for (const tid of fs.readdirSync(`/proc/${d.pid}/task`)) {
        const s = schedstat(d.pid, tid);
        if (s === undefined || s.run < 0.001) continue;
        const name = tid === String(d.pid) ? 'js' : fs.readFileSync(`/proc/${d.pid}/task/${tid}/comm`, 'utf8').trim();
        process.stderr.write(`thread ${tag} ${name}: cpu ${s.run.toFixed(3)} s, waited ${s.wait.toFixed(3)} s\n`);
      }
    }
    // Without the observer: READY=1 (every add answered), then the kernel's count, after the clock stopped.
    const installed = NO_OBSERVER ? { installed: kernelCount(ns, PROTO_KRT).n } : {};
    record(tool, 'cold start', { kernel_s: sec(tFull - t0), ready_s: sec(tReady - t0), cpu_s: Number(d.cpu().toFixed(2)), cpu_js_s: threads && Number(threads.main.toFixed(2)), cpu_threads_s: threads && Number(threads.other.toFixed(2)), first_add_s: NO_OBSERVER ? null : sec(obs.first - t0), ...schedFields(threads), observer_cpu_s: observerCpu, settled_ms: settled, ...installed });
    if (COLD_ONLY) {
      // For profiling the first sync and shutdown: a SIGKILL would lose the cold start's --cpu-prof.
      t0 = performance.now();
      process.kill(d.pid, 'SIGTERM');
      const ex = await withTimeout(d.exited, 'krtsync shutdown');
      record(tool, 'shutdown', { exit_s: sec(d.exitedAt - t0), exit_code: ex.code, left: kernelCount(ns, PROTO_KRT).n });
      // The cold start's process to its exit (the shutdown adds little): what a young generation costs.
      record(tool, 'peak rss', { cold_rss_mb: Math.round(d.hwmKb / 1024) });
      return;
    }

    // restart: SIGKILL with N installed, start again
    process.kill(d.pid, 'SIGKILL');
    await d.exited;
    hwm.push(d.hwmKb);
    await sleep(200);
    const before = obs.changesOf(PROTO_KRT);
    const nhBefore = obs.nexthopChangesOf(PROTO_KRT);
    ready = readyOnce();
    t0 = performance.now();
    d = start();
    const tReady2 = await withTimeout(ready, 'krtsync restart');
    const cpuReady2 = d.cpu();
    await sleep(1000); // anything late would show up here
    record(tool, 'restart', { ready_s: sec(tReady2 - t0), kernel_changes: obs.changesOf(PROTO_KRT) - before, nexthop_changes: obs.nexthopChangesOf(PROTO_KRT) - nhBefore, cpu_s: Number(cpuReady2.toFixed(2)) });

    // flap: a link nothing of ours goes through loses carrier and gets it back (its peer down, then up
    // 0.5 s later); the daemon's CPU from the flap until 2 s after it, nothing else going on
    const cpuFlap0 = d.cpu();
    const flapChanges0 = obs.changesOf(PROTO_KRT);
    sh('ip', ['-n', ns, 'link', 'set', 'veth3', 'down']);
    await sleep(500);
    sh('ip', ['-n', ns, 'link', 'set', 'veth3', 'up']);
    await sleep(2000);
    record(tool, 'flap', { cpu_s: Number((d.cpu() - cpuFlap0).toFixed(2)), kernel_changes: obs.changesOf(PROTO_KRT) - flapChanges0 });
    if (RESTART_ONLY) {
      // For profiling the restart: SIGTERM now, no churn.
      process.kill(d.pid, 'SIGTERM');
      await withTimeout(d.exited, 'krtsync shutdown');
      return;
    }

    // churn: a stream client changes every next hop as fast as it can
    const conn = net.createConnection(sock);
    await new Promise((res, rej) => conn.once('connect', res).once('error', rej));
    conn.write(JSON.stringify({ id: 1, command: 'feed', args: { format: 'krtsync', client: 'bench' } }) + '\n');
    await new Promise((res) => conn.once('data', res));
    full = obs.until(PROTO_KRT, GW2);
    const ctl = await krtsyncControl(sock);
    let observed = false;
    full.then(() => (observed = true));
    t0 = performance.now();
    const done = daemonDone(ctl, () => observed);
    phases.churn = [Date.now()];
    const cpuChurn0 = d.cpu();
    const CHUNK = 1000;
    for (let i = 0; i < N; i += CHUNK) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + CHUNK); j++) batch.push(`${netText(j)} via ${GW2}`);
      if (!conn.write(JSON.stringify({ announce: batch }) + '\n')) await new Promise((res) => conn.once('drain', res));
    }
    const tSent = performance.now();
    if (SNAPSHOT_AT_SENT) process.kill(d.pid, 'SIGUSR2'); // with --node-args --heapsnapshot-signal=SIGUSR2: the heap at the churn's peak
    const tChurn = await withTimeout(full, 'krtsync churn');
    phases.churn.push(Date.now());
    const cpuChurn = d.cpu() - cpuChurn0;
    const tDone = await withTimeout(done, 'krtsync churn: idle');
    ctl.close();
    record(tool, 'churn', { kernel_s: sec(tChurn - t0), sent_s: sec(tSent - t0), daemon_done_s: tDone !== undefined ? sec(tDone - t0) : undefined, cpu_s: Number(cpuChurn.toFixed(2)) });
    const cpuShutdown0 = d.cpu();

    // shutdown
    t0 = performance.now();
    process.kill(d.pid, 'SIGTERM');
    const ex = await withTimeout(d.exited, 'krtsync shutdown');
    conn.destroy();
    hwm.push(d.hwmKb);
    const left = kernelCount(ns, PROTO_KRT);
    record(tool, 'shutdown', { exit_s: sec(d.exitedAt - t0), exit_code: ex.code, left: left.n, foreign_kept: left.foreign, cpu_s: Number((d.cpuS - cpuShutdown0).toFixed(2)) });
    record(tool, 'peak rss', { rss_mb: Math.round(Math.max(...hwm) / 1024), cold_rss_mb: Math.round(hwm[0] / 1024), restart_churn_rss_mb: Math.round(hwm[1] / 1024) });
    if (obs.overflows) record(tool, 'observer', { overflows: obs.overflows });
    if (scraper) {
      const all = scraper.scrapes();
      record(tool, 'scrapes', scrapeStats(all));
      record(tool, 'scrapes during churn', scrapeStats(all.filter((x) => x.at >= phases.churn[0] && x.at <= phases.churn[1])));
    }
  } catch (e) {
    process.stderr.write(fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-30).join('\n') : '');
    throw e;
  } finally {
    await scraper?.stop();
    notify.close();
    obs.close();
    dropNamespace(ns);
    if (fs.existsSync(log)) {
      const phases = fs.readFileSync(log, 'utf8').split('\n').filter((l) => LOG_TIMES ? /./ : /ready in|in sync|first scan|withdr|loaded|routes file|first feed/.test(l));
      process.stderr.write(phases.map((l) => `    | ${l}\n`).join(''));
    }
  }
}

// ------------------------------------------------------------------ BIRD 2
async function benchBird() {
  const version = ensureBird();
  process.stderr.write(`${version}: ${N} routes\n`);
  const ns = makeNamespace('bird');
  const obs = new Observer(ns);
  const sock = path.join(DIR, 'bird.ctl');
  const conf = path.join(DIR, 'bird.conf');
  const af = V6 ? 'ipv6' : 'ipv4';
  // The routes are written into the static protocol's block (BIRD 2.0.12 takes no include there).
  const writeConf = (gw) => {
    const lines = new Array(N);
    for (let i = 0; i < N; i++) lines[i] = `route ${netText(i)} via ${gw};`;
    fs.writeFileSync(conf, `router id 192.0.2.1;\nlog stderr all;\nprotocol device { }\nprotocol kernel kr { debug { states, events }; ${af} { import none; export all; }; }\nprotocol static st {\n${af};\n${lines.join('\n')}\n}\n`);
  };
  writeConf(GW1);
  const birdc = (...args) => sh('ip', ['netns', 'exec', ns, 'birdc', '-s', sock, ...args]);
  // The restart's probe waits at most 5 s: birdc blocks this (synchronous) script for as long as BIRD
  // does not answer, and a BIRD busy for minutes would hold the restart's timeout off.
  const probe = () => sh('ip', ['netns', 'exec', ns, 'birdc', '-s', sock, 'show', 'status'], { timeout: 5000 });
  let b;
  try {
    let full = obs.until(PROTO_BIRD, GW1);
    let t0 = performance.now();
    b = startIn(ns, 'bird', ['-f', '-c', conf, '-s', sock, '-P', path.join(DIR, 'bird.pid')], {}, path.join(DIR, 'bird.log'));
    const tFull = await withTimeout(full, 'bird cold start');
    record('bird', 'cold start', { kernel_s: sec(tFull - t0) });
    const rss = [];

    // restart: SIGKILL with N installed (the routes stay), start again. BIRD says nothing like READY=1;
    // its kernel protocol has reconciled once it has scanned the kernel table and pruned what it no longer
    // exports, which it logs ("kr: Pruning table", debug events). The kernel changes are counted from the
    // kill until 1 s after that, as for krtsync.
    const birdLog = path.join(DIR, 'bird.log');
    const prunes = () => (fs.readFileSync(birdLog, 'utf8').match(/kr: Pruning table/g) ?? []).length;
    process.kill(b.pid, 'SIGKILL');
    await b.exited;
    rss.push(b.hwmKb);
    await sleep(200);
    const before = obs.changesOf(PROTO_BIRD);
    const prunedBefore = prunes();
    t0 = performance.now();
    b = startIn(ns, 'bird', ['-f', '-c', conf, '-s', sock, '-P', path.join(DIR, 'bird.pid')], {}, birdLog);
    // BIRD's log time is that of its event loop's cycle, and its kernel protocol may scan and prune again
    // once its export is complete: at 1M routes a cycle of several seconds follows the first prune, and
    // birdc gets no answer meanwhile. In sync: it has pruned, and then answers birdc at once three
    // times in a row, 300 ms apart; the time of the first of those answers.
    let tReady = 0;
    let waiting = true;
    const settled = await withTimeout(
      (async () => {
        while (prunes() === prunedBefore && waiting) await sleep(20);
        let quick = 0;
        while (quick < 3 && waiting) {
          const t = performance.now();
          try {
            probe();
          } catch {
            /* not answering */
          }
          const now = performance.now();
          if (now - t < 100) {
            if (quick++ === 0) tReady = t;
          } else quick = 0;
          if (quick < 3) await sleep(300);
        }
        return true;
      })(),
      'bird restart',
    ).catch(() => false);
    waiting = false;
    await sleep(1000);
    if (settled) record('bird', 'restart', { ready_s: sec(tReady - t0), kernel_changes: obs.changesOf(PROTO_BIRD) - before, note: 'in sync: pruned after its first scan, then answering birdc at once (idle)' });
    else {
      // BIRD 2.0.12 rewrites every IPv6 route of its own on a restart, slower as the table grows (200k:
      // 28 s; 1M: still busy after 7 minutes): past the timeout the restart is recorded as such, BIRD is
      // killed (it answers no birdc meanwhile, so churn and shutdown cannot be asked of it) and its
      // peak RSS is what the two processes reached.
      record('bird', 'restart', { ready_s: `> ${TIMEOUT_MS / 1000}`, kernel_changes: obs.changesOf(PROTO_BIRD) - before, note: `not in sync within ${TIMEOUT_MS / 1000} s; churn and shutdown not measured` });
      process.kill(b.pid, 'SIGKILL');
      await b.exited;
      rss.push(b.hwmKb);
      record('bird', 'peak rss', { rss_mb: Math.round(Math.max(...rss) / 1024), cold_rss_mb: Math.round(rss[0] / 1024), restart_churn_rss_mb: Math.round(rss[1] / 1024) });
      return;
    }

    writeConf(GW2);
    full = obs.until(PROTO_BIRD, GW2);
    t0 = performance.now();
    birdc('configure');
    const tChurn = await withTimeout(full, 'bird churn');
    record('bird', 'churn', { kernel_s: sec(tChurn - t0), note: 'birdc configure with every next hop changed' });

    t0 = performance.now();
    birdc('down');
    await withTimeout(b.exited, 'bird shutdown');
    const left = kernelCount(ns, PROTO_BIRD);
    record('bird', 'shutdown', { exit_s: sec(b.exitedAt - t0), left: left.n, foreign_kept: left.foreign });
    rss.push(b.hwmKb);
    record('bird', 'peak rss', { rss_mb: Math.round(Math.max(...rss) / 1024), cold_rss_mb: Math.round(rss[0] / 1024), restart_churn_rss_mb: Math.round(rss[1] / 1024) });
    if (obs.overflows) record('bird', 'observer', { overflows: obs.overflows });
  } finally {
    if (b && !b.exitedAt) {
      process.kill(b.pid, 'SIGKILL');
      await b.exited;
    }
    obs.close();
    dropNamespace(ns);
  }
}

// ------------------------------------------------------------------ ip -batch
async function benchIp() {
  process.stderr.write(`ip -batch: ${N} routes\n`);
  const ns = makeNamespace('ip');
  const file = path.join(DIR, 'ip.batch');
  const batch = (verb, gw) => {
    const lines = new Array(N);
    for (let i = 0; i < N; i++) lines[i] = `route ${verb} ${netText(i)}${gw ? ` via ${gw}` : ''} proto ${PROTO_IP}`;
    fs.writeFileSync(file, lines.join('\n') + '\n');
  };
  const run = () => {
    const t0 = performance.now();
    sh('ip', ['-n', ns, '-batch', file]);
    return sec(performance.now() - t0);
  };
  try {
    batch('add', GW1);
    const add = run();
    const after = kernelCount(ns, PROTO_IP);
    record('ip -batch', 'cold start', { kernel_s: add, installed: after.n });
    batch('replace', GW2);
    record('ip -batch', 'churn', { kernel_s: run(), note: 'route replace' });
    batch('del');
    const del = run();
    const left = kernelCount(ns, PROTO_IP);
    record('ip -batch', 'shutdown', { exit_s: del, left: left.n, foreign_kept: left.foreign, note: 'route del' });
  } finally {
    dropNamespace(ns);
  }
}

// ------------------------------------------------------------------ the C floor
const PROTO_C = 146;
/**
 * The kernel's own speed (scripts/bench/c-floor.c, compiled here): the same N plain gateway routes
 * added, then deleted, in batched requests through one socket, in a namespace made as the others
 * and watched by the same observer. Cold start: spawn -> the observer has seen all N (as for the
 * daemons); shutdown: spawn -> exit, every delete answered (as a daemon's exit).
 */
async function benchCFloor() {
  if (V6) {
    process.stderr.write('C floor: IPv4 only, skipped\n');
    return;
  }
  process.stderr.write(`C floor: ${N} routes\n`);
  const bin = path.join(DIR, 'c-floor');
  sh('cc', ['-O2', '-o', bin, path.join(__dirname, 'c-floor.c')]);
  // In the order krtsync's first sync and shutdown send (trie-spread): the kernel's trie keeps the
  // layout of the order routes went in, and deletes depend on it.
  const order = path.join(DIR, 'c-floor.order');
  fs.writeFileSync(order, Buffer.from(Uint32Array.from(trieSpreadOrder([...Array(N).keys()], (i) => ((11 << 24) + i * 256) >>> 0)).buffer));
  const ns = makeNamespace('cfloor');
  const obs = new Observer(ns);
  const run = async (op) => {
    const settled = await settle();
    const seen = obs.until(PROTO_C, op === 'add' ? GW1 : undefined, op === 'del');
    const u0 = process.cpuUsage();
    const t0 = performance.now();
    const child = track(spawn('ip', ['netns', 'exec', ns, bin, op, String(N), '254', String(PROTO_C), GW1, order], { env: { ...process.env, C_FLOOR_FIRST_OCTET: '11' }, stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    const code = await new Promise((r) => child.on('exit', r));
    const tExit = performance.now();
    const r = JSON.parse(out);
    if (code !== 0 || r.errors) throw new Error(`C floor ${op}: exit ${code}, ${r.errors} errors`);
    const tSeen = NO_OBSERVER ? tExit : await withTimeout(seen, `C floor ${op}`); // its exit follows its last answer
    return { kernel_s: sec(tSeen - t0), exit_s: sec(tExit - t0), own_s: r.seconds, observer_cpu_s: cpuSince(u0), settled_ms: settled };
  };
  try {
    const add = await run('add');
    record('C floor', 'cold start', { ...add, installed: kernelCount(ns, PROTO_C).n });
    const del = await run('del');
    const left = kernelCount(ns, PROTO_C);
    record('C floor', 'shutdown', { ...del, left: left.n, foreign_kept: left.foreign });
  } finally {
    obs.close();
    dropNamespace(ns);
  }
}

// ------------------------------------------------------------------ report
function table() {
  const get = (tool, scenario, f) => results.find((r) => r.tool === tool && r.scenario === scenario)?.[f];
  const cell = (v, unit = ' s') => (v === undefined ? '–' : `${v}${unit}`);
  const tools = ['krtsync', ...BASELINES.map((b) => b.tool), 'krtsync-tracking', 'krtsync+metrics', 'bird', 'ip -batch', 'C floor'].filter((t) => results.some((r) => r.tool === t));
  const ratio = (t, scenario, f, floorField) => {
    const v = get(t, scenario, f);
    const floor = get('C floor', scenario, floorField);
    return v === undefined || floor === undefined ? '–' : `${(v / floor).toFixed(2)}×`;
  };
  const rows = [
    ['cold start: all N in the kernel', (t) => cell(get(t, 'cold start', 'kernel_s'))],
    ['cold start: READY=1', (t) => cell(get(t, 'cold start', 'ready_s'))],
    ['cold start ÷ the C floor\'s (all N in the kernel)', (t) => ratio(t, 'cold start', 'kernel_s', 'kernel_s')],
    ['shutdown: until exit, none left', (t) => cell(get(t, 'shutdown', 'exit_s'))],
    ['shutdown ÷ the C floor\'s deletes (until exit)', (t) => ratio(t, 'shutdown', 'exit_s', 'exit_s')],
    ['restart: in sync (READY=1; BIRD: idle after its first prune)', (t) => cell(get(t, 'restart', 'ready_s'))],
    ['restart: kernel changes, routes / nexthop objects', (t) => `${cell(get(t, 'restart', 'kernel_changes'), '')} / ${cell(get(t, 'restart', 'nexthop_changes'), '')}`],
    ['flap of a link none of the routes uses: CPU until 2 s after (kernel changes)', (t) => `${cell(get(t, 'flap', 'cpu_s'))} (${cell(get(t, 'flap', 'kernel_changes'), '')})`],
    ['churn: every new next hop in the kernel', (t) => cell(get(t, 'churn', 'kernel_s'))],
    ['churn: daemon done (its first idle answer after its last busy one)', (t) => cell(get(t, 'churn', 'daemon_done_s'))],
    ['RSS of the cold-start process', (t) => cell(get(t, 'peak rss', 'cold_rss_mb'), ' MB')],
    ['peak RSS over all scenarios', (t) => cell(get(t, 'peak rss', 'rss_mb'), ' MB')],
    ['CPU (user+sys): cold start to READY / restart to READY / churn / shutdown', (t) => ['cold start', 'restart', 'churn', 'shutdown'].map((sc) => cell(get(t, sc, 'cpu_s'), '')).join(' / ') + ' s'],
    ['CPU of the cold start: JS thread / other threads (the kernel\'s adds in sendmsg)', (t) => `${cell(get(t, 'cold start', 'cpu_js_s'), '')} / ${cell(get(t, 'cold start', 'cpu_threads_s'), '')} s`],
    ['scrape of /metrics every 1 s: p50 / max (all phases)', (t) => scrapeCell(t, 'scrapes')],
    ['scrape during churn: p50 / max', (t) => scrapeCell(t, 'scrapes during churn')],
  ];
  const scrapeCell = (t, scenario) => {
    const r = results.find((x) => x.tool === t && x.scenario === scenario);
    return r ? `${r.ms_p50} / ${r.ms_max} ms (${r.scrapes}, ${r.failed} failed)` : '–';
  };
  const out = [`| ${N.toLocaleString('en')} ${FAMILY} routes | ${tools.join(' | ')} |`, `| --- |${tools.map(() => ' ---: |').join('')}`];
  for (const [label, f] of rows) out.push(`| ${label} | ${tools.map(f).join(' | ')} |`);
  return out.join('\n');
}

async function main() {
  if (process.getuid && process.getuid() !== 0) throw new Error('bench:e2e needs root (network namespaces)');
  const machine = machineFacts();
  process.stderr.write(`machine: ${JSON.stringify(machine)}\n`);
  if (ONLY.has('cfloor')) await benchCFloor();
  if (ONLY.has('krtsync')) await benchKrtsync('krtsync');
  for (const b of BASELINES) await benchKrtsync(b.tool, b.bin);
  if (ONLY.has('krtsync-tracking')) await benchKrtsync('krtsync-tracking');
  if (ONLY.has('krtsync+metrics')) await benchKrtsync('krtsync+metrics');
  if (ONLY.has('bird')) await benchBird();
  if (ONLY.has('ip')) await benchIp();
  process.stdout.write(`${table()}\n\n`);
  for (const r of results) process.stdout.write(`${JSON.stringify({ ...r, machine })}\n`);
  process.stderr.write(strayBirdWarning());
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:e2e failed: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
