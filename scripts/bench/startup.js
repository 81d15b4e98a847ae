#!/usr/bin/env node
// Startup benchmark: `npm run bench:startup -- [--runs N] [--routes N] [--baseline LABEL=DIR[,...]]`.
// What a start costs that is not per route, side by side with other checkouts in the same run,
// the builds alternated run by run (ABAB…) so the machine's drift falls on all of them alike:
//   daemon   `krtsync run` (with bin/krtsync's node flags) in a scratch network namespace, with the
//            bench:e2e config (a static protocol with a routes file of --routes routes, default 10;
//            a stream protocol; a kernel protocol on a veth): from spawn to READY=1 (NOTIFY_SOCKET
//            bound here), the CPU the process spent until then (user + system, /proc), then SIGTERM
//            and its exit;
//   help     `krtsync --help`, spawn to exit;
//   show     `krtsync show status` against the running daemon, spawn to exit;
//   require  `node -e "require('dist/cli/main.js')"` spawn to exit (the CLI's modules alone);
//   node     `node -e 0` spawn to exit (node's own start: the floor of every row above), once per run.
// Each figure: median and min over the runs, in ms. Nothing in the root namespace is touched.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { UnixDatagramSocket } = require('../../dist/netlink/socket');
const { BIN, arg, checkArgs, shebangFlags, sh, cpuSeconds, scratchDir, addNamespace, track, machine } = require('./harness');

const USAGE = 'usage: bench:startup -- [--runs N] [--routes N] [--baseline LABEL=DIR[,...]]';
checkArgs('bench:startup', USAGE, ['runs', 'routes', 'baseline']);
const RUNS = Number(arg('runs', '10'));
const ROUTES = Number(arg('routes', '10'));
if (!(RUNS >= 1) || !(ROUTES >= 1 && ROUTES <= 65536)) {
  console.error(USAGE);
  process.exit(2);
}
const builds = [{ label: 'this', bin: BIN }];
for (const b of arg('baseline', '').split(',').filter(Boolean)) {
  const [label, dir] = b.split('=');
  if (!label || !dir || !fs.existsSync(path.join(dir, 'bin', 'krtsync'))) throw new Error(`--baseline ${b}: LABEL=DIR with DIR/bin/krtsync`);
  builds.push({ label, bin: path.join(path.resolve(dir), 'bin', 'krtsync') });
}

const dir = scratchDir('krtsync-startup-');
const ns = addNamespace('krtstart');
for (const c of ['link set lo up', 'link add veth0 type veth peer name veth1', 'link set veth0 up', 'link set veth1 up', 'addr add 192.0.2.1/24 dev veth0']) sh('ip', ['-n', ns, ...c.split(' ')]);
const routes = path.join(dir, 'routes.txt');
fs.writeFileSync(routes, Array.from({ length: ROUTES }, (_, i) => `11.${i >> 8}.${i & 255}.0/24 via 192.0.2.2\n`).join(''));
const sock = path.join(dir, 'krtsync.sock');
const config = path.join(dir, 'krtsync.yaml');
fs.writeFileSync(
  config,
  `control: { socket: ${sock} }
protocols:
  - { name: static1, type: static, routes_file: ${routes} }
  - { name: stream1, type: stream, preference: 300 }
  - { name: kernel1, type: kernel, family: ipv4, kernel_table: main }
`,
);
const notifyPath = path.join(dir, 'notify');
const notify = UnixDatagramSocket.open(notifyPath);
let onNote = () => undefined;
notify.start((dgs) => dgs.forEach((d) => onNote(d.data.toString())));

/** Runs a command to its end; resolves with its wall time in ms. */
function timed(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = track(spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] }));
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

/** One daemon start to READY=1, `show status` against it, then SIGTERM; the times in ms and CPU in s. */
async function daemonRun(b) {
  let log = '';
  const ready = new Promise((resolve) => (onNote = (n) => n.startsWith('READY=1') && resolve(performance.now())));
  const t0 = performance.now();
  const child = track(spawn('ip', ['netns', 'exec', ns, process.execPath, ...shebangFlags(b.bin), b.bin, 'run', '--config', config, '--log-output', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: notifyPath } }));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const t = await Promise.race([ready, exited.then(() => Promise.reject(new Error(`${b.label}: exited before READY=1:\n${log}`)))]);
  const cpu = cpuSeconds(child.pid);
  const show = await timed(process.execPath, [...shebangFlags(b.bin), b.bin, 'show', 'status', '--socket', sock]);
  child.kill('SIGTERM');
  await exited;
  onNote = () => undefined;
  return { ready: t - t0, cpu: cpu * 1000, show };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${Math.round(median(xs))} (${Math.round(Math.min(...xs))})`;

(async () => {
  const rows = new Map(builds.map((b) => [b.label, { ready: [], cpu: [], show: [], help: [], require: [] }]));
  const bare = [];
  for (let i = 0; i < RUNS; i++) {
    bare.push(await timed(process.execPath, ['-e', '0']));
    // Alternate which build goes first, so neither always follows the other.
    for (const b of i % 2 ? [...builds].reverse() : builds) {
      const r = rows.get(b.label);
      const d = await daemonRun(b);
      r.ready.push(d.ready);
      r.cpu.push(d.cpu);
      r.show.push(d.show);
      r.help.push(await timed(process.execPath, [...shebangFlags(b.bin), b.bin, '--help']));
      r.require.push(await timed(process.execPath, ['-e', `require(${JSON.stringify(path.join(path.dirname(b.bin), '..', 'dist', 'cli', 'main.js'))})`]));
    }
  }
  notify.close();
  console.log(`\n${RUNS} runs each, ${ROUTES} routes in the routes file; median (min) in ms; load ${machine().load.join(' ')}\n`);
  console.log(`| | ${builds.map((b) => b.label).join(' | ')} |`);
  console.log(`| --- |${builds.map(() => ' ---: |').join('')}`);
  for (const [key, name] of [
    ['ready', 'daemon: spawn to READY=1'],
    ['cpu', 'daemon: CPU to READY=1'],
    ['show', '`krtsync show status`'],
    ['help', '`krtsync --help`'],
    ['require', "`require('dist/cli/main.js')`"],
  ]) {
    console.log(`| ${name} | ${builds.map((b) => fmt(rows.get(b.label)[key])).join(' | ')} |`);
  }
  console.log(`| \`node -e 0\` | ${fmt(bare)} |`);
  for (const b of builds) console.log(JSON.stringify({ tool: `krtsync ${b.label}`, scenario: 'startup', runs: RUNS, routes: ROUTES, ...Object.fromEntries(Object.entries(rows.get(b.label)).map(([k, v]) => [`${k}_ms`, Math.round(median(v))])), machine: machine() }));
  process.exit(0);
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
