#!/usr/bin/python3
"""make bench-metrics - what the metrics cost: the same runs on a cluster
with every metrics endpoint, the redis exporter and Prometheus (scraping
every 2 s, as the local cluster does: "all"), on one with the daemons'
endpoints alone ("endpoints"), and on one with none of it ("off").

Rounds take the three in turn, in an order that spreads a shared
machine's drift over all of them; each starts its cluster afresh,
measures its own ceilings (HAProxy + FastCGI without work, the receiver)
and then: ingest of 1-object requests, ingest of 100-object requests, and
delivery by both agents of what was queued. Each throughput is a ratio to
the round's ceiling; the CPU the daemons spent (from /proc) is per 1,000
postbacks. The report gives each mode's median and its ratio to "off".
Those figures move by a quarter from round to round here, more than the
metrics can cost; so the report also times the metric updates of a
delivered postback by themselves (pb-bench --metrics-cost: the library
calls an agent makes, over a full destination table) as a share of the
CPU an agent spends per postback (the "off" median).
Writes run/bench-metrics/report.{json,md}. Nothing is pass/fail but that
every acknowledged postback arrives.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
from bench import PORT_OFFSETS, Cluster, cpu_snapshot, ingest_then_deliver, pb_bench  # noqa: E402

STATE = os.path.join(bench.ROOT, "run", "bench-metrics")
# Off, the daemons' endpoints alone (what the daemons pay), and everything
# (Prometheus and the exporter too, on the same two cores here; on their
# own host in production), in an order that spreads drift over all three.
MODES = {False: "off", "endpoints": "endpoints", True: "all"}
ORDER = [False, "endpoints", True, True, "endpoints", False, False, True, "endpoints"]
FIGURES = ("ingest_1_to_fastcgi", "ingest_100_to_fastcgi", "delivery_to_receiver",
           "cpu_ms_per_1000_ingest", "cpu_ms_per_1000_agents",
           "cpu_ms_per_1000_daemons", "cpu_ms_per_1000_monitoring")
ONE, HUNDRED = 10000, 1500  # requests of 1 object, of 100 objects


def round_(metrics, n):
    state = os.path.join(STATE, "round%d" % n)
    shutil.rmtree(state, ignore_errors=True)
    bench.STATE = state
    c = Cluster(state=state, offset=PORT_OFFSETS["bench"], overrides={"pb_max_queue_size": 10000000},
                receiver=False, metrics=metrics)
    try:
        c.up(timeout=90)
        bench.KEY_FILE = c.path("secrets", "client.key")
        time.sleep(3)
        fastcgi = pb_bench(c.endpoint + "/health", requests=20000, connections=32,
                           wait=0)["answered_per_s"]
        receiver = pb_bench(None, requests=30000, connections=64, wait=0)["answered_per_s"]
        before = cpu_snapshot(c)["parts"]
        one = ingest_then_deliver(c, c.agent_names, requests=ONE, objects=1,
                                  connections=32)
        every = ingest_then_deliver(c, c.agent_names, requests=HUNDRED, objects=100,
                                    connections=16)
        after = cpu_snapshot(c)["parts"]
    finally:
        c.down()
    per = 1000 * 1000 / (ONE + 100 * HUNDRED)  # CPU ms per 1,000 postbacks
    cpu = {k: (after[k] - before.get(k, 0.0)) * per for k in after}
    daemons = sum(v for k, v in cpu.items() if k not in ("monitoring", "pb-bench (load + receiver)"))
    return {"metrics": metrics,
            "cpu_ms_per_1000_ingest": cpu["ingest nodes"],
            "cpu_ms_per_1000_agents": cpu["agents"],
            "cpu_ms_per_1000_daemons": daemons,
            "cpu_ms_per_1000_monitoring": cpu.get("monitoring", 0.0),
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
        print("bench-metrics: round %d, metrics %s" % (n + 1, MODES[metrics]), flush=True)
        rounds.append(round_(metrics, n))
    report = {"rounds": rounds}
    lines = ["| figure | off | endpoints | all | endpoints / off | all / off |",
             "|---|---|---|---|---|---|"]
    for f in FIGURES:
        med = {MODES[m]: statistics.median(r[f] for r in rounds if r["metrics"] == m)
               for m in MODES}
        report[f] = dict(med, **{k + "_over_off": med[k] / med["off"] if med["off"] else None
                                  for k in ("endpoints", "all")})
        lines.append("| %s | %.3f | %.3f | %.3f | %s | %s |" % (
            f, med["off"], med["endpoints"], med["all"],
            *("%.3f" % (med[k] / med["off"]) if med["off"] else "-"
              for k in ("endpoints", "all"))))
    cost = json.loads(subprocess.run([bench.BENCH, "--metrics-cost", "10000000"], check=True,
                                     capture_output=True, text=True).stdout)
    agent_ns = 1000 * report["cpu_ms_per_1000_agents"]["off"]  # ms per 1000 = us each
    report["metric_updates"] = dict(cost, agent_cpu_ns_per_postback=agent_ns,
                                    share_of_agent_cpu=cost["ns_per_postback"] / agent_ns)
    lines += ["", "Metric updates of one delivered postback: %.0f ns (pb-bench --metrics-cost), "
              "%.2f %% of the %.0f us of CPU an agent spends per postback; rendering a "
              "scrape of %d bytes: %d us." % (
                  cost["ns_per_postback"], 100 * cost["ns_per_postback"] / agent_ns,
                  agent_ns / 1000, cost["page_bytes"], cost["scrape_us"])]
    report["missing"] = sum(r["missing"] for r in rounds)
    report["acknowledged"] = sum(r["acknowledged"] for r in rounds)
    lines += ["", "Every round:", "", "| metrics | " + " | ".join(FIGURES) + " |",
              "|---" * (len(FIGURES) + 1) + "|"]
    lines += ["| %s | %s |" % (MODES[r["metrics"]],
                               " | ".join("%.3f" % r[f] for f in FIGURES)) for r in rounds]
    lines += [
        "", "acknowledged %d, missing %d" % (report["acknowledged"], report["missing"])]
    with open(os.path.join(STATE, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(STATE, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if report["missing"] == 0 and report["acknowledged"] else 1


if __name__ == "__main__":
    sys.exit(main())
