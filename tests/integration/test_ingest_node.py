"""The ingest node under HAProxy: no keep-alive stall, graceful SIGTERM,
bounded memory."""
import json
import os
import struct
import threading
import time
import urllib.parse

import requests

from conftest import exit_status, of_mark
from pbcluster import wait_until


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
                r = s.post(cluster.endpoint + "/ingest", json=body, timeout=10,
                           headers=cluster.auth)
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


def test_haproxy_keeps_its_connections_to_the_nodes(cluster, receiver, mark):
    """Under load HAProxy sends its requests over connections it keeps
    (http-reuse always, pool-max-conn): a node is connected to about once
    per connection it holds, not once per request - and never holds more
    connections from HAProxy than the server's maxconn (its stats' slim)."""
    threads = cluster.topo["vars"]["pb_ingest_threads"]
    before = cluster.ingest_servers()
    maxconn = min(int(row["slim"]) for row in before.values())
    assert 0 < maxconn < threads, (maxconn, threads)  # a thread left for the checks
    ts, acked, bad = stream(cluster, receiver, mark, clients=3 * threads,
                            seconds=5, per_client=100)
    most = {}
    while any(t.is_alive() for t in ts):
        for name, row in cluster.ingest_servers().items():
            held = int(row["used_conn_cur"] or 0) + int(row["idle_conn_cur"] or 0)
            most[name] = max(most.get(name, 0), held)
        time.sleep(0.1)
    after = cluster.ingest_servers()
    assert bad == [], bad[:10]
    for name, row in after.items():
        sent = int(row["stot"]) - int(before[name]["stot"])
        opened = int(row["connect"]) - int(before[name]["connect"])
        reused = int(row["reuse"]) - int(before[name]["reuse"])
        assert sent > 10 * maxconn, (name, sent)
        assert opened <= 2 * maxconn, "%s: %d connections opened for %d requests" % (
            name, opened, sent)
        assert reused >= sent - opened, (name, sent, opened, reused)
        assert most[name] <= maxconn, "%s held %d connections, maxconn %d" % (
            name, most[name], maxconn)


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
        # Back in HAProxy's rotation for the next tests, which count on
        # both nodes' threads.
        cluster.wait_ingest_up()
    assert cluster.pid("ingest1") is None or cluster.pid("ingest1") != pid
    assert took < 3 + 2, "ingest1 took %.1f s to stop" % took  # drain 3 s
    assert exit_status(cluster, pid) == "exited with status 0"
    with open(cluster.path("log", "ingest1.log")) as f:
        assert "finishing requests in progress" in f.read()

    # HAProxy only re-sends on connection failure, so a request the node
    # dropped would show here as an error; the node drops none.
    assert bad == [], bad[:10]
    assert receiver.wait_for(lambda rs: set(acked) <= {r["id"] for r in of_mark(rs, mark)}, 60)


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))


# What docs/configuration.md states: pb-ingest's peak memory with requests of the
# largest accepted size in flight at once.
INGEST_PEAK_BOUND_MB = 400


def test_ingest_memory_stays_bounded_for_the_largest_accepted_requests(cluster, receiver, mark):
    """16 requests of the largest accepted size at once (as many as this
    cluster's MAX_QUEUE_SIZE holds): a 0.9 MB body, 1000 objects of 100
    keys, 3.9 MB of postbacks, just under max_body_bytes and
    max_request_job_bytes. Each node's peak RSS stays under
    INGEST_PEAK_BOUND_MB (measured here: about 190 MB with about 8 of them
    each, some 24 MB a request in flight; 16 threads of one node all busy
    would make about 390 MB). Agents are stopped meanwhile (the point is
    the ingest node) and deliver the postbacks afterwards."""
    threads = cluster.topo["vars"]["pb_ingest_threads"]
    nodes = [n["name"] for n in cluster.topo["ingest_nodes"]]
    url = receiver.url + mark + "/" + "u" * 3000 + "?k={a0}"
    obj = lambda i: {"a%d" % k: i for k in range(100)}
    body = json.dumps({"endpoint": {"method": "GET", "url": url},
                       "data": [obj(i) for i in range(1000)]}, separators=(",", ":"))
    assert len(body) < cluster.topo["vars"]["pb_max_body_bytes"]
    n_req = min(threads * len(nodes), 16)  # what max_queue_size (20000) holds
    # Every node in HAProxy's rotation: with one down, the other takes
    # 3/4 of its threads and the rest wait in HAProxy's queue for 5 s,
    # then 503 (a CI run met it right after the SIGTERM test's restart).
    cluster.wait_ingest_up()
    for a in cluster.agent_names:
        cluster.stop(a)
    try:
        answers = []

        def send():
            r = requests.post(cluster.endpoint + "/ingest", data=body, timeout=120,
                              headers=dict(cluster.auth, **{"Content-Type": "application/json"}))
            answers.append((r.status_code, r.text[:300]))
        ts = [threading.Thread(target=send) for _ in range(n_req)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(180)
        assert [a for a, _ in answers].count(200) == n_req, answers
        peaks = {n: vm_hwm_kb(cluster.pid(n)) // 1024 for n in nodes}
        print("pb-ingest peak RSS, %d requests of the largest size at once: %s MB"
              % (n_req, peaks))
        # ASan's shadow memory and quarantine make RSS meaningless there.
        if not os.environ.get("ASAN_OPTIONS"):
            assert max(peaks.values()) < INGEST_PEAK_BOUND_MB, peaks
    finally:
        # The agents deliver them (a few seconds) for the next tests.
        for a in cluster.agent_names:
            cluster.start(a)


def test_a_request_is_stored_once_and_each_postback_by_reference(cluster, receiver, mark):
    """An 11 KB request whose postbacks once took 8 MB in Redis (the template
    repeated in each): the template is stored once, the data
    objects once behind their index, and the postbacks one queue element,
    a run (apps/common/job.h, version 3); all of them are delivered, and
    the request's keys go with the last."""
    url = receiver.url + mark + "/" + "p" * 7900 + "?i={i}"
    for a in cluster.agent_names:
        cluster.stop(a)
    try:
        r = requests.post(cluster.endpoint + "/ingest", timeout=30, headers=cluster.auth, json={
            "endpoint": {"method": "GET", "url": url},
            "data": [{"i": i} for i in range(1000)]})
        assert r.status_code == 200, r.text
        rid, ids = r.json()["request_id"], r.json()["ids"]
        m = cluster.master()
        h = m.hgetall(cluster.key("r:" + rid))
        assert h[b"n"] == b"1000" and h[b"h"].count(b"p" * 7900) == 1, h.keys()
        data = m.get(cluster.key("d:" + rid))
        objects = b"".join(b'{"i":%d}' % i for i in range(1000))
        index = struct.unpack("<1001I", data[:4 * 1001])
        assert data[4 * 1001:] == objects, "each object once, after the index"
        assert index[0] == 4 * 1001 and index[-1] == len(data), index[:3]
        assert data[index[7]:index[8]] == b'{"i":7}', "the index says where each is"
        runs = [x for k in m.scan_iter(match=cluster.key("q:*"))
                for x in m.lrange(k, 0, -1) if x.split(b" ")[0] == rid.encode()]
        assert runs == [rid.encode() + b" 0-999"], runs[:3]
    finally:
        for a in cluster.agent_names:
            cluster.start(a)
    assert receiver.wait_for(lambda rs: set(ids) <= {g["id"] for g in of_mark(rs, mark)}, 60)
    # Gone with its last postback (recorded just after the receiver answered).
    assert wait_until(lambda: not m.exists(cluster.key("r:" + rid), cluster.key("d:" + rid)), 10)


def dest_id(url):
    """The id apps/common/dest.c gives url's destination: FNV-1a 64 of its
    "scheme://host:port"."""
    u = urllib.parse.urlsplit(url)
    name = "%s://%s:%d" % (u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80))
    h = 14695981039346656037
    for b in name.encode():
        h = ((h ^ b) * 1099511628211) & (2 ** 64 - 1)
    return "%016x" % h


def test_a_round_that_fails_part_way_marks_no_request_stored(cluster, receiver, mark):
    """An enqueue round the master refuses part-way (here its destination's
    queue is a key of the wrong type, put there by hand) is answered with an
    error and leaves no request of it marked as stored: the ingest node
    tries a round again with the same request ids when a reply is lost, and
    a request found marked would be answered "enqueued" with nothing
    queued. Once the key is mended, the client's retry is delivered."""
    m = cluster.master()
    queue = cluster.key("q:" + dest_id(receiver.url) + ":local")  # the local client's lane
    body = {"endpoint": {"method": "GET", "url": receiver.url + mark + "/w?i={i}"},
            "data": [{"i": i} for i in range(3)]}
    stored = lambda: {k for p in ("r:*", "d:*") for k in m.scan_iter(match=cluster.key(p))}
    # The receiver's queue is empty between tests (a list is gone when empty).
    assert wait_until(lambda: not m.exists(queue), 30), "the receiver's queue never emptied"
    before = stored()
    m.set(queue, "not a list")
    try:
        r = requests.post(cluster.endpoint + "/ingest", timeout=30, headers=cluster.auth,
                          json=body)
        # Redis's error text stays in the node's log, out of the answer.
        assert r.status_code == 503 and "retry later" in r.text, (r.status_code, r.text)
        assert "WRONGTYPE" not in r.text
        logs = "".join(open(cluster.path("log", n["name"] + ".log")).read()
                       for n in cluster.topo["ingest_nodes"])
        assert "WRONGTYPE" in logs
        assert stored() - before == set(), "a refused request was left marked as stored"
    finally:
        m.delete(queue)
    r = requests.post(cluster.endpoint + "/ingest", timeout=30, headers=cluster.auth, json=body)
    assert r.status_code == 200, r.text
    ids = r.json()["ids"]
    assert receiver.wait_for(lambda rs: set(ids) <= {g["id"] for g in of_mark(rs, mark)}, 30)


def vm_hwm_kib(pid):
    """A process's peak resident set since its last reset (VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def test_bodies_built_to_swell_the_parser_are_refused_in_little_memory(cluster):
    """16 bodies of 1 MiB at once, each an accepted request with "[{},{},...]"
    under a key of its own: parsed, one took about 74 MB of heap (8 at once:
    a node peaked at 320 MB). Now each is refused (413) before parsing, by
    its count of objects and arrays, and no node's peak grows by more than
    the bodies it holds (48 MiB)."""
    head = '{"endpoint":{"method":"GET","url":"http://a.test/{x}"},"data":[{"x":1}],"x":['
    limit = int(cluster.topo["vars"]["pb_max_body_bytes"])
    n = (limit - len(head) - 2) // 3
    body = (head + ",".join(["{}"] * n) + "]}").encode()
    assert len(body) <= limit
    pids = [cluster.pid(node["name"]) for node in cluster.topo["ingest_nodes"]]
    for pid in pids:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    before = {pid: vm_hwm_kib(pid) for pid in pids}
    answers = []

    def one():
        h = dict(cluster.auth, **{"Content-Type": "application/json"})
        answers.append(requests.post(cluster.endpoint + "/ingest", data=body, headers=h,
                                     timeout=60))
    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [413] * 16, answers[0].text
    assert "objects and arrays" in answers[0].json()["error"]
    grew = {pid: (vm_hwm_kib(pid) - before[pid]) // 1024 for pid in pids}
    print("16 swelling bodies of %d bytes: peak RSS growth per node %s MiB" % (len(body), grew))
    assert all(g <= 48 for g in grew.values()), grew
