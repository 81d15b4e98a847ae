// Shared by soak.js and fuzz.js: run jest suites in rounds, each with a fresh seed, until
// the round count or the time budget is used up; stop at the first failure and print how to
// repeat it. Bounded on both counts, so an unattended run always ends by itself.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');

/** `--name N` from the command line, or the default. */
function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

/** opts: {name, suites, minutes, rounds, testTimeoutMs, env(seed) -> extra env, seedMax} */
function runRounds(opts) {
  const end = Date.now() + opts.minutes * 60000;
  for (let round = 1; round <= opts.rounds && Date.now() < end; round++) {
    const seed = Math.floor(Math.random() * opts.seedMax);
    const env = opts.env(seed);
    const envText = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
    process.stdout.write(`${opts.name} round ${round}/${opts.rounds}: ${envText}\n`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [require.resolve('jest/bin/jest', { paths: [ROOT] }), '--runInBand', '--testTimeout', String(opts.testTimeoutMs), ...opts.suites], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    if (r.status !== 0) {
      process.stdout.write(`${opts.name}: FAILED in round ${round}; repeat with ${envText} npx jest --runInBand ${opts.suites.join(' ')}\n`);
      process.exit(1);
    }
    process.stdout.write(`${opts.name} round ${round}: clean in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  }
  process.stdout.write(`${opts.name}: all rounds clean\n`);
}

module.exports = { arg, runRounds };
