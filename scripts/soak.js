#!/usr/bin/env node
// npm run soak [-- --minutes M --rounds R]: the fault-injection suites at soak size.
//
// Runs test/integration/faults-*.test.ts and the whole-daemon property test with
// KRTSYNC_SOAK=1 (200,000 routes killed at random points, 300,000 foreign routes churned,
// a stream client sending 1,000,000 routes and vanishing, more rounds and longer random
// sequences) and a fresh KRTSYNC_SEED each round, until R rounds are done or M minutes
// have passed (defaults: 3 rounds, 45 minutes). Stops at the first failure and prints the
// seed that reproduces it. Needs root: every scenario runs in a scratch network namespace
// that the test creates and deletes; nothing outside it is touched.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const minutes = arg('minutes', 45);
const rounds = arg('rounds', 3);
const SUITES = ['test/integration/faults-', 'test/integration/daemon-property'];

if (process.getuid && process.getuid() !== 0) {
  process.stderr.write('soak: needs root (network namespaces)\n');
  process.exit(2);
}
const end = Date.now() + minutes * 60000;
for (let round = 1; round <= rounds && Date.now() < end; round++) {
  const seed = Math.floor(Math.random() * 1e6);
  process.stdout.write(`soak round ${round}/${rounds}, seed ${seed}\n`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [require.resolve('jest/bin/jest', { paths: [ROOT] }), '--runInBand', '--testTimeout', String(20 * 60000), ...SUITES], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, KRTSYNC_SOAK: '1', KRTSYNC_SEED: String(seed) },
  });
  if (r.status !== 0) {
    process.stdout.write(`soak: FAILED in round ${round}; repeat with KRTSYNC_SOAK=1 KRTSYNC_SEED=${seed} npx jest --runInBand ${SUITES.join(' ')}\n`);
    process.exit(1);
  }
  process.stdout.write(`soak round ${round}: clean in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
process.stdout.write('soak: all rounds clean\n');
