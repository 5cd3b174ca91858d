#!/usr/bin/env bash
# Build the project's Debian package from the binaries in build/:
#   scripts/mkdeb.sh [OUTDIR]        (make deb; default OUTDIR build/deb)
# It holds the binaries only; configuration and systemd units come from the
# Ansible roles, which render them from the inventory. Dependencies are
# computed from the binaries by dpkg-shlibdeps, so they match what was linked.
# Prints the path of the .deb on standard output.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-build/deb}
version=$(scripts/version.sh)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

make --no-print-directory -s all
make --no-print-directory -s install DESTDIR="$stage/root" PREFIX=/usr >/dev/null
install -D -m 0644 README.md "$stage/root/usr/share/doc/postback/README.md"
cat > "$stage/root/usr/share/doc/postback/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: postback
Files: *
Copyright: the postback authors
License: MIT
COPY

# dpkg-shlibdeps wants a debian/control to read; a minimal one will do.
mkdir -p "$stage/debian"
printf 'Source: postback\n\nPackage: postback\nArchitecture: any\n' >"$stage/debian/control"
bins=$(cd "$stage/root" && ls usr/bin/*)
depends=$(cd "$stage" && dpkg-shlibdeps -O $(printf 'root/%s ' $bins) 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

mkdir -p "$stage/root/DEBIAN"
cat > "$stage/root/DEBIAN/control" <<CONTROL
Package: postback
Version: $version
Architecture: $arch
Maintainer: postback developers <postback@localhost>
Section: net
Priority: optional
Depends: $depends
Description: high-availability postback delivery
 pb-ingest (FastCGI ingest node behind HAProxy), pb-agent (delivery agent),
 pbctl (operator's tool) and pb-bench (benchmark), for a postback queue kept
 in Redis with Sentinel.
CONTROL
mkdir -p "$out"
deb="$out/postback_${version}_${arch}.deb"
rm -f "$out"/postback_*.deb
dpkg-deb --root-owner-group -Zxz --build "$stage/root" "$deb" >/dev/null
echo "$deb"
