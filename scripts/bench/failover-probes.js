'use strict';
// bench:failover's probes (failover.js): the probe program (failover-probe.c) compiled into the
// scratch directory, started as a sender or a sink in a namespace, and the analysis of one run's
// records: when each probed destination moved to the other link, what was lost on the way.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { cpuSeconds, sec, sh, track, withTimeout } = require('./harness');

/** Compiles failover-probe.c into `dir`; returns the program's path. */
function compileProbe(dir) {
  const bin = path.join(dir, 'failover-probe');
  try {
    sh('cc', ['-O2', '-Wall', '-o', bin, path.join(__dirname, 'failover-probe.c')]);
  } catch (e) {
    throw new Error(`bench:failover compiles its probe, scripts/bench/failover-probe.c, with cc (gcc): ${e.stderr || e.message}`);
  }
  return bin;
}

/** Starts a probe process (sender or sink) in `ns` and resolves once it says it is ready. */
async function startProbe(bin, ns, args, input) {
  // At a higher priority than the daemons: the instrument's timing should not depend on their load.
  const child = track(spawn('ip', ['netns', 'exec', ns, 'nice', '-n', '-10', bin, ...args], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  child.stdin.end(input ?? '');
  await withTimeout(
    new Promise((resolve, reject) => {
      child.stdout.once('data', resolve);
      exited.then((e) => reject(new Error(`failover-probe ${args[0]} exited (${e.code ?? e.signal})`)));
    }),
    `failover-probe ${args[0]} start`,
    10_000,
  );
  // `ip netns exec` and nice exec the program: the pid is the probe's own.
  let cpuS = 0;
  return {
    cpu: () => (cpuS = cpuSeconds(child.pid) ?? cpuS),
    stop: async () => {
      cpuS = cpuSeconds(child.pid) ?? cpuS;
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Reads the records a file gained since `from` bytes. */
function readFrom(file, from, recordSize) {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const len = Math.floor((size - from) / recordSize) * recordSize;
    const b = Buffer.alloc(Math.max(0, len));
    if (len > 0) fs.readSync(fd, b, 0, len, from);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The probes of one run: per destination, the first probe after which every probe to it arrived via
 * link `to`; probes lost or arriving via the other link after t0; the baseline before t0. Probes sent
 * after `cutoff` are left out (while the run goes on: their fate is not known yet).
 */
function analyzeProbes(sentFile, sinkBytes, run, t0, to, { K, RATE }, cutoff = Infinity) {
  const sent = fs.readFileSync(sentFile);
  let S = Math.floor(sent.length / 16);
  while (S > 0 && Number(sent.readBigUInt64LE((S - 1) * 16)) / 1e6 > cutoff) S--;
  const sentAt = new Float64Array(S);
  const sendErr = new Int32Array(S);
  for (let s = 0; s < S; s++) {
    sentAt[s] = Number(sent.readBigUInt64LE(s * 16)) / 1e6;
    sendErr[s] = sent.readInt32LE(s * 16 + 8);
  }
  const via = new Uint8Array(S);
  for (const k of [1, 2]) {
    const b = sinkBytes[k];
    for (let o = 0; o + 16 <= b.length; o += 16) {
      if (b.readUInt32LE(o) !== run) continue;
      const seq = b.readUInt32LE(o + 4);
      if (seq < S) via[seq] = k;
    }
  }
  const from = to === 1 ? 2 : 1;
  let before = 0;
  let beforeOk = 0;
  let lost = 0;
  let viaOld = 0;
  let lastOld = -Infinity;
  const errors = {};
  for (let s = 0; s < S; s++) {
    if (sentAt[s] < t0) {
      before++;
      if (via[s] === from) beforeOk++;
      continue;
    }
    if (sendErr[s]) errors[sendErr[s]] = (errors[sendErr[s]] ?? 0) + 1;
    if (via[s] === 0) lost++;
    else if (via[s] === from) {
      viaOld++;
      lastOld = Math.max(lastOld, sentAt[s] - t0);
    }
  }
  let moved = 0;
  let movedAt = 0;
  for (let k = 0; k < K; k++) {
    let firstGood = -1;
    let any = false;
    for (let s = k; s < S; s += K) {
      if (sentAt[s] < t0) continue;
      any = true;
      if (via[s] === to) {
        if (firstGood < 0) firstGood = s;
      } else firstGood = -1;
    }
    if (any && firstGood >= 0) {
      moved++;
      movedAt = Math.max(movedAt, sentAt[firstGood] - t0);
    }
  }
  return {
    destinations: K,
    every_ms: Number(((K / RATE) * 1000).toFixed(1)),
    moved,
    moved_s: moved === K ? sec(movedAt) : null,
    last_via_old_s: viaOld ? sec(lastOld) : null,
    sent: S - before,
    lost,
    via_old: viaOld,
    send_errors: errors,
    baseline: { sent: before, via_expected: beforeOk },
  };
}

module.exports = { compileProbe, startProbe, readFrom, analyzeProbes };
