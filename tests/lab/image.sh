#!/usr/bin/env bash
# Build (once) the lab's base image: a debootstrapped Debian 12 with systemd,
# sshd, Python for Ansible and every package the roles install, so that the
# lab machines, which have no route out, need nothing from a mirror.
#
#   tests/lab/image.sh        prints the image's path, building it if missing
#
# The image is cached under $PB_LAB_CACHE (default /var/cache/postback-lab),
# keyed by a hash of this script, so a change to the package list builds a
# new one. Machines use it read-only, as the lower layer of an overlay.
set -euo pipefail

# What the roles install (ansible/roles/*/tasks) and what Ansible itself
# needs on a host (python3, python3-apt for the apt module).
PACKAGES=(
  systemd systemd-sysv dbus iproute2 openssh-server python3 python3-apt
  ca-certificates procps less netbase
  redis-server redis-sentinel redis-tools haproxy nftables logrotate stunnel4 openssl
  libhiredis0.14 libcurl4 libjansson4 libfcgi0ldbl libmicrohttpd12
  prometheus prometheus-redis-exporter libjs-chart.js
)
MIRROR=${PB_LAB_MIRROR:-http://deb.debian.org/debian}
SECURITY=${PB_LAB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${PB_LAB_CACHE:-/var/cache/postback-lab}
key=$(sha256sum "$0" | cut -c1-12)
image="$cache/base-$key"

if [ -e "$image/.complete" ]; then
  echo "$image"
  exit 0
fi
mkdir -p "$cache"
tmp="$cache/.build-$key.$$"
cleanup() {
  for m in proc sys dev; do umount -l "$tmp/$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "image: debootstrap bookworm into $tmp (about a minute)" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm \
  "$tmp" "$MIRROR" >"$cache/debootstrap.log" 2>&1 ||
  { tail -20 "$cache/debootstrap.log" >&2; exit 1; }

cat >"$tmp/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY bookworm-security main
SOURCES
# No service may start inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod +x "$tmp/usr/sbin/policy-rc.d"
mount -t proc proc "$tmp/proc"
mount -t sysfs sys "$tmp/sys"
mount --bind /dev "$tmp/dev"
echo "image: installing ${PACKAGES[*]}" >&2
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive sh -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${PACKAGES[*]} && apt-get clean" \
  >"$cache/install.log" 2>&1 || { tail -20 "$cache/install.log" >&2; exit 1; }
for m in proc sys dev; do umount "$tmp/$m"; done
rm -f "$tmp/usr/sbin/policy-rc.d"

# Machine identity and host keys are per machine: the lab makes them in each
# overlay. The network comes from systemd-networkd, configured per machine.
rm -f "$tmp"/etc/ssh/ssh_host_*
: >"$tmp/etc/machine-id"
chroot "$tmp" systemctl enable systemd-networkd ssh >/dev/null 2>&1
# Debian starts its own Redis, Sentinel and HAProxy at boot with its default
# configs; the roles configure and start them. Keep them off until then.
chroot "$tmp" systemctl disable redis-server redis-sentinel haproxy stunnel4 >/dev/null 2>&1
touch "$tmp/.complete"
mv "$tmp" "$image"
trap - EXIT
echo "$image"
