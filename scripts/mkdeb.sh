#!/usr/bin/env bash
# Build the project's Debian packages the Debian way (debhelper, debian/):
#   scripts/mkdeb.sh [OUTDIR]        (make deb; default OUTDIR build/deb)
# postback (the daemons, pbctl, their units and users), postback-bench and
# postback-dbgsym, at the build's version (scripts/version.sh, which the
# changelog entry written here records), then lintian: any error fails.
# Builds from a copy of the source tree, so build/ is left alone. Prints
# the path of the postback .deb (the one the Ansible roles install).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-build/deb}
version=$(scripts/version.sh)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The tracked and new files of the working tree, without build output.
mkdir -p "$stage/postback"
git ls-files -z --cached --others --exclude-standard |
  tar --null -T - -cf - | tar -xf - -C "$stage/postback"

# The changelog's newest entry is this build's version (unless it is already).
if [ "$(cd "$stage/postback" && dpkg-parsechangelog -S Version)" != "$version" ]; then
  {
    printf 'postback (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Built from %s.\n\n' "$(git describe --always --dirty 2>/dev/null || echo 'a source tree')"
    printf ' -- %s  %s\n\n' "$(cd "$stage/postback" && dpkg-parsechangelog -S Maintainer)" "$(git log -1 --format=%aD 2>/dev/null || date -R)"
    cat "$stage/postback/debian/changelog"
  } > "$stage/changelog" && mv "$stage/changelog" "$stage/postback/debian/changelog"
fi

(cd "$stage/postback" &&
  DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
  dpkg-buildpackage -b -us -uc >"$stage/build.log" 2>&1) || {
  tail -40 "$stage/build.log" >&2
  echo "mkdeb: dpkg-buildpackage failed (log above)" >&2
  exit 1
}

changes=$(ls "$stage"/postback_*.changes)
# Its caches in the stage too (TMPDIR), gone with it: not left in /tmp.
TMPDIR="$stage" lintian --fail-on error --tag-display-limit 0 "$changes" >&2 || {
  echo "mkdeb: lintian found errors in the packages" >&2
  exit 1
}

# Debian's build flags took effect in the shipped binaries.
mkdir -p "$stage/x"
dpkg-deb -x "$stage"/postback_"$version"_*.deb "$stage/x"
tests/lint/hardening.sh "$stage"/x/usr/bin/* >&2

mkdir -p "$out"
rm -f "$out"/postback*_*.deb "$out"/postback_*.changes "$out"/postback_*.buildinfo
cp "$stage"/postback*_*.deb "$changes" "$stage"/postback_*.buildinfo "$out"/
ls "$out"/postback_"$version"_*.deb
