#!/usr/bin/python3
"""make bench-metrics - what the metrics cost: the same runs on a cluster
with every metrics endpoint, the redis exporter and Prometheus (scraping
every 2 s, as the local cluster does) and on one without any of them.

Rounds alternate off, on, on, off, off, on (drift on a shared machine
falls on both sides alike); each round starts its cluster afresh, measures
its own ceilings (HAProxy + FastCGI without work, the receiver) and then:
ingest of 1-object requests, ingest of 100-object requests, and delivery
by both agents of what was queued. Each figure is a ratio to the round's
ceiling; the report gives each side's median and on/off.
Writes run/bench-metrics/report.{json,md}. Nothing is pass/fail but that
every acknowledged postback arrives.
"""
import json
import os
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import Cluster, ingest_then_deliver, pb_bench  # noqa: E402

STATE = os.path.join(bench.ROOT, "run", "bench-metrics")
ORDER = [False, True, True, False, False, True]
FIGURES = ("ingest_1_to_fastcgi", "ingest_100_to_fastcgi", "delivery_to_receiver")


def round_(metrics, n):
    state = os.path.join(STATE, "round%d" % n)
    shutil.rmtree(state, ignore_errors=True)
    bench.STATE = state
    c = Cluster(state=state, offset=20000, overrides={"pb_max_queue_size": 10000000},
                receiver=False, metrics=metrics)
    try:
        c.up(timeout=90)
        time.sleep(3)
        fastcgi = pb_bench(c.endpoint + "/health", requests=20000, connections=32,
                           wait=0)["answered_per_s"]
        receiver = pb_bench(None, requests=30000, connections=64, wait=0)["answered_per_s"]
        one = ingest_then_deliver(c, c.agent_names, requests=10000, objects=1,
                                  connections=32)
        every = ingest_then_deliver(c, c.agent_names, requests=1500, objects=100,
                                    connections=16)
    finally:
        c.down()
    return {"metrics": metrics,
            "ingest_1_to_fastcgi": one["requests_per_s"] / fastcgi,
            "ingest_100_to_fastcgi": every["requests_per_s"] / fastcgi,
            "delivery_to_receiver": every["received_per_s"] / receiver,
            "missing": one["missing"] + every["missing"],
            "acknowledged": one["acknowledged"] + every["acknowledged"]}


def main():
    shutil.rmtree(STATE, ignore_errors=True)
    os.makedirs(STATE)
    rounds = []
    for n, metrics in enumerate(ORDER):
        print("bench-metrics: round %d, metrics %s" % (n + 1, "on" if metrics else "off"),
              flush=True)
        rounds.append(round_(metrics, n))
    report = {"rounds": rounds}
    lines = ["| figure (ratio to the round's ceiling) | metrics off, median | "
             "metrics on, median | on / off |", "|---|---|---|---|"]
    for f in FIGURES:
        off = statistics.median(r[f] for r in rounds if not r["metrics"])
        on = statistics.median(r[f] for r in rounds if r["metrics"])
        report[f] = {"off": off, "on": on, "on_over_off": on / off}
        lines.append("| %s | %.3f | %.3f | %.3f |" % (f, off, on, on / off))
    report["missing"] = sum(r["missing"] for r in rounds)
    report["acknowledged"] = sum(r["acknowledged"] for r in rounds)
    lines += ["", "Every round: %s" % ", ".join(
        "%s %s" % ("on" if r["metrics"] else "off",
                   "/".join("%.3f" % r[f] for f in FIGURES)) for r in rounds),
        "", "acknowledged %d, missing %d" % (report["acknowledged"], report["missing"])]
    with open(os.path.join(STATE, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(STATE, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if report["missing"] == 0 and report["acknowledged"] else 1


if __name__ == "__main__":
    sys.exit(main())
