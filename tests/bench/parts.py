#!/usr/bin/python3
"""make bench-parts - what an ingest request of 1 object costs each part of
the cluster, beside a request the FastCGI node answers without work, and
what the delivery of its postback costs.

A cluster of its own (state run/bench-parts, ports shifted by PORT_OFFSETS["bench-parts"]). In each of
BENCH_ROUNDS rounds (default 3): 20,000 requests to /health (no work), then
20,000 ingest requests of 1 object with the agents stopped, 32 connections
each, as `make bench` runs them. For each run: requests/s, and each part's
CPU time a request (microseconds, from /proc, the arithmetic of `make
bench`'s shares: bench.cpu_snapshot); for the ingest run also the master's
script calls (one a group-commit round), requests a round, and the mean
time a request waited for its round (pb_ingest_enqueue_seconds of the
nodes). Then every agent is started on what the ingest run queued (into
pb-bench's receiver): each part's CPU time a postback delivered, from the
agents' start to the last arrival. Medians last.

Another build's daemons (an A/B of two commits): PB_BIN_DIR=<its build>;
another load generator: PB_BENCH=<its pb-bench>.
A setting: BENCH_SET='{"pb_ingest_threads": 24}'.

Shards: BENCH_SHARDS=1,2 measures a cluster of one shard, then one of two
(each in turn, the same rounds), and ends with what each master spends a
postback in each, and the scale model those costs give: how many postbacks
a second one master's core carries, ingested and delivered, and N shards.
"""
import json
import os
import statistics
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

REQUESTS, CONNECTIONS = 20000, 32


def enqueue_histogram(c):
    """(sum of seconds, count) of pb_ingest_enqueue_seconds over the nodes."""
    s = n = 0.0
    for node in c.topo["ingest_nodes"]:
        url = "http://127.0.0.1:%d/metrics" % node["metrics_port"]
        with urllib.request.urlopen(url, timeout=5) as f:
            for line in f.read().decode().splitlines():
                if line.startswith("pb_ingest_enqueue_seconds_sum"):
                    s += float(line.split()[-1])
                elif line.startswith("pb_ingest_enqueue_seconds_count"):
                    n += float(line.split()[-1])
    return s, n


def per_request(a, b, n):
    """Each part's CPU microseconds a request between two snapshots."""
    parts, idle, total = bench.cpu_seconds(a, b)
    out = {k: round(1e6 * v / n, 1) for k, v in parts.items()}
    out["all parts busy"] = round(1e6 * (total - idle) / n, 1)
    out["idle"] = round(1e6 * idle / n, 1)
    return out


def one_round(c, ep):
    s0 = bench.cpu_snapshot(c)
    nowork = bench.pb_bench(ep + "/health", requests=REQUESTS, connections=CONNECTIONS,
                            wait=0)
    s1 = bench.cpu_snapshot(c)
    masters = [c.master(i) for i in range(len(c.shards))]
    for m in masters:
        m.config_resetstat()
    at = {"h0": enqueue_histogram(c)}

    def queued():
        """All is queued: the ingest's own counts, before the agents start."""
        at["h1"] = enqueue_histogram(c)
        at["calls"] = sum(m.info("commandstats").get("cmdstat_fcall", {}).get("calls", 0)
                          for m in masters)
    # The ingest run with the agents stopped, then every agent draining it.
    run = bench.ingest_then_deliver(c, c.agent_names, requests=REQUESTS, objects=1,
                                    connections=CONNECTIONS, queued=queued)
    for a in c.agent_names:
        c.stop(a)
    if run["delivered"] < REQUESTS or run["missing"]:
        sys.exit("bench-parts: %d of %d postbacks delivered, %d missing"
                 % (run["delivered"], REQUESTS, run["missing"]))
    _, s2, s3 = run["snapshots"]
    calls = at["calls"]
    waited = at["h1"][1] - at["h0"][1]
    return {"nowork_per_s": nowork["answered_per_s"],
            "ingest_per_s": run["requests_per_s"],
            "ratio": round(run["requests_per_s"] / nowork["answered_per_s"], 3),
            "delivered_per_s": run["received_per_s"],
            "rounds": calls,
            "requests_a_round": round(waited / calls, 2) if calls else None,
            "enqueue_ms": round(1000 * (at["h1"][0] - at["h0"][0]) / waited, 2) if waited
            else None,
            "nowork_us": per_request(s0, s1, REQUESTS),
            "ingest_us": per_request(s1, s2, REQUESTS),
            "delivery_us": per_request(s2, s3, REQUESTS)}


def report(rounds):
    lines = ["| round | no-work /s | ingest /s | ratio | rounds | requests a round "
             "| enqueue wait, ms |", "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds):
        lines.append("| %d | %d | %d | %.3f | %d | %s | %s |" % (
            i + 1, r["nowork_per_s"], r["ingest_per_s"], r["ratio"], r["rounds"],
            r["requests_a_round"], r["enqueue_ms"]))
    lines += ["", "CPU a request, microseconds (median of the rounds):", "",
              "| part | no work (/health) | ingest, 1 object | delivery, a postback |",
              "|---|---|---|---|"]
    for part in rounds[0]["ingest_us"]:
        med = [statistics.median(r[k].get(part, 0.0) for r in rounds)
               for k in ("nowork_us", "ingest_us", "delivery_us")]
        lines.append("| %s | %.1f | %.1f | %.1f |" % (part, med[0], med[1], med[2]))
    lines += ["", "median ratio %.3f (%s)" % (
        statistics.median(r["ratio"] for r in rounds),
        ", ".join("%.3f" % r["ratio"] for r in rounds))]
    return "\n".join(lines)


def masters_cost(by_shards):
    """What each master spends, from the medians of each cluster measured:
    CPU microseconds over all the run's requests of one object (ingest) and
    postbacks (delivery); a postback it handled (routing splits them evenly:
    times the shards); and the scale model at that cost: the postbacks a
    second one master's core carries (1e6 / the cost of one it handled),
    and the shards together, each master on a core of its own."""
    lines = ["", "Each master, CPU microseconds (medians):", "",
             "| shards | master | ingest, a request of the run | delivery, a postback "
             "of the run | a postback it handled | postbacks/s a master core | the shards "
             "together |", "|---|---|---|---|---|---|---|"]
    for n, rounds in by_shards:
        for part in rounds[0]["ingest_us"]:
            if not part.startswith("redis master"):
                continue
            ing = statistics.median(r["ingest_us"].get(part, 0.0) for r in rounds)
            dlv = statistics.median(r["delivery_us"].get(part, 0.0) for r in rounds)
            own = (ing + dlv) * n
            per_core = 1e6 / own if own else 0
            lines.append("| %d | %s | %.1f | %.1f | %.1f | %d | %d |" % (
                n, part, ing, dlv, own, per_core, per_core * n))
    return "\n".join(lines)


def main():
    overrides = bench.settings()
    shard_counts = [int(x) for x in (os.environ.get("BENCH_SHARDS") or "1").split(",")]
    by_shards, texts = [], []
    for n in shard_counts:
        rounds = []
        with bench.bench_cluster(os.path.join(bench.ROOT, "run", "bench-parts"), bench.PORT_OFFSETS["bench-parts"],
                                 overrides, shards=n) as c:
            for a in c.agent_names:
                c.stop(a)
            for i in range(bench.ROUNDS):
                print("bench-parts: %d shard(s), round %d of %d" % (n, i + 1, bench.ROUNDS),
                      flush=True)
                rounds.append(one_round(c, c.endpoint))
        by_shards.append((n, rounds))
        texts.append(("%d shard(s):\n\n" % n if len(shard_counts) > 1 else "") + report(rounds))
    text = "\n\n".join(texts)
    if len(shard_counts) > 1:
        text += "\n" + masters_cost(by_shards)
    with open(os.path.join(bench.STATE, "parts.json"), "w") as f:
        json.dump({"settings": overrides, "bin_dir": os.environ.get("PB_BIN_DIR"),
                   "signed": os.environ.get("BENCH_SIGN") == "1",
                   "rounds": by_shards[-1][1],
                   "by_shards": {str(n): r for n, r in by_shards}}, f, indent=1)
    if os.environ.get("BENCH_SIGN") == "1":
        text = "Every postback signed (BENCH_SIGN=1).\n\n" + text
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
