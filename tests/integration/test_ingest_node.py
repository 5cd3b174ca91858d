"""The ingest node under HAProxy: no keep-alive stall, graceful SIGTERM."""
import threading
import time

import requests

from conftest import exit_status, of_mark


def stream(cluster, receiver, mark, clients, seconds, per_client):
    """Bounded load: clients threads, each on one kept-alive connection."""
    acked, bad = [], []
    lock = threading.Lock()

    def client(k):
        s = requests.Session()
        deadline = time.time() + seconds
        for i in range(per_client):
            if time.time() >= deadline:
                break
            body = {"endpoint": {"method": "GET",
                                 "url": receiver.url + mark + "/s?k={k}&i={i}"},
                    "data": [{"k": k, "i": i}]}
            try:
                r = s.post(cluster.endpoint + "/ingest", json=body, timeout=10)
                with lock:
                    if r.status_code == 200:
                        acked.extend(r.json()["ids"])
                    elif not (r.status_code == 503 and "MAX_QUEUE_SIZE" in r.text):
                        bad.append((r.status_code, r.text[:100]))
                    # A full queue is an answer from a node, not a stall.
            except requests.RequestException as e:
                with lock:
                    bad.append(type(e).__name__)

    ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    return ts, acked, bad


def test_many_more_clients_than_threads_do_not_stall(cluster, receiver, mark):
    """libfcgi serves one connection per thread; HAProxy must never hold
    more connections to a node than it has threads (haproxy-fastcgi notes)."""
    threads = cluster.topo["vars"]["pb_ingest_threads"]
    ts, acked, bad = stream(cluster, receiver, mark, clients=4 * threads,
                            seconds=6, per_client=200)
    for t in ts:
        t.join()
    assert bad == [], bad[:10]
    assert len(acked) > 4 * threads
    assert receiver.wait_for(lambda rs: set(acked) <= {r["id"] for r in of_mark(rs, mark)}, 60)


def test_sigterm_finishes_requests_and_exits_0(cluster, receiver, mark):
    ts, acked, bad = stream(cluster, receiver, mark, clients=8, seconds=8,
                            per_client=400)
    time.sleep(2)
    pid = cluster.pid("ingest1")
    t0 = time.time()
    cluster.stop("ingest1")  # SIGTERM, then wait
    took = time.time() - t0
    try:
        for t in ts:
            t.join()
    finally:
        cluster.start("ingest1")
    assert cluster.pid("ingest1") is None or cluster.pid("ingest1") != pid
    assert took < 3 + 2, "ingest1 took %.1f s to stop" % took  # drain 3 s
    assert exit_status(cluster, pid) == "exited with status 0"
    with open(cluster.path("log", "ingest1.log")) as f:
        assert "finishing requests in progress" in f.read()

    # HAProxy only re-sends on connection failure, so a request the node
    # dropped would show here as an error; the node drops none.
    assert bad == [], bad[:10]
    assert receiver.wait_for(lambda rs: set(acked) <= {r["id"] for r in of_mark(rs, mark)}, 60)
