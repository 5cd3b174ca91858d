"""Queue full, and a Sentinel failover while postbacks stream in."""
import threading
import time

from conftest import MAX_QUEUE, ingest, of_mark, pbctl


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
        base = master.llen(cluster.key("queue"))
        room = MAX_QUEUE - base
        assert room > 10
        accepted, i = [], 0
        while i < room - 5:  # in requests well under the body limit
            n = min(5000, room - 5 - i)
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
        assert master.llen(cluster.key("queue")) == MAX_QUEUE - 5
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


def test_switchover_while_streaming_loses_nothing_acknowledged(cluster, receiver, mark):
    """pbctl switchover (writes paused, replicas caught up, then SENTINEL
    FAILOVER) while postbacks stream in: the drills check Redis itself; this
    checks every acknowledged postback arrives."""
    acked, refused, errors = [], [], []
    stop = threading.Event()

    def client(k):
        i = 0
        deadline = time.time() + 60  # bounded in time and count
        while not stop.is_set() and time.time() < deadline and i < 2000:
            body = {"endpoint": {"method": "GET",
                                 "url": receiver.url + mark + "/f?k={k}&i={i}"},
                    "data": [{"k": k, "i": i}, {"k": k, "i": i + 1}]}
            i += 2
            try:
                r = ingest(cluster, body, timeout=20)
            except Exception as e:  # a refused connection is a 503, not a loss
                errors.append(repr(e))
                continue
            if r.status_code == 200:
                acked.extend(r.json()["ids"])
            else:
                refused.append(r.status_code)
            time.sleep(0.01)

    old = cluster.master_node()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    n_before = len(acked)
    _, out = pbctl(cluster, "switchover")
    assert "switched over" in out, out
    deadline = time.time() + 30
    while cluster.master_node() in (old, None) and time.time() < deadline:
        time.sleep(0.2)
    new = cluster.master_node()
    assert new not in (old, None), "no failover within 30 s"
    # Keep streaming until writes are acknowledged by the new master.
    settle = time.time() + 20
    n_at_switch = len(acked)
    while len(acked) < n_at_switch + 100 and time.time() < settle:
        time.sleep(0.2)
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join()
    assert n_before > 0 and len(acked) > n_at_switch, (n_before, n_at_switch, len(acked))
    assert cluster.master().info("replication")["role"] == "master"
    want = set(acked)
    ok = receiver.wait_for(lambda rs: want <= {r["id"] for r in of_mark(rs, mark)}, 90)
    got = [r["id"] for r in of_mark(receiver.requests, mark)]
    missing = want - set(got)
    dups = len(got) - len(set(got))
    print("failover: %d acknowledged, %d refused (%s), %d client errors, "
          "%d delivered, %d duplicates, %d missing"
          % (len(want), len(refused), sorted(set(refused)), len(errors),
             len(set(got)), dups, len(missing)))
    assert ok and not missing, sorted(missing)[:10]
