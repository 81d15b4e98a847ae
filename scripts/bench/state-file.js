#!/usr/bin/env node
// Api state file benchmark: `npm run bench:state` (builds dist/ first). No root, no kernel.
//
// Runs `krtsync run` with an api protocol (no kernel protocol) and adds N routes through the
// control socket, from 1 client pipelining all of them and from 50 clients at once. Each add is
// answered once it is in the state file (appended and fdatasync'ed; changes in flight together
// share one write). Baseline, in the same run: the same adds without a state file, so the figure
// beside it is the whole cost of keeping the routes. The state file lives in a scratch directory
// under /var/tmp (a disk, like /var/lib/krtsync; /tmp may be tmpfs, where fsync is free).
//
// Environment: N (routes, default 20000), CLIENTS (default "1,50"), DIR (default /var/tmp).
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ControlClient } = require('../../dist/control/client');

const N = Number(process.env.N || 20_000);
const CLIENTS = (process.env.CLIENTS || '1,50').split(',').map(Number);
const BASE = process.env.DIR || '/var/tmp';
const BIN = path.join(__dirname, '..', '..', 'bin', 'krtsync');

async function run(withState, clients) {
  const dir = fs.mkdtempSync(path.join(BASE, `krtsync-bench-state-${process.pid}-`));
  const sock = path.join(dir, 'krtsync.sock');
  const state = path.join(dir, 'api.state');
  fs.writeFileSync(path.join(dir, 'k.yaml'), `control: { socket: ${sock} }\nprotocols:\n  - { name: api1, type: api${withState ? `, state_file: ${state}` : ''} }\n`);
  const d = spawn(process.execPath, [BIN, 'run', '--config', path.join(dir, 'k.yaml')], { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    for (let i = 0; i < 200 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    const cs = await Promise.all(Array.from({ length: clients }, () => ControlClient.connect(sock)));
    const per = Math.ceil(N / clients);
    const t0 = process.hrtime.bigint();
    await Promise.all(
      cs.map((c, k) => {
        const adds = [];
        for (let i = k * per; i < Math.min(N, (k + 1) * per); i++) adds.push(c.request('route-add', { route: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}/32 via 192.0.2.2` }));
        return Promise.all(adds);
      }),
    );
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    cs.forEach((c) => c.close());
    return { ms, bytes: withState ? fs.statSync(state).size : 0 };
  } finally {
    d.kill('SIGTERM');
    await new Promise((r) => d.on('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  console.log(`| ${N.toLocaleString('en-US')} route adds | no state file (baseline) | state file | state file size |`);
  console.log('| --- | --- | --- | --- |');
  for (const k of CLIENTS) {
    const base = await run(false, k);
    const st = await run(true, k);
    const rate = (r) => `${Math.round(r.ms).toLocaleString('en-US')} ms (${Math.round((N / r.ms) * 1000).toLocaleString('en-US')}/s)`;
    console.log(`| ${k} client${k === 1 ? '' : 's'} | ${rate(base)} | ${rate(st)} | ${Math.round(st.bytes / 1024).toLocaleString('en-US')} KiB |`);
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
