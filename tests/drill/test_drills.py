"""Failover drills: a steady stream of postbacks through HAProxy from a
client host, a fault injected and healed, the queue drained, and the count:
every acknowledged postback must arrive (lost acknowledged: 0), duplicates
may not exceed what agents can hold in flight, and the queue must drain.

    make drill                 every drill, then run/drill/summary.{md,json}
    make drill DRILL=master_sigkill
"""
import json
import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import RESULTS, ROOT

PRE_S = 4      # load before the fault
POST_S = 8     # load after the heal
RATE = 40      # requests a second, 2 postbacks each


def pbctl(c, *args):
    return subprocess.run([os.path.join(ROOT, "build", "pbctl"), "-c",
                           c.path("conf", "pbctl.conf")] + list(args),
                          capture_output=True, text=True)


def in_flight(c):
    m = c.master()
    return sum(m.llen("pb:processing:" + a) for a in c.agent_names)


def role(c, node):
    try:
        return c.redis(node).info("replication")["role"]
    except Exception as e:
        return "unreachable (%s)" % type(e).__name__


def wait_role(c, node, want, timeout=40):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if role(c, node) == want:
            return True
        time.sleep(0.5)
    return False


def wait_new_master(c, old, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = c.master_node()
        if m not in (old, None):
            return m
        time.sleep(0.2)
    return None


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


def drill(lab, name, inject, heal, hold, check=None):
    c = lab.cluster
    mark = "/%s-%s" % (name, uuid.uuid4().hex[:6])
    out = c.path("log", "load-%s.jsonl" % name)
    load = subprocess.Popen(
        ["ip", "netns", "exec", lab.topo["client"]["netns"], "/usr/bin/python3",
         os.path.join(ROOT, "tests", "drill", "load.py"),
         "--endpoint", c.endpoint + "/ingest",
         "--target", c.receiver_url + mark + "?k={k}&i={i}",
         "--rate", str(RATE), "--seconds", str(PRE_S + hold + POST_S + 60),
         "--out", out])
    try:
        time.sleep(PRE_S)
        flying = in_flight(c)
        t0 = time.time()
        state = inject(c)
        time.sleep(hold)
        heal(c, state)
        time.sleep(POST_S)
    finally:
        load.send_signal(signal.SIGTERM)
        load.wait(60)
    t_end = time.time()
    drain = pbctl(c, "drain", "--timeout", "90")
    if drain.returncode != 0:  # say where it is stuck
        drain.stdout += pbctl(c, "status").stdout
    answers = read_jsonl(out)
    acked = {i for a in answers if a.get("status") == 200 for i in a["ids"]}
    deadline = time.time() + 60
    while True:
        got = [r for r in read_jsonl(c.path("log", "receiver.requests.log"))
               if r["path"].startswith(mark)]
        ids = {r["id"] for r in got}
        if acked <= ids or time.time() > deadline:
            break
        time.sleep(0.5)
    t_start = min((a["sent"] for a in answers), default=t0)
    capacity = sum(1 for _ in c.agent_names) * c.topo["vars"]["pb_agent_concurrency"]
    r = {
        "drill": name,
        "acknowledged": len(acked),
        "delivered": len(acked & ids),
        "lost": len(acked - ids),
        "duplicates": len(got) - len(ids),
        "in_flight_at_fault": flying,
        "refused": sum(1 for a in answers if a.get("status") == 503),
        "client_errors": sum(1 for a in answers if a.get("status") == 0),
        "write_gap_s": longest_gap([a["t"] for a in answers if a.get("status") == 200],
                                   t_start, t_end - 1),
        "delivery_gap_s": longest_gap([g["time"] for g in got], t_start, t_end - 1),
        "drained": drain.returncode == 0,
        "extra": check(c, state) if check else None,
    }
    r["ok"] = (r["lost"] == 0 and r["drained"] and r["acknowledged"] > 0 and
               r["duplicates"] <= capacity and r["extra"] in (None, True))
    RESULTS.append(r)
    print("\n" + json.dumps(r))
    assert r["acknowledged"] > 0, "nothing was acknowledged at all"
    assert r["lost"] == 0, "%d acknowledged postbacks lost, e.g. %s" % (
        r["lost"], sorted(acked - ids)[:5])
    assert r["drained"], drain.stdout[-500:] + drain.stderr[-500:]
    assert r["duplicates"] <= capacity, r
    assert r["extra"] in (None, True), r["extra"]


# ---- the faults ------------------------------------------------------------

DOWN_AFTER_S = 3  # sentinel_down_after_ms in cluster/local.yml


def kill_master(c):
    m = c.master_node()
    c.stop(m, sig=signal.SIGKILL)  # stays down until healed
    return {"old": m, "new": wait_new_master(c, m)}


def restart(c, state):
    c.start(state["old"])


def demoted(c, state):
    """The old master must come back as a replica, taking no writes."""
    if state.get("new") is None:
        return "no failover happened"
    return True if wait_role(c, state["old"], "slave") else \
        "old master %s is %s" % (state["old"], role(c, state["old"]))


def test_master_sigkill(lab):
    drill(lab, "master_sigkill", kill_master, restart, hold=10, check=demoted)


def test_master_pause(lab):
    def pause(c):
        m = c.master_node()
        c.kill(m, signal.SIGSTOP)
        return {"old": m}

    def resume(c, state):
        state["new"] = c.master_node() if c.master_node() != state["old"] else None
        c.kill(state["old"], signal.SIGCONT)
    drill(lab, "master_pause", pause, resume, hold=DOWN_AFTER_S + 7, check=demoted)


def test_master_partition(lab):
    """The master's host is cut off from everyone but ingest1 and agent1,
    which keep talking to it: it must not acknowledge writes a failover
    throws away (min-replicas-to-write + WAIT)."""
    net = lab.net

    def cut(c):
        m = c.master_node()
        ns = next(n["netns"] for n in c.topo["redis_nodes"] if n["name"] == m)
        keep = {ns, c.topo["ingest_nodes"][0]["netns"], c.topo["agents"][0]["netns"],
                c.topo["client"]["netns"], c.topo["receiver"]["netns"], c.topo["lb"]["netns"]}
        others = [o for o in net.hosts if o not in keep]
        net.cut(ns, others)
        return {"old": m, "ns": ns, "others": others}

    def heal(c, state):
        state["new"] = c.master_node() if c.master_node() != state["old"] else None
        net.heal(state["ns"], state["others"])
    drill(lab, "master_partition", cut, heal, hold=15, check=demoted)


def stop_one(name_of):
    def inject(c):
        name = name_of(c)
        c.stop(name, sig=signal.SIGKILL)
        return {"old": name}
    return inject


def test_ingest_host_killed(lab):
    drill(lab, "ingest_killed", stop_one(lambda c: "ingest1"), restart, hold=8)


def test_agent_host_killed(lab):
    drill(lab, "agent_killed", stop_one(lambda c: "agent1"), restart, hold=10)


def test_sentinel_killed(lab):
    drill(lab, "sentinel_killed", stop_one(lambda c: "sentinel1"), restart, hold=8)


def test_replica_killed(lab):
    def a_replica(c):
        return next(n["name"] for n in c.topo["redis_nodes"]
                    if n["name"] != c.master_node())
    drill(lab, "replica_killed", stop_one(a_replica), restart, hold=8)


def test_redis_tier_restart(lab):
    def stop_tier(c):
        names = ["sentinel%d" % (i + 1) for i in range(len(c.topo["redis_nodes"]))] + \
                [n["name"] for n in c.topo["redis_nodes"]]
        for n in names:
            c.stop(n)
        return {"names": names}

    def start_tier(c, state):
        for n in reversed(state["names"]):
            c.start(n)
        c.wait_ready(120)
    drill(lab, "redis_tier_restart", stop_tier, start_tier, hold=3)


def test_planned_switchover(lab):
    def switch(c):
        old = c.master_node()
        c.sentinel(c.sentinel_addrs()[0]).execute_command(
            "SENTINEL", "FAILOVER", c.topo["vars"]["pb_master_name"])
        return {"old": old, "new": wait_new_master(c, old)}
    drill(lab, "switchover", switch, lambda c, s: None, hold=5, check=demoted)
