'use strict';
// bench:failover's routers (failover.js): the same interface for krtsync (a stream protocol fed by
// this script as a BGP speaker's relay would, its kernel protocol installing) and BIRD 2 (two eBGP
// sessions to BIRD speakers in the upstream namespaces): start, load both sources, fail and recover
// the primary source, say whether the daemon is still busy, its CPU, peak RSS and stop. `env` is the
// run's settings and topology constants (failover.js).
const fs = require('node:fs');
const path = require('node:path');
const { nowMs } = require('./failover-fib');
const { birdControl, connectUnix, krtsyncBusy, krtsyncControl, lineReader } = require('./failover-control');
const { BIN, sec, shebangFlags, sleep, startIn, withTimeout } = require('./harness');

// ------------------------------------------------------------------ krtsync
function krtsyncRouter(topo, env) {
  const { N, LINK, LOCAL_AS, DIR, NHT, FAILOVER, PROTO, netText, NODE_ARGS = [], LOG_TIMES = false, BIN: bin = BIN } = env;
  const sock = path.join(DIR, 'krtsync.sock');
  const config = path.join(DIR, 'krtsync.yaml');
  const log = path.join(DIR, 'krtsync.log');
  fs.writeFileSync(
    config,
    `log: { level: info }
control: { socket: ${sock} }
nexthop_tracking: ${NHT === 'on' ? 'true' : 'false'}
protocols:
  - name: bgp
    type: stream
    startup_wait: 600s
    neighbors:
      - { address: ${LINK[1].gw} }
      - { address: ${LINK[2].gw} }
  - { name: kernel1, type: kernel, family: ipv4, kernel_table: main, failover: ${FAILOVER} }
`,
  );
  let d;
  let startedAt = 0;
  let ctl;
  let feed;
  let feedErrors = 0;
  let maxFailed = 0;
  const neighbor = (k) => ({ address: LINK[k].gw, as: LINK[k].as, local_as: LOCAL_AS, router_id: LINK[k].gw });
  const send = async (obj) => {
    if (!feed.write(JSON.stringify(obj) + '\n')) await new Promise((r) => feed.once('drain', r));
  };
  /** Neighbour k's N routes, 1,000 a line, then its end-of-RIB. */
  const announce = async (k) => {
    const nb = neighbor(k);
    const bgp = { origin: 'igp', as_path: LINK[k].path };
    for (let i = 0; i < N; i += 1000) {
      const batch = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) batch.push(`${netText(j)} via ${LINK[k].gw}`);
      await send({ neighbor: nb, bgp, announce: batch });
    }
    await send({ neighbor: nb, eor: true });
  };
  return {
    tool: 'krtsync',
    proto: PROTO.krtsync,
    log,
    async start() {
      startedAt = performance.now();
      d = startIn(topo.r, process.execPath, [...shebangFlags(bin), ...NODE_ARGS, bin, 'run', '--config', config, '--log-output', 'stderr'], { logFile: log, logTimes: LOG_TIMES });
      await withTimeout(
        (async () => {
          while (!fs.existsSync(sock)) await sleep(50);
        })(),
        'krtsync control socket',
        30_000,
      );
      ctl = await krtsyncControl(sock);
      feed = await connectUnix(sock);
      const next = lineReader(feed);
      feed.write(JSON.stringify({ id: 1, command: 'feed', args: { format: 'krtsync', client: 'bench' } }) + '\n');
      const answer = JSON.parse(await next());
      if (!answer.ok) throw new Error(`feed refused: ${JSON.stringify(answer)}`);
      // Feedback from here on names bad lines; there should be none.
      (async () => {
        for (;;) {
          const l = await next();
          if (feedErrors++ === 0) process.stderr.write(`  krtsync feed: ${l}\n`);
        }
      })().catch(() => {});
    },
    load: () => Promise.all([announce(1), announce(2)]),
    failSource: () => send({ neighbor: { address: LINK[1].gw }, state: 'down' }),
    recoverSource: async () => {
      await send({ neighbor: neighbor(1), state: 'up' });
      await announce(1);
    },
    /** Busy while the kernel protocol has routes pending, withdrawing or failed, or the stream protocol still holds routes. */
    async busy() {
      const protos = await ctl.request('show-protocols');
      maxFailed = Math.max(maxFailed, protos.find((p) => p.type === 'kernel').failed);
      return krtsyncBusy(protos) || protos.find((p) => p.type === 'stream').startupHold === true;
    },
    phaseStart(_t0, what) {
      maxFailed = 0;
      // With --log-times, the phase's t0 on the daemon's clock ("+N ms" since its start), among its lines.
      if (LOG_TIMES) fs.appendFileSync(log, `+${Math.round(performance.now() - startedAt)} ms bench: ${what} begins\n`);
    },
    /** What the phase's record says beyond the figures: routes seen failed (waiting for a retry), bad feed lines. */
    notes: () => ({ failed_max: maxFailed, feed_errors: feedErrors }),
    cpu: () => d.cpu(),
    hwmMb: () => Math.round(d.hwmKb / 1024),
    async stop() {
      ctl?.close();
      feed?.destroy();
      if (!d || d.exitedAt) return;
      process.kill(d.pid, 'SIGTERM');
      await withTimeout(d.exited, 'krtsync shutdown', 120_000);
    },
  };
}

// ------------------------------------------------------------------ BIRD 2
function birdRouter(topo, env) {
  const { N, LINK, LOCAL_AS, DIR, PROTO, netText, BIRD_RESTART, LOAD_TIMEOUT_MS } = env;
  const log = path.join(DIR, 'bird-router.log');
  const logLine = 'log stderr { info, remote, warning, error, auth, fatal, bug };';
  const files = (name) => ({ conf: path.join(DIR, `${name}.conf`), sock: path.join(DIR, `${name}.ctl`), pid: path.join(DIR, `${name}.pid`), log: path.join(DIR, `${name}.log`) });
  const router = files('bird-router');
  // BIRD's session timers: its defaults, or --bird-restart's seconds for all three.
  const timers = BIRD_RESTART ? `\n  connect delay time ${BIRD_RESTART};\n  connect retry time ${BIRD_RESTART};\n  error wait time ${BIRD_RESTART}, ${BIRD_RESTART};` : '';
  const speaker = [undefined, files('bird-speaker1'), files('bird-speaker2')];
  fs.writeFileSync(
    router.conf,
    `router id ${LINK[1].local};
${logLine}
protocol device { }
protocol kernel kr { ipv4 { import none; export all; }; }
${[1, 2]
  .map(
    (k) => `protocol bgp up${k} {
  local ${LINK[k].local} as ${LOCAL_AS};
  neighbor ${LINK[k].gw} as ${LINK[k].as};${timers}
  ipv4 { import all; export none; };
}`,
  )
  .join('\n')}
`,
  );
  for (const k of [1, 2]) {
    const lines = new Array(N);
    for (let i = 0; i < N; i++) lines[i] = `route ${netText(i)} blackhole;`;
    // Speaker 2 makes its path longer (BIRD prepends its own AS on eBGP too): 65001 against 65002 65002.
    fs.writeFileSync(
      speaker[k].conf,
      `router id ${LINK[k].gw};
${logLine}
protocol device { }
protocol static nets { ipv4; ${lines.join('\n')}
}
protocol bgp uplink {
  local ${LINK[k].gw} as ${LINK[k].as};
  neighbor ${LINK[k].local} as ${LOCAL_AS};${timers}
  ipv4 { import none; export ${k === 2 ? `filter { bgp_path.prepend(${LINK[k].as}); accept; }` : 'all'}; };
}
`,
    );
  }
  const procs = [];
  let r;
  let rctl;
  let s1ctl;
  let phaseT0 = 0;
  let sessionUpAt;
  let sessionSeenDown = false;
  const startBird = (ns, f) => {
    const p = startIn(ns, 'bird', ['-f', '-c', f.conf, '-s', f.sock, '-P', f.pid], { logFile: f.log });
    procs.push(p);
    return p;
  };
  /** BIRD's control socket once it answers; fails at once (with its log) if that bird has exited. */
  const answering = (p, f, what) =>
    withTimeout(
      (async () => {
        for (;;) {
          if (p.exitedAt) throw new Error(`${what} exited: ${fs.readFileSync(f.log, 'utf8').slice(-2000)}`);
          try {
            return await birdControl(f.sock);
          } catch {
            await sleep(100);
          }
        }
      })(),
      what,
      LOAD_TIMEOUT_MS,
    );
  return {
    tool: 'bird',
    proto: PROTO.bird,
    log,
    async start() {
      const sp = [undefined, startBird(topo.u[1], speaker[1]), startBird(topo.u[2], speaker[2])];
      for (const k of [1, 2]) {
        const c = await answering(sp[k], speaker[k], `BIRD speaker ${k}`);
        await withTimeout(
          (async () => {
            while (!new RegExp(`Routes:\\s+${N} imported`).test(await c.cmd('show protocols all nets'))) await sleep(200);
          })(),
          `BIRD speaker ${k} loading its routes`,
          LOAD_TIMEOUT_MS,
        );
        if (k === 1) s1ctl = c;
        else c.close();
      }
    },
    async load() {
      r = startBird(topo.r, router);
      rctl = await answering(r, router, 'BIRD router');
    },
    failSource: () => s1ctl.cmd('disable uplink'),
    recoverSource: () => s1ctl.cmd('enable uplink'),
    /** Busy while birdc's answer takes more than 100 ms; notes when the primary session is established again. */
    async busy() {
      const t = nowMs();
      const out = await rctl.cmd('show protocols up1');
      if (!/Established/.test(out)) sessionSeenDown = true;
      else if (sessionSeenDown && sessionUpAt === undefined) sessionUpAt = t;
      return nowMs() - t > 100;
    },
    phaseStart(t0) {
      phaseT0 = t0;
      sessionUpAt = undefined;
      sessionSeenDown = false;
    },
    /** When the primary session was seen established again after being seen down in the phase. */
    notes: () => ({ primary_session_established_s: sessionUpAt !== undefined ? sec(sessionUpAt - phaseT0) : null, bird_timers: BIRD_RESTART ? `${BIRD_RESTART} s` : 'defaults' }),
    cpu: () => r.cpu(),
    hwmMb: () => Math.round(r.hwmKb / 1024),
    async stop() {
      rctl?.close();
      s1ctl?.close();
      for (const p of procs) {
        if (p.exitedAt) continue;
        process.kill(p.pid, 'SIGTERM');
        await withTimeout(p.exited, 'bird exit', 120_000).catch(() => process.kill(p.pid, 'SIGKILL'));
      }
    },
  };
}

module.exports = { krtsyncRouter, birdRouter };
