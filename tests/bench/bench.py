#!/usr/bin/python3
"""make bench - the pipeline against the ceilings of its own parts, measured
in one run on this machine, each result as a ratio to its ceiling.

A cluster of its own (state run/bench, ports shifted by PORT_OFFSETS["bench"]), pb-bench for load and
counting, redis-benchmark for Redis. Writes run/bench/report.{json,md}.
Each part is measured alone where it can be: ingest runs with the agents
stopped, then the agents drain what it queued (delivery), and the end to
end run has everything going. The report ends with the targets and,
for each missed one, which part the run waited for.
Timings here are noisy: read ratios, not absolutes; nothing is pass/fail
except that every acknowledged postback must arrive.

To try a setting, override template variables of cluster/local.yml:
    make bench BENCH_SET='{"pb_ingest_threads": 32}'
BENCH_SIGN=1 signs every postback (Standard Webhooks: pbctl keys sign for
the bench's client), for the cost of signing beside a run without
(make bench-parts reads it too).

The two ratios move by half between runs on a virtual machine
whose speed changes by the minute, so they are measured in BENCH_ROUNDS
rounds (default 3), each ceiling right before the run it divides, and the
report gives the median ratio with the lowest and highest. BENCH_ONLY=ratios
runs those rounds alone (about 30 s a round).
"""
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from pbcluster import PORT_OFFSETS, Cluster, free_port  # noqa: E402

STATE = os.path.join(ROOT, "run", "bench")
# The load generator; PB_BENCH=<another build's pb-bench> for an A/B of it.
BENCH = os.environ.get("PB_BENCH") or os.path.join(ROOT, "build", "pb-bench")
SEED = {"mascot": "Gopher", "location": "https://blog.golang.org/gopher/gopher.png"}


RUNNING = []  # the pb-bench under way, whose CPU time /proc still has
KEY_FILE = None  # the cluster's client key (secrets/client.key), once it is up


def pb_bench(endpoint, then=None, **kw):
    """Run pb-bench; endpoint None means its own receiver (its ceiling).
    then: called while pb-bench runs (it waits for its deliveries)."""
    out = os.path.join(STATE, "pb-bench.json")
    listen = "127.0.0.1:%d" % free_port()
    args = [BENCH, "--endpoint", endpoint or "http://%s/x" % listen, "--listen", listen,
            "--json", out]
    if endpoint and KEY_FILE:
        args += ["--key-file", KEY_FILE]
    for k, v in kw.items():
        args += ["--" + k, str(v)]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    RUNNING.append(p.pid)
    try:
        if then:
            then()
        p.wait(timeout=600)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        RUNNING.remove(p.pid)
    with open(out) as f:
        return json.load(f)


def waiting(c, m):
    """Postbacks queued (apps/common/keys.h): the waiting count and any
    version 1 jobs."""
    return c.queue_size(m)


def queue_keys(c, m):
    """Every key that holds queued postbacks: the lanes and their lists,
    the request hashes and data, with ready and the waiting count."""
    ks = [k for pattern in ("q:*", "lanes:*", "r:*", "d:*")
          for k in m.scan_iter(match=c.key(pattern), count=1000)]
    return ks + [c.key("ready"), c.key("waiting"), c.key("queue")]


def ingest_then_deliver(c, agents, requests, objects, connections, endpoint=None, queued=None,
                        **kw):
    """Ingest with every agent stopped, so the ingest figures are the ingest
    path's alone; once all is queued, start agents and measure how fast
    they drain the queue (pb-bench's received_per_s, first delivery to
    last). CPU shares for each phase. endpoint: c.endpoint unless given;
    queued: called once all is queued, before the agents start (kw: more
    pb-bench options)."""
    n = requests * objects
    for a in c.agent_names:
        c.stop(a)
    masters = [c.master(i) for i in range(len(c.shards))]
    snaps = [cpu_snapshot(c)]

    def start_agents():
        deadline = time.monotonic() + 300
        while sum(waiting(c, m) for m in masters) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        snaps.append(cpu_snapshot(c))
        if queued:
            queued()
        for a in agents:
            c.start(a)
    res = pb_bench((endpoint or c.endpoint) + "/ingest", then=start_agents, requests=requests,
                   objects=objects, connections=connections, wait=300, **kw)
    snaps.append(cpu_snapshot(c))
    res["cpu_ingest"] = cpu_share(snaps[0], snaps[1])
    res["cpu_delivery"] = cpu_share(snaps[1], snaps[2])
    res["snapshots"] = snaps  # for CPU seconds (make bench-parts)
    for a in c.agent_names:
        c.start(a)
    return res


def ratio_rounds(c, rounds):
    """Issue 14's two ratios, each against its ceiling measured just before
    it, rounds times: the ratios of each round, their median, lowest and
    highest, and the last round's runs (for the counts and CPU shares)."""
    ep, agents = c.endpoint, c.agent_names
    per = {"ingest": [], "delivery": []}
    for i in range(rounds):
        print("bench: round %d of %d: no-work ceiling, ingest of 1 object, receiver's "
              "ceiling, delivery by every agent" % (i + 1, rounds), flush=True)
        nowork = pb_bench(ep + "/health", requests=20000, connections=32,
                          wait=0)["answered_per_s"]
        one = ingest_then_deliver(c, agents, requests=20000, objects=1, connections=32)
        receiver = pb_bench(None, requests=50000, connections=64, wait=0)["answered_per_s"]
        every = ingest_then_deliver(c, agents, requests=2000, objects=100, connections=16)
        per["ingest"].append({"ratio": round(one["requests_per_s"] / nowork, 3),
                              "ceiling": nowork, "rate": one["requests_per_s"],
                              "run": one})
        per["delivery"].append({"ratio": round(every["received_per_s"] / receiver, 3),
                                "ceiling": receiver, "rate": every["received_per_s"],
                                "run": every})
    out = {}
    for name, rs in per.items():
        ratios = [x["ratio"] for x in rs]
        out[name] = {"median": statistics.median(ratios), "low": min(ratios),
                     "high": max(ratios), "rounds": [
                         {k: v for k, v in x.items() if k != "run"} for x in rs],
                     "runs": [x["run"] for x in rs]}
    return out


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


def daemons(c):
    """(part, program name) for every daemon of the cluster; with several
    shards, each shard's master and replicas are parts of their own."""
    out = [("haproxy", "haproxy")]
    out += [("ingest nodes", n["name"]) for n in c.topo["ingest_nodes"]]
    for i, shard in enumerate(c.shards):
        master = c.master_node(shard=i)
        of = " " + shard["name"] if len(c.shards) > 1 else ""
        out += [("redis master" + of if n["name"] == master else "redis replicas" + of,
                 n["name"]) for n in shard["redis_nodes"]]
    out += [("sentinels", n["name"]) for n in c.topo["sentinels"]]
    # Prometheus and the redis exporter, when the cluster has them.
    out += [("monitoring", name) for name in ("prometheus", "redis-exporter")
            if c.pid(name)]
    return out + [("agents", a) for a in c.agent_names]


def cpu_snapshot(c):
    """CPU seconds so far per part of the cluster, of the load generator
    (finished children), and of the whole machine (busy, total)."""
    parts = {}
    for part, name in daemons(c):
        parts[part] = parts.get(part, 0.0) + proc_cpu_s(c.pid(name))
    # Finished runs count in RUSAGE_CHILDREN once reaped, the running one in /proc.
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    parts["pb-bench (load + receiver)"] = ru.ru_utime + ru.ru_stime + sum(
        proc_cpu_s(pid) for pid in RUNNING)
    with open("/proc/stat") as f:
        j = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return {"parts": parts, "total": sum(j[:8]) / hz, "idle": (j[3] + j[4]) / hz}


def cpu_seconds(a, b):
    """Between two snapshots: each part's CPU seconds, the machine's idle
    seconds and its total (both cores)."""
    parts = {k: b["parts"][k] - a["parts"].get(k, 0.0) for k in b["parts"]}
    return parts, b["idle"] - a["idle"], b["total"] - a["total"]


def cpu_share(a, b):
    """Each part's share of the machine's CPU between two snapshots, in %."""
    parts, idle, total = cpu_seconds(a, b)
    total = total or 1.0
    share = {k: round(100 * v / total, 1) for k, v in parts.items()}
    share["idle"] = round(100 * idle / total, 1)
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


def rss_kb(c, name, field="VmRSS"):
    """Resident memory now (VmRSS) or at its peak so far (VmHWM)."""
    try:
        with open("/proc/%d/status" % c.pid(name)) as f:
            return int(re.search(field + r":\s+(\d+)", f.read()).group(1))
    except (OSError, TypeError, AttributeError):
        return 0


def net_bytes(m):
    """Bytes in and out of Redis for clients, replication traffic left out."""
    st = m.info("stats")
    return (st["total_net_input_bytes"] - st.get("total_net_repl_input_bytes", 0) +
            st["total_net_output_bytes"] - st.get("total_net_repl_output_bytes", 0))


def cost_per_postback(c, n=100000):
    """For n queued copies of the seed's sample (agents stopped): the queue's
    memory in Redis (MEMORY USAGE, every element counted), the growth of
    used_memory (also buffers), and the bytes between ingest and Redis."""
    import requests
    for a in c.agent_names:
        c.stop(a)
    m = c.master()
    m.delete(*queue_keys(c, m))
    body = {"endpoint": {"method": "GET", "url":
                         "http://sample_domain_endpoint.com/data?title={mascot}&image={location}&foo={bar}"},
            "data": [SEED] * 100}
    used, net = m.info("memory")["used_memory"], net_bytes(m)
    with requests.Session() as s:
        for _ in range(n // 100):
            s.post(c.endpoint + "/ingest", json=body, headers=c.auth,
                   timeout=30).raise_for_status()
    ks = queue_keys(c, m)
    q = next(k for k in ks if k.startswith(c.key("q:").encode()))
    out = {"redis_queue_bytes_per_postback":
           round(sum(m.memory_usage(k, samples=0) or 0 for k in ks) / n, 1),
           "redis_used_memory_growth_per_postback":
           round((m.info("memory")["used_memory"] - used) / n, 1),
           "ingest_redis_net_bytes_per_postback": round((net_bytes(m) - net) / n, 1),
           "queue_element_bytes_seed_sample": len(m.lindex(q, 0))}
    m.delete(*ks)
    for a in c.agent_names:
        c.start(a)
    return out


def held_anywhere(c, m):
    """Postbacks still queued or held by an agent (its processing list, its
    held sets: apps/common/keys.h)."""
    lists = list(m.scan_iter(match=c.key("processing:*"), count=1000))
    sets = [k for k in m.scan_iter(match=c.key("held:*:*"), count=1000)]
    return (waiting(c, m) + sum(m.llen(k) for k in lists) +
            sum(m.scard(k) for k in sets))


def link_bytes(c, objects, postbacks):
    """Bytes per postback on each Redis link, from Redis' own counters
    (INFO stats and persistence, CONFIG RESETSTAT before), for postbacks of
    the seed's sample (pb-bench --sample seed) ingested and delivered with
    every agent running: clients (and the replicas' acknowledgements) to
    the master, the master to clients, the master to both replicas, and
    the master's AOF. Sentinels' and heartbeats' bytes count too: they are
    on the links. "invalid" says, by link, why a figure cannot be trusted:
    an AOF rewrite during the run (it shrinks the file: the difference is
    no longer what was written), a negative difference, postbacks missing
    (every link).
    BENCH_FORCE_AOF_REWRITE=1 forces a rewrite, to show the check."""
    m = c.master()
    rewrite = m.config_get("auto-aof-rewrite-percentage")["auto-aof-rewrite-percentage"]
    m.config_set("auto-aof-rewrite-percentage", 0)  # a rewrite would shrink the AOF
    try:
        m.config_resetstat()
        before = m.info("persistence")
        res = pb_bench(c.endpoint + "/ingest", requests=postbacks // objects,
                       objects=objects, connections=16, sample="seed", wait=120)
        if os.environ.get("BENCH_FORCE_AOF_REWRITE") == "1":
            m.bgrewriteaof()
        deadline = time.monotonic() + 30
        while (held_anywhere(c, m) or m.info("persistence")["aof_rewrite_in_progress"]) \
                and time.monotonic() < deadline:
            time.sleep(0.1)  # the last outcomes on their way
        st, after = m.info("stats"), m.info("persistence")
        aof = after["aof_current_size"] - before["aof_current_size"]
    finally:
        m.config_set("auto-aof-rewrite-percentage", rewrite)
    invalid = {}
    rewrites = after.get("aof_rewrites", 0) - before.get("aof_rewrites", 0)
    if rewrites or after.get("aof_rewrite_in_progress"):
        invalid.setdefault("aof", []).append("%d AOF rewrite(s) during the run"
                                             % max(rewrites, 1))
    n = res["acknowledged"] or 1
    out = {
        "to_master": (st["total_net_input_bytes"] - st["total_net_repl_input_bytes"]) / n,
        "from_master": (st["total_net_output_bytes"] - st["total_net_repl_output_bytes"]) / n,
        "to_replicas": st["total_net_repl_output_bytes"] / n,
        "aof": aof / n,
    }
    out = {k: round(v, 1) for k, v in out.items()}
    out["network"] = round(out["to_master"] + out["from_master"] + out["to_replicas"], 1)
    for link, v in out.items():
        if v < 0:
            invalid.setdefault(link, []).append("a negative difference (%s)" % v)
        if res["missing"]:
            invalid.setdefault(link, []).append("%d postbacks missing" % res["missing"])
    out["missing"], out["acknowledged"] = res["missing"], res["acknowledged"]
    out["invalid"] = invalid
    return out


def links_into(c, r):
    """link_bytes() for 1 and 100 objects a request, into r."""
    print("bench: bytes per postback on each Redis link (seed sample)", flush=True)
    links = {k: link_bytes(c, k, postbacks) for k, postbacks in ((1, 10000), (100, 20000))}
    for k, v in links.items():
        r["missing"] = r.get("missing", 0) + v.pop("missing")
        r["acknowledged"] = r.get("acknowledged", 0) + v.pop("acknowledged")
        for link, why in v.pop("invalid").items():
            r.setdefault("invalid", {})["bytes_%s_%d_objects" % (link, k)] = why
        for link, b in v.items():
            r["bytes_%s_%d_objects" % (link, k)] = b


# ---- targets ------------------------------------------------------------------

TARGETS = [
    # (what, result key, comparison, target, CPU share that explains a miss)
    ("ingest, 1 object: ratio to the no-work FastCGI ceiling",
     "ratio_ingest_1_to_fastcgi_nowork", ">=", 0.4, "cpu_share_ingest_1_pct"),
    ("ingest, 1 object: ratio to the no-work FastCGI ceiling, stretch",
     "ratio_ingest_1_to_fastcgi_nowork", ">=", 0.5, "cpu_share_ingest_1_pct"),
    ("ingest, 100 objects: postbacks/s", "ingest_100_postbacks_per_s", ">=", 200000,
     "cpu_share_ingest_100_pct"),
    ("delivery, all agents: ratio to the receiver's ceiling",
     "ratio_delivery_all_agents_to_receiver", ">=", 0.6, "cpu_share_delivery_all_agents_pct"),
    ("end to end at 1,000/s: p99 ms", "e2e_at_1000_p99_ms", "<", 10, None),
    ("Redis memory per queued postback (seed sample): bytes",
     "redis_queue_bytes_per_postback", "<", 200, None),
    ("Redis network links per postback, 100 objects (seed sample): bytes",
     "bytes_network_100_objects", "<=", 550, None),
    ("AOF per postback, 100 objects (seed sample): bytes",
     "bytes_aof_100_objects", "<=", 160, None),
]


def bottleneck(share):
    """Which part a run waited for, from its CPU shares."""
    parts = sorted(((v, k) for k, v in share.items() if k not in ("idle", "kernel and other")),
                   reverse=True)
    top = ", ".join("%s %s%%" % (k, v) for v, k in parts[:3])
    if share.get("idle", 0) >= 15:
        # Idle cores say only that the run waited, not for what (an
        # fsync, a round trip, a wake-up): that takes a closer look.
        return ("%s%% of the cores idle: bound by waiting, not CPU; busiest: %s"
                % (share["idle"], top))
    return "the cores are busy (%s%% idle): CPU-bound; busiest: %s" % (share.get("idle"), top)


def judge(r):
    """The targets' table. A figure whose measurement cannot be trusted
    (r["invalid"]) is judged invalid, never met."""
    lines = []
    invalid = r.get("invalid", {})
    for what, key, op, target, cpu in TARGETS:
        v = r.get(key)
        if v is None:
            continue
        if key in invalid:
            lines.append("| %s | %s | %s %s | invalid | %s |" % (
                what, round(v, 3), op, target, "; ".join(invalid[key])))
            continue
        met = {">=": v >= target, "<=": v <= target, "<": v < target}[op]
        why = bottleneck(r[cpu]) if not met and cpu in r else ""
        lines.append("| %s | %s | %s %s | %s | %s |" % (
            what, round(v, 3), op, target, "met" if met else "missed", why))
    return ["| target | result | wanted | | where the run waited |",
            "|---|---|---|---|---|"] + lines


ROUNDS = int(os.environ.get("BENCH_ROUNDS") or 3)


def ratios(r, rounds):
    """Issue 14's ratios into the report: the median judged, the spread
    and each round beside it; the counts and CPU shares of every round."""
    for name, key, share, phase in (
            ("ingest", "ratio_ingest_1_to_fastcgi_nowork", "cpu_share_ingest_1_pct",
             "cpu_ingest"),
            ("delivery", "ratio_delivery_all_agents_to_receiver",
             "cpu_share_delivery_all_agents_pct", "cpu_delivery")):
        x = rounds[name]
        r[key] = x["median"]
        r[key + "_low_high"] = "%s-%s" % (x["low"], x["high"])
        r[key + "_rounds"] = x["rounds"]
        r[share] = x["runs"][-1][phase]
    runs = rounds["ingest"]["runs"] + rounds["delivery"]["runs"]
    for k in ("acknowledged", "missing", "duplicates"):
        r[k] = r.get(k, 0) + sum(x[k] for x in runs)


def measure_all(c, r):
    """Every measure of the report, into r."""
    ep = c.endpoint
    r["rss_kb_at_rest"] = {name: rss_kb(c, name) for _, name in daemons(c)}
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
    print("bench: ingest (agents stopped), then delivery draining the queue",
          flush=True)
    agents = c.agent_names
    rounds = ratio_rounds(c, ROUNDS)
    one, every = rounds["ingest"]["runs"][-1], rounds["delivery"]["runs"][-1]
    hundred = ingest_then_deliver(c, agents[:1], requests=2000, objects=100,
                                  connections=16)
    # What TLS costs the client endpoint (HAProxy's TLS port, kept-alive
    # connections as above): each measured right after the same run in
    # clear, so that both meet the machine in the same state.
    cert = c.path("tls", "cert.pem")
    nowork = {}
    for name, url, kw in (("clear", ep, {}), ("tls", c.tls_endpoint, {"cacert": cert})):
        nowork[name] = pb_bench(url + "/health", requests=20000, connections=32, wait=0,
                                **kw)["answered_per_s"]
    r["ceiling_fastcgi_nowork_tls_req_per_s"] = nowork["tls"]
    one_clear = ingest_then_deliver(c, agents, requests=20000, objects=1, connections=32)
    one_tls = ingest_then_deliver(c, agents, requests=20000, objects=1, connections=32,
                                  endpoint=c.tls_endpoint, cacert=cert)
    # Peak RSS (VmHWM) after the load; Redis's includes 200,000 queued.
    r["rss_kb_peak_under_load"] = {name: rss_kb(c, name, "VmHWM")
                                   for _, name in daemons(c)}
    print("bench: end to end at a fixed rate", flush=True)
    e2e = pb_bench(ep + "/ingest", requests=10000, objects=1, connections=16,
                   rate=1000, wait=60)
    runs = (hundred, e2e, one_clear, one_tls)  # the rounds' are ratios()'s to count
    r["ingest_1_req_per_s"] = one["requests_per_s"]
    r["ingest_1_p50_ms"], r["ingest_1_p99_ms"] = one["ingest_p50_ms"], one["ingest_p99_ms"]
    r["ingest_1_tls_req_per_s"] = one_tls["requests_per_s"]
    r["ingest_1_tls_p50_ms"] = one_tls["ingest_p50_ms"]
    r["ingest_100_postbacks_per_s"] = hundred["postbacks_per_s"]
    r["ingest_100_p50_ms"] = hundred["ingest_p50_ms"]
    r["ingest_100_p99_ms"] = hundred["ingest_p99_ms"]
    r["delivery_1_agent_per_s"] = hundred["received_per_s"]
    r["delivery_all_agents_per_s"] = every["received_per_s"]
    r["e2e_at_1000_p50_ms"] = e2e["e2e_p50_ms"]
    r["e2e_at_1000_p99_ms"] = e2e["e2e_p99_ms"]
    r["e2e_at_1000_max_ms"] = e2e["e2e_max_ms"]
    for k in ("acknowledged", "missing", "duplicates"):
        r[k] = r.get(k, 0) + sum(x[k] for x in runs)
    links_into(c, r)
    r.update(cost_per_postback(c))
    r["ratio_tls_to_clear_nowork"] = round(nowork["tls"] / nowork["clear"], 3)
    r["ratio_tls_to_clear_ingest_1"] = round(
        one_tls["requests_per_s"] / one_clear["requests_per_s"], 3)
    r["ratio_ingest_100_to_lpush_pipelined"] = round(
        r["ingest_100_postbacks_per_s"] / r["ceiling_redis_lpush_pipelined_per_s"], 3)
    r["ratio_delivery_1_agent_to_receiver"] = round(
        r["delivery_1_agent_per_s"] / r["ceiling_receiver_req_per_s"], 3)
    ratios(r, rounds)
    r["cpu_share_ingest_100_pct"] = hundred["cpu_ingest"]
    r["cpu_share_delivery_1_agent_pct"] = hundred["cpu_delivery"]


def settings():
    """The bench's template overrides: a queue bound no run reaches, and
    BENCH_SET's."""
    overrides = {"pb_max_queue_size": 10000000}
    overrides.update(json.loads(os.environ.get("BENCH_SET") or "{}"))
    return overrides


@contextlib.contextmanager
def bench_cluster(state, offset, overrides, shards=1):
    """A cluster of its own under state (cleared first) with that many
    shards, up and settled, pb-bench's files there and its client key
    known; down after."""
    global STATE, KEY_FILE
    STATE = state
    shutil.rmtree(state, ignore_errors=True)
    # The daemons with their /metrics, without Prometheus: it belongs on a
    # host of its own, and here it would take the pipeline's cores (make
    # bench-metrics measures both).
    c = Cluster(state=state, offset=offset, overrides=overrides, receiver=False,
                metrics="endpoints", shards=shards)
    try:
        c.up(timeout=90)
        KEY_FILE = c.path("secrets", "client.key")
        if os.environ.get("BENCH_SIGN") == "1":
            p = c.pbctl("keys", "sign", "local")
            if p.returncode != 0:
                raise RuntimeError("pbctl keys sign: %s" % p.stderr)
        time.sleep(2)
        yield c
    finally:
        c.down()


def main():
    overrides = settings()
    r = {"settings": overrides, "signed": os.environ.get("BENCH_SIGN") == "1"}
    with bench_cluster(STATE, PORT_OFFSETS["bench"], overrides) as c:
        if os.environ.get("BENCH_ONLY") == "ratios":
            ratios(r, ratio_rounds(c, ROUNDS))
        elif os.environ.get("BENCH_ONLY") == "links":
            links_into(c, r)
        else:
            measure_all(c, r)
    return report(r)


def report(r):
    """report.{json,md} and the table on stdout; 0 when every acknowledged
    postback arrived."""
    with open(os.path.join(STATE, "report.json"), "w") as f:
        json.dump(r, f, indent=2)
    shares = [k for k in r if k.startswith("cpu_share")]
    rounds = [k for k in r if k.endswith("_rounds")]
    lines = ["| measure | value |", "|---|---|"] + [
        "| %s | %s |" % (k, round(v, 2) if isinstance(v, float) else v)
        for k, v in r.items() if k not in shares and k not in rounds]
    for k in rounds:
        lines += ["", "%s, each round (the ceiling measured just before):" % k[:-len("_rounds")],
                  "", "| round | ceiling /s | result /s | ratio |", "|---|---|---|---|"]
        lines += ["| %d | %d | %d | %s |" % (i + 1, x["ceiling"], x["rate"], x["ratio"])
                  for i, x in enumerate(r[k])]
    if shares:
        parts = sorted(r[shares[0]], key=lambda p: -r[shares[0]][p])
        lines += ["", "Each part's share of all cores during each run, %:", "",
                  "| part | " + " | ".join(k[len("cpu_share_"):-len("_pct")] for k in shares)
                  + " |", "|---" * (len(shares) + 1) + "|"]
        lines += ["| %s | %s |" % (p, " | ".join(str(r[k].get(p, "")) for k in shares))
                  for p in parts]
    lines += [""] + judge(r)
    with open(os.path.join(STATE, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if r.get("invalid"):
        print("bench: invalid measurements (the run fails): %s" % ", ".join(sorted(r["invalid"])))
        return 1
    return 0 if r.get("missing") == 0 and r.get("acknowledged") else 1


if __name__ == "__main__":
    sys.exit(main())
