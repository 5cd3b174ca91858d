"""Queue full, and a Sentinel failover while postbacks stream in."""
import json
import os
import signal
import subprocess
import sys
import time

from conftest import MAX_QUEUE, ROOT, ingest, of_mark, pbctl, queued, waiting
from pbcluster import wait_until


def stop_agents(cluster):
    for a in cluster.agent_names:
        cluster.stop(a)


def start_agents(cluster):
    for a in cluster.agent_names:
        cluster.start(a)


def test_queue_full_is_503_and_enqueues_nothing(cluster, receiver, mark):
    stop_agents(cluster)
    try:
        url = receiver.url + mark + "/q?i={i}"
        master = cluster.master()
        base = waiting(cluster, master)
        assert base == queued(cluster, master)  # the count is right
        room = MAX_QUEUE - base
        assert room > 10
        accepted, i = [], 0
        while i < room - 5:  # in requests well under the body limit
            n = min(1000, room - 5 - i)  # max_objects
            r = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                                 "data": [{"i": j} for j in range(i, i + n)]})
            assert r.status_code == 200, r.text
            accepted += r.json()["ids"]
            i += n
        # 10 more would pass MAX_QUEUE_SIZE: all or nothing, so nothing.
        r = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                             "data": [{"i": -i} for i in range(10)]})
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "MAX_QUEUE_SIZE %d reached" % MAX_QUEUE
        assert r.json()["redis_is_connected"] == "+PONG"
        assert r.json()["postback_queue_size"] == MAX_QUEUE - 5
        assert "Retry-After" in r.headers
        assert waiting(cluster, master) == MAX_QUEUE - 5
        # 5 still fit.
        r = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                             "data": [{"i": 10000 + i} for i in range(5)]})
        assert r.status_code == 200, r.text
        accepted += r.json()["ids"]
    finally:
        start_agents(cluster)
    want = set(accepted)
    assert receiver.wait_for(lambda rs: want <= {g["id"] for g in of_mark(rs, mark)}, 180)
    # At least once: a slow receiver can cause a timeout and a retry, so an
    # id may arrive twice, but nothing else may arrive.
    assert {g["id"] for g in of_mark(receiver.requests, mark)} == want
    assert all(int(g["path"].split("=")[1]) >= 0 for g in of_mark(receiver.requests, mark))


def test_redis_near_maxmemory_is_503_and_loses_nothing(cluster, receiver, mark):
    """Redis at redis_memory_high_pct (90) of its maxmemory: a clear 503 and
    nothing queued, while what is queued is still delivered (the room above
    the mark is the agents'); below the mark again, 200."""
    url = receiver.url + mark + "/m?i={i}"
    master = cluster.master()
    before = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                              "data": [{"i": i} for i in range(50)]})
    assert before.status_code == 200, before.text
    was = master.config_get("maxmemory")["maxmemory"]
    used = master.info("memory")["used_memory"]
    master.config_set("maxmemory", int(used / 0.95))  # above the mark, under the limit
    try:
        time.sleep(0.3)  # each ingest thread asks INFO memory every 100 ms
        size = waiting(cluster, master)
        r = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                             "data": [{"i": -1}]})
        assert r.status_code == 503, r.text
        assert "redis_memory_high_pct" in r.json()["error"] and "Retry-After" in r.headers
        assert waiting(cluster, master) <= size
    finally:
        master.config_set("maxmemory", was)
    time.sleep(0.3)
    after = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                             "data": [{"i": 100 + i} for i in range(5)]})
    assert after.status_code == 200, after.text
    want = set(before.json()["ids"] + after.json()["ids"])
    assert receiver.wait_for(lambda rs: want <= {g["id"] for g in of_mark(rs, mark)}, 30)
    assert all(int(g["path"].split("=")[1]) >= 0 for g in of_mark(receiver.requests, mark))


def load_answers(path):
    """What tests/drill/load.py wrote: one JSON object per request."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def acked(path):
    return [i for a in load_answers(path) if a.get("status") == 200 for i in a["ids"]]


def test_switchover_while_streaming_loses_nothing_acknowledged(cluster, receiver, mark):
    """pbctl switchover (writes paused, replicas caught up, then SENTINEL
    FAILOVER) while the drills' load client streams postbacks in: every
    acknowledged postback arrives. (The drills check Redis itself.)"""
    out = cluster.path("log", "switchover-load.jsonl")
    old = cluster.master_node()
    load = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "drill", "load.py"),
                             "--endpoint", cluster.endpoint + "/ingest",
                             "--key-file", cluster.path("secrets", "client.key"),
                             "--target", receiver.url + mark + "/f?k={k}&i={i}",
                             "--rate", "200", "--seconds", "60", "--out", out])
    try:
        time.sleep(2)
        n_before = len(acked(out))
        _, said = pbctl(cluster, "switchover")
        assert "switched over" in said, said
        new = wait_until(lambda: (m := cluster.master_node()) not in (old, None) and m, 30)
        assert new, "no new master within 30 s"
        # Keep streaming until writes are acknowledged by the new master.
        n_at_switch = len(acked(out))
        wait_until(lambda: len(acked(out)) >= n_at_switch + 100, 20)
        time.sleep(2)
    finally:
        load.send_signal(signal.SIGTERM)
        load.wait(60)
    answers = load_answers(out)
    want = set(acked(out))
    assert n_before > 0 and len(want) > n_at_switch, (n_before, n_at_switch, len(want))
    assert cluster.master().info("replication")["role"] == "master"
    ok = receiver.wait_for(lambda rs: want <= {r["id"] for r in of_mark(rs, mark)}, 90)
    got = [r["id"] for r in of_mark(receiver.requests, mark)]
    missing = want - set(got)
    refused = [a["status"] for a in answers if a.get("status") not in (200, 0)]
    print("switchover: %d acknowledged, %d refused (%s), %d client errors, "
          "%d delivered, %d duplicates, %d missing"
          % (len(want), len(refused), sorted(set(refused)),
             sum(1 for a in answers if a.get("status") == 0), len(set(got)),
             len(got) - len(set(got)), len(missing)))
    assert ok and not missing, sorted(missing)[:10]


def test_a_master_without_the_functions_is_503_and_pbctl_functions_load_mends_it(
        cluster, receiver, mark):
    """The daemons may not load the queue's functions: with the library gone
    (a master restored from an old backup, say) a request is answered 503
    with nothing of Redis's in the body (no address, no error text: the
    node's log says which master and what), nothing is queued, `pbctl
    functions` exits 1; `pbctl functions load` puts it back and the same
    request is queued and delivered."""
    import gen_lua
    m = cluster.master()
    lib = gen_lua.library_name()
    m.function_delete(lib)
    try:
        assert pbctl(cluster, "functions", check=False)[0] == 1
        size = waiting(cluster, m)
        body = {"endpoint": {"method": "GET", "url": receiver.url + mark + "/f?i={i}"},
                "data": [{"i": 1}]}
        r = ingest(cluster, body)
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert "retry later" in err and "Function" not in err and "127.0.0.1" not in err, err
        assert waiting(cluster, m) == size
    finally:
        rc, out = pbctl(cluster, "functions", "load")
    assert lib + "  loaded" in out, out
    assert pbctl(cluster, "functions", "load")[1].strip() == lib + "  already loaded"
    rc, out = pbctl(cluster, "functions")
    assert "%s  %d functions  (this version's)" % (lib, len(gen_lua.names())) in out, out
    r = ingest(cluster, body)
    assert r.status_code == 200, r.text
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) == 1, 10)
    logs = "".join(open(cluster.path("log", n["name"] + ".log")).read()
                   for n in cluster.topo["ingest_nodes"])
    assert "ERR Function not found" in logs and ("library %s) are not loaded" % lib) in logs


def test_pbctl_functions_prune_deletes_other_versions_only(cluster):
    """An upgrade leaves the library of the version before for the daemons
    not yet replaced; `pbctl functions load --prune` then deletes it, and
    leaves this version's and any library not of this project alone."""
    import gen_lua
    m = cluster.master()
    old = gen_lua.library().replace(gen_lua.version(), "0123456789")
    m.function_load(old)
    m.function_load("#!lua name=someone_elses\n"
                    "redis.register_function('someone_elses', function() return 1 end)")
    try:
        rc, out = pbctl(cluster, "functions")
        assert "pb_0123456789" in out and "someone_elses" not in out, out
        rc, out = pbctl(cluster, "functions", "load", "--prune")
        assert "pb_0123456789  deleted" in out, out
        names = {dict(zip(lib[::2], lib[1::2]))[b"library_name"] for lib in m.function_list()}
        assert names == {gen_lua.library_name().encode(), b"someone_elses"}, names
    finally:
        m.function_delete("someone_elses")
