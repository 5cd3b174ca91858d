"""The drill lab: the cluster of cluster/drill.yml on network-namespace
hosts, started once for all drills and always taken down again."""
import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from netlab import NetLab  # noqa: E402
from pbcluster import Cluster, load_topology  # noqa: E402

# PB_DRILL_TOPOLOGY: another layout to drill (e.g. to compare one).
TOPOLOGY = os.environ.get("PB_DRILL_TOPOLOGY", os.path.join(ROOT, "cluster", "drill.yml"))
# make drill-soak sets PB_DRILL_RUN=drill-soak: its state and summary apart.
STATE = os.path.join(ROOT, "run", os.environ.get("PB_DRILL_RUN", "drill"))
RESULTS = []


class Lab:
    def __init__(self):
        self.topo = load_topology(TOPOLOGY)
        self.net = NetLab(self.topo)
        self.cluster = None


@pytest.fixture(scope="session")
def lab():
    import shutil
    if os.geteuid() != 0:
        pytest.skip("the drill lab makes network namespaces: run as root")
    shutil.rmtree(STATE, ignore_errors=True)
    lab = Lab()
    try:
        lab.net.up()
        lab.cluster = Cluster(state=STATE, offset=0, overrides={}, receiver=True,
                              topology=TOPOLOGY, shards=1 + len(lab.topo["shards"]))
        lab.cluster.up(timeout=120)
        yield lab
    finally:
        if lab.cluster:
            lab.cluster.down()
        lab.net.down()
        write_summary()


def total(rows):
    """One row for all: counts added up, times and the rest at their worst."""
    out = {"drill": "**all %d**" % len(rows), "ok": all(r["ok"] for r in rows)}
    for k in rows[0]:
        if any(k not in r for r in rows):  # a drill's own figures
            continue
        vals = [r[k] for r in rows]
        if k in out or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                for v in vals):
            continue
        out[k] = round(max(vals), 2) if k.endswith("_s") else sum(vals)
    return out


def write_summary():
    if not RESULTS:
        return
    os.makedirs(STATE, exist_ok=True)
    with open(os.path.join(STATE, "summary.json"), "w") as f:
        json.dump(RESULTS, f, indent=2)
    cols = [("drill", "drill"), ("ok", "pass"), ("acknowledged", "acked"),
            ("delivered", "delivered"), ("lost", "lost acked"),
            ("duplicates", "duplicates"), ("backlog", "backlog in Redis"),
            ("missing_in_redis", "gone from Redis"),
            ("refused", "503s"), ("client_errors", "client errors"),
            ("write_gap_s", "write unavailability (s)"),
            ("settle_s", "settled after heal (s)"),
            ("replica_named_s", "replica named master (s)"),
            # test_shard_drills.py's load drill: what clients saw after the kill
            ("not_200_pct", "not 200 in the 15 s after (%)"),
            ("answer_p99_s", "answer p99 (s)"), ("answer_max_s", "answer max (s)"),
            ("answers_over_1s", "answers over 1 s"), ("arrival_p99_s", "arrival p99 (s)")]
    lines = ["| " + " | ".join(h for _, h in cols) + " |",
             "|" + "---|" * len(cols)]
    rows = list(RESULTS)
    if len(rows) > 1:
        rows.append(total(rows))
    for r in rows:
        lines.append("| " + " | ".join(
            ("yes" if r[k] else "**NO**") if k == "ok" else str(r.get(k, "")) for k, _ in cols) + " |")
    table = "\n".join(lines) + "\n"
    with open(os.path.join(STATE, "summary.md"), "w") as f:
        f.write(table)
    print("\n" + table)
