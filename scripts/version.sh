#!/usr/bin/env bash
# The version of this build, one line: PB_VERSION (apps/common/pb.h), then,
# in a git checkout, the commit count and hash, so that every commit on main
# is newer than the last (0.2.0+212.g71e1a26): the package's version, and
# what the daemons report (--version, pb_build_info, the agents' heartbeat).
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(sed -n 's/^#define PB_VERSION "\(.*\)"/\1/p' apps/common/pb.h)
# PB_VERSION_SUFFIX (e.g. ".1") makes a newer version of the same commit:
# the lab's upgrade drill builds one.
if git rev-parse --git-dir >/dev/null 2>&1; then
  echo "$base+$(git rev-list --count HEAD).g$(git rev-parse --short HEAD)${PB_VERSION_SUFFIX:-}"
elif [ -f debian/changelog ] && command -v dpkg-parsechangelog >/dev/null; then
  # A copy of the source without git (the package's build, scripts/mkdeb.sh):
  # the version its changelog names.
  dpkg-parsechangelog -S Version
else
  echo "$base${PB_VERSION_SUFFIX:-}"
fi
