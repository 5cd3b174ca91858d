"""Each destination's own delivery rules (pbctl policy; apps/common/policy.h):
its retry schedule, which failures it retries, its timeout, what a 410
does, its own headers (secrets: never in a log) and signing turned off for
it. Each test has a partner of its own (a receiver on a port of its own, so
a destination of its own) and clears its policy after."""
import glob
import os
import time

import pytest

from conftest import ingest, pbctl, redis_ids
from pbcluster import wait_until
from receiver import Receiver

APPLIED_S = 1.5  # agents read a changed policy within a second


@pytest.fixture
def partner(cluster):
    """A receiver of its own; answer(rec) -> (status, headers, body) is set
    by the test (200 until then)."""
    state = {"answer": lambda rec: (200, {}, b"ok")}
    r = Receiver(cluster.bind, 0, respond=lambda rec: state["answer"](rec)).start()
    r.answer = lambda f: state.__setitem__("answer", f)
    yield r
    pbctl(cluster, "policy", "clear", r.url, check=False)
    pbctl(cluster, "breakers", "close", r.url, check=False)
    r.stop()


def policy(cluster, url, *fields):
    rc, out = pbctl(cluster, "policy", "set", url, *fields)
    time.sleep(APPLIED_S)
    return out


def send(cluster, url, n=1, headers=None):
    r = ingest(cluster, {"endpoint": {"method": "GET", "url": url + "/p?i={i}"},
                         "data": [{"i": i} for i in range(n)]}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["ids"]


def dead_letters(cluster, ids):
    st = redis_ids(cluster)
    return [i for i in ids if st.get(i) == "dead"]


def test_attempts_follow_the_destinations_schedule_and_then_it_is_dead(cluster, partner):
    policy(cluster, partner.url, "schedule=1s,2s,3s", "max_attempts=4")
    partner.answer(lambda rec: (503, {}, b"down"))
    ids = send(cluster, partner.url)
    assert wait_until(lambda: dead_letters(cluster, ids), 30), redis_ids(cluster).get(ids[0])
    times = [r["time"] for r in partner.requests]
    assert len(times) == 4, times
    gaps = [b - a for a, b in zip(times, times[1:])]
    print("schedule 1s,2s,3s: gaps between attempts %s s"
          % ", ".join("%.2f" % g for g in gaps))
    # Each within 10 % of its delay, plus the time a due retry takes to be
    # taken again (promote's tick, a take).
    for gap, want in zip(gaps, (1, 2, 3)):
        assert 0.9 * want <= gap <= 1.1 * want + 0.6, gaps


@pytest.mark.parametrize("status", [429, 404])
def test_a_failure_the_policy_does_not_retry_is_dead_at_once(cluster, partner, status):
    policy(cluster, partner.url, "retry_on=5xx")
    partner.answer(lambda rec: (status, {}, b"no"))
    ids = send(cluster, partner.url)
    assert wait_until(lambda: dead_letters(cluster, ids), 15)
    assert len(partner.requests) == 1


def test_a_timeout_the_policy_does_not_retry_is_dead_after_its_timeout(cluster, partner):
    policy(cluster, partner.url, "timeout_ms=300", "retry_on=5xx,429")
    partner.answer(lambda rec: (time.sleep(1.0), (200, {}, b"late"))[1])
    ids = send(cluster, partner.url)
    assert wait_until(lambda: dead_letters(cluster, ids), 15)
    # (the receiver records a request once it has answered: a second on)
    assert wait_until(lambda: len(partner.requests) == 1, 5)
    time.sleep(1.5)
    assert len(partner.requests) == 1
    _, out = pbctl(cluster, "dead", "show", ids[0])
    assert "timed out" in out.lower() or "timeout" in out.lower(), out


def test_a_410_parks_the_destination_until_an_operator_releases_it(cluster, partner):
    """A 410 Gone (on_410=park, the default) parks its destination for the
    whole cluster: nothing more is sent to it, nothing becomes a dead
    letter, until `pbctl breakers close`; then every postback is delivered,
    the one that met the 410 too."""
    gone = {"on": True}
    partner.answer(lambda rec: (410, {}, b"gone") if gone["on"] else (200, {}, b"ok"))
    ids = send(cluster, partner.url, n=5)
    assert wait_until(lambda: len(partner.requests) >= 1, 15)
    time.sleep(1)  # what was in flight with the first 410 is answered
    first = len(partner.requests)
    time.sleep(3)
    assert len(partner.requests) == first, "sent on after the park"
    line = next(x for x in pbctl(cluster, "breakers")[1].splitlines()
                if partner.url.split("//")[1] in x)
    assert " open " in line and "parked" in line, line
    assert not dead_letters(cluster, ids)
    gone["on"] = False
    pbctl(cluster, "breakers", "close", partner.url)
    assert wait_until(lambda: {r["id"] for r in partner.requests if r["status"] == 200}
                      >= set(ids), 20), len(partner.requests)
    assert not dead_letters(cluster, ids)


def test_its_own_header_arrives_and_is_in_no_log(cluster, partner):
    secret = "s3cr3t-%d" % os.getpid()
    out = policy(cluster, partner.url, "header=X-Partner-Token: " + secret,
                 "header=X-Partner-Account: 42")
    assert secret not in out and "(secret)" in out, out
    assert secret not in pbctl(cluster, "policy", "show")[1]
    ids = send(cluster, partner.url, n=3)
    assert wait_until(lambda: len(partner.requests) >= 3, 15)
    for r in partner.requests:
        assert r["partner_headers"]["X-Partner-Token"] == secret, r
        assert r["partner_headers"]["X-Partner-Account"] == "42", r
    # Removed: no longer sent.
    policy(cluster, partner.url, "header=X-Partner-Token:")
    send(cluster, partner.url)
    assert wait_until(lambda: len(partner.requests) >= 4, 15)
    assert "X-Partner-Token" not in partner.requests[-1]["partner_headers"]
    # No log of the cluster holds the value: daemons' logs, delivery logs.
    logs = [p for p in glob.glob(cluster.path("**", "*.log"), recursive=True)
            if os.path.isfile(p)]
    assert logs
    for p in logs:
        with open(p, "rb") as f:
            assert secret.encode() not in f.read(), p
    assert set(ids) <= {r["id"] for r in partner.requests}


def test_signing_turned_off_for_one_destination(cluster, partner):
    name = "pol-sign-%d" % os.getpid()
    key = pbctl(cluster, "keys", "add", name)[1].splitlines()[0].strip()
    pbctl(cluster, "keys", "sign", name)
    time.sleep(APPLIED_S)
    auth = {"Authorization": "Bearer " + key}
    send(cluster, partner.url, headers=auth)
    assert wait_until(lambda: len(partner.requests) >= 1, 15)
    assert "webhook-signature" in partner.requests[0]
    policy(cluster, partner.url, "sign=off")
    send(cluster, partner.url, headers=auth)
    assert wait_until(lambda: len(partner.requests) >= 2, 15)
    assert "webhook-signature" not in partner.requests[1]
    assert "webhook-id" not in partner.requests[1]
    pbctl(cluster, "keys", "sign", name, "--off")
    pbctl(cluster, "keys", "revoke", name)


def test_a_bad_policy_is_refused_and_changes_nothing(cluster, partner):
    pbctl(cluster, "policy", "set", partner.url, "max_attempts=3")
    for bad in ("max_attempts=0", "schedule=1x", "retry_on=4xx", "header=Host: x",
                "colour=blue", "url=http://elsewhere:80"):
        rc, out = pbctl(cluster, "policy", "set", partner.url, bad, check=False)
        assert rc == 2, (bad, out)
    _, out = pbctl(cluster, "policy", "show", partner.url)
    assert "max_attempts=3" in out and partner.url.split("//")[1] in out, out
    pbctl(cluster, "policy", "clear", partner.url)
    assert "no policy of its own" in pbctl(cluster, "policy", "show", partner.url)[1]
