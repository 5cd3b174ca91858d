#!/usr/bin/python3
"""make bench-parts - what the cluster spends in CPU time, part by part, on
an ingest request of 1 object and of 100, on the delivery of a postback,
and on a request the FastCGI node answers without work; the cost targets
judged from those figures.

CPU time holds still where throughput does not (the load generator, the
receiver and every daemon share two cores, and the CPU model changes
between sessions), so the targets are CPU time of the cluster's parts (all
but the load generator) as a multiple of a no-work request's, measured in
the same round. Throughput is reported beside them, as information.

A cluster of its own (state run/bench-parts, ports shifted by
PORT_OFFSETS["bench-parts"]). In each of BENCH_ROUNDS rounds (default 3):
20,000 requests to /health (no work); 20,000 ingest requests of 1 object
with the agents stopped, then every agent draining what they queued (into
pb-bench's receiver); then 1,000 requests of 100 objects the same way; 32
connections each, as `make bench` runs them. Each part's CPU time from
/proc (bench.cpu_snapshot) over each run; for the 1-object run also the
master's script calls (one a group-commit round), requests a round, and
the mean time a request waited for its round (pb_ingest_enqueue_seconds).
Medians of the rounds last.

A round whose figures cannot be trusted is invalid, reported with why, and
fails the run (exit 1), never judged: a part's CPU time that went
backwards, an AOF rewrite on any Redis node during the round (it spends
CPU time no request asked for), or counts that do not add up (requests
not all answered, postbacks not all delivered). BENCH_FORCE_AOF_REWRITE=1
starts an AOF rewrite on the master in each ingest run, to see the check
fail.

Another commit beside this one: BENCH_AGAINST=<commit> builds it (its
tree under run/against/) and runs the same rounds on its build and
configuration (PB_BIN_DIR, PB_CONF_ROOT), alternated round by round with
this tree's, and reports both and this one's figures as a ratio of its;
against BASE (the build before the cost work) it judges BASE_TARGETS,
the cost targets that hold where a multiple of the no-work request's CPU
cannot (docs/benchmarks.md says why). Another build only: PB_BIN_DIR=<its build>; another load generator:
PB_BENCH=<its pb-bench>. A setting: BENCH_SET='{"pb_ingest_threads": 24}'.

Shards: BENCH_SHARDS=1,2 measures a cluster of one shard, then one of two
(each in turn, the same rounds), and ends with what each master spends a
postback in each, and the scale model those costs give: how many postbacks
a second one master's core carries, ingested and delivered, and N shards.
"""
import json
import os
import statistics
import subprocess
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

REQUESTS, CONNECTIONS = 20000, 32
BIG_REQUESTS, BIG_OBJECTS = 1000, 100
LOADGEN = "pb-bench (load + receiver)"
# (what, figure, target): the cluster's CPU time as a multiple of a no-work
# request's in the same round, at most target (median of the rounds).
TARGETS = (("ingest of 1 object: CPU a request / a no-work request's", "ingest_1_x", 1.7),
           ("delivery: CPU a postback / a no-work request's", "delivery_x", 0.35))
# The runs of a round: (key, what a unit is, header of its column).
RUNS = (("nowork", "a request", "no work (/health)"),
        ("ingest", "a request", "ingest, 1 object"),
        ("ingest_100", "a request", "ingest, 100 objects"),
        ("ingest_100_pb", "a postback", "the same, a postback"),
        ("delivery", "a postback", "delivery, a postback"),
        ("delivery_100", "a postback", "delivery, 100-object requests"))


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


def per_unit(a, b, n, invalid, what):
    """Each part's CPU microseconds a unit (n of them) between two
    snapshots, and the cluster's (every part but the load generator); a
    part whose time went backwards makes the round invalid."""
    parts, idle, total = bench.cpu_seconds(a, b)
    out = {k: round(1e6 * v / n, 1) for k, v in parts.items()}
    for k, v in parts.items():
        if v < 0:
            invalid.append("%s: %s's CPU time went backwards (%.3f s)" % (what, k, v))
    out["cluster"] = round(sum(v for k, v in out.items() if k != LOADGEN), 1)
    out["all parts busy"] = round(1e6 * (total - idle) / n, 1)
    return out


def aof_rewrites(c):
    """AOF rewrites so far, over every Redis node, and whether one runs."""
    done = running = 0
    for n in c.redis_nodes:
        p = c.redis(n["name"]).info("persistence")
        done += p.get("aof_rewrites", 0)
        running += p.get("aof_rewrite_in_progress", 0)
    return done, running


def counted(res, requests, objects, what, invalid):
    """Every request answered 200, and with objects, each of its postbacks
    acknowledged and delivered."""
    if res["ok"] != requests:
        invalid.append("%s: %d of %d requests answered 200" % (what, res["ok"], requests))
    if objects and res["acknowledged"] != requests * objects:
        invalid.append("%s: %d of %d postbacks acknowledged"
                       % (what, res["acknowledged"], requests * objects))
    if objects and (res["delivered"] != requests * objects or res["missing"]):
        invalid.append("%s: %d of %d postbacks delivered, %d missing"
                       % (what, res["delivered"], requests * objects, res["missing"]))


def ingest_run(c, requests, objects, invalid, what, queued=None):
    """Ingest with the agents stopped, then every agent draining it: the
    pb-bench result and the snapshots (start, all queued, all delivered)."""
    def on_queued():
        if os.environ.get("BENCH_FORCE_AOF_REWRITE") == "1":
            c.master().bgrewriteaof()
        if queued:
            queued()
    run = bench.ingest_then_deliver(c, c.agent_names, requests=requests, objects=objects,
                                    connections=CONNECTIONS, queued=on_queued)
    for a in c.agent_names:
        c.stop(a)
    counted(run, requests, objects, what, invalid)
    return run


def one_round(c, ep):
    invalid = []
    rewrites0 = aof_rewrites(c)[0]
    s0 = bench.cpu_snapshot(c)
    nowork = bench.pb_bench(ep + "/health", requests=REQUESTS, connections=CONNECTIONS,
                            wait=0)
    s1 = bench.cpu_snapshot(c)
    counted(nowork, REQUESTS, 0, "no work", invalid)
    masters = [c.master(i) for i in range(len(c.shards))]
    for m in masters:
        m.config_resetstat()
    at = {"h0": enqueue_histogram(c)}

    def queued():
        """All is queued: the ingest's own counts, before the agents start."""
        at["h1"] = enqueue_histogram(c)
        at["calls"] = sum(m.info("commandstats").get("cmdstat_fcall", {}).get("calls", 0)
                          for m in masters)
    one = ingest_run(c, REQUESTS, 1, invalid, "ingest of 1 object", queued)
    big = ingest_run(c, BIG_REQUESTS, BIG_OBJECTS, invalid, "ingest of 100 objects")
    done, running = aof_rewrites(c)
    if done != rewrites0 or running:
        invalid.append("%d AOF rewrite(s) on the Redis nodes during the round"
                       % max(done - rewrites0, 1))
    calls = at.get("calls", 0)
    if not calls:
        invalid.append("no script call counted on the masters")
    waited = at["h1"][1] - at["h0"][1] if "h1" in at else 0
    _, i1, d1 = one["snapshots"]
    b0, b1, b2 = big["snapshots"]
    pb_big = BIG_REQUESTS * BIG_OBJECTS
    r = {"nowork_per_s": nowork["answered_per_s"],
         "ingest_per_s": one["requests_per_s"],
         "ratio": round(one["requests_per_s"] / nowork["answered_per_s"], 3),
         "delivered_per_s": one["received_per_s"],
         "ingest_100_pb_per_s": big["postbacks_per_s"],
         "delivered_100_per_s": big["received_per_s"],
         "rounds": calls,
         "requests_a_round": round(waited / calls, 2) if calls else None,
         "enqueue_ms": round(1000 * (at["h1"][0] - at["h0"][0]) / waited, 2) if waited
         else None,
         "nowork_us": per_unit(s0, s1, REQUESTS, invalid, "no work"),
         "ingest_us": per_unit(s1, i1, REQUESTS, invalid, "ingest of 1 object"),
         "delivery_us": per_unit(i1, d1, REQUESTS, invalid, "delivery"),
         "ingest_100_us": per_unit(b0, b1, BIG_REQUESTS, invalid, "ingest of 100 objects"),
         "ingest_100_pb_us": per_unit(b0, b1, pb_big, invalid, "ingest of 100 objects"),
         "delivery_100_us": per_unit(b1, b2, pb_big, invalid, "delivery of 100-object requests")}
    nw = r["nowork_us"]["cluster"]
    r["ingest_1_x"] = round(r["ingest_us"]["cluster"] / nw, 3) if nw > 0 else None
    r["delivery_x"] = round(r["delivery_us"]["cluster"] / nw, 3) if nw > 0 else None
    if nw <= 0:
        invalid.append("no work: the cluster's CPU time is %.1f us a request" % nw)
    r["invalid"] = sorted(set(invalid))
    return r


def med(rounds, key, part=None):
    xs = [r[key] if part is None else r[key + "_us"].get(part, 0.0) for r in rounds]
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def report(rounds):
    lines = ["| round | no-work /s | ingest 1 /s | ratio | delivered /s | ingest 100, "
             "postbacks/s | delivered /s (100) | rounds | requests a round "
             "| enqueue wait, ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(rounds):
        lines.append("| %d | %d | %d | %.3f | %d | %d | %d | %d | %s | %s |" % (
            i + 1, r["nowork_per_s"], r["ingest_per_s"], r["ratio"], r["delivered_per_s"],
            r["ingest_100_pb_per_s"], r["delivered_100_per_s"], r["rounds"],
            r["requests_a_round"], r["enqueue_ms"]))
    lines += ["", "CPU time, microseconds (median of the rounds); \"cluster\" is every "
              "part but the load generator:", "",
              "| part | " + " | ".join(h for _, _, h in RUNS) + " |",
              "|---|" + "---|" * len(RUNS)]
    for part in list(rounds[0]["ingest_us"]):
        lines.append("| %s | %s |" % (part, " | ".join(
            "%.1f" % med(rounds, k, part) for k, _, _ in RUNS)))
    lines += ["", "median ratio %.3f (%s)" % (
        med(rounds, "ratio"), ", ".join("%.3f" % r["ratio"] for r in rounds))]
    return "\n".join(lines)


def judge(rounds):
    """The targets' table, and whether every round could be judged."""
    bad = [(i + 1, why) for i, r in enumerate(rounds) for why in r["invalid"]]
    lines = ["", "| target | result (median) | rounds | wanted | |", "|---|---|---|---|---|"]
    for what, key, target in TARGETS:
        v = med(rounds, key)
        each = ", ".join("%.3f" % r[key] if r[key] is not None else "-" for r in rounds)
        verdict = "invalid" if bad or v is None else "met" if v <= target else "missed"
        lines.append("| %s | %s | %s | <= %s | %s |" % (
            what, "%.3f" % v if v is not None else "-", each, target, verdict))
    for i, why in bad:
        lines.append("round %d invalid: %s" % (i, why))
    return "\n".join(lines), not bad


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
            ing = med(rounds, "ingest", part)
            dlv = med(rounds, "delivery", part)
            own = (ing + dlv) * n
            per_core = 1e6 / own if own else 0
            lines.append("| %d | %s | %.1f | %.1f | %.1f | %d | %d |" % (
                n, part, ing, dlv, own, per_core, per_core * n))
    return "\n".join(lines)


def measure(shard_counts):
    """BENCH_ROUNDS rounds on a cluster of each shard count: [(n, rounds)]."""
    overrides = bench.settings()
    by_shards = []
    for n in shard_counts:
        rounds = []
        with bench.bench_cluster(os.path.join(bench.ROOT, "run", "bench-parts"),
                                 bench.PORT_OFFSETS["bench-parts"], overrides, shards=n) as c:
            for a in c.agent_names:
                c.stop(a)
            for i in range(bench.ROUNDS):
                print("bench-parts: %d shard(s), round %d of %d" % (n, i + 1, bench.ROUNDS),
                      flush=True)
                rounds.append(one_round(c, c.endpoint))
        by_shards.append((n, rounds))
    return by_shards


# ---- another commit beside this one (BENCH_AGAINST) ----------------------

def against_tree(commit):
    """That commit's tree, built, under run/against/<its hash>."""
    sha = subprocess.run(["git", "-C", bench.ROOT, "rev-parse", "--verify", commit + "^{commit}"],
                         capture_output=True, text=True, check=True).stdout.strip()
    tree = os.path.join(bench.ROOT, "run", "against", sha[:12])
    if not os.path.exists(os.path.join(tree, "build", "pb-ingest")):
        os.makedirs(tree, exist_ok=True)
        archive = subprocess.Popen(["git", "-C", bench.ROOT, "archive", sha],
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tree], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            sys.exit("bench-parts: git archive %s failed" % sha)
        print("bench-parts: building %s in %s" % (sha[:12], tree), flush=True)
        subprocess.run(["make", "-s", "-C", tree, "all"], check=True,
                       stdout=subprocess.DEVNULL)
    return sha[:12], tree


def one_side(env):
    """One round of this harness on the build and configuration env names
    (a process of its own: pbcluster reads them when imported)."""
    out = os.path.join(bench.ROOT, "run", "bench-parts", "parts.json")
    env = dict(os.environ, BENCH_ROUNDS="1", BENCH_AGAINST="", BENCH_SHARDS="1", **env)
    p = subprocess.run([sys.executable, os.path.abspath(__file__)], env=env)
    with open(out) as f:
        rounds = json.load(f)["rounds"]
    if p.returncode not in (0, 1) or not rounds:
        sys.exit("bench-parts: a round failed (exit %d)" % p.returncode)
    return rounds[0]


# (what, figure of a round, its part): the cluster's CPU time, then throughput.
AB_FIGURES = (("no work: cluster CPU a request, us", "nowork", "cluster"),
              ("ingest of 1 object: cluster CPU a request, us", "ingest", "cluster"),
              ("ingest of 100 objects: cluster CPU a postback, us", "ingest_100_pb", "cluster"),
              ("delivery: cluster CPU a postback, us", "delivery", "cluster"),
              ("delivery of 100-object requests: cluster CPU a postback, us",
               "delivery_100", "cluster"),
              ("ingest of 1 object, requests/s", "ingest_per_s", None),
              ("ingest of 100 objects, postbacks/s", "ingest_100_pb_per_s", None),
              ("delivery, postbacks/s", "delivered_per_s", None),
              ("delivery of 100-object requests, postbacks/s", "delivered_100_per_s", None))


# The cost targets against the build before the cost work (TARGETS, a
# multiple of the no-work request's CPU, cannot be met by this design:
# docs/benchmarks.md says why): this tree's figure / that build's, in the
# same run, (figure, part, comparison, bound). The medians of three
# alternated rounds still move by 5 to 10 % between runs: "not lower" is
# at least 0.95, "not higher" at most 1.0.
BASE = "e146bc9"
BASE_TARGETS = (("ingest", "cluster", "<=", 0.75),
                ("nowork", "cluster", "<=", 0.75),
                ("delivery", "cluster", "<=", 1.0),
                ("ingest_100_pb_per_s", None, ">=", 0.95),
                ("delivered_per_s", None, ">=", 0.95))


def against(commit):
    sha, tree = against_tree(commit)
    here = subprocess.run(["git", "-C", bench.ROOT, "describe", "--always", "--dirty"],
                          capture_output=True, text=True).stdout.strip() or "this tree"
    sides = {sha: [], here: []}
    for i in range(bench.ROUNDS):
        for name, env in ((sha, {"PB_BIN_DIR": os.path.join(tree, "build"),
                                 "PB_CONF_ROOT": tree}),
                          (here, {"PB_BIN_DIR": "", "PB_CONF_ROOT": ""})):
            print("bench-parts: round %d of %d, %s" % (i + 1, bench.ROUNDS, name), flush=True)
            sides[name].append(one_side(env))

    with open(os.path.join(bench.ROOT, "run", "bench-parts", "against.json"), "w") as f:
        json.dump({"against": sha, "here": here, "sides": sides}, f, indent=1)
    text, valid = against_table(sha, here, sides)
    print(text)
    return 0 if valid else 1


def against_table(sha, here, sides):
    """Both sides' medians and this one's as a ratio of the other's; the
    cost targets judged against BASE; and whether every round was valid."""
    lines = ["%s against %s, %d rounds each, alternated (medians):"
             % (here, sha, len(sides[sha])),
             "", "| figure | %s | %s | %s / %s |" % (sha, here, here, sha), "|---|---|---|---|"]
    bad = [(name, i + 1, why) for name, rs in sides.items() for i, r in enumerate(rs)
           for why in r["invalid"]]
    judged = sha.startswith(BASE)
    if judged:
        lines[2] += " wanted | |"
        lines[3] += "---|---|"
    for what, key, part in AB_FIGURES:
        old, new = med(sides[sha], key, part), med(sides[here], key, part)
        x = new / old if old else 0
        line = "| %s | %.1f | %.1f | %.3f |" % (what, old, new, x)
        target = next((t for t in BASE_TARGETS if t[:2] == (key, part)), None)
        if judged and target:
            met = x <= target[3] if target[2] == "<=" else x >= target[3]
            line += " %s %s | %s |" % (target[2], target[3],
                                       "invalid" if bad else "met" if met else "missed")
        elif judged:
            line += " | |"
        lines.append(line)
    for name, i, why in bad:
        lines.append("%s round %d invalid: %s" % (name, i, why))
    return "\n".join(lines), not bad


def main():
    if os.environ.get("BENCH_AGAINST"):
        return against(os.environ["BENCH_AGAINST"])
    shard_counts = [int(x) for x in (os.environ.get("BENCH_SHARDS") or "1").split(",")]
    by_shards = measure(shard_counts)
    texts, valid = [], True
    for n, rounds in by_shards:
        verdict, ok = judge(rounds)
        valid = valid and ok
        texts.append(("%d shard(s):\n\n" % n if len(shard_counts) > 1 else "")
                     + report(rounds) + "\n" + verdict)
    text = "\n\n".join(texts)
    if len(shard_counts) > 1:
        text += "\n" + masters_cost(by_shards)
    with open(os.path.join(bench.STATE, "parts.json"), "w") as f:
        json.dump({"settings": bench.settings(), "bin_dir": os.environ.get("PB_BIN_DIR"),
                   "conf_root": os.environ.get("PB_CONF_ROOT"),
                   "signed": os.environ.get("BENCH_SIGN") == "1",
                   "rounds": by_shards[-1][1],
                   "by_shards": {str(n): r for n, r in by_shards}}, f, indent=1)
    if os.environ.get("BENCH_SIGN") == "1":
        text = "Every postback signed (BENCH_SIGN=1).\n\n" + text
    print(text)
    if not valid:
        print("bench-parts: invalid measurements (the run fails)")
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
