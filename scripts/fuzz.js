#!/usr/bin/env node
// npm run fuzz [-- --minutes M --rounds R --runs N]: the parser fuzzers at length.
//
// Runs the fast-check properties over outside input (config, route lines, stream lines,
// control requests: test/unit/fuzz; the netlink codec: test/unit/netlink/malformed.test.ts)
// with KRTSYNC_FUZZ_RUNS runs per property and a fresh seed each round, until R rounds are
// done or M minutes have passed (defaults: 5 rounds, 20 minutes, 50,000 runs). Stops at the
// first failure and prints the seed that reproduces it. Needs no root.
'use strict';
const { arg, runRounds } = require('./rounds');

const runs = arg('runs', 50000);
runRounds({
  name: 'fuzz',
  suites: ['test/unit/fuzz', 'test/unit/netlink/malformed.test.ts'],
  minutes: arg('minutes', 20),
  rounds: arg('rounds', 5),
  testTimeoutMs: 3600000,
  seedMax: 2 ** 31,
  env: (seed) => ({ KRTSYNC_FUZZ_RUNS: String(runs), KRTSYNC_FUZZ_SEED: String(seed) }),
});
