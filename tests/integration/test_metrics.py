"""Metrics, Prometheus and the dashboard (#15), on a cluster of their own
(so that nothing but this module's workload is counted): a switchover,
then a known workload (delivered, retried then delivered, dead, one bad
request); the metrics of every agent and ingest node sum to exactly it,
Prometheus has scraped it, and the dashboard in headless Chromium shows it.
"""
import collections
import os
import re
import shutil
import subprocess
import threading
import time

import pytest
import requests

from conftest import OVERRIDES, ROOT, pbctl
from pbcluster import PORT_OFFSETS, Cluster, wait_until
from receiver import Receiver

METRICS_OFFSET = PORT_OFFSETS["test-metrics"]
OK, FLAKY, BAD = 20, 10, 5   # postbacks: delivered at once; 500 then 200; 400
LINE = re.compile(r'^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(addr):
    """{(name, frozenset(labels)): value} of one /metrics page."""
    text = requests.get("http://%s/metrics" % addr, timeout=5).text
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m and not line.startswith("#"):
            out[(m.group(1), frozenset(LABEL.findall(m.group(2) or "")))] = float(m.group(3))
    return out


def total(pages, name, **labels):
    """The sum over pages of the series of name whose labels include these."""
    want = set(labels.items())
    return sum(v for p in pages for (n, ls), v in p.items() if n == name and want <= ls)


class Metrics:
    def __init__(self, cluster, receiver):
        self.c, self.receiver = cluster, receiver
        t = cluster.topo
        self.agents = ["%s:%d" % (a["host"], a["metrics_port"]) for a in t["agents"]]
        self.ingests = ["%s:%d" % (n["host"], n["metrics_port"]) for n in t["ingest_nodes"]]
        self.prom = "http://%s:%d" % (t["bind"], t["prometheus_port"])

    def query(self, q):
        r = requests.get(self.prom + "/api/v1/query", params={"query": q}, timeout=10).json()
        assert r["status"] == "success", r
        return r["data"]["result"]


@pytest.fixture(scope="module")
def m():
    """The cluster, after a switchover and the workload, all recorded."""
    state = os.path.join(ROOT, "run", "test-metrics")
    shutil.rmtree(state, ignore_errors=True)
    # Ports +4000: every one below 32768, where Linux takes the ephemeral
    # ports of outgoing connections (a CI run lost a Sentinel's port to one
    # of the session cluster's connections at +14000).
    c = Cluster(state=state, offset=METRICS_OFFSET, overrides=OVERRIDES, receiver=False)
    seen = collections.Counter()
    lock = threading.Lock()

    def respond(rec):
        if rec["path"].startswith("/bad/"):
            return 400, {}, b"no such campaign"
        if rec["path"].startswith("/flaky/"):
            with lock:
                seen[rec["id"]] += 1
                if seen[rec["id"]] == 1:
                    return 500, {}, b"try again"
        return 200, {}, b"ok"
    rec = Receiver(c.bind, c.topo["receiver_port"], respond=respond).start()
    try:
        c.up(timeout=90)
        x = Metrics(c, rec)
        # A failover first, for the dashboard to mark: every daemon is
        # connected and Prometheus has seen them before it.
        assert wait_until(lambda: sum(1 for s in x.query("up") if s["value"][1] == "1") >= 13,
                          30), "Prometheus never saw every target up"
        requests.post(c.endpoint + "/ingest", headers=c.auth, json={
            "endpoint": {"method": "GET", "url": rec.url + "/warm/{i}"}, "data": [{"i": 0}]}, timeout=10)
        assert rec.wait_for(lambda rs: len(rs) == 1, 20)
        time.sleep(3)
        old = c.master_node()
        _, said = pbctl(c, "switchover")
        assert "switched over" in said, said
        assert wait_until(lambda: c.master_node() not in (old, None), 30)
        c.wait_ready(60)
        x.t0 = time.time()
        x.before = [scrape(a) for a in x.agents + x.ingests]
        workload(c, rec)
        want = 1 + OK + 2 * FLAKY + BAD
        assert rec.wait_for(lambda rs: len(rs) == want, 60), len(rec.requests)
        assert wait_until(lambda: total([scrape(a) for a in x.agents],
                                        "pb_delivery_attempts_total") == want, 20)
        yield x
    finally:
        rec.stop()
        c.down()


def workload(c, rec):
    def post(body):
        body["headers"] = dict(c.auth, **body.get("headers", {}))
        return requests.post(c.endpoint + "/ingest", timeout=10, **body)
    for path, n in (("/ok/", OK), ("/flaky/", FLAKY), ("/bad/", BAD)):
        r = post({"json": {"endpoint": {"method": "GET", "url": rec.url + path + "{i}"},
                           "data": [{"i": i} for i in range(n)]}})
        assert r.status_code == 200, r.text
    r = post({"data": b"{not json", "headers": {"Content-Type": "application/json"}})
    assert r.status_code == 400, r.text


def test_metrics_of_all_daemons_sum_to_the_workload(m):
    agents = [scrape(a) for a in m.agents]
    ingests = [scrape(a) for a in m.ingests]
    # The warm-up postback (delivered before the switchover) is in every count.
    assert total(agents, "pb_delivery_attempts_total", outcome="delivered") == 1 + OK + FLAKY
    assert total(agents, "pb_delivery_attempts_total", outcome="retry") == FLAKY
    assert total(agents, "pb_delivery_attempts_total", outcome="dead") == BAD
    assert total(agents, "pb_delivery_responses_total", **{"class": "2xx"}) == 1 + OK + FLAKY
    assert total(agents, "pb_delivery_responses_total", **{"class": "5xx"}) == FLAKY
    assert total(agents, "pb_delivery_responses_total", **{"class": "4xx"}) == BAD
    assert total(agents, "pb_delivery_attempt_seconds_count") == 1 + OK + 2 * FLAKY + BAD
    assert total(agents, "pb_delivery_attempt_seconds_bucket", le="+Inf") == \
        1 + OK + 2 * FLAKY + BAD
    assert total(agents, "pb_delivery_latency_seconds_count") == 1 + OK + FLAKY
    dest = "http://%s:%d" % (m.c.bind, m.c.topo["receiver_port"])
    assert total(agents, "pb_delivery_destination_attempts_total", destination=dest,
                 outcome="retry") == FLAKY
    assert total(agents, "pb_delivery_destination_attempts_total", destination=dest,
                 outcome="dead") == BAD
    # By client: the cluster's one client key ("local") queued everything.
    for outcome, n in (("delivered", 1 + OK + FLAKY), ("retry", FLAKY), ("dead", BAD)):
        assert total(agents, "pb_delivery_client_attempts_total", client="local",
                     outcome=outcome) == n, outcome
    assert total(ingests, "pb_ingest_client_postbacks_total", client="local",
                 outcome="accepted") == 1 + OK + FLAKY + BAD
    assert total(agents, "pb_delivery_in_flight") == 0
    assert total(agents, "pb_record_seconds_count") > 0
    assert total(agents, "pb_take_seconds_count") > 0
    assert total(ingests, "pb_postbacks_accepted_total") == 1 + OK + FLAKY + BAD
    assert total(ingests, "pb_ingest_requests_total", code="200") == 4
    assert total(ingests, "pb_ingest_requests_total", code="400") == 1
    assert total(ingests, "pb_ingest_enqueue_seconds_count") == 4
    assert total(agents + ingests, "pb_build_info") == 4
    # The switchover: every agent (connected before it) saw the new master.
    assert all(total([a], "pb_redis_master_changes_total") == 1 for a in agents)


def test_one_agent_shows_the_cluster_queue(m):
    dead = m.c.master().llen(m.c.key("dead"))
    assert dead == BAD

    def queue():
        pages = [scrape(a) for a in m.agents]
        holders = [p for p in pages if total([p], "pb_queue_exporter") == 1]
        return len(holders) == 1 and \
            total(holders, "pb_queue_postbacks", state="dead") == dead and holders
    holders = wait_until(queue, 15)
    assert holders, [scrape(a) for a in m.agents]
    (h,) = holders
    assert total([h], "pb_queue_postbacks", state="waiting") == 0
    assert total([h], "pb_queue_postbacks", state="in_flight") == 0
    shown = sum(1 for a in m.agents if ("pb_queue_postbacks", frozenset({("state", "dead")}))
                in scrape(a))
    assert shown == 1, "exactly one agent shows the queue gauges"


def test_prometheus_scraped_every_target_and_the_workload(m):
    def scraped():
        by = {s["metric"]["outcome"]: float(s["value"][1]) for s in
              m.query("sum by (outcome) (pb_delivery_attempts_total)")}
        acc = m.query("sum(pb_postbacks_accepted_total)")
        return by == {"delivered": 1 + OK + FLAKY, "retry": FLAKY, "dead": BAD} and \
            acc and float(acc[0]["value"][1]) == 1 + OK + FLAKY + BAD
    assert wait_until(scraped, 20), m.query("sum by (outcome) (pb_delivery_attempts_total)")
    up = collections.Counter()
    for s in m.query("up"):
        assert s["value"][1] == "1", s["metric"]
        up[s["metric"]["job"]] += 1
    assert up == {"pb-ingest": 2, "pb-agent": 2, "haproxy": 1, "redis": 3, "sentinel": 3,
                  "redis-exporter": 1, "prometheus": 1}, up
    masters = m.query('redis_instance_info{job="redis", role="master"}')
    assert len(masters) == 1
    assert m.query("ALERTS{alertname='PostbackFailover'}"), "the switchover raised no alert"


def chromium(url, *args):
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=20000",
                           "--window-size=1400,2000", *args, url],
                          capture_output=True, text=True, timeout=90)


def prometheus_has_the_dead_letters(m):
    """The queue gauges are read every 5 s by the agent holding the lease
    and scraped every 2 s: the dead letters reach Prometheus a few seconds
    after the attempts' counters do (a CI run's dashboard read 0)."""
    def dead():
        return [float(s["value"][1]) for s in
                m.query('max by (state) (pb_queue_postbacks{state="dead"})')]
    assert wait_until(lambda: dead() == [BAD], 20), dead()


def test_dashboard_in_headless_chromium_shows_the_workload(m):
    prometheus_has_the_dead_letters(m)
    url = m.prom + "/user/index.html"
    shot = m.c.path("dashboard.png")
    p = chromium(url, "--dump-dom")
    dom = p.stdout
    assert 'data-ready="1"' in dom, dom[-2000:]
    tiles = dict(re.findall(r'id="([\w-]+)">([^<]*)</span>', dom))
    assert tiles["total-delivered"] == str(1 + OK + FLAKY), tiles
    assert tiles["total-retry"] == str(FLAKY), tiles
    assert tiles["total-dead"] == str(BAD), tiles
    assert tiles["total-accepted"] == str(1 + OK + FLAKY + BAD), tiles
    assert tiles["queue-dead"] == str(BAD), tiles
    assert tiles["failovers"] == "1", tiles
    assert tiles["success-rate"] == "%.1f %%" % (100 * (1 + OK + FLAKY) /
                                                  (1 + OK + 2 * FLAKY + BAD)), tiles
    dest = "http://%s:%d" % (m.c.bind, m.c.topo["receiver_port"])
    row = re.search(r"<tr><td>%s</td><td>(\d+)</td><td>(\d+)</td>" % re.escape(dest), dom)
    assert row and row.groups() == (str(FLAKY + BAD), str(1 + OK + 2 * FLAKY + BAD)), \
        "the failing destination's row: %s" % (row and row.group(0))
    # The shards' table: each shard's requests as the ingest nodes counted
    # them, nothing passed over, nothing waiting once all is delivered.
    taken = int(total([scrape(a) for a in m.ingests], "pb_ingest_shard_taken_total"))
    shard = m.c.shards[0]["name"]
    row = re.search(r"<tr><td>%s</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>"
                    % re.escape(shard), re.search(r'<table id="shards">.*?</table>', dom,
                                                 re.S).group(0))
    assert taken > 0 and row and row.groups() == (str(taken), "0", "0"), \
        "the shard's row: %s (taken %d)" % (row and row.group(0), taken)
    # The clients' table: the one client's postbacks, as above.
    row = re.search(r"<tr><td>local</td><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>"
                    r"<td>(\d+)</td>", dom)
    assert row and row.groups() == (str(1 + OK + FLAKY + BAD), str(1 + OK + FLAKY),
                                    str(FLAKY), str(BAD)), \
        "the client's row: %s" % (row and row.group(0))
    assert re.search(r'<ul id="errors">\s*</ul>', dom), re.search(r'<ul id="errors">.*?</ul>',
                                                                  dom, re.S).group(0)
    console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    # And a screenshot, for people.
    s = chromium(url, "--screenshot=" + shot)
    assert s.returncode == 0 and os.path.getsize(shot) > 10000, s.stderr[-2000:]
    print("dashboard: %s" % shot)
