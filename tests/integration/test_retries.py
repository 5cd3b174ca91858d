"""Retries, backoff, Retry-After and dead letters, against a receiver that
fails on purpose. The test cluster retries fast (backoff 200 ms, cap 1 s)
and gives up after max_attempts (5)."""
import collections
import json
import threading
import time

from conftest import ingest, of_mark
from pbcluster import wait_until

MAX_ATTEMPTS = 5


def send(cluster, receiver, mark, n=1, suffix="/r?i={i}"):
    r = ingest(cluster, {"endpoint": {"method": "GET", "url": receiver.url + mark + suffix},
                         "data": [{"i": i} for i in range(n)]})
    assert r.status_code == 200, r.text
    return r.json()["ids"]


def dead_entries(cluster, ids):
    out = {}
    for raw in cluster.master().lrange(cluster.key("dead"), 0, -1):
        e = json.loads(raw)
        if e["id"] in ids:
            out[e["id"]] = e
    return out


def test_fails_twice_then_succeeds(cluster, receiver, mark, behave):
    seen = collections.Counter()
    lock = threading.Lock()

    def rule(rec):
        with lock:
            seen[rec["id"]] += 1
            return (500, {}, b"boom") if seen[rec["id"]] <= 2 else (200, {}, b"ok")
    behave(rule)
    ids = send(cluster, receiver, mark, n=3)
    assert receiver.wait_for(lambda rs: len([r for r in of_mark(rs, mark)
                                              if r["status"] == 200]) == 3, 30)
    time.sleep(2)  # long enough for a wrong extra attempt to show
    got = of_mark(receiver.requests, mark)
    for pid in ids:
        mine = [r for r in got if r["id"] == pid]
        assert [r["status"] for r in mine] == [500, 500, 200], mine
    assert dead_entries(cluster, ids) == {}


def test_always_500_dead_after_max_attempts(cluster, receiver, mark, behave):
    behave(lambda rec: (500, {}, b"down"))
    ids = send(cluster, receiver, mark)
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= MAX_ATTEMPTS, 30)
    wait_until(lambda: dead_entries(cluster, ids), 10, 0.1)
    time.sleep(1.5)
    assert len(of_mark(receiver.requests, mark)) == MAX_ATTEMPTS
    e = dead_entries(cluster, ids)[ids[0]]
    assert e["status"] == 500 and e["attempts"] == MAX_ATTEMPTS


def test_404_is_dead_at_once(cluster, receiver, mark, behave):
    behave(lambda rec: (404, {}, b"no such thing"))
    ids = send(cluster, receiver, mark)
    wait_until(lambda: dead_entries(cluster, ids), 10, 0.1)
    time.sleep(1)
    assert len(of_mark(receiver.requests, mark)) == 1
    e = dead_entries(cluster, ids)[ids[0]]
    assert e["status"] == 404 and e["attempts"] == 1


def test_429_retry_after_is_honoured(cluster, receiver, mark, behave):
    seen = []

    def rule(rec):
        seen.append(rec["time"])
        return (429, {"Retry-After": "2"}, b"slow down") if len(seen) == 1 else (200, {}, b"ok")
    behave(rule)
    send(cluster, receiver, mark)
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= 2, 30)
    first, second = [r["time"] for r in of_mark(receiver.requests, mark)][:2]
    assert second - first >= 2.0, "retried after %.2f s" % (second - first)
    assert of_mark(receiver.requests, mark)[1]["status"] == 200
