#!/usr/bin/env bash
# Installs krtsync from this checkout (after `npm ci`, which builds it) onto this machine:
#   /usr/lib/krtsync/           the built daemon (dist, native addon, production node_modules)
#   /usr/bin/krtsync            the command
#   /etc/krtsync/krtsync.yaml   the example config, unless one exists
#   systemd unit, sysusers and tmpfiles snippets; the krtsync user and group
#   /etc/iproute2/rt_protos.d/krtsync.conf so `ip route` shows "proto krtsync"
# Usage: sudo scripts/install.sh [--prefix /usr] [--no-start]
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
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$src/dist/cli/main.js" ] && [ -f "$src/native/build/Release/krtsync_native.node" ] || { echo "install.sh: build first (npm ci)" >&2; exit 1; }

lib=$prefix/lib/krtsync
install -d "$lib" "$lib/native/build/Release" "$lib/bin"
cp -r "$src/dist" "$lib/"
install -m 0644 "$src/native/build/Release/krtsync_native.node" "$lib/native/build/Release/"
install -m 0644 "$src/package.json" "$src/package-lock.json" "$src/README.md" "$lib/"
install -m 0755 "$src/bin/krtsync" "$lib/bin/krtsync"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
ln -sf "$lib/bin/krtsync" "$prefix/bin/krtsync"

install -d -m 0755 /etc/krtsync /etc/iproute2/rt_protos.d
[ -f /etc/krtsync/krtsync.yaml ] || install -m 0640 "$src/systemd/krtsync.yaml" /etc/krtsync/krtsync.yaml
# The kernel protocol's default rtm_protocol (docs/kernel.md).
echo "144	krtsync" > /etc/iproute2/rt_protos.d/krtsync.conf

unitdir=/etc/systemd/system
install -m 0644 "$src/systemd/krtsync.service" "$unitdir/krtsync.service"
sed -i "s#/usr/bin/krtsync#$prefix/bin/krtsync#g; s#file:///usr/lib/krtsync/README.md#file://$lib/README.md#" "$unitdir/krtsync.service"
install -D -m 0644 "$src/systemd/krtsync.sysusers.conf" /usr/lib/sysusers.d/krtsync.conf
install -D -m 0644 "$src/systemd/krtsync.tmpfiles.conf" /usr/lib/tmpfiles.d/krtsync.conf
if command -v systemd-sysusers >/dev/null; then systemd-sysusers /usr/lib/sysusers.d/krtsync.conf; else id krtsync >/dev/null 2>&1 || useradd --system --home-dir /var/lib/krtsync --shell /usr/sbin/nologin krtsync; fi
chgrp krtsync /etc/krtsync/krtsync.yaml
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemd-tmpfiles --create /usr/lib/tmpfiles.d/krtsync.conf
  systemctl daemon-reload
  [ "$start" = 1 ] && systemctl enable --now krtsync.service
fi
echo "krtsync installed: $prefix/bin/krtsync, config /etc/krtsync/krtsync.yaml"
