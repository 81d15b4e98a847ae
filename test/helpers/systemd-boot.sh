#!/usr/bin/env bash
# Boots systemd as PID 1 of throwaway namespaces on an overlay of the host's root.
# Run by test/helpers/systemd-container.ts as:
#   unshare --pid --fork --mount --net --uts --ipc --cgroup --kill-child=SIGKILL systemd-boot.sh DIR SRC
# after moving itself into a cgroup of its own (the container's cgroup namespace is rooted there).
#   DIR  an empty directory; a tmpfs is mounted on it (upper layer, work dir, console log)
#   SRC  a directory bound read-only at /opt/krtsync-src inside (the checkout or package to install)
# Everything it mounts lives in the new mount namespace: when PID 1 exits, the kernel takes it all
# away. Nothing on the host is written but the empty directory DIR itself.
set -euo pipefail
dir=$1
src=$2

mount --make-rprivate /
mount -t tmpfs -o mode=0755 "krt-sd-$$" "$dir"
mkdir "$dir/upper" "$dir/work" "$dir/root"
: > "$dir/console"
r=$dir/root
mount -t overlay overlay -o "lowerdir=/,upperdir=$dir/upper,workdir=$dir/work" "$r"

mount -t proc proc "$r/proc"
mount -t sysfs -o ro sysfs "$r/sys"
mount -t cgroup2 -o nsdelegate cgroup2 "$r/sys/fs/cgroup"
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
mount -t tmpfs -o mode=0755 tmpfs "$r/dev"
for d in null zero full random urandom tty; do
  : > "$r/dev/$d"
  mount --bind "/dev/$d" "$r/dev/$d"
done
mkdir "$r/dev/pts" "$r/dev/shm" "$r/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$r/dev/pts"
ln -s pts/ptmx "$r/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
ln -s /proc/self/fd/0 "$r/dev/stdin"
ln -s /proc/self/fd/1 "$r/dev/stdout"
ln -s /proc/self/fd/2 "$r/dev/stderr"
# systemd writes its boot messages to the console: a file the test can read.
: > "$r/dev/console"
mount --bind "$dir/console" "$r/dev/console"

mkdir -p "$r/opt/krtsync-src"
mount --bind "$src" "$r/opt/krtsync-src"
mount -o remount,bind,ro "$r/opt/krtsync-src"

# Only systemd's own units boot: the host's enabled units are masked in the upper layer.
for wants in "$r"/etc/systemd/system/*.wants; do
  for unit in "$wants"/*; do
    [ -e "$unit" ] || [ -L "$unit" ] || continue
    name=$(basename "$unit")
    case "$name" in *@*.*) name="${name%%@*}@.${name##*.}" ;; esac
    ln -sf /dev/null "$r/etc/systemd/system/$name"
  done
done
# A container has no terminal to log in on.
ln -sf /dev/null "$r/etc/systemd/system/console-getty.service"
# A machine id of its own, so the journal is the container's.
: > "$r/etc/machine-id"

mkdir -p "$r/.oldroot"
cd "$r"
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
export container=krtsync-test
exec /lib/systemd/systemd --show-status=no
