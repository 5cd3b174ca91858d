"""A partner down for ten minutes, with the default settings (make outage,
about 20 minutes): one postback, and 1,000 more to another destination,
are sent while both refuse connections; when they come back, every one is
delivered and none is a dead letter. The retry schedule spreads attempts
over the day a postback may live, and a destination whose breaker is open
waits behind it without spending attempts (docs/api.md, "The retry
schedule"). OUTAGE_S shortens the outage to try the test itself."""
import os
import shutil
import socket
import sys
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from pbcluster import PORT_OFFSETS, Cluster, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402

OUTAGE_S = int(os.environ.get("OUTAGE_S", "600"))
MANY = 1000


@pytest.fixture(scope="module")
def cluster():
    state = os.path.join(ROOT, "run", "outage")
    shutil.rmtree(state, ignore_errors=True)
    # The settings of cluster/local.yml and the roles' defaults: nothing
    # changed for the test.
    c = Cluster(state=state, offset=PORT_OFFSETS["outage"], overrides={}, receiver=False)
    try:
        c.up(timeout=90)
        yield c
    finally:
        c.down()


def free_port(bind):
    """A port nothing listens on (connections to it are refused)."""
    s = socket.socket()
    s.bind((bind, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def send(c, url, n):
    ids = []
    for start in range(0, n, 100):
        r = requests.post(c.endpoint + "/ingest", headers=c.auth, timeout=30,
                          json={"endpoint": {"method": "GET", "url": url + "/o?i={i}"},
                                "data": [{"i": i} for i in range(start, min(n, start + 100))]})
        assert r.status_code == 200, r.text
        ids += r.json()["ids"]
    return ids


def dead(c):
    p = c.pbctl("ids")
    return [line.split("\t")[1] for line in p.stdout.splitlines() if line.startswith("dead\t")]


def test_a_ten_minute_outage_costs_no_postback(cluster):
    c = cluster
    one_port, many_port = free_port(c.bind), free_port(c.bind)
    one_url, many_url = "http://%s:%d" % (c.bind, one_port), "http://%s:%d" % (c.bind, many_port)
    one = send(c, one_url, 1)
    many = send(c, many_url, MANY)
    down_at = time.time()
    time.sleep(OUTAGE_S)
    assert not dead(c), "dead letters during the outage"
    back_at = time.time()
    one_r = Receiver(c.bind, one_port).start()
    many_r = Receiver(c.bind, many_port).start()
    try:
        # The single postback waits for its next attempt (the schedule's
        # delay then: up to 10 min, within 10 %); the many, for the next
        # probe of their breaker and then their own retries come due.
        assert wait_until(lambda: set(one) <= set(one_r.ids()) and
                          set(many) <= set(many_r.ids()), 1200, every=5), \
            (len(one_r.ids()), len(set(many_r.ids())))
        last_one = max(r["time"] for r in one_r.requests)
        last_many = max(r["time"] for r in many_r.requests)
        attempts = c.pbctl("dead", "list").stdout
        print("outage %d s: the single postback arrived %.0f s after the partner "
              "came back (%.0f s after it was sent); the %d, the last %.0f s after; "
              "dead letters: %d" % (OUTAGE_S, last_one - back_at, last_one - down_at,
                                    MANY, last_many - back_at, len(dead(c))))
        assert not dead(c), attempts
    finally:
        one_r.stop()
        many_r.stop()
