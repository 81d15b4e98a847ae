#!/usr/bin/env bash
# Installs krtsync onto this machine from this checkout (after `npm ci`, which builds it), or from an
# installed package (`npm install -g krtsync-VERSION.tgz`, then $(npm root -g)/krtsync/scripts/install.sh):
#   PREFIX/lib/krtsync/         the built daemon (dist, native addon, production node_modules)
#   PREFIX/bin/krtsync          the command
#   /etc/krtsync/krtsync.yaml   the example config, unless one exists
#   /etc/systemd/system/krtsync.service, sysusers and tmpfiles snippets; the krtsync user and group
#   /etc/iproute2/rt_protos.d/krtsync.conf so `ip route` shows "proto krtsync"
#   PREFIX/lib/krtsync/contrib/  Prometheus alert rules and a Grafana dashboard (docs/metrics.md)
# Usage: sudo scripts/install.sh [--prefix /usr] [--no-start]
# With DESTDIR=/some/dir every file goes below that directory and nothing is registered or started
# (no user, no systemctl): for packaging, and for the test of this script.
set -euo pipefail
prefix=/usr
start=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
dest=${DESTDIR:-}
[ -n "$dest" ] || [ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$src/dist/cli/main.js" ] && [ -f "$src/native/build/Release/krtsync_native.node" ] || { echo "install.sh: build first (npm ci)" >&2; exit 1; }

lib=$prefix/lib/krtsync
install -d "$dest$lib/native/build/Release" "$dest$lib/bin" "$dest$prefix/bin"
cp -r "$src/dist" "$dest$lib/"
install -m 0644 "$src/native/build/Release/krtsync_native.node" "$dest$lib/native/build/Release/"
install -m 0644 "$src/package.json" "$src/README.md" "$dest$lib/"
cp -r "$src/contrib" "$dest$lib/"
install -m 0755 "$src/bin/krtsync" "$dest$lib/bin/krtsync"
# Production dependencies from the source's node_modules (no registry needed). A checkout has dev ones
# too (it has a package-lock.json): prune them in the copy, offline (a router may have no registry, and
# a node_modules that does not match the lock file fails here at once instead of waiting on the network).
# An installed package has none.
cp -r "$src/node_modules" "$dest$lib/"
if [ -f "$src/package-lock.json" ]; then
  install -m 0644 "$src/package-lock.json" "$dest$lib/"
  (cd "$dest$lib" && npm prune --offline --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete)
fi
ln -sf "$lib/bin/krtsync" "$dest$prefix/bin/krtsync"

install -d -m 0755 "$dest/etc/krtsync" "$dest/etc/iproute2/rt_protos.d" "$dest/etc/systemd/system" "$dest/usr/lib/sysusers.d" "$dest/usr/lib/tmpfiles.d"
[ -f "$dest/etc/krtsync/krtsync.yaml" ] || install -m 0640 "$src/systemd/krtsync.yaml" "$dest/etc/krtsync/krtsync.yaml"
# The kernel protocol's default rtm_protocol (docs/kernel.md).
printf '144\tkrtsync\n' > "$dest/etc/iproute2/rt_protos.d/krtsync.conf"
install -m 0644 "$src/systemd/krtsync.service" "$dest/etc/systemd/system/krtsync.service"
sed -i "s#/usr/bin/krtsync#$prefix/bin/krtsync#g; s#file:///usr/lib/krtsync/README.md#file://$lib/README.md#" "$dest/etc/systemd/system/krtsync.service"
install -m 0644 "$src/systemd/krtsync.sysusers.conf" "$dest/usr/lib/sysusers.d/krtsync.conf"
install -m 0644 "$src/systemd/krtsync.tmpfiles.conf" "$dest/usr/lib/tmpfiles.d/krtsync.conf"
if [ -n "$dest" ]; then
  echo "krtsync installed below $dest (nothing registered or started)"
  exit 0
fi

if command -v systemd-sysusers >/dev/null; then systemd-sysusers /usr/lib/sysusers.d/krtsync.conf; else id krtsync >/dev/null 2>&1 || useradd --system --home-dir /var/lib/krtsync --shell /usr/sbin/nologin krtsync; fi
chgrp krtsync /etc/krtsync/krtsync.yaml
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemd-tmpfiles --create /usr/lib/tmpfiles.d/krtsync.conf
  systemctl daemon-reload
  if [ "$start" = 1 ]; then systemctl enable --now krtsync.service; fi
fi
echo "krtsync installed: $prefix/bin/krtsync, config /etc/krtsync/krtsync.yaml"
