"""Durable acknowledgement: a 200 means a replica has the write."""
import signal
import threading
import time
import uuid

import pytest

from conftest import MAX_QUEUE, ingest, of_mark
from pbcluster import wait_until


def replicas(cluster):
    master = cluster.master_node()
    return [n["name"] for n in cluster.topo["redis_nodes"] if n["name"] != master]


def wait_replicas_online(cluster, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            info = cluster.master().info("replication")
            online = [v for k, v in info.items() if k.startswith("slave")
                      and isinstance(v, dict) and v.get("state") == "online"]
            if len(online) >= n:
                return True
        except Exception:
            pass
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("fault", ["stopped", "paused"])
def test_unconfirmed_write_is_503_and_a_retry_with_the_key_enqueues_once(
        cluster, receiver, mark, behave, fault):
    """stopped: the master has no replicas and refuses the write (NOREPLICAS).
    paused (SIGSTOP): the master takes the write but WAIT sees no replica
    confirm it, so the answer is 503 although the postbacks are queued; the
    retry with the same key must not queue them again."""
    key = "drill-" + uuid.uuid4().hex
    # Slow deliveries: in flight while the agents' first reaper rounds run.
    behave(lambda rec: (time.sleep(1.5), (200, {}, b"ok"))[1])
    body = {"endpoint": {"method": "GET", "url": receiver.url + mark + "/d?i={i}"},
            "data": [{"i": 1}, {"i": 2}]}
    names = replicas(cluster)
    assert len(names) == 2
    for n in names:
        if fault == "stopped":
            cluster.stop(n)
        else:
            cluster.kill(n, signal.SIGSTOP)
    try:
        r = ingest(cluster, body, headers={"Idempotency-Key": key})
        assert r.status_code == 503, r.text
        err = r.json()["error"]
        assert ("NOREPLICAS" if fault == "stopped" else "confirmed by 0 of 1") in err, err
        assert r.json()["redis_is_connected"] == "+PONG"
        assert r.headers.get("Retry-After")
        # Writes refused for longer than a heartbeat lives: when they come
        # back, no agent may reap another's work (that made duplicates).
        time.sleep(cluster.topo["vars"]["pb_agent_heartbeat_ttl_ms"] / 1000 + 1)
    finally:
        for n in names:
            if fault == "stopped":
                cluster.start(n)
            else:
                cluster.kill(n, signal.SIGCONT)
    assert wait_replicas_online(cluster, 2), "replicas did not come back"
    # The client retries with the same key until it gets its 200.
    answers = []
    wait_until(lambda: answers.append(ingest(cluster, body, headers={"Idempotency-Key": key}))
               or answers[-1].status_code == 200, 30, 0.5)
    r = answers[-1]
    assert r.status_code == 200, r.text
    ids = r.json()["ids"]
    assert len(ids) == 2
    # A further repeat is the same answer and enqueues nothing.
    again = ingest(cluster, body, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.json()["ids"] == ids
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= 2, 30)
    time.sleep(2)
    got = sorted(r["id"] for r in of_mark(receiver.requests, mark))
    assert got == sorted(ids), got


def test_one_key_sent_at_once_many_times_enqueues_once(cluster, receiver, mark):
    """The same Idempotency-Key in 24 requests at the same time: in one
    round (group commit) or several, exactly one is enqueued and every
    answer is its answer - the script decides a round's requests in turn,
    each seeing the ones before it."""
    import concurrent.futures
    key = uuid.uuid4().hex
    body = {"endpoint": {"method": "POST", "url": receiver.url + mark + "/k"},
            "data": [{"a": 1}, {"a": 2}]}
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(
            lambda _: ingest(cluster, body, headers={"Idempotency-Key": key}), range(24)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    firsts = {(a.json()["request_id"], tuple(a.json()["ids"])) for a in answers}
    assert len(firsts) == 1, firsts
    ids = list(firsts.pop()[1])
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= 2, 30)
    time.sleep(1)
    assert sorted(r["id"] for r in of_mark(receiver.requests, mark)) == sorted(ids)


def test_same_key_same_answer_no_second_enqueue(cluster, receiver, mark):
    key = uuid.uuid4().hex
    body = {"endpoint": {"method": "POST", "url": receiver.url + mark + "/k"},
            "data": [{"a": 1}]}
    first = ingest(cluster, body, headers={"Idempotency-Key": key})
    second = ingest(cluster, body, headers={"Idempotency-Key": key})
    other = ingest(cluster, body, headers={"Idempotency-Key": key + "x"})
    assert first.status_code == second.status_code == other.status_code == 200
    assert second.json()["ids"] == first.json()["ids"]
    assert second.json()["request_id"] == first.json()["request_id"]
    assert other.json()["ids"] != first.json()["ids"]
    assert receiver.wait_for(lambda rs: len(of_mark(rs, mark)) >= 2, 30)
    time.sleep(1)
    assert sorted(r["id"] for r in of_mark(receiver.requests, mark)) == sorted(
        first.json()["ids"] + other.json()["ids"])


class SlowWrites:
    """The master holds every write for pause_ms, lets them through for
    gap_ms, and again (CLIENT PAUSE WRITE, then CLIENT UNPAUSE; Sentinel's
    PINGs and INFO go on), so that a round of the committers lasts longer
    than the gap between this test's requests: requests then really wait at
    the same time, whatever this machine's fsync costs. Without it a CI run's
    rounds took about as long as the Python client took to send the next
    request (330 WAITs for 400 requests).

    Each pause is ended by CLIENT UNPAUSE, not left to expire: Redis notices
    an expired pause only in its cron (every 100 ms), so with a new pause
    every 55 ms the held writes waited for a cron tick to fall in a 5 ms
    gap - a second on average, sometimes past the ingest node's reply
    timeout and HAProxy's queue timeout (a CI run under ASan: 503 sQ--)."""

    def __init__(self, cluster, pause_ms=50, gap_ms=10):
        self.r = cluster.master()
        self.pause_ms, self.gap_ms = pause_ms, gap_ms
        self.done = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.is_set():
            # Ends by itself at 4 pauses' length should this thread stall.
            self.r.execute_command("CLIENT", "PAUSE", 4 * self.pause_ms, "WRITE")
            self.done.wait(self.pause_ms / 1000.0)
            self.r.execute_command("CLIENT", "UNPAUSE")
            self.done.wait(self.gap_ms / 1000.0)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.t.join(5)
        self.r.execute_command("CLIENT", "UNPAUSE")


def test_requests_at_the_same_time_share_a_round_trip_each_answered_by_its_own(
        cluster, receiver, mark):
    """Group commit (apps/ingest/enqueue.h): requests that wait at the same
    time go to the master in one script call with one WAIT. Measured from
    the master's own counters, with the agents stopped so that every script
    call is an ingest node's, and the master's writes slowed (SlowWrites)
    so that requests do wait at the same time: fewer than half as many
    calls and WAITs as requests, and one call a round. Each request is
    still decided as if alone: one that would pass MAX_QUEUE_SIZE alone is
    refused (503, MAX_QUEUE_SIZE) among others accepted in the same calls,
    and every accepted one arrives."""
    import concurrent.futures
    m = cluster.master()
    n, big = 400, 1000

    def one(i):
        objs = [{"i": i}] * (big if i == 7 else 1)
        return ingest(cluster, {"endpoint": {"method": "GET",
                                             "url": receiver.url + mark + "/g?i={i}"},
                                "data": objs})
    # Counted as waiting, so that the big request alone passes the limit.
    filler = MAX_QUEUE - big // 2
    for a in cluster.agent_names:
        cluster.stop(a)
    m.incrby(cluster.key("waiting"), filler)
    try:
        m.config_resetstat()
        with SlowWrites(cluster), concurrent.futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(one, range(n)))
        stats = m.info("commandstats")
    finally:
        m.decrby(cluster.key("waiting"), filler)
        for a in cluster.agent_names:
            cluster.start(a)
    waits = stats.get("cmdstat_wait", {}).get("calls", 0)
    calls = stats.get("cmdstat_fcall", {}).get("calls", 0)
    assert answers[7].status_code == 503 and "MAX_QUEUE_SIZE" in answers[7].text, \
        answers[7].text
    ok = [a for i, a in enumerate(answers) if i != 7]
    assert all(a.status_code == 200 for a in ok), {a.status_code for a in ok}
    print("group commit: %d requests in %d rounds" % (n, waits))
    assert 0 < waits < 0.5 * n, "%d WAITs for %d requests: no group commit" % (waits, n)
    assert calls == waits, "%d script calls in %d rounds: not one a round" % (calls, waits)
    ids = {x for a in ok for x in a.json()["ids"]}
    assert receiver.wait_for(lambda rs: ids <= {r["id"] for r in of_mark(rs, mark)}, 60)
