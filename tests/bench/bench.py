#!/usr/bin/python3
"""make bench - the pipeline against the ceilings of its own parts, measured
in one run on this machine, each result as a ratio to its ceiling.

A cluster of its own (state run/bench, ports +20000), pb-bench for load and
counting, redis-benchmark for Redis. Writes run/bench/report.{json,md}.
Timings here are noisy: read ratios, not absolutes; nothing is pass/fail
except that every acknowledged postback must arrive.

To try a setting, override template variables of cluster/local.yml:
    make bench BENCH_SET='{"pb_ingest_threads": 32}'
"""
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from pbcluster import Cluster  # noqa: E402

STATE = os.path.join(ROOT, "run", "bench")
BENCH = os.path.join(ROOT, "build", "pb-bench")
SEED = {"mascot": "Gopher", "location": "https://blog.golang.org/gopher/gopher.png"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pb_bench(endpoint, cpu=None, **kw):
    """Run pb-bench; endpoint None means its own receiver (its ceiling).
    cpu: a cluster, to add where its CPU time went during the run."""
    out = os.path.join(STATE, "pb-bench.json")
    listen = "127.0.0.1:%d" % free_port()
    args = [BENCH, "--endpoint", endpoint or "http://%s/x" % listen, "--listen", listen,
            "--json", out]
    for k, v in kw.items():
        args += ["--" + k, str(v)]
    before = cpu_snapshot(cpu) if cpu else None
    subprocess.run(args, stdout=subprocess.DEVNULL, timeout=600)
    with open(out) as f:
        res = json.load(f)
    if cpu:
        res["cpu"] = cpu_share(before, cpu_snapshot(cpu))
    return res


# ---- where the CPU goes ----------------------------------------------------
# Everything shares the machine's cores, so a part's share of them during a
# run says which part the pipeline waits for. Read from /proc: no counters
# needed (perf has none on this virtual machine).

def proc_cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, TypeError, ValueError, IndexError):
        return 0.0


def cpu_snapshot(c):
    """CPU seconds so far per part of the cluster, of the load generator
    (finished children), and of the whole machine (busy, total)."""
    master = c.master_node()
    parts = {}

    def add(part, name):
        parts[part] = parts.get(part, 0.0) + proc_cpu_s(c.pid(name))
    add("haproxy", "haproxy")
    for n in c.topo["ingest_nodes"]:
        add("ingest nodes", n["name"])
    for n in c.topo["redis_nodes"]:
        add("redis master" if n["name"] == master else "redis replicas", n["name"])
    for i in range(1, len(c.topo["redis_nodes"]) + 1):
        add("sentinels", "sentinel%d" % i)
    for a in c.agent_names:
        add("agents", a)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    parts["pb-bench (load + receiver)"] = ru.ru_utime + ru.ru_stime
    with open("/proc/stat") as f:
        j = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return {"parts": parts, "total": sum(j[:8]) / hz, "idle": (j[3] + j[4]) / hz}


def cpu_share(a, b):
    """Each part's share of the machine's CPU between two snapshots, in %."""
    total = b["total"] - a["total"] or 1.0
    share = {k: round(100 * (b["parts"][k] - a["parts"].get(k, 0.0)) / total, 1)
             for k in b["parts"]}
    share["idle"] = round(100 * (b["idle"] - a["idle"]) / total, 1)
    share["kernel and other"] = round(100 - sum(share.values()), 1)
    return share


def redis_benchmark(c, pipeline):
    node = c.master_node()
    n = next(x for x in c.topo["redis_nodes"] if x["name"] == node)
    out = subprocess.run(
        ["redis-benchmark", "-h", n["host"], "-p", str(n["port"]), "--user", "admin",
         "-a", c.password("admin"), "-t", "lpush", "-n", "200000", "-c", "32",
         "-P", str(pipeline), "--csv"], capture_output=True, text=True, timeout=300).stdout
    m = re.search(r'"LPUSH","([0-9.]+)"', out)
    c.master().delete("mylist")  # redis-benchmark's own key
    return float(m.group(1)) if m else 0.0


def rss_kb(c, name):
    try:
        with open("/proc/%d/status" % c.pid(name)) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    except (OSError, TypeError, AttributeError):
        return 0


def memory_per_postback(c, n=20000):
    """Redis memory for n queued copies of the seed's sample (agents stopped)."""
    import requests
    for a in c.agent_names:
        c.stop(a)
    m = c.master()
    m.delete("pb:queue")
    before = m.info("memory")["used_memory"]
    body = {"endpoint": {"method": "GET", "url":
                         "http://sample_domain_endpoint.com/data?title={mascot}&image={location}&foo={bar}"},
            "data": [SEED] * 100}
    for _ in range(n // 100):
        requests.post(c.endpoint + "/ingest", json=body, timeout=30).raise_for_status()
    per = (m.info("memory")["used_memory"] - before) / n
    sample = m.lindex("pb:queue", 0)
    m.delete("pb:queue")
    for a in c.agent_names:
        c.start(a)
    return round(per, 1), len(sample)


def main():
    shutil.rmtree(STATE, ignore_errors=True)
    overrides = {"pb_max_queue_size": 10000000}
    overrides.update(json.loads(os.environ.get("BENCH_SET") or "{}"))
    c = Cluster(state=STATE, offset=20000, overrides=overrides, receiver=False)
    r = {"settings": overrides}
    try:
        c.up(timeout=90)
        ep = c.endpoint
        time.sleep(2)
        r["agents_rss_kb_at_rest"] = [rss_kb(c, a) for a in c.agent_names]
        r["ingest_rss_kb_at_rest"] = [rss_kb(c, n["name"]) for n in c.topo["ingest_nodes"]]
        print("bench: ceilings", flush=True)
        r["ceiling_redis_lpush_per_s"] = redis_benchmark(c, 1)
        r["ceiling_redis_lpush_pipelined_per_s"] = redis_benchmark(c, 16)
        # /health is answered by the ingest node without work: HAProxy + FastCGI.
        r["ceiling_fastcgi_nowork_req_per_s"] = pb_bench(
            ep + "/health", requests=20000, connections=32, wait=0)["answered_per_s"]
        r["ceiling_receiver_req_per_s"] = pb_bench(
            None, requests=50000, connections=64, wait=0)["answered_per_s"]
        # HAProxy answering by itself (its JSON 404 for an unknown path).
        r["ceiling_haproxy_alone_req_per_s"] = pb_bench(
            ep + "/nowhere", requests=20000, connections=32, wait=0)["answered_per_s"]
        print("bench: ingest and delivery", flush=True)
        one = pb_bench(ep + "/ingest", cpu=c, requests=20000, objects=1, connections=32,
                       wait=120)
        hundred = pb_bench(ep + "/ingest", cpu=c, requests=1000, objects=100, connections=8,
                           wait=300)
        r["agents_rss_kb_under_load"] = [rss_kb(c, a) for a in c.agent_names]
        r["ingest_rss_kb_under_load"] = [rss_kb(c, n["name"]) for n in c.topo["ingest_nodes"]]
        e2e = pb_bench(ep + "/ingest", requests=10000, objects=1, connections=16,
                       rate=1000, wait=60)
        r["ingest_1_req_per_s"] = one["requests_per_s"]
        r["ingest_1_p50_ms"], r["ingest_1_p99_ms"] = one["ingest_p50_ms"], one["ingest_p99_ms"]
        r["ingest_100_postbacks_per_s"] = hundred["postbacks_per_s"]
        r["ingest_100_p99_ms"] = hundred["ingest_p99_ms"]
        r["delivery_postbacks_per_s"] = hundred["delivered_per_s"]
        r["e2e_at_1000_p50_ms"] = e2e["e2e_p50_ms"]
        r["e2e_at_1000_p99_ms"] = e2e["e2e_p99_ms"]
        r["e2e_at_1000_max_ms"] = e2e["e2e_max_ms"]
        r["missing"] = one["missing"] + hundred["missing"] + e2e["missing"]
        r["redis_bytes_per_queued_postback"], r["job_bytes_seed_sample"] = \
            memory_per_postback(c)
        r["cpu_share_ingest_1_pct"] = one["cpu"]
        r["cpu_share_ingest_100_and_delivery_pct"] = hundred["cpu"]
        r["ratio_ingest_1_to_fastcgi_nowork"] = round(
            r["ingest_1_req_per_s"] / r["ceiling_fastcgi_nowork_req_per_s"], 3)
        r["ratio_delivery_to_receiver"] = round(
            r["delivery_postbacks_per_s"] / r["ceiling_receiver_req_per_s"], 3)
        r["ratio_ingest_100_to_lpush_pipelined"] = round(
            r["ingest_100_postbacks_per_s"] / r["ceiling_redis_lpush_pipelined_per_s"], 3)
    finally:
        c.down()
    with open(os.path.join(STATE, "report.json"), "w") as f:
        json.dump(r, f, indent=2)
    lines = ["| measure | value |", "|---|---|"] + [
        "| %s | %s |" % (k, round(v, 2) if isinstance(v, float) else v)
        for k, v in r.items() if not k.startswith("cpu_share")]
    for k in ("cpu_share_ingest_1_pct", "cpu_share_ingest_100_and_delivery_pct"):
        if k in r:
            lines += ["", "%s (%% of all cores during the run):" % k, "",
                      "| part | % |", "|---|---|"] + [
                "| %s | %s |" % (p, v) for p, v in
                sorted(r[k].items(), key=lambda kv: -kv[1])]
    with open(os.path.join(STATE, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if r.get("missing") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
