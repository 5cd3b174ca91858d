#!/usr/bin/env bash
# Install what building, running and testing need, from Debian's archive.
# Idempotent: asks apt only for what is missing. Needs root for apt-get.
set -euo pipefail

# scripts/deps.sh          what building, testing and `make run` need
# scripts/deps.sh deb      what building the Debian package needs, only
# scripts/deps.sh lab      also what `make lab` needs (Ansible, Vagrant,
#                          debootstrap, systemd-nspawn, the package's tools)
BUILD_PKGS=(
  build-essential pkg-config python3 python3-jinja2 python3-yaml
  libhiredis-dev libcurl4-openssl-dev libssl-dev libsystemd-dev libjansson-dev libfcgi-dev
  libmicrohttpd-dev
)
DEB_PKGS=(debhelper dpkg-dev lintian git)
TEST_PKGS=(
  clang clang-tidy cppcheck libclang-rt-14-dev lua-check
  redis-server redis-sentinel redis-tools haproxy curl
  python3-pytest python3-redis python3-requests python3-pyflakes
  prometheus prometheus-redis-exporter chromium libjs-chart.js
)
LAB_PKGS=(
  ansible-core ansible-lint vagrant vagrant-libvirt debootstrap systemd-container
  openssh-client iproute2 tcpdump
)
case "${1:-}" in
  "") PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  deb) PKGS=("${BUILD_PKGS[@]}" "${DEB_PKGS[@]}") ;;
  lab) PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${DEB_PKGS[@]}" "${LAB_PKGS[@]}") ;;
  *) echo "usage: scripts/deps.sh [deb|lab]" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The Standard Webhooks reference verifier (tests/integration/test_signing.py)
# runs on node and comes from npm: Debian's nodejs and npm, unless a node
# with an npm of its own is installed already (Debian's npm would conflict).
if [ "${1:-}" != deb ] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]}" >&2
  echo "deps: run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the services of packages it installs, where systemd runs;
# the local cluster runs its own instances on other ports. Stop and disable
# those of the packages installed just now, and never one that was there
# before: it may be the operator's.
for svc in redis-server redis-sentinel haproxy prometheus prometheus-redis-exporter; do
  case " ${missing[*]} " in *" $svc "*) ;; *) continue ;; esac
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
