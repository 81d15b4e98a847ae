// Installs the Debian packages the tests and benchmarks run for real (BIRD 2, ExaBGP), the one way:
// apt-get with a policy-rc.d that exits 101 so no service starts during the install, then each
// package's service stopped, disabled and masked, so nothing of theirs ever runs on the host. A
// package whose programs are all present is not touched. Used by scripts/bench/e2e.js and by
// test/integration (see debian-packages.d.ts).
'use strict';
const fs = require('node:fs');
const { execFileSync, spawnSync } = require('node:child_process');

/** The packages we know, what they must provide, and the services they ship. */
const PACKAGES = {
  bird2: { programs: ['bird', 'birdc'], services: ['bird'] },
  exabgp: { programs: ['exabgp'], services: ['exabgp'] },
};

function have(program) {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

function aptGet(args, log) {
  const r = spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', ...args], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) log(`apt-get ${args.join(' ')}: exit ${r.status}\n${(r.stderr || '').trim().split('\n').slice(-5).join('\n')}\n`);
  return r.status === 0;
}

/**
 * Makes sure `names` (keys of PACKAGES) are installed, with their services kept from running.
 * Throws when an install fails. `log` gets progress lines.
 */
function ensurePackages(names, log = (m) => process.stderr.write(m)) {
  for (const n of names) if (!PACKAGES[n]) throw new Error(`debian-packages: unknown package ${n}`);
  const missing = names.filter((n) => !PACKAGES[n].programs.every(have));
  if (missing.length) {
    log(`installing ${missing.join(', ')} (apt-get), with a policy-rc.d that keeps their services from starting\n`);
    const policy = '/usr/sbin/policy-rc.d';
    const hadPolicy = fs.existsSync(policy);
    if (!hadPolicy) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    try {
      const install = ['install', '-y', '--no-install-recommends', ...missing];
      // A fresh machine may have no package lists yet: update once and try again.
      if (!aptGet(install, log) && !(aptGet(['update'], log) && aptGet(install, log))) throw new Error(`could not install ${missing.join(', ')} with apt-get`);
    } finally {
      if (!hadPolicy) fs.unlinkSync(policy);
    }
  }
  for (const n of names) {
    for (const s of PACKAGES[n].services) {
      // Works without a running systemd too (disable and mask only change unit files).
      for (const verb of ['stop', 'disable', 'mask']) spawnSync('systemctl', [verb, s], { stdio: 'ignore' });
    }
    const absent = PACKAGES[n].programs.filter((p) => !have(p));
    if (absent.length) throw new Error(`package ${n} is installed but ${absent.join(', ')} is missing`);
  }
}

/** The version line of a program (`bird --version` writes it to stderr). */
function versionOf(program, args = ['--version']) {
  try {
    return execFileSync('sh', ['-c', `${program} ${args.join(' ')} 2>&1`], { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return undefined;
  }
}

module.exports = { ensurePackages, versionOf, PACKAGES };
