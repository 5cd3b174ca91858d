"""How a drill runs and what it counts (test_drills.py and test_soak.py).

A steady stream of postbacks goes through HAProxy from the client host. A
little before the fault the receiver starts refusing (503 with a Retry-After
that points past the heal, as a partner down for maintenance would), so
from then on every acknowledged postback waits in Redis — queued, scheduled
for its retry, or held by an agent — instead of being delivered from an
agent's memory. The fault is injected and healed; once the cluster has
settled, one snapshot of Redis (`pbctl ids`) must hold every acknowledged
postback not yet delivered. Then the receiver accepts again, the queue
drains, and every acknowledged postback must have arrived.

All along, a monitor asks every Sentinel who the master is (the majority
decides, as clients should) and asks that node what it is: the longest time
the majority named a master that said it was a replica is reported and
bounded.
"""
import json
import os
import signal
import subprocess
import threading
import time
import uuid

from conftest import RESULTS, ROOT
from pbcluster import wait_until

PRE_S = 4       # load before the fault
LEAD_S = 2      # the receiver refuses from this long before the fault
POST_S = 6      # load after the snapshot
RATE = 40       # requests a second, 2 postbacks each
# After the heal: at least this long (a stranded Sentinel acted within
# seconds of a heal, a full resync follows some seconds later), at most
# SETTLE_MAX_S, until the cluster is settled.
SETTLE_MIN_S = 10
SETTLE_MAX_S = 60
SAMPLE_S = 0.25  # the monitor's period


def down_after_s(c):
    return c.topo["vars"]["pb_sentinel_down_after_ms"] / 1000.0


def wait_new_master(c, old, timeout=30, shard=0):
    return wait_until(lambda: (m := c.master_node(shard=shard)) not in (old, None) and m,
                      timeout)


def settled(c, shard=0):
    """The majority of Sentinels names a master of the shard, it says it is
    master, every other Redis node of the shard says it is a replica, and
    the master has a replica online (writes need one)."""
    m = c.master_node(timeout=1, shard=shard)
    if m is None or c.role(m, timeout=1) != "master":
        return False
    if any(c.role(n["name"], timeout=1) == "master"
           for n in c.shards[shard]["redis_nodes"] if n["name"] != m):
        return False
    try:
        return c.redis(m, timeout=1).info("replication")["connected_slaves"] >= 1
    except Exception:
        return False


class Monitor(threading.Thread):
    """Samples what the Sentinels' majority names master of a shard and what
    that node says it is; keeps the longest stretch where it said 'slave'."""

    def __init__(self, c, shard=0):
        super().__init__(daemon=True)
        self.c, self.stop, self.shard = c, threading.Event(), shard
        self.longest, self.since, self.worst = 0.0, None, None

    def run(self):
        while not self.stop.is_set():
            now = time.time()
            m = self.c.master_node(timeout=1, shard=self.shard)
            bad = m is not None and self.c.role(m, timeout=1) == "slave"
            if bad and self.since is None:
                self.since = now
            elif not bad:
                self.since = None
            if self.since is not None and now - self.since > self.longest:
                self.longest, self.worst = now - self.since, m
            self.stop.wait(SAMPLE_S)

    def finish(self):
        self.stop.set()
        self.join(10)
        return round(self.longest, 2)


def read_jsonl(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def longest_gap(times, start, end):
    ts = sorted(t for t in times if start <= t <= end)
    if not ts:
        return round(end - start, 2)
    edges = [start] + ts + [end]
    return round(max(b - a for a, b in zip(edges, edges[1:])), 2)


def ids_in_redis(c):
    """{id: state} of one snapshot of everything Redis holds, or None."""
    p = c.pbctl("ids")
    if p.returncode != 0:
        return None
    rows = [line.split("\t") for line in p.stdout.splitlines()]
    return {r[1]: r[0] for r in rows if len(r) == 3}


def ref_id(v):
    """The postback id of a version 2 reference
    "<dest> <rid> <i> <attempts> <offset> <length>" (apps/common/job.h), or
    None."""
    w = v.split(" ")
    return "%s-%s" % (w[1], w[2]) if len(w) == 6 else None


def where_in_redis(c, ids):
    """For a drill that found postbacks gone: on every Redis node, its role,
    the agents set, and which keys hold each of ids (version 1 jobs and dead
    letters carry the id as text, references its parts)."""
    out = {}
    for n in c.redis_nodes:
        try:
            r = c.redis(n["name"], timeout=2, decode_responses=True)
            node = {"role": r.execute_command("ROLE")[0],
                    "agents": sorted(r.smembers(c.key("agents"))), "found": {}}
            for k in r.scan_iter(match=c.key("*"), count=1000):
                t = r.type(k)
                vals = (r.lrange(k, 0, -1) if t == "list" else
                        r.zrange(k, 0, -1) if t == "zset" else [])
                for i in ids:
                    if any("\t%s\t" % i in v or '"%s"' % i in v or ref_id(v) == i
                           for v in vals):
                        node["found"].setdefault(i, []).append(k)
        except Exception as e:  # a node down is an answer too
            node = {"error": str(e)}
        out[n["name"]] = node
    return out


def delivered(c, mark):
    """The receiver's records of this drill's postbacks it accepted."""
    return [r for r in read_jsonl(c.path("log", "receiver.requests.log"))
            if r["path"].startswith(mark) and r["status"] == 200]


def start_load(lab, mark, out, rate, seconds, objects=2, threads=8):
    """load.py on the client host: rate requests a second of objects
    postbacks each to the receiver under mark, for at most seconds, one
    JSON line per answer in out. The caller stops it (SIGTERM)."""
    c = lab.cluster
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.topo["client"]["netns"], "/usr/bin/python3",
         os.path.join(ROOT, "tests", "drill", "load.py"),
         "--endpoint", c.endpoint + "/ingest",
         "--key-file", c.path("secrets", "client.key"),
         "--target", c.receiver_url + mark + "?k={k}&i={i}",
         "--rate", str(rate), "--objects", str(objects), "--threads", str(threads),
         "--seconds", str(seconds), "--out", out])


def drill(lab, name, inject, heal, hold, check=None, shard=0):
    """Run one drill, the fault on the shard's hosts; record its row in
    RESULTS; assert what it must hold."""
    c = lab.cluster
    mark = "/%s-%s" % (name, uuid.uuid4().hex[:6])
    out = c.path("log", "load-%s.jsonl" % name)
    monitor = Monitor(c, shard)
    monitor.start()
    load = start_load(lab, mark, out, RATE, PRE_S + hold + SETTLE_MAX_S + POST_S + 60)
    try:
        time.sleep(PRE_S - LEAD_S)
        # Refuse until the earliest the snapshot can be taken; extended
        # below while the cluster settles, so no retry comes due before.
        until = time.time() + LEAD_S + hold + SETTLE_MIN_S + 5
        c.receiver_refuse(until)
        time.sleep(LEAD_S)
        t_fault = time.time()
        state = inject(c)
        time.sleep(max(0.0, t_fault + hold - time.time()))
        heal(c, state)
        t_heal = time.time()
        deadline = t_heal + SETTLE_MAX_S
        while time.time() < deadline and (time.time() < t_heal + SETTLE_MIN_S
                                          or not settled(c, shard)):
            if time.time() > until - 5:
                until += 10
                c.receiver_refuse(until)
            time.sleep(0.5)
        t_settled = time.time()
        snapshot = ids_in_redis(c)
        c.receiver_accept()
        time.sleep(POST_S)
    finally:
        c.receiver_accept()
        load.send_signal(signal.SIGTERM)
        load.wait(60)
    t_end = time.time()
    drain = c.pbctl("drain", "--timeout", "90")
    if drain.returncode != 0:  # say where it is stuck
        drain.stdout += c.pbctl("status").stdout
    answers = read_jsonl(out)
    acked_at = {i: a["t"] for a in answers if a.get("status") == 200 for i in a["ids"]}
    acked = set(acked_at)
    wait_until(lambda: acked <= {r["id"] for r in delivered(c, mark)}, 60, 0.5)
    got = delivered(c, mark)
    ids = {r["id"] for r in got}
    # Acknowledged before the snapshot and neither delivered before it nor
    # in it: thrown away by Redis (agents were only being refused then).
    delivered_before = {r["id"] for r in got if r["time"] < t_settled}
    waiting = {i for i, t in acked_at.items() if t < t_settled} - delivered_before
    missing = waiting - set(snapshot or {})
    t_start = min((a["sent"] for a in answers), default=t_fault)
    capacity = len(c.agent_names) * c.topo["vars"]["pb_agent_concurrency"]
    r = {
        "drill": name,
        "acknowledged": len(acked),
        "delivered": len(acked & ids),
        "lost": len(acked - ids),
        "duplicates": len(got) - len(ids),
        "backlog": len(waiting),
        "missing_in_redis": len(missing) if snapshot is not None else "no snapshot",
        "refused": sum(1 for a in answers if a.get("status") == 503),
        "client_errors": sum(1 for a in answers if a.get("status") == 0),
        "write_gap_s": longest_gap([a["t"] for a in answers if a.get("status") == 200],
                                   t_start, t_end - 1),
        "settle_s": round(t_settled - t_heal, 1),
        "replica_named_s": monitor.finish(),
        "drained": drain.returncode == 0,
        "extra": check(c, state) if check else None,
    }
    bound = down_after_s(c) + 5
    r["ok"] = (r["lost"] == 0 and r["missing_in_redis"] == 0 and r["drained"] and
               r["acknowledged"] > 0 and r["backlog"] > 0 and
               r["duplicates"] <= capacity and r["replica_named_s"] <= bound and
               r["extra"] in (None, True))
    RESULTS.append(r)
    print("\n" + json.dumps(r))
    assert r["acknowledged"] > 0, "nothing was acknowledged at all"
    assert r["backlog"] > 0, "no backlog waited in Redis across the fault"
    assert snapshot is not None, "pbctl ids failed after the heal"
    if missing:
        where = where_in_redis(c, sorted(missing)[:20])
        with open(c.path("log", "missing-%s.json" % name), "w") as f:
            json.dump({"snapshot_at": t_settled, "heal_at": t_heal, "where": where}, f, indent=1)
    assert not missing, "%d acknowledged postbacks gone from Redis after the heal, e.g. %s; " \
        "every node now: %s" % (len(missing), sorted(missing)[:5], json.dumps(where)[:1500])
    assert r["lost"] == 0, "%d acknowledged postbacks lost, e.g. %s" % (
        r["lost"], sorted(acked - ids)[:5])
    assert r["drained"], drain.stdout[-500:] + drain.stderr[-500:]
    assert r["duplicates"] <= capacity, r
    assert r["replica_named_s"] <= bound, \
        "the Sentinels' majority named %s master for %.1f s while it said it was a replica" % (
            monitor.worst, r["replica_named_s"])
    assert r["extra"] in (None, True), r["extra"]
    return r


# ---- faults and heals that several drills use ------------------------------

def restart(c, state):
    c.start(state["old"])


def demoted(c, state):
    """The old master must come back as a replica, taking no writes."""
    if state.get("new") is None:
        return "no failover happened"
    return True if wait_until(lambda: c.role(state["old"]) == "slave", 40, 0.5) else \
        "old master %s is %s" % (state["old"], c.role(state["old"]))


def stop_one(name_of):
    def inject(c):
        name = name_of(c)
        c.stop(name, sig=signal.SIGKILL)
        return {"old": name}
    return inject


def host_of(c, name):
    """The network namespace of the node, Sentinel or agent called name."""
    for n in c.redis_nodes + c.topo["sentinels"] + c.topo["ingest_nodes"] + c.topo["agents"]:
        if n["name"] == name:
            return n["netns"]
    raise KeyError(name)


def partition(net, name_of, keep_clients=False, shard=0):
    """Cut the host of the node name_of(c) names off from every other host
    (keep_clients: except ingest1, agent1 and the client side, which keep
    using it). Heal puts the routes back. A master's host records the new
    master before the heal, for demoted()."""
    def cut(c):
        name = name_of(c)
        was_master = name == c.master_node(shard=shard)
        ns = host_of(c, name)
        keep = {ns}
        if keep_clients:
            keep |= {c.topo["ingest_nodes"][0]["netns"], c.topo["agents"][0]["netns"],
                     c.topo["client"]["netns"], c.topo["receiver"]["netns"],
                     c.topo["lb"]["netns"]}
        others = [o for o in net.hosts if o not in keep]
        net.cut(ns, others)
        return {"old": name, "ns": ns, "others": others, "was_master": was_master}

    def heal(c, state):
        if state["was_master"]:
            m = c.master_node(shard=shard)
            state["new"] = m if m != state["old"] else None
        net.heal(state["ns"], state["others"])
    return cut, heal
