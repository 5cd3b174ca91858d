#!/usr/bin/env python3
"""The clusters the repository starts (scripts/pbcluster.py, PORT_OFFSETS)
run side by side: no port of one is a port of another, and none lies in
the kernel's range for outgoing connections, where a client's socket may
hold it when the daemon starts."""
import itertools
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from pbcluster import PORT_OFFSETS, ephemeral_range, load_topology, ports_of  # noqa: E402


def main():
    base = set(ports_of(load_topology(os.path.join(ROOT, "cluster", "local.yml"))))
    low, high = ephemeral_range()
    bad = []
    for name, off in PORT_OFFSETS.items():
        inside = sorted(p + off for p in base if low <= p + off <= high)
        if inside:
            bad.append("%s (+%d): ports %s in %d-%d" % (name, off, inside, low, high))
    for (a, x), (b, y) in itertools.combinations(PORT_OFFSETS.items(), 2):
        shared = sorted({p + x for p in base} & {p + y for p in base})
        if shared:
            bad.append("%s (+%d) and %s (+%d) share ports %s" % (a, x, b, y, shared))
    for line in bad:
        print("port-offsets: " + line)
    if not bad:
        print("port-offsets: %d clusters, no port shared, every port below %d"
              % (len(PORT_OFFSETS), low))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
