#!/usr/bin/env node
// npm run fuzz [-- --minutes M --rounds R --runs N]: the parser fuzzers at length.
//
// Runs the fast-check properties over outside input (config, route lines, stream lines,
// control requests: test/unit/fuzz; the netlink codec: test/unit/netlink/malformed.test.ts)
// with KRTSYNC_FUZZ_RUNS runs per property and a fresh seed each round, until R rounds are
// done or M minutes have passed (defaults: 5 rounds, 20 minutes, 50,000 runs). Stops at the
// first failure and prints the seed that reproduces it (KRTSYNC_FUZZ_SEED=…). Needs no root.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const minutes = arg('minutes', 20);
const rounds = arg('rounds', 5);
const runs = arg('runs', 50000);
const SUITES = ['test/unit/fuzz', 'test/unit/netlink/malformed.test.ts'];

const end = Date.now() + minutes * 60000;
for (let round = 1; round <= rounds && Date.now() < end; round++) {
  const seed = Math.floor(Math.random() * 2 ** 31);
  process.stdout.write(`fuzz round ${round}/${rounds}: ${runs} runs per property, seed ${seed}\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [require.resolve('jest/bin/jest', { paths: [ROOT] }), '--runInBand', '--testTimeout', String(minutes * 60000), ...SUITES], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, KRTSYNC_FUZZ_RUNS: String(runs), KRTSYNC_FUZZ_SEED: String(seed) },
  });
  if (r.status !== 0) {
    process.stdout.write(`fuzz: FAILED in round ${round}; repeat with KRTSYNC_FUZZ_SEED=${seed} KRTSYNC_FUZZ_RUNS=${runs} npx jest ${SUITES.join(' ')}\n`);
    process.exit(1);
  }
  process.stdout.write(`fuzz round ${round}: clean in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
process.stdout.write('fuzz: all rounds clean\n');
