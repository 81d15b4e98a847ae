#!/usr/bin/env node
// npm run soak [-- --minutes M --rounds R]: the fault-injection suites at soak size.
//
// Runs test/integration/faults-*.test.ts and the whole-daemon property test with
// KRTSYNC_SOAK=1 (200,000 routes killed at random points, 300,000 foreign routes churned,
// a stream client sending 1,000,000 routes and vanishing, more rounds, 25 random sequences
// of up to 40 events) and a fresh KRTSYNC_SEED each round, until R rounds are done or M
// minutes have passed (defaults: 3 rounds, 45 minutes). Stops at the first failure and
// prints the seed that reproduces it. Needs root: every scenario runs in a scratch network
// namespace that the test creates and deletes; nothing outside it is touched.
'use strict';
const { arg, runRounds } = require('./rounds');

if (process.getuid && process.getuid() !== 0) {
  process.stderr.write('soak: needs root (network namespaces)\n');
  process.exit(2);
}
runRounds({
  name: 'soak',
  suites: ['test/integration/faults-', 'test/integration/daemon-property'],
  minutes: arg('minutes', 45),
  rounds: arg('rounds', 3),
  testTimeoutMs: 20 * 60000,
  seedMax: 1e6,
  env: (seed) => ({ KRTSYNC_SOAK: '1', KRTSYNC_SEED: String(seed) }),
});
