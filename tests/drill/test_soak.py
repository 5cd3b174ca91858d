"""Partition soak: the drill of runner.py again and again, each time with
another host cut off and healed — the master's host (with its clients on
its side, then alone), a replica's, a Sentinel's, an agent's — with a
backlog of acknowledged postbacks waiting in Redis across every heal.

    make drill-soak              SOAK_N=20 partitions (the default)
    make drill-soak SOAK_N=5 SOAK_CUTS=master,master-alone   only these kinds

Results: run/drill-soak/summary.{md,json}, a row per partition and a total.
"""
import os

import pytest

from runner import demoted, drill, partition

SOAK_N = int(os.environ.get("SOAK_N", "20"))
HOLD_S = 12  # the cut lasts this long: past down-after, a failover and its end


def a_replica(c):
    return next(n["name"] for n in c.topo["redis_nodes"] if n["name"] != c.master_node())


# (what, whom to cut, keep the master's clients on its side), in turn.
ALL_CUTS = [
    ("master", lambda c, k: c.master_node(), True),
    ("replica", lambda c, k: a_replica(c), False),
    ("sentinel", lambda c, k: c.topo["sentinels"][k % len(c.topo["sentinels"])]["name"], False),
    ("master-alone", lambda c, k: c.master_node(), False),
    ("agent", lambda c, k: c.topo["agents"][k % len(c.topo["agents"])]["name"], False),
]
WANTED = (os.environ.get("SOAK_CUTS") or ",".join(c[0] for c in ALL_CUTS)).split(",")
CUTS = [cut for cut in ALL_CUTS if cut[0] in WANTED]
assert CUTS, "SOAK_CUTS names none of %s" % [c[0] for c in ALL_CUTS]


@pytest.mark.parametrize("k", range(SOAK_N))
def test_partition(lab, k):
    what, whom, keep = CUTS[k % len(CUTS)]
    cut, heal = partition(lab.net, lambda c: whom(c, k // len(CUTS)), keep_clients=keep)
    drill(lab, "soak%02d-%s" % (k + 1, what), cut, heal, hold=HOLD_S,
          check=demoted if what.startswith("master") else None)
