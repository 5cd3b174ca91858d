"""Two shards (docs/design.md, "Shards"): a cluster of its own whose queue is
spread over two Sentinel-managed Redis groups. Requests go to both, agents
deliver from both, a shard whose master dies costs the clients no 503 and
no wait while the other takes writes, and an Idempotency-Key holds across
its home shard's failover."""
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import OVERRIDES, ROOT, ingest
from conftest import of_mark as marked
from pbcluster import BIN_DIR, PORT_OFFSETS, Cluster, wait_until
from receiver import Receiver

SHARD_OFFSET = PORT_OFFSETS["test-shards"]


@pytest.fixture(scope="module")
def sharded():
    state = os.path.join(ROOT, "run", "test-shards")
    shutil.rmtree(state, ignore_errors=True)
    c = Cluster(state=state, offset=SHARD_OFFSET, overrides=OVERRIDES, receiver=False,
                metrics="endpoints", shards=2)
    r = Receiver(c.bind, c.topo["receiver_port"]).start()
    try:
        c.up(timeout=120)
        yield c, r
    finally:
        c.down()
        r.stop()


def post(c, objects, mark, key=None, timeout=30):
    """objects to the receiver under mark (?n={n}), with key as the
    Idempotency-Key if given."""
    return ingest(c, {"endpoint": {"method": "GET", "url": c.receiver_url + mark + "?n={n}"},
                      "data": objects},
                  headers={"Idempotency-Key": key} if key else None, timeout=timeout)


def of_mark(receiver, mark):
    with receiver.cond:
        return marked(receiver.requests, mark)


def queued_per_shard(c):
    return [c.queue_size(c.master(i)) for i in range(len(c.shards))]


def test_requests_go_to_both_shards_and_agents_deliver_from_both(sharded):
    c, receiver = sharded
    mark = "/s/" + uuid.uuid4().hex[:8]
    for a in c.agent_names:
        c.stop(a)
    try:
        for i in range(40):
            assert post(c, [{"n": i}], mark).status_code == 200
        per_shard = queued_per_shard(c)
        assert sum(per_shard) == 40 and min(per_shard) >= 10, per_shard
    finally:
        for a in c.agent_names:
            c.start(a)
    assert receiver.wait_for(lambda _: len(of_mark(receiver, mark)) >= 40, 60)
    got = sorted(int(r["path"].split("n=")[1]) for r in of_mark(receiver, mark))
    assert got == list(range(40)), got
    assert queued_per_shard(c) == [0, 0]


def shard_counts(c, family):
    """{shard: count} of an ingest family by shard, summed over the nodes."""
    out = {}
    for n in c.topo["ingest_nodes"]:
        text = requests.get("http://%s:%d/metrics" % (n["host"], n["metrics_port"]),
                            timeout=5).text
        for line in text.splitlines():
            if line.startswith(family + "{"):
                shard = line.split('shard="')[1].split('"')[0]
                out[shard] = out.get(shard, 0) + float(line.split()[-1])
    return out


def master_of(c, shard):
    node = c.master_node(shard=shard)
    assert node, "shard %d has no master" % shard
    return node


def wait_master(c, shard, old, timeout=60):
    return wait_until(lambda: c.master_node(shard=shard) not in (None, old), timeout)


class Load:
    """Clients sending one-object requests without keys, at a steady rate,
    each answer's status and time kept."""

    def __init__(self, c, mark, rate=100, threads=4):
        self.c, self.mark, self.every = c, mark, threads / rate
        self.answers, self.lock = [], threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(threads)]

    def run(self, t):
        i = 0
        while not self.stopping.is_set() and i < 5000:
            n = "%d-%d" % (t, i)
            t0 = time.time()
            try:
                r = post(self.c, [{"n": n}], self.mark, timeout=30)
                status = r.status_code
            except requests.RequestException:
                status = 0
            took = time.time() - t0
            with self.lock:
                self.answers.append((t0, status, took, n))
            i += 1
            time.sleep(max(0.0, self.every - took))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(60)


def home_shard(c, key):
    """The shard whose master holds the client's Idempotency-Key."""
    name = c.key("idem:local:" + key)
    found = [i for i in range(len(c.shards)) if c.master(i).exists(name)]
    assert len(found) == 1, (key, found)
    return found[0]


def keyed_on_second_shard(c, receiver):
    """A request with an Idempotency-Key whose home is the second shard,
    delivered: (its key, its mark, its first answer). Each try delivers to
    a path of its own."""
    for _ in range(64):
        key = uuid.uuid4().hex
        mark = "/i/" + key[:12]
        first = post(c, [{"n": 1}, {"n": 2}], mark, key=key)
        assert first.status_code == 200, first.text
        if home_shard(c, key) == 1:
            assert receiver.wait_for(lambda _: len(of_mark(receiver, mark)) >= 2, 30)
            return key, mark, first
    pytest.fail("no key of 64 had the second shard as its home")


def queued_on_both_shards(c, url, n, per_request=2):
    """n postbacks for url ({i} their number), in requests without keys,
    queued while the agents are stopped and seen waiting on both shards;
    the agents start again. Their ids. Small requests, many of them: each
    ingest thread takes its own turn over the shards, so a few requests
    can land unevenly (a clean-clone run put 70 of 80 on one shard with
    requests of 10)."""
    for a in c.agent_names:
        c.stop(a)
    ids = []
    try:
        for start in range(0, n, per_request):
            r = ingest(c, {"endpoint": {"method": "GET", "url": url},
                           "data": [{"i": i} for i in range(start, start + per_request)]})
            assert r.status_code == 200, r.text
            ids += r.json()["ids"]
        per_shard = queued_per_shard(c)
        assert min(per_shard) >= n // 5, per_shard
    finally:
        for a in c.agent_names:
            c.start(a)
    return ids


def breaker_lines(c, url):
    """pbctl breakers' lines of url's destination, one a shard that has it."""
    host = url.split("/")[2]
    return [line for line in c.pbctl("breakers").stdout.splitlines()
            if "://" + host in line]


def test_a_dead_destination_gets_one_probe_a_cooldown_from_the_whole_cluster(sharded):
    """A destination answering 503, its postbacks queued on both shards:
    once its breaker opens (on both: an outcome on one shard opens it on
    every shard), the probes that reach it are one a cool-down for the
    whole cluster (the gate on the first shard grants them), not one a
    shard; nothing is dead; once it answers, every postback arrives and
    its breaker is gone from both shards."""
    c, _ = sharded
    state = {"up": False}
    partner = Receiver(c.bind, 0, respond=lambda rec: (200, {}, b"ok")
                       if state["up"] else (503, {}, b"down")).start()
    cooldown_s = OVERRIDES["pb_agent_breaker_cooldown_ms"] / 1000.0
    try:
        url = partner.url + "/dead?i={i}"
        ids = queued_on_both_shards(c, url, 200)
        assert wait_until(lambda: sum(" open " in line for line in breaker_lines(c, url)) == 2,
                          30), breaker_lines(c, url)
        time.sleep(0.5)  # attempts under way when it opened finish
        before = len(partner.requests)
        time.sleep(5 * cooldown_s)
        probes = len(partner.requests) - before
        print("two shards, breaker open: %d requests reached the destination in "
              "%.0f s (cool-down %.0f s)" % (probes, 5 * cooldown_s, cooldown_s))
        # One a cool-down, and one more at a window's edge; a probe a shard
        # would be about 10.
        assert 1 <= probes <= 6, probes
        dead = [line for line in c.pbctl("dead", "list").stdout.splitlines()
                if any(i in line for i in ids)]
        assert dead == [], dead[:3]
        state["up"] = True
        assert partner.wait_for(
            lambda rs: set(ids) <= {g["id"] for g in rs if g["status"] == 200}, 60)
        assert wait_until(lambda: breaker_lines(c, url) == [], 10), breaker_lines(c, url)
    finally:
        state["up"] = True
        partner.stop()


def test_a_rated_destination_gets_its_rate_in_total_from_both_shards(sharded):
    """A destination limited to 10 requests/s (pbctl breakers rate), its
    postbacks queued on both shards: the receiver sees about 10 a second,
    not 10 a shard (the gate on the first shard paces the whole cluster)."""
    c, _ = sharded
    rate = 10
    partner = Receiver(c.bind, 0, respond=lambda rec: (200, {}, b"ok")).start()
    url = partner.url + "/paced?i={i}"
    try:
        p = c.pbctl("breakers", "rate", partner.url, str(rate))
        assert p.returncode == 0, p.stdout + p.stderr
        ids = queued_on_both_shards(c, url, 80)
        assert partner.wait_for(lambda rs: set(ids) <= {g["id"] for g in rs}, 60)
        times = sorted(g["time"] for g in partner.requests)
        # The steady part: past the first few (a turn may be granted at
        # once on each shard as the agents start).
        steady = times[5:]
        measured = (len(steady) - 1) / (steady[-1] - steady[0])
        print("rate %d/s over two shards: %.1f requests/s at the receiver"
              % (rate, measured))
        assert 0.6 * rate <= measured <= 1.2 * rate, measured
    finally:
        c.pbctl("breakers", "rate", partner.url, "0")
        partner.stop()


def restart_ingest(c, closed):
    """Every ingest node again, with closed_shards = closed."""
    c.topo["vars"]["pb_closed_shards"] = closed
    c.programs()  # renders the ingest nodes' settings again
    for n in c.topo["ingest_nodes"]:
        c.stop(n["name"])
        c.start(n["name"])
    assert wait_until(lambda: all(c.pid(n["name"]) for n in c.topo["ingest_nodes"]), 30)
    assert wait_until(lambda: post(c, [{"n": 0}], "/warm").status_code == 200, 30)


def test_a_closed_shard_takes_no_new_requests_and_is_drained(sharded, tmp_path):
    """Retiring a shard, step one (docs/operating.md): with the second shard
    in closed_shards, requests without a key and keys whose home it was go
    to the first shard, and the agents drain what the second still holds.
    The first shard, or a name not in the list, cannot be closed."""
    c, receiver = sharded
    second = c.shards[1]["name"]
    ingest_conf = c.path("conf", c.topo["ingest_nodes"][0]["name"] + ".conf")
    with open(ingest_conf) as f:
        text = f.read()
    for closed, says in ((c.shards[0]["name"], "is the first shard"),
                         ("nosuchshard", "is not in master_name")):
        bad = tmp_path / "ingest.conf"
        bad.write_text(text.replace("closed_shards = \n", "closed_shards = %s\n" % closed))
        p = subprocess.run([os.path.join(BIN_DIR, "pb-ingest"), "-c", str(bad), "--check"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode != 0 and says in p.stderr, (closed, p.stderr)

    mark = "/closed/" + uuid.uuid4().hex[:8]
    backlog = "/closed-backlog/" + uuid.uuid4().hex[:8]
    for a in c.agent_names:
        c.stop(a)
    try:
        for i in range(20):  # a backlog on both shards, before the close
            assert post(c, [{"n": i}], backlog).status_code == 200
        assert min(queued_per_shard(c)) >= 5, queued_per_shard(c)
        restart_ingest(c, second)
        before = queued_per_shard(c)
        for i in range(40):
            assert post(c, [{"n": i}], mark).status_code == 200
        keys = [uuid.uuid4().hex for _ in range(20)]
        for k in keys:
            assert post(c, [{"n": "k"}], mark + "k", key=k).status_code == 200
        after = queued_per_shard(c)
        # Everything new on the first shard, keys whose home was the second too.
        assert after[1] == before[1] and after[0] - before[0] == 40 + 20, (before, after)
        assert all(home_shard(c, k) == 0 for k in keys)
    finally:
        for a in c.agent_names:
            c.start(a)
        # The closed shard's backlog is drained by the agents.
        drained = receiver.wait_for(lambda _: len(of_mark(receiver, backlog)) >= 20, 60)
        restart_ingest(c, "")
    assert drained, len(of_mark(receiver, backlog))
    assert wait_until(lambda: queued_per_shard(c) == [0, 0], 30), queued_per_shard(c)


def test_a_shard_master_killed_under_load_costs_clients_no_503_and_loses_nothing(sharded):
    """The second shard's master is SIGKILLed while clients send about 100
    requests/s without keys: every answer 200, none held as long as
    failover_wait_ms, nothing lost, and the ingest nodes count the requests
    the failing shard passed over. A request with an Idempotency-Key whose
    home is that shard, retried after its failover, is queued once."""
    c, receiver = sharded
    key, kmark, first_answer = keyed_on_second_shard(c, receiver)
    mark = "/k/" + uuid.uuid4().hex[:8]
    victim = master_of(c, 1)
    first, second = c.shards[0]["name"], c.shards[1]["name"]
    passed = shard_counts(c, "pb_ingest_shard_passed_total")
    with Load(c, mark) as load:
        time.sleep(3)
        killed_at = time.time()
        c.stop(victim, sig=signal.SIGKILL)
        try:
            assert wait_master(c, 1, victim), "no failover of shard 2"
            # As a client does: the same key again until it is answered
            # 200; a new master without a replica in sync yet says 503.
            deadline = time.time() + 60
            while (again := post(c, [{"n": 1}, {"n": 2}], kmark, key=key)).status_code == 503 \
                    and time.time() < deadline:
                time.sleep(0.5)
        finally:
            c.start(victim)
    after = [a for a in load.answers if a[0] >= killed_at and a[0] < killed_at + 15]
    bad = [a for a in after if a[1] != 200]
    took = sorted(a[2] for a in after)
    p99 = took[int(len(took) * 0.99) - 1] if took else 0
    print("shard master SIGKILL: %d requests in the 15 s after, %d not 200, "
          "answer p99 %.3f s, max %.3f s" % (len(after), len(bad), p99, took[-1]))
    assert len(after) > 100, len(after)
    # One shard takes writes all along: nobody is told to come back later,
    # and nobody waits out failover_wait_ms on the shard that failed.
    assert bad == [], bad[:5]
    wait_ms = c.topo["vars"]["pb_failover_wait_ms"]
    assert took[-1] < wait_ms / 1000.0, took[-1]
    # The ingest nodes say so: the second shard passed requests over, the
    # first took them.
    passed_now = shard_counts(c, "pb_ingest_shard_passed_total")
    assert passed_now[second] > passed.get(second, 0), passed_now
    assert shard_counts(c, "pb_ingest_shard_taken_total")[first] > 0
    acked = {a[3] for a in load.answers if a[1] == 200}
    assert receiver.wait_for(
        lambda _: acked <= {r["path"].split("n=")[1] for r in of_mark(receiver, mark)}, 90), \
        "lost: %s" % sorted(acked - {r["path"].split("n=")[1] for r in of_mark(receiver, mark)})[:10]
    # The keyed request: the first answer again, and only its first try's
    # postbacks delivered (before the kill); the retry queued nothing.
    assert again.status_code == 200, again.text
    assert again.json()["ids"] == first_answer.json()["ids"]
    got = of_mark(receiver, kmark)
    assert sorted(r["path"] for r in got) == [kmark + "?n=1", kmark + "?n=2"], got
    wait_until(lambda: c.role(victim) == "slave", 30)


def test_pbctl_reports_each_shard_and_switches_over_the_one_named(sharded):
    c, _ = sharded
    # Healthy once the last test's old master is a replica in sync again.
    assert wait_until(lambda: c.pbctl("status").returncode == 0, 60)
    p = c.pbctl("status")
    assert p.returncode == 0, p.stdout + p.stderr
    sections = [line for line in p.stdout.splitlines() if line.startswith("== shard ")]
    assert sections == ["== shard %s" % s["name"] for s in c.shards], p.stdout
    assert p.stdout.count("health   ok") == 2, p.stdout
    # The ingest nodes beat on the first shard only: listed once.
    assert p.stdout.count("ingest   ") == len(c.topo["ingest_nodes"]), p.stdout
    p = c.pbctl("switchover")
    assert p.returncode == 2 and "which shard" in p.stderr, p.stderr
    p = c.pbctl("switchover", "nosuchshard")
    assert p.returncode == 2 and "no shard 'nosuchshard'" in p.stderr, p.stderr
    first, second = master_of(c, 0), master_of(c, 1)
    p = c.pbctl("switchover", c.shards[1]["name"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert wait_master(c, 1, second), "shard 2 kept its master"
    assert c.master_node(shard=0) == first
    assert wait_until(lambda: c.role(second) == "slave", 30)
