// Installs a Debian package that a test or benchmark runs for real (BIRD, ExaBGP, systemd, later Prometheus),
// without letting the package start its own services on this host: a policy-rc.d that exits 101
// (invoke-rc.d's "forbidden") is in place during the install, and the package's services are
// stopped (where a systemd is running), disabled and masked afterwards. Nothing happens when the
// probe already finds the program. The one place that does this (BRIEF: one shared helper).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');

const POLICY = '/usr/sbin/policy-rc.d';

/**
 * @param {string} pkg Debian package name
 * @param {{ probe: string, services?: string[], noRecommends?: boolean, log?: (line: string) => void }} opts
 *   probe: a file whose presence means "installed" (e.g. /lib/systemd/systemd)
 *   noRecommends: leave out the packages it only recommends (prometheus recommends node-exporter,
 *   whose services and timers the suite has no use for)
 * @returns {boolean} true when it installed the package now
 */
function ensureDebianPackage(pkg, opts) {
  if (fs.existsSync(opts.probe)) return false;
  const log = opts.log ?? ((line) => process.stderr.write(`${line}\n`));
  log(`installing ${pkg} (apt-get), with a policy-rc.d that keeps its services from starting`);
  const hadPolicy = fs.existsSync(POLICY);
  if (!hadPolicy) fs.writeFileSync(POLICY, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    const args = ['-o', 'DPkg::Lock::Timeout=900', 'install', '-y', '-q', ...(opts.noRecommends ? ['--no-install-recommends'] : []), pkg];
    const install = () => spawnSync('apt-get', args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    // A machine whose package lists were never fetched knows no packages yet.
    if (install().status !== 0) {
      execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', 'update', '-q'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
      if (install().status !== 0) throw new Error(`apt-get install ${pkg} failed`);
    }
  } finally {
    if (!hadPolicy) fs.unlinkSync(POLICY);
  }
  // disable and mask change unit files, so they work without a running systemd too (a container, or a
  // host root that a systemd test later boots in an overlay): the package's service never starts.
  const running = fs.existsSync('/run/systemd/system');
  for (const s of opts.services ?? []) {
    if (running) spawnSync('systemctl', ['stop', s], { stdio: 'ignore' });
    spawnSync('systemctl', ['disable', s], { stdio: 'ignore' });
    spawnSync('systemctl', ['mask', s], { stdio: 'ignore' });
  }
  if (!fs.existsSync(opts.probe)) throw new Error(`${pkg} installed, but ${opts.probe} is still missing`);
  return true;
}

module.exports = { ensureDebianPackage };
