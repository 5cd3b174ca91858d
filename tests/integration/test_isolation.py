"""One slow or dead partner must not delay the others: each
destination has a queue of its own in Redis, and an agent gives no
destination more than max_in_flight_per_destination of its slots."""

import threading
import time

import pytest
from pbcluster import wait_until
from conftest import OVERRIDES, ingest, of_mark, pbctl, redis_ids
from receiver import Receiver

# The blocked partner's backlog: about twice the slots the agents may give
# one destination (2 agents x max_in_flight_per_destination 256), so that
# every slot it may hold is held and more of its postbacks wait in Redis.
HOLE_POSTBACKS = 1000
HEALTHY = 200


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


# How the blocked partner behaves until it recovers (opened set), and how
# long its postbacks may take to arrive after that.
PARTNERS = {
    "never answers": (lambda opened: (opened.wait(120), (200, {}, b"ok"))[1], 120),
    "answers after 3 s": (lambda opened: (time.sleep(3), (200, {}, b"ok"))[1], 120),
    "answers 503": (lambda opened: (200, {}, b"ok") if opened.is_set()
                    else (503, {}, b"down"), 60),
}


def healthy_latencies(cluster, receiver, mark, each=lambda i: None, headers=None):
    """HEALTHY postbacks for receiver, one request every 10 ms (each(i)
    after the i-th; headers: another client's key): their times in ms from
    acknowledgement to arrival."""
    acked = {}
    for i in range(HEALTHY):
        r = ingest(cluster, {"endpoint": {"method": "GET",
                                          "url": receiver.url + mark + "/ok?i={i}"},
                             "data": [{"i": i}]}, headers=headers)
        assert r.status_code == 200, r.text
        acked[r.json()["ids"][0]] = time.time()
        each(i)
        time.sleep(0.01)
    assert receiver.wait_for(
        lambda rs: set(acked) <= {g["id"] for g in of_mark(rs, mark)}, 60)
    arrived = {g["id"]: g["time"] for g in of_mark(receiver.requests, mark)}
    return [1000 * (arrived[i] - t) for i, t in acked.items()]


@pytest.mark.parametrize("kind", sorted(PARTNERS))
def test_a_blocked_destination_does_not_delay_the_others(cluster, receiver, mark, kind):
    """1,000 postbacks for a partner that is blocked (it never answers: each
    attempt holds a slot for http_timeout_ms; it answers after seconds; it
    answers 503), then 200 for a healthy receiver, one every 10 ms: those
    arrive as if alone (p99 from acknowledgement to arrival under 1 s),
    none of the blocked partner's postbacks is lost or dead meanwhile, and
    once it recovers every one of them arrives."""
    behave, recovery_s = PARTNERS[kind]
    opened = threading.Event()
    hole = Receiver(cluster.bind, 0, respond=lambda rec: behave(opened)).start()
    try:
        url = hole.url + mark + "/hole?i={i}"
        hole_ids = []
        for start in range(0, HOLE_POSTBACKS, 500):
            r = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                                 "data": [{"i": i} for i in range(start, start + 500)]})
            assert r.status_code == 200, r.text
            hole_ids += r.json()["ids"]
        time.sleep(1.0)  # the agents take what they may for it

        lat_ms = healthy_latencies(cluster, receiver, mark)
        print("healthy postbacks beside a partner that %s: p50 %.0f ms, p99 %.0f ms"
              % (kind, percentile(lat_ms, 50), percentile(lat_ms, 99)))
        # Before per-destination queues: p50 130 s, p99 149 s.
        assert percentile(lat_ms, 99) <= 1000, sorted(lat_ms)[-10:]

        # Meanwhile nothing of the blocked partner's is lost or dead: each
        # waits in Redis, or (the slow partner) has arrived.
        held = redis_ids(cluster)
        done = {g["id"] for g in hole.requests if g["status"] == 200}
        assert all((i in held and held[i] != "dead") or i in done for i in hole_ids)

        opened.set()  # the partner is back
        assert hole.wait_for(lambda rs: set(hole_ids) <= {g["id"] for g in rs
                                                          if g["status"] == 200},
                             recovery_s)
        assert not any(redis_ids(cluster, "dead").get(i) for i in hole_ids)
    finally:
        opened.set()
        hole.stop()


def breaker_line(cluster, url):
    """`pbctl breakers` line of the destination of url ("" if none)."""
    host = url.split("/")[2]
    return next((line for line in pbctl(cluster, "breakers")[1].splitlines()
                 if "://" + host in line), "")


def test_a_failing_destination_is_parked_probed_and_released(cluster, mark):
    """A destination that answers 503 to everything: after breaker_failures
    failures in a row its breaker opens for all agents; while it is open one
    probe a cool-down reaches it and nothing is dead-lettered; once it
    answers, the probe closes the breaker and every postback arrives."""
    state = {"up": False}
    partner = Receiver(cluster.bind, 0, respond=lambda rec: (200, {}, b"ok")
                       if state["up"] else (503, {}, b"down")).start()
    cooldown_s = OVERRIDES["pb_agent_breaker_cooldown_ms"] / 1000.0
    try:
        url = partner.url + mark + "/b?i={i}"
        ids = []
        for start in range(0, 300, 100):
            r = ingest(cluster, {"endpoint": {"method": "GET", "url": url},
                                 "data": [{"i": i} for i in range(start, start + 100)]})
            assert r.status_code == 200, r.text
            ids += r.json()["ids"]
        assert wait_until(lambda: " open " in breaker_line(cluster, url), 20), \
            pbctl(cluster, "breakers")[1]
        assert "breakers 1 open" in pbctl(cluster, "status", check=False)[1]
        time.sleep(0.5)  # attempts already under way when it opened finish
        before = len(partner.requests)
        time.sleep(3 * cooldown_s)
        probes = len(partner.requests) - before
        print("breaker open: %d requests reached the destination in %.0f s "
              "(cool-down %.0f s)" % (probes, 3 * cooldown_s, cooldown_s))
        assert 1 <= probes <= 4, probes  # one a cool-down, not the backlog
        held = redis_ids(cluster)
        gone_or_dead = [(i, held.get(i)) for i in ids if held.get(i, "dead") == "dead"]
        assert not gone_or_dead, gone_or_dead[:5]

        state["up"] = True
        assert partner.wait_for(
            lambda rs: set(ids) <= {g["id"] for g in rs if g["status"] == 200}, 60)
        # Closed with nothing left to remember: its state is gone from Redis.
        assert breaker_line(cluster, url) == "", breaker_line(cluster, url)
    finally:
        state["up"] = True
        partner.stop()


def test_a_client_cannot_open_another_partners_breaker(cluster, mark):
    """1,000 postbacks whose URLs name a partner's host behind userinfo
    ("http://a@b@<partner>/", which libcurl refuses, once queued under the
    partner's destination and failed against its breaker), or in other
    forms libcurl would not connect to: every request is refused with 400
    and nothing is queued. Meanwhile 200 postbacks to that partner from
    another request stream arrive with p99 <= 1 s from acknowledgement,
    and the partner's breaker never opens."""
    partner = Receiver(cluster.bind, 0, respond=lambda rec: (200, {}, b"ok")).start()
    hostport = partner.url.split("/")[2]
    forms = ["a@b@" + hostport, "user:pw@" + hostport, "@" + hostport,
             hostport + ":99999", "exa mple." + hostport]
    try:
        before = redis_ids(cluster)
        refused = 0
        for k in range(10):
            data = [{"h": forms[(k * 100 + i) % len(forms)], "i": i} for i in range(100)]
            r = ingest(cluster, {"endpoint": {"method": "GET",
                                              "url": "http://{h}" + mark + "/x?i={i}"},
                                 "data": data})
            assert r.status_code == 400, r.text
            refused += len(data)
        for url in ("http://a@b@" + hostport + mark + "/y",
                    "http://user:pw@" + hostport + mark + "/y"):
            r = ingest(cluster, {"endpoint": {"method": "GET", "url": url}, "data": [{}]})
            assert r.status_code == 400, r.text
        assert set(redis_ids(cluster)) <= set(before), "a refused postback was queued"

        opened = []
        lat_ms = healthy_latencies(
            cluster, partner, mark,
            each=lambda i: i % 50 or opened.append(breaker_line(cluster, partner.url)))
        print("%d malformed postbacks refused; the partner's own: p50 %.0f ms, "
              "p99 %.0f ms" % (refused, percentile(lat_ms, 50), percentile(lat_ms, 99)))
        assert percentile(lat_ms, 99) <= 1000, sorted(lat_ms)[-10:]
        opened.append(breaker_line(cluster, partner.url))
        assert not any(" open " in line or " half " in line for line in opened), opened
        assert all(g["status"] == 200 for g in of_mark(partner.requests, mark))
    finally:
        partner.stop()


FAILING_HOSTS = 10000


def test_ten_thousand_failing_hosts_leave_nothing_behind(cluster, receiver, mark):
    """A client sends one postback to each of 10,000 distinct hosts that
    refuse connections (127.1.x.y, port 9): each becomes a destination of
    its own that fails until its postback is a dead letter, and none is
    lost. Afterwards their breakers lapse: no destination state, queue or
    turn of theirs is left, and once their dead letters are taken out
    Redis's memory is back to its level before. Meanwhile 200 postbacks
    for a healthy receiver from another client all arrive with p99 under
    1 s: the take goes round the clients before their destinations
    (docs/design.md, "Turns between clients"), so they do not wait for the
    first round of 10,000 (about 7 s before)."""
    m = cluster.master()
    stem = cluster.key("dest:")
    dead_before = m.llen(cluster.key("dead"))
    # The data's memory: used_memory less what serves connections and
    # replication (its backlog grows with traffic up to its size).
    mem_before = m.info("memory")["used_memory_dataset"]
    hosts = ["127.1.%d.%d" % (i // 250, 1 + i % 250) for i in range(FAILING_HOSTS)]
    ids = []
    for start in range(0, FAILING_HOSTS, 1000):
        r = ingest(cluster, {"endpoint": {"method": "GET",
                                          "url": "http://{h}:9" + mark + "/f?i={i}"},
                             "data": [{"h": h, "i": i} for i, h in
                                      enumerate(hosts[start:start + 1000], start)]})
        assert r.status_code == 200, r.text
        ids += r.json()["ids"]

    key = pbctl(cluster, "keys", "add", "healthy" + mark[-6:])[1].splitlines()[0].strip()
    time.sleep(1.2)  # the ingest nodes load the key
    lat_ms = healthy_latencies(cluster, receiver, mark,
                               headers={"Authorization": "Bearer " + key})
    print("another client's healthy postbacks beside %d failing hosts: p50 %.0f ms, "
          "p99 %.0f ms" % (FAILING_HOSTS, percentile(lat_ms, 50), percentile(lat_ms, 99)))
    assert percentile(lat_ms, 99) <= 1000, sorted(lat_ms)[-10:]
    pbctl(cluster, "keys", "revoke", "healthy" + mark[-6:])

    # Every one of them ends a dead letter (max_attempts), none is lost.
    assert wait_until(lambda: m.llen(cluster.key("dead")) - dead_before >= FAILING_HOSTS,
                      180, every=1), m.llen(cluster.key("dead")) - dead_before
    held = redis_ids(cluster)
    assert all(held.get(i) == "dead" for i in ids), \
        [(i, held.get(i)) for i in ids if held.get(i) != "dead"][:5]
    # Their breakers lapse (twice the cool-down), their turns and queues go.
    peak = len(list(m.scan_iter(stem + "*", count=1000)))
    assert wait_until(lambda: not any(True for _ in m.scan_iter(stem + "*", count=1000)),
                      4 * OVERRIDES["pb_agent_breaker_cooldown_ms"] / 1000 + 30, every=1)
    assert not any(True for _ in m.scan_iter(cluster.key("q:") + "*", count=1000))
    assert not any(True for _ in m.scan_iter(cluster.key("lanes:") + "*", count=1000))
    assert not any(True for _ in m.scan_iter(cluster.key("cready:") + "*", count=1000))
    assert wait_until(lambda: m.zcard(cluster.key("ready")) == 0, 10)
    # Their dead letters (the newest) out, the memory is what it was.
    new = m.llen(cluster.key("dead")) - dead_before
    m.ltrim(cluster.key("dead"), new, -1)
    # Beyond the keys, Redis keeps its keyspace's hash tables at their size
    # for a while (it shrinks them in its cron): 8 bytes a slot, a key and
    # its expiry each one, twice while it rehashes, for the keys those
    # hosts made (a breaker, a queue, at peak).
    slack = 8 * 2 * 2 * 2 * FAILING_HOSTS

    def back():
        back.mem = m.info("memory")["used_memory_dataset"]
        return back.mem <= mem_before + slack
    ok = wait_until(back, 30, every=1)
    print("destination states at most %d, then 0; used_memory_dataset %d before, "
          "%d after (slack %d)" % (peak, mem_before, back.mem, slack))
    assert ok, (mem_before, back.mem)
