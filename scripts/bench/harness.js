// What the end-to-end benchmarks (e2e.js, failover.js) share: a scratch directory, network
// namespaces and child processes that are all removed on exit, error or Ctrl-C (nothing in the
// root namespace is touched), processes started inside a namespace with their CPU time and peak
// RSS sampled from /proc, BIRD 2 installed without its service, and small timing helpers.
//
// Names created on the host carry this process's id, so parallel runs cannot collide.
'use strict';
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ensureDebianPackage } = require('../debian-package');

/** The krtsync command of this checkout. */
const BIN = path.join(__dirname, '..', '..', 'bin', 'krtsync');

/** The value after `--name` on the command line, or dflt. */
function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`, 2);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}

/**
 * Refuses a command line with an option the bench does not know, or a valued
 * option without its value (--help, a typo): a bench that ignored them would
 * start a full 1M run. `valued` take a value, `flags` do not. Exits 2 with the usage
 * (--help or -h: the usage on stdout, exit 0).
 */
function checkArgs(bench, usage, valued, flags = []) {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name !== undefined && flags.includes(name)) continue;
    const next = argv[i + 1];
    // A value may start with -- (--node-args "--cpu-prof"), but not be one of the options.
    if (name !== undefined && valued.includes(name) && next !== undefined && !(next.startsWith('--') && [...valued, ...flags].includes(next.slice(2)))) {
      i++;
      continue;
    }
    console.error(`${bench}: unknown option or missing value: ${a}\n${usage}`);
    process.exit(2);
  }
}

/**
 * The node flags of a krtsync launcher's first line (`#!/usr/bin/env -S node --max-semi-space-size=4`):
 * a bench starts the daemon with process.execPath, and must give it the flags bin/krtsync gives it.
 */
function shebangFlags(bin) {
  const first = fs.readFileSync(bin, 'utf8').split('\n')[0];
  const m = /^#!\/usr\/bin\/env(?: -S)? node(.*)$/.exec(first);
  if (!m) throw new Error(`${bin}: unexpected first line ${first}`);
  return m[1].split(' ').filter(Boolean);
}

const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 30, ...opts });
const CLK_TCK = Number(sh('getconf', ['CLK_TCK']).trim()) || 100;
const sec = (ms) => Number((ms / 1000).toFixed(2));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(p, what, ms) {
  let t;
  return Promise.race([p, new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no result within ${ms / 1000} s`)), ms)))]).finally(() => clearTimeout(t));
}

/** CPU time (user + system, seconds) of a process so far, or undefined when it has exited. */
function cpuSeconds(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, seconds) of a process's main thread (a node process's JS thread) and of all
 * its other threads together (for krtsync nearly all of it the kernel's work inside the route
 * pipeline's sendmsg, on a libuv worker), or undefined when it has exited.
 */
function threadCpuSeconds(pid) {
  try {
    let main = 0;
    let other = 0;
    /** The scheduler's view (schedstat: runnable but waiting for a CPU) of the JS thread and of all other threads together. */
    let mainSched;
    const others = { wait: 0 };
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const f = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ');
      const s = (Number(f[11]) + Number(f[12])) / CLK_TCK;
      const sched = schedstat(pid, tid);
      if (Number(tid) === pid) {
        main = s;
        mainSched = sched;
      } else {
        other += s;
        if (sched) others.wait += sched.wait;
      }
    }
    return { main, other, mainSched, others };
  } catch {
    return undefined;
  }
}

/** /proc/PID/task/TID/schedstat in seconds: time on a CPU, time runnable and waiting for a CPU; undefined without schedstats. */
function schedstat(pid, tid) {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return { run: run / 1e9, wait: wait / 1e9 };
  } catch {
    return undefined;
  }
}

const namespaces = new Set();
const children = new Set();
const beforeRemove = [];
let dir;
let cleaned = false;

function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const ns of namespaces) {
    try {
      sh('ip', ['netns', 'pids', ns])
        .split('\n')
        .filter(Boolean)
        .forEach((p) => process.kill(Number(p), 'SIGKILL'));
    } catch {
      /* none */
    }
    try {
      sh('ip', ['netns', 'del', ns]);
    } catch {
      /* gone */
    }
  }
  for (const f of beforeRemove) {
    try {
      f();
    } catch {
      /* best effort: copying a log out */
    }
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** Creates the run's scratch directory (removed on exit) and installs the cleanup. Call once. */
function scratchDir(prefix) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
  return dir;
}

/** Runs `fn` at exit before the scratch directory goes (e.g. to copy a log out of it). */
function beforeScratchRemoved(fn) {
  beforeRemove.push(fn);
}

/** `ip netns add NAME-PID`; deleted at exit if dropNamespace was not called. */
function addNamespace(name) {
  const ns = `${name}-${process.pid}`;
  sh('ip', ['netns', 'add', ns]);
  namespaces.add(ns);
  return ns;
}

function dropNamespace(ns) {
  sh('ip', ['netns', 'del', ns]);
  namespaces.delete(ns);
}

/** A child process to kill at exit (SIGKILL) unless it has ended; untracked when it exits. */
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/**
 * Spawns `cmd` inside the namespace; tracks its exit, CPU time (user + system, sampled every 100 ms
 * and on cpu()) and peak RSS (VmHWM). With logTimes, each output line gets "+N ms" since the start.
 */
function startIn(ns, cmd, args, { env = {}, logFile, logTimes = false } = {}) {
  const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
  const started = performance.now();
  const piped = logTimes && logFile;
  const child = track(spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', piped ? 'pipe' : out, piped ? 'pipe' : out], env: { ...process.env, ...env } }));
  if (piped) {
    let rest = '';
    const onData = (chunk) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop();
      for (const l of lines) fs.writeSync(out, `+${Math.round(performance.now() - started)} ms ${l}\n`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  }
  const proc = { child, pid: child.pid, hwmKb: 0, exitedAt: 0 };
  proc.exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      proc.exitedAt = performance.now();
      clearInterval(proc.timer);
      resolve({ code, signal });
    }),
  );
  // `ip netns exec` execs the command, so the pid is the daemon's own.
  proc.cpuS = 0; // CPU time (user + system) as last sampled: less disturbed by a loaded machine than wall time
  proc.cpu = () => {
    // Once it has exited, the last sample stands (at most 100 ms old).
    proc.cpuS = cpuSeconds(proc.pid) ?? proc.cpuS;
    return proc.cpuS;
  };
  proc.timer = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      if (m) proc.hwmKb = Math.max(proc.hwmKb, Number(m[1]));
    } catch {
      /* exited */
    }
    proc.cpu();
  }, 100);
  return proc;
}

/** The CPUs' busy and total ticks so far (/proc/stat's first line). */
function cpuTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * Waits until the machine is quiet before a timed start: the work a run leaves behind (the kernel
 * freeing a million routes after their deletes, a namespace's teardown, this process's garbage)
 * must not land on the next run. Quiet: three 100 ms windows in a row with the CPUs at most 15 %
 * busy (this process's garbage collected first, with --expose-gc); at most `maxMs`. Returns the ms waited.
 */
async function settle(maxMs = 5000) {
  const t0 = performance.now();
  if (typeof global.gc === 'function') global.gc();
  let quiet = 0;
  let prev = cpuTicks();
  while (quiet < 3 && performance.now() - t0 < maxMs) {
    await sleep(100);
    const cur = cpuTicks();
    const total = cur.total - prev.total;
    quiet = total > 0 && (cur.busy - prev.busy) / total <= 0.15 ? quiet + 1 : 0;
    prev = cur;
  }
  return Math.round(performance.now() - t0);
}

/** BIRD 2 (apt-get if missing; its service is kept from starting, then masked): its version line. */
function ensureBird() {
  ensureDebianPackage('bird2', { probe: '/usr/sbin/bird', services: ['bird.service'] });
  return sh('sh', ['-c', 'bird --version 2>&1']).trim();
}

function machine() {
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, mem_gb: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version, load: os.loadavg().map((x) => Number(x.toFixed(2))) };
}

/** A warning line when a bird runs that this benchmark did not start (it would compete for the CPU). */
function strayBirdWarning() {
  const left = sh('sh', ['-c', 'pgrep -x bird || true']).trim();
  return left ? `warning: a bird process runs outside this benchmark: ${left}\n` : '';
}

module.exports = { BIN, arg, checkArgs, shebangFlags, sh, CLK_TCK, cpuSeconds, threadCpuSeconds, schedstat, sec, sleep, settle, withTimeout, scratchDir, beforeScratchRemoved, addNamespace, dropNamespace, track, startIn, ensureBird, machine, strayBirdWarning };
